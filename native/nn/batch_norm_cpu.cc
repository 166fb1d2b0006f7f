#include "nn/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"

namespace hf::nn {

void batch_norm_cpu(const float* x, int64_t size, const BatchNormArgs& p, float* y) {
  if (p.mean_len < 1 || p.variance_len < 1 || (p.offset && p.offset_len < 1) || (p.scale && p.scale_len < 1))
    throw ArgumentError("batchNorm: parameters must not be empty");
  const int64_t c = p.mean_len;
  if (p.variance_len == c && (!p.offset || p.offset_len == c) && (!p.scale || p.scale_len == c)) {
    // Every parameter per channel: y = (x − m)·a + o with a = s / √(v + ε) in double.
    std::vector<float> a(c), m(c), o(c);
    for (int64_t k = 0; k < c; ++k) {
      a[k] = static_cast<float>((p.scale ? p.scale[k] : 1.0) / std::sqrt(double(p.variance[k]) + p.epsilon));
      m[k] = p.mean[k];
      o[k] = p.offset ? p.offset[k] : 0.0f;
    }
    int64_t rows = size / c, tail = size - rows * c;
    parallel_for(rows, 512, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* xi = x + r * c;
        float* yi = y + r * c;
        for (int64_t k = 0; k < c; ++k) yi[k] = o[k] + (xi[k] - m[k]) * a[k];
      }
    });
    for (int64_t i = size - tail; i < size; ++i) y[i] = o[i % c] + (x[i] - m[i % c]) * a[i % c];
    return;
  }
  parallel_for(size, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      double s = p.scale ? p.scale[i % p.scale_len] : 1.0, o = p.offset ? p.offset[i % p.offset_len] : 0.0;
      y[i] = static_cast<float>(o + (double(x[i]) - p.mean[i % p.mean_len]) * s /
                                        std::sqrt(double(p.variance[i % p.variance_len]) + p.epsilon));
    }
  });
}

namespace {

constexpr int64_t kBlockRows = 128;

// K per-channel column sums of f(row, acc) over [rows, c], in float within a
// block of kBlockRows rows and in double across blocks, blocks added in order.
// f(r, acc) adds row r's K terms to acc[0..K·c).
template <int K, typename F>
void column_sums(int64_t rows, int64_t c, double* out, F f) {
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  std::vector<double> part(static_cast<size_t>(blocks * K * c));
  parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> acc(static_cast<size_t>(K * c));
    for (int64_t b = b0; b < b1; ++b) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      const int64_t r1 = std::min(rows, (b + 1) * kBlockRows);
      for (int64_t r = b * kBlockRows; r < r1; ++r) f(r, acc.data());
      double* dst = part.data() + b * K * c;
      for (int64_t k = 0; k < K * c; ++k) dst[k] = acc[k];
    }
  });
  std::fill(out, out + K * c, 0.0);
  for (int64_t b = 0; b < blocks; ++b) {
    const double* src = part.data() + b * K * c;
    for (int64_t k = 0; k < K * c; ++k) out[k] += src[k];
  }
}

void check_train_shape(int64_t rows, int64_t c, const char* name) {
  if (rows < 1 || c < 1) throw ArgumentError(std::string(name) + ": x must have at least one row and one channel");
}

}  // namespace

void batch_norm_train_cpu(const float* x, int64_t rows, int64_t c, const float* scale, const float* offset,
                          float epsilon, bool relu, float* y, float* mean, float* variance) {
  check_train_shape(rows, c, "batchNormTrain");
  if (!(epsilon >= 0.0f)) throw ArgumentError("batchNormTrain: epsilon must be ≥ 0");
  std::vector<double> sum(c), centred(2 * c);
  column_sums<1>(rows, c, sum.data(), [&](int64_t r, float* acc) {
    const float* __restrict xr = x + r * c;
    for (int64_t k = 0; k < c; ++k) acc[k] += xr[k];
  });
  // Centred on the mean rounded to float, m: x − m is exact wherever x is
  // within a factor 2 of m, and what is left of the mean (δ = Σ(x − m)/N) is
  // carried in double, so a large mean against a small spread loses nothing.
  std::vector<float> m(c);
  for (int64_t k = 0; k < c; ++k) m[k] = static_cast<float>(sum[k] / double(rows));
  column_sums<2>(rows, c, centred.data(), [&](int64_t r, float* acc) {
    const float* __restrict xr = x + r * c;
    const float* __restrict mk = m.data();
    float* __restrict s1 = acc;
    float* __restrict s2 = acc + c;
    for (int64_t k = 0; k < c; ++k) {
      float d = xr[k] - mk[k];
      s1[k] += d;
      s2[k] += d * d;
    }
  });
  // y = (x − m)·a + (offset − δ·a), a = scale/√(variance + ε).
  std::vector<float> a(c), o(c);
  for (int64_t k = 0; k < c; ++k) {
    double delta = centred[k] / double(rows);
    double v = std::max(0.0, centred[c + k] / double(rows) - delta * delta);
    double ak = (scale ? scale[k] : 1.0) / std::sqrt(v + epsilon);
    mean[k] = static_cast<float>(m[k] + delta);
    variance[k] = static_cast<float>(v);
    a[k] = static_cast<float>(ak);
    o[k] = static_cast<float>((offset ? offset[k] : 0.0) - delta * ak);
  }
  parallel_for(rows, std::max<int64_t>(1, 16384 / c), [&](int64_t r0, int64_t r1) {
    const float* __restrict mk = m.data();
    const float* __restrict ak = a.data();
    const float* __restrict ok = o.data();
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict xr = x + r * c;
      float* __restrict yr = y + r * c;
      if (relu) {
        for (int64_t k = 0; k < c; ++k) {
          float v = ok[k] + (xr[k] - mk[k]) * ak[k];
          yr[k] = v > 0.0f ? v : 0.0f;
        }
      } else {
        for (int64_t k = 0; k < c; ++k) yr[k] = ok[k] + (xr[k] - mk[k]) * ak[k];
      }
    }
  });
}

