// Colour deconvolution in scikit-image's convention (color/deconvolution.h):
//   separate_stains: max( ln(max(I/255, 1e-6)) / ln(1e-6) · stain_from_rgb, 0 )
//   combine_stains:  clip( exp(-(stains·-ln(1e-6)) · rgb_from_stain), 0, 1 )
// The log of each uint8 level is tabulated once (256 entries, double as numpy).
#include <algorithm>
#include <cmath>

#include "color/deconvolution.h"
#include "core/parallel.h"

namespace hf {

namespace {
constexpr int64_t kMinChunk = 1 << 13;
constexpr double kLogAdjust = -13.815510557964274;  // ln(1e-6)
}  // namespace

void deconvolve_cpu(const RgbBatch& in, const float stain_from_rgb[9], float* out) {
  float log_rgb[256];
  for (int v = 0; v < 256; ++v)
    log_rgb[v] = static_cast<float>(std::log(std::max(v / 255.0, 1e-6)) / kLogAdjust);
  float m[9];
  std::copy(stain_from_rgb, stain_from_rgb + 9, m);
  parallel_for(in.pixels(), kMinChunk, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const uint8_t* px = in.data + 3 * i;
      float r = log_rgb[px[0]], g = log_rgb[px[1]], bl = log_rgb[px[2]];
      for (int k = 0; k < 3; ++k)
        out[3 * i + k] = std::max(r * m[k] + g * m[3 + k] + bl * m[6 + k], 0.f);
    }
  });
}

void reconvolve_cpu(const float* stains, int64_t pixels, const float rgb_from_stain[9], uint8_t* out) {
  const float scale = static_cast<float>(kLogAdjust);  // -(-ln 1e-6)
  float m[9];
  std::copy(rgb_from_stain, rgb_from_stain + 9, m);
  parallel_for(pixels, kMinChunk, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* s = stains + 3 * i;
      for (int k = 0; k < 3; ++k) {
        float log_rgb = scale * (s[0] * m[k] + s[1] * m[3 + k] + s[2] * m[6 + k]);
        float rgb = std::min(std::max(std::exp(log_rgb), 0.f), 1.f);
        out[3 * i + k] = static_cast<uint8_t>(std::nearbyint(rgb * 255.f));
      }
    }
  });
}

}  // namespace hf
