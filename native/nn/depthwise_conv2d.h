// Depthwise 2-D convolution, NHWC float32 (TF.js DepthwiseConv2dNative and
// its two gradients): x [n, in_h, in_w, c], filter [k_h, k_w, c, m],
// y [n, out_h, out_w, c·m] with
//   y[b,i,j,c·m+q] = Σ_{r,s} x[b, i·sh − pad_top + r·dh, j·sw − pad_left + s·dw, c] · f[r,s,c,q]
// Geometry as in conv2d.h (Conv2dShape with in_c = c, out_c = c·m).
// Direct loops: a depthwise layer has too little work per output for GEMM.
#pragma once
#include "nn/conv2d.h"

namespace hf::nn {

void depthwise_conv2d_forward_cpu(const Conv2dShape& s, const float* x, const float* filter, float* y);
void depthwise_conv2d_backprop_input_cpu(const Conv2dShape& s, const float* dy, const float* filter, float* dx);
void depthwise_conv2d_backprop_filter_cpu(const Conv2dShape& s, const float* x, const float* dy, float* dfilter);

}  // namespace hf::nn
