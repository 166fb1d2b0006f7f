// Reinhard et al., "Color transfer between images", IEEE CG&A 2001, as used for
// H&E (tiatoolbox, staintools): per-channel mean/std transfer in CIE L*a*b*
// (color/lab.h conventions), result clipped to [0, 255] in OpenCV's 8-bit LAB
// scaling and converted back to sRGB.
#pragma once
#include <cstdint>

#include "core/image.h"

namespace hf {

struct LabStats {
  double mean[3] = {0, 0, 0};
  double std[3] = {1, 1, 1};   // population standard deviation (ddof 0)
  int64_t pixels = 0;
};

// Per-image statistics (stats has n entries).
void reinhard_fit_cpu(const RgbBatch& in, LabStats* stats);
void reinhard_fit_cuda(const RgbBatch& in, LabStats* stats);

// Maps every image from its own statistics to `target`. A channel whose own
// std is below 1e-6 (a flat image) is shifted only, never divided by zero.
void reinhard_transform_cpu(const RgbBatch& in, const LabStats& target, uint8_t* out);
void reinhard_transform_cuda(const RgbBatch& in, const LabStats& target, uint8_t* out);

}  // namespace hf
