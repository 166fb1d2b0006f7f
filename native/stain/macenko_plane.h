// Macenko's angles (stain/macenko.h), one definition for macenko_cpu.cc and
// macenko_cuda.cu: the plane of the two largest eigenvectors of the tissue
// OD's covariance, the monotone pseudo-angle each pixel is ranked by in that
// plane, and the angle of a pseudo-angle (taken only on the order statistics).
//
// The host functions are static: each backend's translation unit keeps its own
// copy, compiled with its own flags (the CPU levels contract a·b + c into an
// FMA, nvcc's host pass does not), so the linker never swaps one for the other.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/host_device.h"
#include "stain/stain_math.h"

namespace hf {
namespace macenko {

// np.cov of n tissue ODs from their sums (sum: Σ od; cross: Σ od·odᵀ as xx xy
// xz yy yz zz), (Σ od·odᵀ − n·μμᵀ)/(n − 1); e1 its largest eigenvector,
// signed so that tissue projects positively (μ·e1 ≥ 0), e2 the second (its
// sign only swaps φ_min and φ_max). n ≥ 2.
static inline void plane(int64_t n, const double sum[3], const double cross[6], double e1[3], double e2[3]) {
  double mean[3], cov[9];
  for (int k = 0; k < 3; ++k) mean[k] = sum[k] / n;
  const int upper[3][3] = {{0, 1, 2}, {1, 3, 4}, {2, 4, 5}};
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) cov[a * 3 + b] = (cross[upper[a][b]] - n * mean[a] * mean[b]) / (n - 1);
  double evals[3], evecs[9];
  eigh3(cov, evals, evecs);
  for (int k = 0; k < 3; ++k) e1[k] = evecs[k * 3 + 2], e2[k] = evecs[k * 3 + 1];
  if (e1[0] * mean[0] + e1[1] * mean[1] + e1[2] * mean[2] < 0)
    for (int k = 0; k < 3; ++k) e1[k] = -e1[k];
}

// Strictly increasing in atan2(y, x) over (−π, π]: 1 − x/(|x|+|y|), mirrored
// for y < 0; in [−2, 2]. (On the host, builtins: macenko_cpu.cc sets an
// optimize pragma after <cmath>, whose inlines would then stay calls.)
HF_HOST_DEVICE inline float pseudo_angle(float x, float y) {
#if defined(__CUDA_ARCH__)
  const float s = fabsf(x) + fabsf(y) + 1e-30f;  // never 0
  return copysignf(1.f - x / s, y);
#else
  const float s = __builtin_fabsf(x) + __builtin_fabsf(y) + 1e-30f;  // never 0
  return __builtin_copysignf(1.f - x / s, y);
#endif
}

// atan2(y, x) of the point whose pseudo-angle is d.
inline double angle_of_pseudo(double d) {
  const double a = std::fabs(d);
  const double x = 1.0 - a, y = 1.0 - std::fabs(x);
  const double phi = std::atan2(y, x);
  return d < 0 ? -phi : phi;
}

}  // namespace macenko
}  // namespace hf
