// CPU-only build: the colour kernels' CUDA entry points exist so that callers
// link, and say why they cannot run.
#include "color/deconvolution.h"
#include "color/optical_density.h"
#include "core/error.h"

namespace hf {

void rgb_to_od_cuda(const RgbBatch&, const OdParams&, float*) { throw_built_without_cuda("rgb_to_od"); }

void od_to_rgb_cuda(const float*, int64_t, const OdParams&, uint8_t*) { throw_built_without_cuda("od_to_rgb"); }

void deconvolve_cuda(const RgbBatch&, const float[9], float*) { throw_built_without_cuda("deconvolve"); }

void reconvolve_cuda(const float*, int64_t, const float[9], uint8_t*) { throw_built_without_cuda("reconvolve"); }

}  // namespace hf
