// The steps of Vahadane's procedure (stain/vahadane.h, 2–5), one definition
// for vahadane_cpu.cc and vahadane_cuda.cu: the seeded subsample, Ruifrok's
// start, G = W·Wᵀ, the closed-form lasso of one sample with its CᵀC / CᵀOD
// terms (host and device), the dictionary update and the final unit rows.
// Double precision throughout.
//
// The host functions are static: each backend's translation unit keeps its own
// copy, compiled with its own flags (the CPU levels contract a·b + c into an
// FMA, nvcc's host pass does not), so the linker never swaps one for the other.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/host_device.h"
#include "core/random.h"

namespace hf {
namespace vahadane {

// Step 2: the subsample's offset u in [0, 1) for a seed, and sample k of
// `count` tissue pixels taken with step count / max_pixels.
inline double subsample_offset(uint64_t seed) { return uniform_double(splitmix64(seed, 0)); }
HF_HOST_DEVICE inline int64_t subsample_index(int64_t k, double u, double step, int64_t count) {
  const int64_t src = static_cast<int64_t>(floor((static_cast<double>(k) + u) * step));
  return src < count - 1 ? src : count - 1;
}

// w scaled to unit length; false (w unchanged) for a zero or non-finite norm.
static inline bool normalize_row(double w[3]) {
  const double norm = std::sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
  if (!(norm > 0) || !std::isfinite(norm)) return false;
  for (int k = 0; k < 3; ++k) w[k] /= norm;
  return true;
}

// Step 3: Ruifrok & Johnston's H and E rows, unit length.
static inline void ruifrok_start(double w[2][3]) {
  const double start[2][3] = {{0.65, 0.70, 0.29}, {0.07, 0.99, 0.11}};
  for (int j = 0; j < 2; ++j)
    for (int k = 0; k < 3; ++k) w[j][k] = start[j][k];
  normalize_row(w[0]);
  normalize_row(w[1]);
}

// G = W·Wᵀ (00, 01, 11) and its inverse; false when G is singular
// (det ≤ 1e-12·(G₀₀ + G₁₁)²), the image then degenerate.
static inline bool gram(const double w[2][3], double g[3], double g_inv[3]) {
  g[0] = w[0][0] * w[0][0] + w[0][1] * w[0][1] + w[0][2] * w[0][2];
  g[1] = w[0][0] * w[1][0] + w[0][1] * w[1][1] + w[0][2] * w[1][2];
  g[2] = w[1][0] * w[1][0] + w[1][1] * w[1][1] + w[1][2] * w[1][2];
  const double det_g = g[0] * g[2] - g[1] * g[1];
  if (!(det_g > 1e-12 * (g[0] + g[2]) * (g[0] + g[2]))) return false;
  g_inv[0] = g[2] / det_g;
  g_inv[1] = -g[1] / det_g;
  g_inv[2] = g[0] / det_g;
  return true;
}

// Step 4a for one sample x: c = argmin_c≥0 ½‖x − c·W‖² + λ(c₀ + c₁) in closed
// form (b = W·x; the unconstrained G⁻¹(b − λ) when both ≥ 0, else the better
// one-stain candidate), then its terms of CᵀC (00, 01, 11) and CᵀOD (H row,
// E row) added to acc[0..8].
HF_HOST_DEVICE inline void lasso_term(const double w[2][3], const double g[3], const double g_inv[3], double lambda,
                                      const double x[3], double acc[9]) {
  const double b0 = w[0][0] * x[0] + w[0][1] * x[1] + w[0][2] * x[2];
  const double b1 = w[1][0] * x[0] + w[1][1] * x[1] + w[1][2] * x[2];
  const double u0 = b0 - lambda, u1 = b1 - lambda;
  double c0 = g_inv[0] * u0 + g_inv[1] * u1, c1 = g_inv[1] * u0 + g_inv[2] * u1;
  if (!(c0 >= 0 && c1 >= 0)) {
    // The objective without the constant ½‖x‖² ranks the one-stain candidates.
    auto objective = [&](double x0, double x1) {
      return -(x0 * b0 + x1 * b1) + 0.5 * (g[0] * x0 * x0 + 2 * g[1] * x0 * x1 + g[2] * x1 * x1) +
             lambda * (x0 + x1);
    };
    const double only_h = hd_max(0.0, u0 / g[0]), only_e = hd_max(0.0, u1 / g[2]);
    if (objective(only_h, 0) <= objective(0, only_e)) {
      c0 = only_h, c1 = 0;
    } else {
      c0 = 0, c1 = only_e;
    }
  }
  acc[0] += c0 * c0, acc[1] += c0 * c1, acc[2] += c1 * c1;
  for (int j = 0; j < 3; ++j) {
    acc[3 + j] += c0 * x[j];
    acc[6 + j] += c1 * x[j];
  }
}

// Step 4b, Mairal et al. 2010 (SPAMS, scikit-learn), from sums = lasso_term's
// acc over the samples (A = CᵀC, B = CᵀOD): each row in turn, using the rows
// already updated, clipped at 0 and scaled into the unit ball; a row with
// A_jj ≤ 1e-12 is left as is.
static inline void update_dictionary(double w[2][3], const double sums[9]) {
  const double a[2][2] = {{sums[0], sums[1]}, {sums[1], sums[2]}};
  const double* b[2] = {sums + 3, sums + 6};
  for (int j = 0; j < 2; ++j) {
    if (!(a[j][j] > 1e-12)) continue;
    for (int k = 0; k < 3; ++k)
      w[j][k] = std::max(0.0, w[j][k] + (b[j][k] - (a[j][0] * w[0][k] + a[j][1] * w[1][k])) / a[j][j]);
    const double norm = std::sqrt(w[j][0] * w[j][0] + w[j][1] * w[j][1] + w[j][2] * w[j][2]);
    const double scale = std::max(norm, 1.0);
    for (int k = 0; k < 3; ++k) w[j][k] /= scale;
  }
}

// Step 5, after the iterations: unit rows, hematoxylin (the larger red OD)
// first, into he. False (he untouched) for a zero row or collinear rows
// (|cos| > 1 − 1e-6).
static inline bool stain_rows(double w[2][3], float he[6]) {
  if (!normalize_row(w[0]) || !normalize_row(w[1]) ||
      std::fabs(w[0][0] * w[1][0] + w[0][1] * w[1][1] + w[0][2] * w[1][2]) > 1 - 1e-6)
    return false;
  const int h = w[0][0] >= w[1][0] ? 0 : 1;
  for (int k = 0; k < 3; ++k) {
    he[k] = static_cast<float>(w[h][k]);
    he[3 + k] = static_cast<float>(w[1 - h][k]);
  }
  return true;
}

}  // namespace vahadane
}  // namespace hf
