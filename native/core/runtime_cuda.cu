// CUDA devices and runtime version, for `histoflow info` and backend choice.
#include <cuda_runtime.h>

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

}  // namespace hf
