#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "nn/pool.h"

namespace hf::nn {
namespace {

void check_pool(const Conv2dShape& s) {
  check_conv2d_shape(s);
  if (s.in_c != s.out_c) throw ArgumentError("pool: in_c must equal out_c");
}

// Window rows/cols of output (i, j) that fall inside the input.
struct Window {
  int64_t y0, y1, x0, x1;  // first in-range tap index and one past the last, per axis
};

inline void taps(int64_t o, int64_t stride, int64_t pad, int64_t dil, int64_t k, int64_t in, int64_t& t0, int64_t& t1) {
  int64_t start = o * stride - pad;
  t0 = 0;
  while (t0 < k && start + t0 * dil < 0) ++t0;
  t1 = k;
  while (t1 > t0 && start + (t1 - 1) * dil >= in) --t1;
}

Window window(const Conv2dShape& s, int64_t i, int64_t j) {
  Window w;
  taps(i, s.stride_h, s.pad_top, s.dil_h, s.k_h, s.in_h, w.y0, w.y1);
  taps(j, s.stride_w, s.pad_left, s.dil_w, s.k_w, s.in_w, w.x0, w.x1);
  return w;
}

template <typename PerImage>
void per_image(const Conv2dShape& s, PerImage&& fn) {
  parallel_for(s.n, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) fn(b);
  });
}

}  // namespace

void max_pool_cpu(const Conv2dShape& s, const float* x, float* y) {
  check_pool(s);
  const int64_t c = s.in_c;
  parallel_for(s.n * s.out_h, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      int64_t b = p / s.out_h, i = p % s.out_h;
      for (int64_t j = 0; j < s.out_w; ++j) {
        float* out = y + ((b * s.out_h + i) * s.out_w + j) * c;
        std::fill(out, out + c, -std::numeric_limits<float>::infinity());
        Window w = window(s, i, j);
        for (int64_t r = w.y0; r < w.y1; ++r)
          for (int64_t q = w.x0; q < w.x1; ++q) {
            int64_t iy = i * s.stride_h - s.pad_top + r * s.dil_h, ix = j * s.stride_w - s.pad_left + q * s.dil_w;
            const float* in = x + ((b * s.in_h + iy) * s.in_w + ix) * c;
            for (int64_t k = 0; k < c; ++k) out[k] = in[k] > out[k] ? in[k] : out[k];
          }
      }
    }
  });
}

void avg_pool_cpu(const Conv2dShape& s, const float* x, float* y) {
  check_pool(s);
  const int64_t c = s.in_c;
  parallel_for(s.n * s.out_h, 1, [&](int64_t p0, int64_t p1) {
    std::vector<double> acc(c);
    for (int64_t p = p0; p < p1; ++p) {
      int64_t b = p / s.out_h, i = p % s.out_h;
      for (int64_t j = 0; j < s.out_w; ++j) {
        std::fill(acc.begin(), acc.end(), 0.0);
        Window w = window(s, i, j);
        for (int64_t r = w.y0; r < w.y1; ++r)
          for (int64_t q = w.x0; q < w.x1; ++q) {
            int64_t iy = i * s.stride_h - s.pad_top + r * s.dil_h, ix = j * s.stride_w - s.pad_left + q * s.dil_w;
            const float* in = x + ((b * s.in_h + iy) * s.in_w + ix) * c;
            for (int64_t k = 0; k < c; ++k) acc[k] += in[k];
          }
        double count = double((w.y1 - w.y0) * (w.x1 - w.x0));
        float* out = y + ((b * s.out_h + i) * s.out_w + j) * c;
        for (int64_t k = 0; k < c; ++k) out[k] = static_cast<float>(acc[k] / count);
      }
    }
  });
}

