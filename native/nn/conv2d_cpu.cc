// Built-in convolution: im2col of a chunk of whole images, then one sgemm
// (forward / filter gradient) or sgemm + col2im (input gradient). Chunks keep
// the column buffer under ~64 MB.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "nn/conv2d.h"
#include "nn/engine.h"
#include "nn/gemm.h"

namespace hf::nn {
namespace {

constexpr int64_t kColBudget = int64_t{16} << 20;  // floats

int64_t col_width(const Conv2dShape& s) { return s.k_h * s.k_w * s.in_c; }

// Images per chunk: whole images, at least one.
int64_t images_per_chunk(const Conv2dShape& s) {
  int64_t per_image = s.out_h * s.out_w * col_width(s);
  return std::max<int64_t>(1, std::min<int64_t>(s.n, kColBudget / std::max<int64_t>(1, per_image)));
}

bool is_pointwise(const Conv2dShape& s) {
  return s.k_h == 1 && s.k_w == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 && s.pad_left == 0 &&
         s.in_h == s.out_h && s.in_w == s.out_w;
}

// col[(p − first image's first row)·K + (r·k_w + s)·in_c + c] = x[…] (0 outside).
void im2col(const Conv2dShape& s, const float* x, int64_t b0, int64_t b1, float* col) {
  const int64_t kw = col_width(s), plane = s.out_h * s.out_w;
  parallel_for((b1 - b0) * plane, 256, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      int64_t b = b0 + p / plane, i = (p % plane) / s.out_w, j = p % s.out_w;
      float* dst = col + p * kw;
      for (int64_t r = 0; r < s.k_h; ++r) {
        int64_t iy = i * s.stride_h - s.pad_top + r * s.dil_h;
        for (int64_t q = 0; q < s.k_w; ++q, dst += s.in_c) {
          int64_t ix = j * s.stride_w - s.pad_left + q * s.dil_w;
          if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) {
            std::fill(dst, dst + s.in_c, 0.0f);
          } else {
            std::memcpy(dst, x + ((b * s.in_h + iy) * s.in_w + ix) * s.in_c, s.in_c * sizeof(float));
          }
        }
      }
    }
  });
}

// dx[…] += col[…], the adjoint of im2col; one thread per image (disjoint dx).
void col2im_add(const Conv2dShape& s, const float* col, int64_t b0, int64_t b1, float* dx) {
  const int64_t kw = col_width(s), plane = s.out_h * s.out_w;
  parallel_for(b1 - b0, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t bb = c0; bb < c1; ++bb) {
      int64_t b = b0 + bb;
      for (int64_t p = 0; p < plane; ++p) {
        int64_t i = p / s.out_w, j = p % s.out_w;
        const float* src = col + (bb * plane + p) * kw;
        for (int64_t r = 0; r < s.k_h; ++r) {
          int64_t iy = i * s.stride_h - s.pad_top + r * s.dil_h;
          for (int64_t q = 0; q < s.k_w; ++q, src += s.in_c) {
            int64_t ix = j * s.stride_w - s.pad_left + q * s.dil_w;
            if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
            float* d = dx + ((b * s.in_h + iy) * s.in_w + ix) * s.in_c;
            for (int64_t c = 0; c < s.in_c; ++c) d[c] += src[c];
          }
        }
      }
    }
  });
}

}  // namespace

void bias_activation(float* out, int64_t rows, int64_t channels, const float* bias, Activation act, float alpha) {
  if (!bias && act == Activation::Linear) return;
  parallel_for(rows, 1024, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = out + r * channels;
      if (bias)
        for (int64_t c = 0; c < channels; ++c) row[c] += bias[c];
      if (act != Activation::Linear)
        for (int64_t c = 0; c < channels; ++c) row[c] = activate(act, row[c], alpha);
    }
  });
}

void check_conv2d_shape(const Conv2dShape& s) {
  const int64_t dims[] = {s.n, s.in_h, s.in_w, s.in_c, s.out_h, s.out_w, s.out_c, s.k_h, s.k_w,
                          s.stride_h, s.stride_w, s.dil_h, s.dil_w};
  for (int64_t d : dims) {
    if (d < 1 || d > (int64_t{1} << 31)) throw ArgumentError("conv2d: every dimension, stride and dilation must be ≥ 1");
  }
  if (s.pad_top < 0 || s.pad_left < 0) throw ArgumentError("conv2d: padding must be ≥ 0");
}

