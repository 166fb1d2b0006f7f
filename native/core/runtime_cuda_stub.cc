// CPU-only build: no CUDA devices, and the reason says why.
#include "core/runtime.h"

namespace hf {

std::vector<CudaDevice> cuda_devices(std::string* why_none) {
  if (why_none) *why_none = "histoflow was built without CUDA (nvcc was not found when the addon was compiled, or -DHISTOFLOW_CUDA=OFF)";
  return {};
}

std::string cuda_runtime_version() { return ""; }

}  // namespace hf
