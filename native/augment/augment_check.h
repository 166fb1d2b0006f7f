// What every augment backend re-checks before it reads a pixel (src/ and
// bindings/augment.cc validate first): a window or d4 out of range would read
// outside the images. Throws ArgumentError ("augment: ...").
#pragma once
#include "augment/augment.h"

namespace hf {

void check_augment_args(const RgbBatch& in, const AugmentImageParams* params, const AugmentBatchParams& batch);

}  // namespace hf
