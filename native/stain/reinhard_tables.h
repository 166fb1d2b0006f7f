// Reinhard's per-image statistics and transfer table on 8-bit LAB
// (stain/reinhard.h), one definition for reinhard_cpu.cc and reinhard_cuda.cu
// (whose host code builds the tables the device reads).
//
// static: each backend's translation unit keeps its own copy, compiled with
// its own flags (the CPU levels contract a·b + c into an FMA, nvcc's host pass
// does not), so the linker never swaps one for the other.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "stain/reinhard.h"

namespace hf {
namespace reinhard {

// The tiatoolbox channel value of an 8-bit LAB level.
inline double unscaled(int channel, int level) { return channel == 0 ? level / 2.55 : level - 128.0; }

// Mean and population std of each channel from its 256-bin histogram
// (hist[channel·256 + level], `pixels` values each): Σ count·x and
// Σ count·x² in level order.
template <typename Count>
static inline LabStats stats_of(const Count* hist, int64_t pixels) {
  LabStats s;
  s.pixels = pixels;
  if (pixels == 0) return s;
  for (int c = 0; c < 3; ++c) {
    double sum = 0, sum_sq = 0;
    for (int v = 0; v < 256; ++v) {
      const int64_t count = static_cast<int64_t>(hist[c * 256 + v]);
      const double x = unscaled(c, v);
      sum += count * x;
      sum_sq += count * x * x;
    }
    s.mean[c] = sum / pixels;
    s.std[c] = std::sqrt(std::max(0.0, sum_sq / pixels - s.mean[c] * s.mean[c]));
  }
  return s;
}

// The transfer of each 8-bit LAB level: y = (x − μ_s)·σ_t/σ_s + μ_t back in
// 8-bit LAB (L·2.55, a + 128, b + 128), clipped to [0, 255] and truncated; a
// flat channel (σ_s < 1e-6) is shifted only.
static inline void transfer_table(const LabStats& source, const LabStats& target, uint8_t table[3][256]) {
  for (int c = 0; c < 3; ++c) {
    const double gain = source.std[c] < 1e-6 ? 1.0 : target.std[c] / source.std[c];
    for (int v = 0; v < 256; ++v) {
      const double y = (unscaled(c, v) - source.mean[c]) * gain + target.mean[c];
      const double scaled = c == 0 ? y * 2.55 : y + 128.0;
      table[c][v] = static_cast<uint8_t>(std::min(std::max(scaled, 0.0), 255.0));
    }
  }
}

}  // namespace reinhard
}  // namespace hf
