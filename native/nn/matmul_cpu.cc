#include "nn/matmul.h"

#include "core/error.h"
#include "core/parallel.h"
#include "nn/gemm.h"

namespace hf::nn {

void batch_matmul_cpu(const MatMulShape& s, const float* a, const float* b, const float* bias, int64_t bias_len,
                      Activation act, float alpha, float* out) {
  if (s.batch < 1 || s.m < 1 || s.n < 1 || s.k < 1) throw ArgumentError("batchMatMul: every dimension must be ≥ 1");
  if ((s.batch_a != 1 && s.batch_a != s.batch) || (s.batch_b != 1 && s.batch_b != s.batch))
    throw ArgumentError("batchMatMul: batch_a and batch_b must be 1 or batch");
  if (bias && bias_len != 1 && bias_len != s.n) throw ArgumentError("batchMatMul: bias must hold 1 or n values");
  const int64_t lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
  for (int64_t i = 0; i < s.batch; ++i) {
    const float* ai = a + (s.batch_a == 1 ? 0 : i) * s.m * s.k;
    const float* bi = b + (s.batch_b == 1 ? 0 : i) * s.k * s.n;
    sgemm(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0f, ai, lda, bi, ldb, 0.0f, out + i * s.m * s.n, s.n);
  }
  if (!bias && act == Activation::Linear) return;
  const int64_t rows = s.batch * s.m;
  parallel_for(rows, 256, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = out + r * s.n;
      for (int64_t j = 0; j < s.n; ++j) {
        float v = row[j] + (bias ? bias[bias_len == 1 ? 0 : j] : 0.0f);
        row[j] = activate(act, v, alpha);
      }
    }
  });
}

}  // namespace hf::nn
