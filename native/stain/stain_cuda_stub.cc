// CPU-only build: the stain kernels' CUDA entry points exist so that callers
// link, and say why they cannot run.
#include "core/error.h"
#include "stain/macenko.h"
#include "stain/reinhard.h"
#include "stain/stain_fit.h"
#include "stain/vahadane.h"

namespace hf {

void stain_transform_cuda(const RgbBatch&, const StainFit*, const StainTransformParams&, uint8_t*, uint8_t*,
                          uint8_t*) {
  throw_built_without_cuda("stain_transform");
}

void stain_concentrations_cuda(const RgbBatch&, const StainFit*, const OdParams&, float*) {
  throw_built_without_cuda("stain_concentrations");
}

void stain_fit_fixed_cuda(const RgbBatch&, const float[6], const OdParams&, StainFit*) {
  throw_built_without_cuda("stain_fit_fixed");
}

void macenko_fit_cuda(const RgbBatch&, const MacenkoParams&, StainFit*) { throw_built_without_cuda("macenko_fit"); }

void vahadane_fit_cuda(const RgbBatch&, const VahadaneParams&, StainFit*) { throw_built_without_cuda("vahadane_fit"); }

void reinhard_fit_cuda(const RgbBatch&, LabStats*) { throw_built_without_cuda("reinhard_fit"); }

void reinhard_transform_cuda(const RgbBatch&, const LabStats&, uint8_t*) {
  throw_built_without_cuda("reinhard_transform");
}

}  // namespace hf
