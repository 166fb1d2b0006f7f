// Batched matrix product (TF.js BatchMatMul / _FusedMatMul):
//   out[b] = act(op(a[b mod batch_a]) · op(b[b mod batch_b]) + bias)
// a: [batch_a, m, k] ([batch_a, k, m] when trans_a), b: [batch_b, k, n]
// ([batch_b, n, k] when trans_b), out: [batch, m, n], batch = max(batch_a,
// batch_b) with batch_a, batch_b ∈ {1, batch}. bias (may be null) has
// bias_len ∈ {1, n} elements, broadcast over rows.
#pragma once
#include <cstdint>

#include "nn/activation.h"

namespace hf::nn {

struct MatMulShape {
  int64_t batch, batch_a, batch_b, m, n, k;
  bool trans_a, trans_b;
};

void batch_matmul_cpu(const MatMulShape& s, const float* a, const float* b, const float* bias, int64_t bias_len,
                      Activation act, float alpha, float* out);

}  // namespace hf::nn
