// Inputs and independent references shared by the parity tests: deterministic
// synthetic H&E-like images, and plain double-precision scalar formulas
// written without the kernels' tables, SIMD or selection tricks.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/image.h"

namespace hf_test {

// A small counter-free LCG: tests must not depend on <random>'s distributions.
struct Lcg {
  uint64_t state;
  explicit Lcg(uint64_t seed) : state(seed * 6364136223846793005ull + 1442695040888963407ull) {}
  double uniform() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(state >> 11) * 0x1.0p-53;
  }
};

// Images of two stains (Ruifrok's H and E directions) with noise, on a white
// background covering about `background` of the pixels (smooth blobs).
inline std::vector<uint8_t> synthetic_he(int64_t n, int64_t h, int64_t w, uint64_t seed, double background = 0.35) {
  const double H[3] = {0.65, 0.70, 0.29}, E[3] = {0.07, 0.99, 0.11};
  const double hn = std::sqrt(H[0] * H[0] + H[1] * H[1] + H[2] * H[2]);
  const double en = std::sqrt(E[0] * E[0] + E[1] * E[1] + E[2] * E[2]);
  std::vector<uint8_t> rgb(static_cast<size_t>(n * h * w * 3));
  Lcg rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    const double fx = 0.15 + 0.3 * rng.uniform(), fy = 0.15 + 0.3 * rng.uniform(), phase = 6.3 * rng.uniform();
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        uint8_t* px = &rgb[static_cast<size_t>(((i * h + y) * w + x) * 3)];
        const double field = 0.5 + 0.5 * std::sin(fx * x + phase) * std::cos(fy * y - phase);
        if (field < background) {
          for (int c = 0; c < 3; ++c) px[c] = static_cast<uint8_t>(236 + 19 * rng.uniform());
          continue;
        }
        const double ch = 1.6 * rng.uniform() * rng.uniform() + 0.1, ce = 0.9 * rng.uniform() + 0.05;
        for (int c = 0; c < 3; ++c) {
          double od = ch * H[c] / hn + ce * E[c] / en + 0.03 * (rng.uniform() - 0.5);
          double v = std::round(240.0 * std::exp(-od)) - 1.0;
          px[c] = static_cast<uint8_t>(std::min(std::max(v, 0.0), 255.0));
        }
      }
  }
  return rgb;
}

inline std::vector<uint8_t> uniform_image(int64_t n, int64_t h, int64_t w, uint8_t r, uint8_t g, uint8_t b) {
  std::vector<uint8_t> rgb(static_cast<size_t>(n * h * w * 3));
  for (size_t i = 0; i < rgb.size(); i += 3) rgb[i] = r, rgb[i + 1] = g, rgb[i + 2] = b;
  return rgb;
}

inline hf::RgbBatch batch_of(const std::vector<uint8_t>& rgb, int64_t n, int64_t h, int64_t w) {
  return hf::RgbBatch{rgb.data(), n, h, w};
}

// numpy.percentile(values, p), linear method, by sorting a copy.
inline double numpy_percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const double pos = p / 100.0 * static_cast<double>(values.size() - 1);
  const size_t k = static_cast<size_t>(std::floor(pos));
  if (k + 1 >= values.size()) return values.back();
  return values[k] + (pos - static_cast<double>(k)) * (values[k + 1] - values[k]);
}

// OD in double as numpy: max(-ln((I + offset)/io), min_od), a 0 read as 1 when offset is 0.
inline double reference_od(int v, double io, double offset, double min_od) {
  double light = v + offset;
  if (offset == 0 && v == 0) light = 1;
  return std::max(-std::log(light / io), min_od);
}

// skimage.color.rgb_from_hed (Ruifrok & Johnston), row-major, and the inverse
// of a 3x3 matrix by cofactors (hed_from_rgb = invert3(kRgbFromHed)).
constexpr double kRgbFromHed[9] = {0.65, 0.70, 0.29, 0.07, 0.99, 0.11, 0.27, 0.57, 0.78};

inline void invert3(const double m[9], double inv[9]) {
  const double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
                     m[2] * (m[3] * m[7] - m[4] * m[6]);
  inv[0] = (m[4] * m[8] - m[5] * m[7]) / det, inv[1] = (m[2] * m[7] - m[1] * m[8]) / det;
  inv[2] = (m[1] * m[5] - m[2] * m[4]) / det, inv[3] = (m[5] * m[6] - m[3] * m[8]) / det;
  inv[4] = (m[0] * m[8] - m[2] * m[6]) / det, inv[5] = (m[2] * m[3] - m[0] * m[5]) / det;
  inv[6] = (m[3] * m[7] - m[4] * m[6]) / det, inv[7] = (m[1] * m[6] - m[0] * m[7]) / det;
  inv[8] = (m[0] * m[4] - m[1] * m[3]) / det;
}

// Least squares c = argmin ‖he_rowsᵀ·c − od‖ by the 2x2 normal equations, in double.
inline void reference_lstsq(const double he[6], const double od[3], double c[2]) {
  double g00 = 0, g01 = 0, g11 = 0, b0 = 0, b1 = 0;
  for (int k = 0; k < 3; ++k) {
    g00 += he[k] * he[k], g01 += he[k] * he[3 + k], g11 += he[3 + k] * he[3 + k];
    b0 += he[k] * od[k], b1 += he[3 + k] * od[k];
  }
  const double det = g00 * g11 - g01 * g01;
  c[0] = (g11 * b0 - g01 * b1) / det;
  c[1] = (g00 * b1 - g01 * b0) / det;
}

// Largest |a − b| over two byte buffers, and their mean absolute difference.
struct ByteDiff {
  int max = 0;
  double mean = 0;
};
inline ByteDiff byte_diff(const uint8_t* a, const uint8_t* b, size_t count) {
  ByteDiff d;
  double sum = 0;
  for (size_t i = 0; i < count; ++i) {
    int v = std::abs(int(a[i]) - int(b[i]));
    d.max = std::max(d.max, v);
    sum += v;
  }
  d.mean = count ? sum / count : 0;
  return d;
}

}  // namespace hf_test
