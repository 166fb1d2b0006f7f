// 2-D max and average pooling, NHWC float32, with TF.js cpu's conventions
// (tfjs-backend-cpu utils/pool_utils.ts, MaxPoolGrad, AvgPoolGrad):
//   max: the first strictly greatest in-range value of the window (row-major
//        order); -inf for a window with no in-range pixel.
//   avg: the mean of the in-range pixels (padding excluded).
//   MaxPoolGrad: dx[argmax of each window] += dy.
//   AvgPoolGrad: dx[every in-range pixel of a window] += dy / (k_h·k_w)
//        (TF.js divides by the full window even where it was padded).
// Geometry as Conv2dShape with in_c == out_c (the channels).
#pragma once
#include "nn/conv2d.h"

namespace hf::nn {

void max_pool_cpu(const Conv2dShape& s, const float* x, float* y);
void avg_pool_cpu(const Conv2dShape& s, const float* x, float* y);
void max_pool_grad_cpu(const Conv2dShape& s, const float* dy, const float* x, float* dx);
void avg_pool_grad_cpu(const Conv2dShape& s, const float* dy, float* dx);

}  // namespace hf::nn
