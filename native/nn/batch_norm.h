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

}  // namespace hf::nn
