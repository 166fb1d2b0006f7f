// How CUDA failures reach the caller (core/cuda_check.cuh): a kernel fault is
// "CUDA context lost" wherever it surfaces, out of memory names the bytes
// asked, a missing device or driver is UnavailableError. The classification
// runs without a GPU; the real allocation needs one. (A real fault cannot be
// provoked here: it would end CUDA for the rest of this process.)
#ifdef HISTOFLOW_WITH_CUDA
#include <cstdint>
#include <string>

#include "core/cuda_check.cuh"
#include "harness.h"

namespace {

// The message of what `fn` throws as E, or "" when it throws nothing or something else.
template <typename E, typename Fn>
std::string thrown(Fn fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  } catch (...) {
  }
  return "";
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

HF_TEST("cuda_check reports a kernel fault met at a copy as CUDA context lost") {
  for (cudaError_t fault : {cudaErrorIllegalAddress, cudaErrorLaunchFailure, cudaErrorMisalignedAddress,
                            cudaErrorIllegalInstruction, cudaErrorAssert}) {
    const std::string m =
        thrown<hf::DeviceLostError>([&] { hf::cuda_check(fault, "macenko_fit_cuda", "cudaMemcpy to host"); });
    CHECK(contains(m, "macenko_fit_cuda: CUDA context lost: "));
    CHECK(contains(m, cudaGetErrorString(fault)));
    CHECK(contains(m, "cudaMemcpy to host"));
    CHECK(!contains(m, "failed"));
  }
}

HF_TEST("cuda_check reports out of memory as OutOfMemoryError, not as no GPU") {
  const std::string m =
      thrown<hf::OutOfMemoryError>([] { hf::cuda_check(cudaErrorMemoryAllocation, "augment_cuda", "cudaMalloc"); });
  CHECK(contains(m, "augment_cuda: out of device memory"));
  CHECK(thrown<hf::UnavailableError>([] { hf::cuda_check(cudaErrorMemoryAllocation, "op", "cudaMalloc"); }).empty());
}

HF_TEST("cuda_check reports a missing device or driver as UnavailableError") {
  for (cudaError_t missing : {cudaErrorNoDevice, cudaErrorInsufficientDriver, cudaErrorNoKernelImageForDevice})
    CHECK(contains(thrown<hf::UnavailableError>([&] { hf::cuda_check(missing, "rgb_to_od_cuda", "cudaMalloc"); }),
                   "rgb_to_od_cuda: cudaMalloc failed: "));
}

HF_TEST("a device allocation larger than the GPU names the bytes asked (needs a GPU)") {
  SKIP_WITHOUT_CUDA();
  const size_t huge = size_t{1} << 50;  // 1 PiB
  const std::string m =
      thrown<hf::OutOfMemoryError>([&] { hf::DeviceBuffer<uint8_t> b(huge, "stain_fit_fixed_cuda"); });
  CHECK(contains(m, "stain_fit_fixed_cuda: out of device memory: cudaMalloc of 1125899906842624 bytes"));
  CHECK(contains(m, "bytes free"));
  // The failed allocation leaves the context usable.
  hf::DeviceBuffer<uint8_t> small(1024, "after");
  CHECK(small.data() != nullptr);
}
#endif  // HISTOFLOW_WITH_CUDA
