// TF.js FusedBatchNorm (inference form, also what layers' training-mode batch
// norm calls with the batch moments):
//   y[i] = offset[i mod L_o] + (x[i] − mean[i mod L_m]) · scale[i mod L_s] / √(var[i mod L_v] + ε)
// as tfjs-backend-cpu's batchNorm (each parameter cycles over its own length;
// for NHWC with [C]-shaped parameters that is per channel). A null scale is 1,
// a null offset 0. Its gradient is composed by TF.js from element-wise ops and
// reductions (elementwise.h, reduce.h).
#pragma once
#include <cstdint>

namespace hf::nn {

struct BatchNormArgs {
  const float *mean, *variance, *offset, *scale;
  int64_t mean_len, variance_len, offset_len, scale_len;
  float epsilon;
};

void batch_norm_cpu(const float* x, int64_t size, const BatchNormArgs& p, float* y);

// Training-mode batch norm, the forward pass of a Keras BatchNormalization
// layer (axis −1) in one call: x viewed as [rows, c] (NHWC: rows = n·h·w),
//   mean[k]     = Σ_r x[r,k] / rows
//   variance[k] = Σ_r (x[r,k] − mean[k])² / rows      (biased, as tf.moments)
//   y[r,k]      = offset[k] + (x[r,k] − mean[k]) · scale[k] / √(variance[k] + ε)
// Null scale is 1, null offset 0. Two reading passes for the moments (the
// second centred on the first's mean rounded to float, the rounding carried in
// double, so a mean far larger than the spread loses no precision), one
// writing pass. Sums run in float over fixed blocks of 128 rows and in double
// across blocks, added in block order: the same bits for any thread count.
// relu: y = max(y, 0) as well (x > 0 ? x : 0), the ReLU layer after the
// batch norm in the same pass (its input is never written out).
void batch_norm_train_cpu(const float* x, int64_t rows, int64_t c, const float* scale, const float* offset,
                          float epsilon, bool relu, float* y, float* mean, float* variance);

// Its gradient with the batch moments differentiated too (what TF.js derives
// from moments → batchNorm, in two passes instead of ~20 element-wise ops):
// with r = 1/√(variance + ε), x̂ = (x − mean)·r, N = rows,
//   doffset[k] = Σ_r dy,   dscale[k] = Σ_r dy·x̂
//   dx = scale·r · (dy − doffset/N − x̂ · dscale/N)
// dscale / doffset may be null (not wanted). relu_y: the output of a fused
// ReLU (batch_norm_train_cpu with relu), or null: dy is then dy·step(relu_y)
// (the ReLU's gradient, NaN passing through as in relu_grad) on the fly.
void batch_norm_train_grad_cpu(const float* dy, const float* x, int64_t rows, int64_t c, const float* mean,
                               const float* variance, const float* scale, float epsilon, const float* relu_y, float* dx,
                               float* dscale, float* doffset);

}  // namespace hf::nn
