// Small dense linear algebra and order statistics for the stain methods
// (stain/stain_math.h). Twin of src/stain/math.ts: same rotations, same sign
// rule, same singularity test, so every backend lands on the same matrices.
#include "stain/stain_math.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "stain/order_statistics.h"

namespace hf {

// Cyclic Jacobi (Golub & Van Loan, sym.schur2). Each eigenvector's sign is
// fixed so that its largest-magnitude component is positive: LAPACK's sign is
// arbitrary and the backends must agree.
void eigh3(const double a[9], double evals[3], double evecs[9]) {
  double m[9], v[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  std::copy(a, a + 9, m);
  const int pairs[3][2] = {{0, 1}, {0, 2}, {1, 2}};
  for (int sweep = 0; sweep < 64; ++sweep) {
    double off = m[1] * m[1] + m[2] * m[2] + m[5] * m[5];
    double diag = m[0] * m[0] + m[4] * m[4] + m[8] * m[8];
    if (off <= 1e-30 * diag || off == 0) break;
    for (const auto& pq : pairs) {
      const int p = pq[0], q = pq[1];
      double apq = m[p * 3 + q];
      if (apq == 0) continue;
      double tau = (m[q * 3 + q] - m[p * 3 + p]) / (2 * apq);
      double t = (tau < 0 ? -1.0 : 1.0) / (std::fabs(tau) + std::sqrt(1 + tau * tau));
      double c = 1 / std::sqrt(1 + t * t), s = t * c;
      for (int k = 0; k < 3; ++k) {
        double akp = m[k * 3 + p], akq = m[k * 3 + q];
        m[k * 3 + p] = c * akp - s * akq;
        m[k * 3 + q] = s * akp + c * akq;
      }
      for (int k = 0; k < 3; ++k) {
        double apk = m[p * 3 + k], aqk = m[q * 3 + k];
        m[p * 3 + k] = c * apk - s * aqk;
        m[q * 3 + k] = s * apk + c * aqk;
      }
      for (int k = 0; k < 3; ++k) {
        double vkp = v[k * 3 + p], vkq = v[k * 3 + q];
        v[k * 3 + p] = c * vkp - s * vkq;
        v[k * 3 + q] = s * vkp + c * vkq;
      }
    }
  }
  int order[3] = {0, 1, 2};
  std::stable_sort(order, order + 3, [&](int i, int j) { return m[i * 3 + i] < m[j * 3 + j]; });
  for (int dst = 0; dst < 3; ++dst) {
    int src = order[dst];
    evals[dst] = m[src * 3 + src];
    int big = 0;
    for (int k = 1; k < 3; ++k)
      if (std::fabs(v[k * 3 + src]) > std::fabs(v[big * 3 + src])) big = k;
    double sign = v[big * 3 + src] < 0 ? -1.0 : 1.0;
    for (int k = 0; k < 3; ++k) evecs[k * 3 + dst] = sign * v[k * 3 + src];
  }
}

namespace {

template <typename T>
double percentile_in_place(T* values, int64_t n, double p) {
  T lo = values[0], hi = values[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, values[i]);
    hi = std::max(hi, values[i]);
  }
  RankHistogram hist(static_cast<double>(lo), static_cast<double>(hi), n);
  for (int64_t i = 0; i < n; ++i) hist.add(static_cast<double>(values[i]));
  Segment all{0, n};
  OrderPair pair = select_order_pair(values, &all, 1, hist, percentile_rank(p, n));
  return pair.interpolate();
}

}  // namespace

double percentile_linear(float* values, int64_t n, double p) { return percentile_in_place(values, n, p); }
double percentile_linear(double* values, int64_t n, double p) { return percentile_in_place(values, n, p); }

bool stain_pinv(const float he[6], double pinv[6]) {
  const double h[3] = {he[0], he[1], he[2]}, e[3] = {he[3], he[4], he[5]};
  double g00 = h[0] * h[0] + h[1] * h[1] + h[2] * h[2];
  double g11 = e[0] * e[0] + e[1] * e[1] + e[2] * e[2];
  double g01 = h[0] * e[0] + h[1] * e[1] + h[2] * e[2];
  double det = g00 * g11 - g01 * g01;
  if (!(det > 1e-12 * g00 * g11) || !std::isfinite(det)) return false;
  double i00 = g11 / det, i01 = -g01 / det, i11 = g00 / det;
  for (int k = 0; k < 3; ++k) {
    pinv[k] = i00 * h[k] + i01 * e[k];
    pinv[3 + k] = i01 * h[k] + i11 * e[k];
  }
  return true;
}

bool macenko_stain_vectors(const double e1[3], const double e2[3], double phi_min, double phi_max, bool unit_rows,
                           float he[6]) {
  double v_min[3], v_max[3];
  for (int k = 0; k < 3; ++k) {
    v_min[k] = e2[k] * std::cos(phi_min) + e1[k] * std::sin(phi_min);
    v_max[k] = e2[k] * std::cos(phi_max) + e1[k] * std::sin(phi_max);
  }
  const double* h = v_min[0] > v_max[0] ? v_min : v_max;
  const double* e = v_min[0] > v_max[0] ? v_max : v_min;
  double h_norm = 1, e_norm = 1;
  if (unit_rows) {
    h_norm = std::sqrt(h[0] * h[0] + h[1] * h[1] + h[2] * h[2]);
    e_norm = std::sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2]);
    if (!(h_norm > 0) || !(e_norm > 0)) return false;
  }
  for (int k = 0; k < 3; ++k) {
    he[k] = static_cast<float>(h[k] / h_norm);
    he[3 + k] = static_cast<float>(e[k] / e_norm);
  }
  return true;
}

}  // namespace hf
