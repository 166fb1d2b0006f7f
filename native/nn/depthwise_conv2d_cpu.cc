#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "nn/depthwise_conv2d.h"

namespace hf::nn {
namespace {

int64_t multiplier(const Conv2dShape& s) {
  check_conv2d_shape(s);
  if (s.out_c % s.in_c != 0) throw ArgumentError("depthwiseConv2d: out_c must be a multiple of in_c");
  return s.out_c / s.in_c;
}

// Calls fn(b, i, j, r, q, iy, ix) for every in-range tap of every output pixel of images [b0, b1).
template <typename Fn>
void for_each_tap(const Conv2dShape& s, int64_t b, Fn&& fn) {
  for (int64_t i = 0; i < s.out_h; ++i)
    for (int64_t j = 0; j < s.out_w; ++j)
      for (int64_t r = 0; r < s.k_h; ++r) {
        int64_t iy = i * s.stride_h - s.pad_top + r * s.dil_h;
        if (iy < 0 || iy >= s.in_h) continue;
        for (int64_t q = 0; q < s.k_w; ++q) {
          int64_t ix = j * s.stride_w - s.pad_left + q * s.dil_w;
          if (ix < 0 || ix >= s.in_w) continue;
          fn(i, j, r, q, iy, ix);
        }
      }
}

}  // namespace

void depthwise_conv2d_forward_cpu(const Conv2dShape& s, const float* x, const float* filter, float* y) {
  const int64_t m = multiplier(s), c_in = s.in_c, c_out = s.out_c;
  std::fill(y, y + s.y_size(), 0.0f);
  parallel_for(s.n * s.out_h, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      int64_t b = p / s.out_h, i = p % s.out_h;
      for (int64_t j = 0; j < s.out_w; ++j) {
        float* out = y + ((b * s.out_h + i) * s.out_w + j) * c_out;
        for (int64_t r = 0; r < s.k_h; ++r) {
          int64_t iy = i * s.stride_h - s.pad_top + r * s.dil_h;
          if (iy < 0 || iy >= s.in_h) continue;
          for (int64_t q = 0; q < s.k_w; ++q) {
            int64_t ix = j * s.stride_w - s.pad_left + q * s.dil_w;
            if (ix < 0 || ix >= s.in_w) continue;
            const float* in = x + ((b * s.in_h + iy) * s.in_w + ix) * c_in;
            const float* f = filter + (r * s.k_w + q) * c_out;
            for (int64_t c = 0; c < c_in; ++c)
              for (int64_t k = 0; k < m; ++k) out[c * m + k] += in[c] * f[c * m + k];
          }
        }
      }
    }
  });
}

void depthwise_conv2d_backprop_input_cpu(const Conv2dShape& s, const float* dy, const float* filter, float* dx) {
  const int64_t m = multiplier(s), c_in = s.in_c, c_out = s.out_c;
  std::fill(dx, dx + s.x_size(), 0.0f);
  // One image per task: its dx is disjoint from every other image's.
  parallel_for(s.n, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      for_each_tap(s, b, [&](int64_t i, int64_t j, int64_t r, int64_t q, int64_t iy, int64_t ix) {
        const float* g = dy + ((b * s.out_h + i) * s.out_w + j) * c_out;
        const float* f = filter + (r * s.k_w + q) * c_out;
        float* d = dx + ((b * s.in_h + iy) * s.in_w + ix) * c_in;
        for (int64_t c = 0; c < c_in; ++c) {
          float acc = 0.0f;
          for (int64_t k = 0; k < m; ++k) acc += g[c * m + k] * f[c * m + k];
          d[c] += acc;
        }
      });
    }
  });
}

void depthwise_conv2d_backprop_filter_cpu(const Conv2dShape& s, const float* x, const float* dy, float* dfilter) {
  const int64_t m = multiplier(s), c_in = s.in_c, c_out = s.out_c, taps = s.k_h * s.k_w;
  // One filter tap per task: each writes its own k_h·k_w slice of dfilter.
  parallel_for(taps, 1, [&](int64_t t0, int64_t t1) {
    std::vector<double> acc(c_out);
    for (int64_t t = t0; t < t1; ++t) {
      int64_t r = t / s.k_w, q = t % s.k_w;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t b = 0; b < s.n; ++b)
        for (int64_t i = 0; i < s.out_h; ++i) {
          int64_t iy = i * s.stride_h - s.pad_top + r * s.dil_h;
          if (iy < 0 || iy >= s.in_h) continue;
          for (int64_t j = 0; j < s.out_w; ++j) {
            int64_t ix = j * s.stride_w - s.pad_left + q * s.dil_w;
            if (ix < 0 || ix >= s.in_w) continue;
            const float* in = x + ((b * s.in_h + iy) * s.in_w + ix) * c_in;
            const float* g = dy + ((b * s.out_h + i) * s.out_w + j) * c_out;
            for (int64_t c = 0; c < c_in; ++c)
              for (int64_t k = 0; k < m; ++k) acc[c * m + k] += double(in[c]) * g[c * m + k];
          }
        }
      float* df = dfilter + t * c_out;
      for (int64_t o = 0; o < c_out; ++o) df[o] = static_cast<float>(acc[o]);
    }
  });
}

}  // namespace hf::nn
