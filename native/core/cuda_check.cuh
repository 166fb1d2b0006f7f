// Error checking and device memory for the CUDA kernels. Every CUDA call of a
// kernel goes through cuda_check so that a failure names the op, the call and
// the driver's reason; device buffers are RAII so an exception frees them.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "core/error.h"

namespace hf {

// A kernel fault (illegal address, trap, …) is sticky: the context is lost and
// every later CUDA call of the process fails with the same error, so whichever
// call meets it first (often the next copy) reports it as what it is.
inline bool cuda_context_lost(cudaError_t status) {
  switch (status) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorContextIsDestroyed:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}

// No device, no (recent enough) driver or no code for this GPU's architecture:
// the machine cannot run the kernel (UnavailableError, so callers can fall back
// to the CPU). A lost context is DeviceLostError, no memory OutOfMemoryError
// (DeviceBuffer names the bytes); anything else is a bug or a broken device
// (std::runtime_error).
inline void cuda_check(cudaError_t status, const char* op, const char* call) {
  if (status == cudaSuccess) return;
  if (cuda_context_lost(status))
    throw DeviceLostError(std::string(op) + ": CUDA context lost: " + cudaGetErrorString(status) + " (" +
                          cudaGetErrorName(status) + ", surfaced at " + call +
                          "); a kernel faulted, and CUDA cannot be used again in this process");
  cudaGetLastError();  // clears a non-sticky error so the next op starts clean
  std::string message = std::string(op) + ": " + call + " failed: " + cudaGetErrorString(status);
  switch (status) {
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInitializationError:
    case cudaErrorStubLibrary:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
      throw UnavailableError(message);
    case cudaErrorMemoryAllocation:
      throw OutOfMemoryError(std::string(op) + ": out of device memory (" + call + ")");
    default:
      throw std::runtime_error(message);
  }
}

// cudaMalloc of `bytes`; out of memory names the bytes asked and those free.
inline void* cuda_malloc(size_t bytes, const char* op) {
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    const bool known = cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess;
    cudaGetLastError();
    std::string message = std::string(op) + ": out of device memory: cudaMalloc of " + std::to_string(bytes) + " bytes";
    if (known)
      message += " failed with " + std::to_string(free_bytes) + " of " + std::to_string(total_bytes) + " bytes free";
    throw OutOfMemoryError(message);
  }
  cuda_check(status, op, "cudaMalloc");
  return p;
}

// Kernel-only time for the CUDA benchmark (native/bench/cuda_bench.cc): while
// enabled, every HF_CUDA_LAUNCH is bracketed by two events on the default
// stream, and take_ms() waits for them and returns the summed span since the
// last take_ms(), which leaves out allocation and host↔device copies. Off by
// default (one load per launch).
namespace kernel_clock {
void enable(bool on);
bool enabled();
void begin();
void end();
double take_ms();
}  // namespace kernel_clock

// Launches are checked in every build (a bad configuration fails here, naming
// the launch site); in debug builds, or with HISTOFLOW_CUDA_SYNC=1 in the
// environment, each launch is also waited for, so a fault names its kernel
// instead of surfacing at the next copy.
inline bool cuda_sync_after_launch() {
#ifndef NDEBUG
  return true;
#else
  static const bool on = [] {
    const char* v = std::getenv("HISTOFLOW_CUDA_SYNC");
    return v != nullptr && v[0] == '1';
  }();
  return on;
#endif
}

inline void cuda_check_launch(const char* op, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  const std::string site = std::string("kernel launched at ") + (base ? base + 1 : file) + ":" + std::to_string(line);
  cuda_check(cudaGetLastError(), op, site.c_str());
  if (cuda_sync_after_launch()) cuda_check(cudaDeviceSynchronize(), op, site.c_str());
  if (kernel_clock::enabled()) kernel_clock::end();
}

// HF_CUDA_LAUNCH(op, kernel<<<grid, block>>>(args...)): launches and checks.
#define HF_CUDA_LAUNCH(op, ...)                                      \
  do {                                                               \
    if (::hf::kernel_clock::enabled()) ::hf::kernel_clock::begin();  \
    __VA_ARGS__;                                                     \
    ::hf::cuda_check_launch((op), __FILE__, __LINE__);               \
  } while (0)

// `count` elements of T in device memory (cudaMalloc, never managed memory).
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(size_t count, const char* op) : count_(count) {
    if (count > 0) data_ = static_cast<T*>(cuda_malloc(count * sizeof(T), op));
  }
  ~DeviceBuffer() {
    if (data_) cudaFree(data_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      if (data_) cudaFree(data_);
      data_ = std::exchange(other.data_, nullptr);
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }

  T* data() const { return data_; }
  size_t size() const { return count_; }

  void upload(const T* host, size_t count, const char* op) {
    if (count > 0)
      cuda_check(cudaMemcpy(data_, host, count * sizeof(T), cudaMemcpyHostToDevice), op, "cudaMemcpy to device");
  }
  void download(T* host, size_t count, const char* op) const {
    if (count > 0)
      cuda_check(cudaMemcpy(host, data_, count * sizeof(T), cudaMemcpyDeviceToHost), op, "cudaMemcpy to host");
  }
  void zero(const char* op) {
    if (count_ > 0) cuda_check(cudaMemset(data_, 0, count_ * sizeof(T)), op, "cudaMemset");
  }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
};

// Blocks for a grid-stride loop over `items`, capped so huge inputs reuse blocks.
inline unsigned grid_blocks(long long items, int threads, unsigned cap = 65535u * 4u) {
  long long blocks = (items + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  return blocks > cap ? cap : static_cast<unsigned>(blocks);
}

}  // namespace hf
