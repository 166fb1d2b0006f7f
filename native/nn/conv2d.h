// 2-D convolution, NHWC float32, TF.js's Conv2D / FusedConv2D /
// Conv2DBackpropInput / Conv2DBackpropFilter (tfjs-core conv_util.ts):
//   x [n, in_h, in_w, in_c], filter [k_h, k_w, in_c, out_c] (HWIO),
//   y [n, out_h, out_w, out_c] with
//   y[b,i,j,o] = Σ_{r,s,c} x[b, i·sh − pad_top + r·dh, j·sw − pad_left + s·dw, c] · f[r,s,c,o]
// (out-of-range x reads as 0). out_h, out_w, pad_top and pad_left are TF.js's
// convInfo values (computed from 'same'/'valid'/explicit padding in src/).
// Forward may add bias[out_c] and apply an activation (FusedConv2D).
//   backprop input:  dx[b,y,x,c] = Σ over every (i,j,r,s,o) that read x[b,y,x,c] of dy[b,i,j,o]·f[r,s,c,o]
//   backprop filter: df[r,s,c,o] = Σ_{b,i,j} x[b, …as above…, c] · dy[b,i,j,o]
// Engine::OneDnn runs oneDNN's convolution primitives (nhwc / hwio memory,
// primitives cached per shape); Engine::Builtin is im2col + sgemm (+ col2im).
#pragma once
#include <cstdint>

#include "nn/activation.h"

namespace hf::nn {

struct Conv2dShape {
  int64_t n, in_h, in_w, in_c;
  int64_t out_h, out_w, out_c;
  int64_t k_h, k_w;
  int64_t stride_h, stride_w, dil_h, dil_w;
  int64_t pad_top, pad_left;
  int64_t x_size() const { return n * in_h * in_w * in_c; }
  int64_t y_size() const { return n * out_h * out_w * out_c; }
  int64_t filter_size() const { return k_h * k_w * in_c * out_c; }
};

// Throws ArgumentError when a dimension is out of range or the output would
// read past the padded input.
void check_conv2d_shape(const Conv2dShape& s);

// y = act(x ∗ filter + bias + addend): a residual block's last convolution,
// its shortcut (addend, shaped like y) and the ReLU after the sum in one call
// (oneDNN: one kernel; otherwise the convolution, then one pass). bias may be null.
void conv2d_forward_add_cpu(const Conv2dShape& s, const float* x, const float* filter, const float* bias, const float* addend,
                            Activation act, float alpha, float* y);

void conv2d_forward_cpu(const Conv2dShape& s, const float* x, const float* filter, const float* bias, Activation act,
                        float alpha, float* y);
void conv2d_backprop_input_cpu(const Conv2dShape& s, const float* dy, const float* filter, float* dx);
void conv2d_backprop_filter_cpu(const Conv2dShape& s, const float* x, const float* dy, float* dfilter);

// The oneDNN implementations (the _cpu entry points call them when the engine
// is OneDnn). Return false when oneDNN is not linked.
bool conv2d_forward_onednn(const Conv2dShape& s, const float* x, const float* filter, float* y);
// The forward with a bias (or null) and Linear or Relu applied inside the
// primitive; false (nothing written) for another activation or shape.
bool conv2d_forward_fused_onednn(const Conv2dShape& s, const float* x, const float* filter, const float* bias, Activation act,
                                 float* y);
bool conv2d_forward_add_onednn(const Conv2dShape& s, const float* x, const float* filter, const float* bias, const float* addend,
                               Activation act, float* y);
bool conv2d_backprop_input_onednn(const Conv2dShape& s, const float* dy, const float* filter, float* dx);
bool conv2d_backprop_filter_onednn(const Conv2dShape& s, const float* x, const float* dy, float* dfilter);

// Winograd F(4×4, 3×3) (nn/winograd_cpu.cc): the forward of a 3×3, stride-1,
// undilated convolution with at least kWinogradMinChannels input and output
// channels and a 4×4 output, in 36 GEMMs of ¼ of the direct convolution's
// multiply-adds, on either engine. conv2d_forward_cpu and
// conv2d_forward_add_cpu take it when winograd_applies(s), which also asks
// winograd_enabled() (engine.h). Outputs differ from the direct sum by about
// 1e-6 of Σ|x·w|; a NaN or infinite input reaches every output of the 4×4
// tiles whose 6×6 input window holds it (the direct sum: its 3×3 neighbourhood).
constexpr int64_t kWinogradMinChannels = 8;
bool winograd_applies(const Conv2dShape& s);
// y = act(x ∗ filter + bias + addend); bias and addend may be null.
void conv2d_forward_winograd(const Conv2dShape& s, const float* x, const float* filter, const float* bias,
                             const float* addend, Activation act, float alpha, float* y);
// The input gradient of such a convolution is one too (dy against the filter
// turned 180° with its channels swapped, padding 2 − pad): taken by
// conv2d_backprop_input_cpu when winograd_applies_backprop_input(s).
bool winograd_applies_backprop_input(const Conv2dShape& s);
void conv2d_backprop_input_winograd(const Conv2dShape& s, const float* dy, const float* filter, float* dx);
// The filter gradient of such a convolution through the same transforms
// (Gᵀ [Σ_tiles (A dy Aᵀ) ⊙ (Bᵀ x B)] G), taken by conv2d_backprop_filter_cpu
// when winograd_applies(s): the same bits for a given thread count (one
// partial sum per thread, added in order), not across thread counts.
void conv2d_backprop_filter_winograd(const Conv2dShape& s, const float* x, const float* dy, float* dfilter);

}  // namespace hf::nn
