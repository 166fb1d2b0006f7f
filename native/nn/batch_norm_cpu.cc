#include "nn/batch_norm.h"

#include <cmath>
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

}  // namespace hf::nn
