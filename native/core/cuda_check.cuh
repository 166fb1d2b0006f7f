// Error checking and device memory for the CUDA kernels. Every CUDA call of a
// kernel goes through cuda_check so that a failure names the op, the call and
// the driver's reason; device buffers are RAII so an exception frees them.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "core/error.h"

namespace hf {

// No device, no (recent enough) driver, no code for this GPU's architecture or
// no memory: the machine cannot run the kernel (UnavailableError, so callers
// can fall back to the CPU); anything else is a bug or a broken device
// (std::runtime_error).
inline void cuda_check(cudaError_t status, const char* op, const char* call) {
  if (status == cudaSuccess) return;
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
    case cudaErrorMemoryAllocation:
      throw UnavailableError(message);
    default:
      throw std::runtime_error(message);
  }
}

// After a kernel launch: catches bad launch configurations.
#define HF_CUDA_CHECK_LAUNCH(op) ::hf::cuda_check(cudaGetLastError(), (op), "kernel launch")

// `count` elements of T in device memory (cudaMalloc, never managed memory).
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(size_t count, const char* op) : count_(count) {
    if (count > 0) cuda_check(cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T)), op, "cudaMalloc");
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
