// Beer–Lambert optical density of transmitted light, and its inverse.
//   od = max(-ln((I + offset) / io), min_od)         (offset 0: a 0 is read as 1)
//   I  = clamp(round(io * exp(-od) - offset), 0, 255)
// Conventions: HEnorm/Macenko canonical io=240 offset=1 min_od=-inf (no clamp:
// pixels brighter than io have negative OD there); tiatoolbox io=255 offset=0
// min_od=1e-6.
#pragma once
#include <cstdint>
#include <limits>

#include "core/image.h"

namespace hf {

struct OdParams {
  float io = 240.f;
  float offset = 1.f;
  float min_od = -std::numeric_limits<float>::infinity();
};

// in: N*H*W*3 uint8 → out: N*H*W*3 float32 optical densities.
void rgb_to_od_cpu(const RgbBatch& in, const OdParams& p, float* out);
void rgb_to_od_cuda(const RgbBatch& in, const OdParams& p, float* out);

// od: pixels*3 float32 → out: pixels*3 uint8.
void od_to_rgb_cpu(const float* od, int64_t pixels, const OdParams& p, uint8_t* out);
void od_to_rgb_cuda(const float* od, int64_t pixels, const OdParams& p, uint8_t* out);

}  // namespace hf