void max_pool_grad_cpu(const Conv2dShape& s, const float* dy, const float* x, float* dx) {
  check_pool(s);
  const int64_t c = s.in_c;
  const int64_t image = s.in_h * s.in_w * c;
  // Windows that never overlap (stride ≥ span, the usual 2x2/2 pooling): each
  // input belongs to at most one window, so every tap of a window is written
  // once, dy at its maximum and 0 elsewhere, with no scatter and no sums.
  const bool disjoint = s.stride_h >= (s.k_h - 1) * s.dil_h + 1 && s.stride_w >= (s.k_w - 1) * s.dil_w + 1;
  // …and tile the input exactly: nothing is left for a zero fill.
  const bool tiled = disjoint && s.dil_h == 1 && s.dil_w == 1 && s.stride_h == s.k_h && s.stride_w == s.k_w &&
                     s.pad_top == 0 && s.pad_left == 0 && s.out_h * s.stride_h == s.in_h && s.out_w * s.stride_w == s.in_w;
  per_image(s, [&](int64_t b) {
    if (!tiled) std::fill(dx + b * image, dx + (b + 1) * image, 0.0f);
    std::vector<float> best(c);
    std::vector<int32_t> tap(c);
    std::vector<int64_t> where(c);
    for (int64_t i = 0; i < s.out_h; ++i)
      for (int64_t j = 0; j < s.out_w; ++j) {
        Window w = window(s, i, j);
        const float* g = dy + ((b * s.out_h + i) * s.out_w + j) * c;
        auto base_of = [&](int64_t r, int64_t q) {
          int64_t iy = i * s.stride_h - s.pad_top + r * s.dil_h, ix = j * s.stride_w - s.pad_left + q * s.dil_w;
          return ((b * s.in_h + iy) * s.in_w + ix) * c;
        };
        std::fill(best.begin(), best.end(), -std::numeric_limits<float>::infinity());
        if (disjoint) {
          // Strictly greater: the first maximum wins; a window where nothing
          // beats -inf passes no gradient (as TF.js's maxPoolPositions).
          std::fill(tap.begin(), tap.end(), int32_t{-1});
          float* __restrict bk = best.data();
          int32_t* __restrict tk = tap.data();
          for (int64_t r = w.y0; r < w.y1; ++r)
            for (int64_t q = w.x0; q < w.x1; ++q) {
              const float* __restrict in = x + base_of(r, q);
              const int32_t t = static_cast<int32_t>(r * s.k_w + q);
              for (int64_t k = 0; k < c; ++k) {
                bool more = in[k] > bk[k];
                bk[k] = more ? in[k] : bk[k];
                tk[k] = more ? t : tk[k];
              }
            }
          for (int64_t r = w.y0; r < w.y1; ++r)
            for (int64_t q = w.x0; q < w.x1; ++q) {
              float* __restrict d = dx + base_of(r, q);
              const int32_t t = static_cast<int32_t>(r * s.k_w + q);
              for (int64_t k = 0; k < c; ++k) d[k] = tk[k] == t ? g[k] : 0.0f;
            }
          continue;
        }
        std::fill(where.begin(), where.end(), int64_t{-1});
        for (int64_t r = w.y0; r < w.y1; ++r)
          for (int64_t q = w.x0; q < w.x1; ++q) {
            int64_t base = base_of(r, q);
            for (int64_t k = 0; k < c; ++k)
              if (x[base + k] > best[k]) {
                best[k] = x[base + k];
                where[k] = base + k;
              }
          }
        for (int64_t k = 0; k < c; ++k)
          if (where[k] >= 0) dx[where[k]] += g[k];
      }
  });
}

void avg_pool_grad_cpu(const Conv2dShape& s, const float* dy, float* dx) {
  check_pool(s);
  const int64_t c = s.in_c;
  const float scale = 1.0f / static_cast<float>(s.k_h * s.k_w);
  std::fill(dx, dx + s.x_size(), 0.0f);
  per_image(s, [&](int64_t b) {
    for (int64_t i = 0; i < s.out_h; ++i)
      for (int64_t j = 0; j < s.out_w; ++j) {
        Window w = window(s, i, j);
        const float* g = dy + ((b * s.out_h + i) * s.out_w + j) * c;
        for (int64_t r = w.y0; r < w.y1; ++r)
          for (int64_t q = w.x0; q < w.x1; ++q) {
            int64_t iy = i * s.stride_h - s.pad_top + r * s.dil_h, ix = j * s.stride_w - s.pad_left + q * s.dil_w;
            float* d = dx + ((b * s.in_h + iy) * s.in_w + ix) * c;
            for (int64_t k = 0; k < c; ++k) d[k] += g[k] * scale;
          }
      }
  });
}

}  // namespace hf::nn