void conv2d_forward_cpu(const Conv2dShape& s, const float* x, const float* filter, const float* bias, Activation act,
                        float alpha, float* y) {
  check_conv2d_shape(s);
  if (winograd_applies(s)) return conv2d_forward_winograd(s, x, filter, bias, nullptr, act, alpha, y);
  if (engine() == Engine::OneDnn && conv2d_forward_fused_onednn(s, x, filter, bias, act, y)) return;
  if (!(engine() == Engine::OneDnn && conv2d_forward_onednn(s, x, filter, y))) {
    const int64_t kw = col_width(s), plane = s.out_h * s.out_w;
    if (is_pointwise(s)) {
      sgemm(false, false, s.n * plane, s.out_c, kw, 1.0f, x, kw, filter, s.out_c, 0.0f, y, s.out_c);
    } else {
      int64_t step = images_per_chunk(s);
      std::vector<float> col(step * plane * kw);
      for (int64_t b0 = 0; b0 < s.n; b0 += step) {
        int64_t b1 = std::min(s.n, b0 + step), rows = (b1 - b0) * plane;
        im2col(s, x, b0, b1, col.data());
        sgemm(false, false, rows, s.out_c, kw, 1.0f, col.data(), kw, filter, s.out_c, 0.0f, y + b0 * plane * s.out_c,
              s.out_c);
      }
    }
  }
  bias_activation(y, s.n * s.out_h * s.out_w, s.out_c, bias, act, alpha);
}

void conv2d_forward_add_cpu(const Conv2dShape& s, const float* x, const float* filter, const float* bias, const float* addend,
                            Activation act, float alpha, float* y) {
  check_conv2d_shape(s);
  if (winograd_applies(s)) return conv2d_forward_winograd(s, x, filter, bias, addend, act, alpha, y);
  if (engine() == Engine::OneDnn && conv2d_forward_add_onednn(s, x, filter, bias, addend, act, y)) return;
  conv2d_forward_cpu(s, x, filter, bias, Activation::Linear, 0.0f, y);
  const int64_t size = s.y_size();
  parallel_for(size, 16384, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = activate(act, y[i] + addend[i], alpha);
  });
}

void conv2d_backprop_input_cpu(const Conv2dShape& s, const float* dy, const float* filter, float* dx) {
  check_conv2d_shape(s);
  if (winograd_applies_backprop_input(s)) return conv2d_backprop_input_winograd(s, dy, filter, dx);
  if (engine() == Engine::OneDnn && conv2d_backprop_input_onednn(s, dy, filter, dx)) return;
  const int64_t kw = col_width(s), plane = s.out_h * s.out_w;
  if (is_pointwise(s)) {
    sgemm(false, true, s.n * plane, kw, s.out_c, 1.0f, dy, s.out_c, filter, s.out_c, 0.0f, dx, kw);
    return;
  }
  std::fill(dx, dx + s.x_size(), 0.0f);
  int64_t step = images_per_chunk(s);
  std::vector<float> col(step * plane * kw);
  for (int64_t b0 = 0; b0 < s.n; b0 += step) {
    int64_t b1 = std::min(s.n, b0 + step), rows = (b1 - b0) * plane;
    sgemm(false, true, rows, kw, s.out_c, 1.0f, dy + b0 * plane * s.out_c, s.out_c, filter, s.out_c, 0.0f, col.data(),
          kw);
    col2im_add(s, col.data(), b0, b1, dx);
  }
}

void conv2d_backprop_filter_cpu(const Conv2dShape& s, const float* x, const float* dy, float* dfilter) {
  check_conv2d_shape(s);
  if (winograd_applies(s)) return conv2d_backprop_filter_winograd(s, x, dy, dfilter);
  if (engine() == Engine::OneDnn && conv2d_backprop_filter_onednn(s, x, dy, dfilter)) return;
  const int64_t kw = col_width(s), plane = s.out_h * s.out_w;
  if (is_pointwise(s)) {
    sgemm(true, false, kw, s.out_c, s.n * plane, 1.0f, x, kw, dy, s.out_c, 0.0f, dfilter, s.out_c);
    return;
  }
  int64_t step = images_per_chunk(s);
  std::vector<float> col(step * plane * kw);
  for (int64_t b0 = 0; b0 < s.n; b0 += step) {
    int64_t b1 = std::min(s.n, b0 + step), rows = (b1 - b0) * plane;
    im2col(s, x, b0, b1, col.data());
    sgemm(true, false, kw, s.out_c, rows, 1.0f, col.data(), kw, dy + b0 * plane * s.out_c, s.out_c,
          b0 == 0 ? 0.0f : 1.0f, dfilter, s.out_c);
  }
}

}  // namespace hf::nn