void batch_norm_train_grad_cpu(const float* dy, const float* x, int64_t rows, int64_t c, const float* mean,
                               const float* variance, const float* scale, float epsilon, const float* relu_y, float* dx,
                               float* dscale, float* doffset) {
  check_train_shape(rows, c, "batchNormTrainGrad");
  if (!(epsilon >= 0.0f)) throw ArgumentError("batchNormTrainGrad: epsilon must be ≥ 0");
  std::vector<float> m(mean, mean + c);
  std::vector<double> sums(3 * c);
  // Σ dy, Σ dy·(x − m), Σ (x − m) with m the float mean: as in the forward
  // pass, the mean's rounding (δ = Σ(x − m)/N) is taken out in double.
  // dy through the fused ReLU's gradient, dy·step(y), as relu_grad computes it.
  // (Written as two selects so that it vectorizes; std::isnan in a ternary did not.)
  auto masked = [](float g, float yv) {
    float step = yv > 0.0f ? 1.0f : 0.0f;
    step = yv != yv ? yv : step;
    return g * step;
  };
  column_sums<3>(rows, c, sums.data(), [&](int64_t r, float* acc) {
    const float* __restrict dyr = dy + r * c;
    const float* __restrict xr = x + r * c;
    const float* __restrict mk = m.data();
    float* __restrict s0 = acc;
    float* __restrict s1 = acc + c;
    float* __restrict s2 = acc + 2 * c;
    if (relu_y) {
      const float* __restrict yr = relu_y + r * c;
      for (int64_t k = 0; k < c; ++k) {
        float d = xr[k] - mk[k], g = masked(dyr[k], yr[k]);
        s0[k] += g;
        s1[k] += g * d;
        s2[k] += d;
      }
    } else {
      for (int64_t k = 0; k < c; ++k) {
        float d = xr[k] - mk[k];
        s0[k] += dyr[k];
        s1[k] += dyr[k] * d;
        s2[k] += d;
      }
    }
  });
  // With inv = 1/√(variance + ε), g = scale·inv, S = Σdy, T = Σdy·(x − mean):
  //   dx = g·dy − g·S/N − (x − mean)·g·inv²·T/N
  //      = g·dy − b − (x − m)·q,  q = g·inv²·T/N,  b = g·S/N − δ·q.
  std::vector<float> g(c), b(c), q(c);
  for (int64_t k = 0; k < c; ++k) {
    const double n = double(rows), delta = sums[2 * c + k] / n;
    const double inv = 1.0 / std::sqrt(double(variance[k]) + epsilon);
    const double gk = (scale ? scale[k] : 1.0) * inv;
    const double t = sums[c + k] - delta * sums[k];
    const double qk = gk * inv * inv * t / n;
    g[k] = static_cast<float>(gk);
    q[k] = static_cast<float>(qk);
    b[k] = static_cast<float>(gk * sums[k] / n - delta * qk);
    if (doffset) doffset[k] = static_cast<float>(sums[k]);
    if (dscale) dscale[k] = static_cast<float>(t * inv);
  }
  parallel_for(rows, std::max<int64_t>(1, 16384 / c), [&](int64_t r0, int64_t r1) {
    const float* __restrict gk = g.data();
    const float* __restrict bk = b.data();
    const float* __restrict qk = q.data();
    const float* __restrict mk = m.data();
    for (int64_t r = r0; r < r1; ++r) {
      const float* __restrict dyr = dy + r * c;
      const float* __restrict xr = x + r * c;
      float* __restrict dxr = dx + r * c;
      if (relu_y) {
        const float* __restrict yr = relu_y + r * c;
        for (int64_t k = 0; k < c; ++k) dxr[k] = gk[k] * masked(dyr[k], yr[k]) - bk[k] - (xr[k] - mk[k]) * qk[k];
      } else {
        for (int64_t k = 0; k < c; ++k) dxr[k] = gk[k] * dyr[k] - bk[k] - (xr[k] - mk[k]) * qk[k];
      }
    }
  });
}

}  // namespace hf::nn
