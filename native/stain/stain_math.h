// Small dense linear algebra and order statistics shared by the stain-matrix
// methods on every native backend (the CUDA kernels call these on the host for
// the 3x3 / 2x3 problems). The TypeScript twin is src/stain/math.ts.
#pragma once
#include <cstdint>

namespace hf {

// Eigen-decomposition of a symmetric 3x3 matrix (row-major), eigenvalues in
// ascending order as numpy.linalg.eigh; evecs row-major with eigenvector k in
// column k. Jacobi rotations in double precision.
void eigh3(const double a[9], double evals[3], double evecs[9]);

// numpy.percentile(values, p) with linear interpolation ("linear" method):
// pos = p/100·(n-1), v[floor] + frac·(v[floor+1] - v[floor]). Reorders
// `values` in place; O(n). n must be ≥ 1.
double percentile_linear(float* values, int64_t n, double p);
double percentile_linear(double* values, int64_t n, double p);

// Least-squares solver of the 3x2 system od ≈ c0·he[0..2] + c1·he[3..5]:
// writes P (2x3, row-major) with c = P·od, i.e. (HᵀH)⁻¹Hᵀ for H = heᵀ.
// Returns false when HᵀH is singular (det ≤ 1e-12·scale).
bool stain_pinv(const float he[6], double pinv[6]);

// Macenko's last step, shared by every native backend: the stain vectors at
// angles phi_min / phi_max in the plane of e2 (largest eigenvector, angle 0)
// and e1 (second), hematoxylin first (the larger red OD), rows scaled to unit
// length when unit_rows. Returns false (and leaves he alone) when unit_rows
// meets a zero vector.
bool macenko_stain_vectors(const double e1[3], const double e2[3], double phi_min, double phi_max, bool unit_rows,
                           float he[6]);

}  // namespace hf
