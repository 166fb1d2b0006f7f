// Elastic deformation's displacement field and sampling (augment.h, step 1b),
// one definition for augment_cpu.cc and augment_cuda.cu (HF_HOST_DEVICE).
//
// A coarse control grid of uniform random displacements, spacing σ output
// pixels, interpolated by a uniform cubic B-spline (as torchio's
// RandomElasticDeformation, or Simard et al. 2003's smoothed random field
// approximated without a per-pixel gaussian): one splitmix64 draw per control
// value instead of a per-pixel field and two long convolutions. The B-spline
// weights are positive and sum to 1, so no displacement exceeds α per axis.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "core/host_device.h"
#include "core/random.h"

namespace hf {
namespace elastic {

// Control points along an axis of n output pixels: floor((n − 1)/σ) + 4.
HF_HOST_DEVICE inline int grid_size(int n, float sigma) {
  return static_cast<int>(floor(static_cast<double>(n - 1) / static_cast<double>(sigma))) + 4;
}

// Control value `index` (2·(j·grid_w + i) + d, d = 0 for rows, 1 for columns):
// α·(2u − 1) in double, u = (splitmix64(seed, index) >> 11)·2⁻⁵³, then float.
HF_HOST_DEVICE inline float control(uint64_t seed, float alpha, uint64_t index) {
  const double u = uniform_double(splitmix64(seed, index));
  return static_cast<float>(static_cast<double>(alpha) * (2.0 * u - 1.0));
}

// An image's two control grids of `grid` = gh·gw values each: cy (rows) and
// cx (columns), index k of cy drawn as control(2k), of cx as control(2k + 1).
inline void control_grids(uint64_t seed, float alpha, size_t grid, float* cy, float* cx) {
  for (size_t k = 0; k < grid; ++k) {
    cy[k] = control(seed, alpha, 2 * k);
    cx[k] = control(seed, alpha, 2 * k + 1);
  }
}

// Pixel coordinate `pos` on one axis: the first of its 4 control points and
// their cubic B-spline weights, t = pos/σ, f = t − floor(t), in double then float.
HF_HOST_DEVICE inline void axis(int pos, float sigma, int* first, float w[4]) {
  const double t = static_cast<double>(pos) / static_cast<double>(sigma);
  const double j = floor(t), f = t - j, g = 1.0 - f;
  *first = static_cast<int>(j);
  w[0] = static_cast<float>(g * g * g / 6.0);
  w[1] = static_cast<float>((3.0 * f * f * f - 6.0 * f * f + 4.0) / 6.0);
  w[2] = static_cast<float>((-3.0 * f * f * f + 3.0 * f * f + 3.0 * f + 1.0) / 6.0);
  w[3] = static_cast<float>(f * f * f / 6.0);
}

// OpenCV's BORDER_REFLECT (…cba|abc…xyz|zyx…) of index i into [0, n).
HF_HOST_DEVICE inline int reflect(int i, int n) {
  if (i >= 0 && i < n) return i;
  const int period = 2 * n;
  int m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

// The two bilinear taps and the weight of pixel `pos` displaced by d along
// an axis of n pixels: pos + floor(d) and the next, reflected; weight d − floor(d).
HF_HOST_DEVICE inline void taps(int pos, float d, int n, int* i0, int* i1, float* w) {
  const float fl = floorf(d);
  const int base = pos + static_cast<int>(fl);
  *i0 = reflect(base, n);
  *i1 = reflect(base + 1, n);
  *w = d - fl;
}

// What the kernels accept (bindings/augment.cc and src/ check it first): α
// of 0 (off), or α in (0, 65536] with σ in [1, 65536]. NaN fails both.
// Out of line, in elastic_field.cc: augment_cpu.cc is compiled assuming
// finite math, where a NaN test could be folded away.
bool params_ok(float alpha, float sigma);

}  // namespace elastic
}  // namespace hf
