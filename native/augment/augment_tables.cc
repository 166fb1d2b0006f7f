// augment_tables (augment/augment_tables.h): the HED matrices in double,
// rounded once to float, and the 256-entry lookups of exact copies.
#include "augment/augment_tables.h"

#include <algorithm>
#include <cmath>

namespace hf {

namespace {

// skimage.color.rgb_from_hed (row i: stain i's RGB optical density).
constexpr double kRgbFromHed[9] = {0.65, 0.70, 0.29, 0.07, 0.99, 0.11, 0.27, 0.57, 0.78};

AugmentTables build() {
  AugmentTables t{};
  const double* m = kRgbFromHed;
  const double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
                     m[2] * (m[3] * m[7] - m[4] * m[6]);
  const double inv[9] = {(m[4] * m[8] - m[5] * m[7]) / det, (m[2] * m[7] - m[1] * m[8]) / det,
                         (m[1] * m[5] - m[2] * m[4]) / det, (m[5] * m[6] - m[3] * m[8]) / det,
                         (m[0] * m[8] - m[2] * m[6]) / det, (m[2] * m[3] - m[0] * m[5]) / det,
                         (m[3] * m[7] - m[4] * m[6]) / det, (m[1] * m[6] - m[0] * m[7]) / det,
                         (m[0] * m[4] - m[1] * m[3]) / det};
  for (int k = 0; k < 9; ++k) {
    t.hed_from_rgb[k] = static_cast<float>(inv[k]);
    t.log_rgb_from_hed[k] = static_cast<float>(kAugmentLogAdjust * m[k]);
  }
  for (int v = 0; v < 256; ++v) {
    t.od[v] = static_cast<float>(std::log(std::max(v / 255.0, 1e-6)) / kAugmentLogAdjust);
    t.unit[v] = static_cast<float>(v) / 255.f;
  }
  return t;
}

}  // namespace

const AugmentTables& augment_tables() {
  static const AugmentTables t = build();
  return t;
}

}  // namespace hf
