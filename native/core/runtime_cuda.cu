// CUDA devices and runtime version, for `histoflow info` and backend choice.
#include <cuda_runtime.h>

#include <atomic>
#include <mutex>
#include <utility>
#include <vector>

#include "core/cuda_check.cuh"
#include "core/runtime.h"

namespace hf {

std::vector<CudaDevice> cuda_devices(std::string* why_none) {
  std::vector<CudaDevice> devices;
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    if (why_none) *why_none = cudaGetErrorString(status);
    return devices;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    CudaDevice d;
    d.index = i;
    d.name = prop.name;
    d.total_memory = prop.totalGlobalMem;
    d.major = prop.major;
    d.minor = prop.minor;
    d.multiprocessors = prop.multiProcessorCount;
    devices.push_back(d);
  }
  if (devices.empty() && why_none) *why_none = count == 0 ? "no CUDA device found" : "no CUDA device could be queried";
  return devices;
}

std::string cuda_runtime_version() {
  int version = 0;
  if (cudaRuntimeGetVersion(&version) != cudaSuccess) return "";
  // 13000 → "13.0" (major·1000 + minor·10).
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

namespace kernel_clock {

namespace {
std::atomic<bool> g_enabled{false};
std::mutex g_mutex;
std::vector<std::pair<cudaEvent_t, cudaEvent_t>> g_spans;  // the last one may be open (second null)

cudaEvent_t new_event() {
  cudaEvent_t e = nullptr;
  cuda_check(cudaEventCreate(&e), "kernel_clock", "cudaEventCreate");
  return e;
}
}  // namespace

void enable(bool on) { g_enabled.store(on, std::memory_order_relaxed); }

bool enabled() { return g_enabled.load(std::memory_order_relaxed); }

void begin() {
  std::lock_guard<std::mutex> lock(g_mutex);
  cudaEvent_t e = new_event();
  cuda_check(cudaEventRecord(e), "kernel_clock", "cudaEventRecord");
  g_spans.emplace_back(e, nullptr);
}

void end() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_spans.empty() || g_spans.back().second != nullptr) return;
  cudaEvent_t e = new_event();
  cuda_check(cudaEventRecord(e), "kernel_clock", "cudaEventRecord");
  g_spans.back().second = e;
}

double take_ms() {
  std::lock_guard<std::mutex> lock(g_mutex);
  cuda_check(cudaDeviceSynchronize(), "kernel_clock", "cudaDeviceSynchronize");
  double total = 0;
  for (auto& [a, b] : g_spans) {
    if (b != nullptr) {
      float ms = 0;
      cuda_check(cudaEventElapsedTime(&ms, a, b), "kernel_clock", "cudaEventElapsedTime");
      total += ms;
      cudaEventDestroy(b);
    }
    cudaEventDestroy(a);
  }
  g_spans.clear();
  return total;
}

}  // namespace kernel_clock

}  // namespace hf
