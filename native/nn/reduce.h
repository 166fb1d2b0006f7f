// Sum and mean over a contiguous block of axes (TF.js Sum / Mean when the
// reduced axes are adjacent, which covers a training step's reductions:
// per-channel over [N,H,W] in batch norm and its gradient, and over the batch
// for bias and loss gradients). The input is viewed as [outer, reduce, inner]:
//   out[o, i] = Σ_r x[o, r, i]   (mean: divided by `reduce`)
// accumulated in double (TF.js cpu accumulates in JS numbers), split over
// threads along `reduce` and combined in a fixed order: deterministic.
#pragma once
#include <cstdint>

namespace hf::nn {

void reduce_sum_cpu(const float* x, int64_t outer, int64_t reduce, int64_t inner, bool mean, float* out);

}  // namespace hf::nn
