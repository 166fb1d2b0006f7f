// nn/ kernels without Node: the built-in sgemm against a double-precision
// triple loop (every transpose, ragged sizes), and convolution forward and
// both gradients against a direct loop of conv2d.h's formula, on every engine
// this build has (oneDNN when linked, and the built-in im2col + GEMM).
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "harness.h"
#include "nn/batch_norm.h"
#include "nn/conv2d.h"
#include "nn/engine.h"
#include "core/error.h"
#include "core/runtime.h"
#include "nn/gemm.h"
#include "nn/pool.h"

using namespace hf::nn;

namespace {

std::vector<float> random_vector(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// max |a − b| / max |b|
double relative_error(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::fabs(a[i] - b[i]));
    den = std::max(den, std::fabs(b[i]));
  }
  return den > 0 ? num / den : num;
}

std::vector<Engine> engines() {
  std::vector<Engine> e{Engine::Builtin};
  if (onednn_available()) e.push_back(Engine::OneDnn);
  return e;
}

struct EngineScope {
  Engine saved = engine();
  explicit EngineScope(Engine e) { set_engine(e); }
  ~EngineScope() { set_engine(saved); }
};

}  // namespace

HF_TEST("sgemm matches a double-precision triple loop for every transpose, ragged sizes, alpha and beta") {
  // The last: few output blocks, long K (threads split K).
  const int64_t sizes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 65, 17}, {130, 47, 300}, {257, 129, 513}, {27, 32, 5000}};
  for (Engine e : engines()) {
    EngineScope scope(e);
    for (auto& sz : sizes) {
      int64_t m = sz[0], n = sz[1], k = sz[2];
      for (int t = 0; t < 4; ++t) {
        bool ta = t & 1, tb = t & 2;
        auto a = random_vector(m * k, 1), b = random_vector(k * n, 2), c = random_vector(m * n, 3);
        std::vector<double> ref(m * n);
        const float alpha = 0.5f, beta = t == 3 ? 0.0f : 1.5f;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (int64_t p = 0; p < k; ++p) s += double(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
            ref[i * n + j] = alpha * s + (beta == 0.0f ? 0.0 : beta * double(c[i * n + j]));
          }
        if (beta == 0.0f) std::fill(c.begin(), c.end(), NAN);  // beta 0 must not read C
        sgemm(ta, tb, m, n, k, alpha, a.data(), ta ? m : k, b.data(), tb ? k : n, beta, c.data(), n);
        CHECK_NEAR(relative_error(c, ref), 0.0, 1e-5);
      }
    }
  }
}

HF_TEST("conv2d forward and both gradients match conv2d.h's formula on every engine (strides, dilation, padding, batch 1)") {
  const Conv2dShape shapes[] = {
      // n, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, sh, sw, dh, dw, pad_top, pad_left
      {2, 9, 11, 5, 9, 11, 7, 3, 3, 1, 1, 1, 1, 1, 1},   // 'same'
      {1, 9, 11, 5, 4, 5, 7, 3, 3, 2, 2, 1, 1, 0, 0},    // 'valid', stride 2
      {1, 12, 9, 4, 12, 9, 3, 3, 3, 1, 1, 2, 2, 2, 2},   // dilation 2
      {3, 7, 7, 6, 7, 7, 5, 1, 1, 1, 1, 1, 1, 0, 0},     // pointwise
      {1, 13, 10, 3, 7, 5, 4, 5, 5, 2, 2, 1, 1, 2, 1},   // 5x5, stride 2, 'same'
  };
  for (Engine e : engines()) {
    EngineScope scope(e);
    for (const auto& s : shapes) {
      auto x = random_vector(s.x_size(), 4), f = random_vector(s.filter_size(), 5), dy = random_vector(s.y_size(), 6);
      std::vector<double> y_ref(s.y_size(), 0.0), dx_ref(s.x_size(), 0.0), df_ref(s.filter_size(), 0.0);
      for (int64_t b = 0; b < s.n; ++b)
        for (int64_t i = 0; i < s.out_h; ++i)
          for (int64_t j = 0; j < s.out_w; ++j)
            for (int64_t r = 0; r < s.k_h; ++r)
              for (int64_t q = 0; q < s.k_w; ++q) {
                int64_t iy = i * s.stride_h - s.pad_top + r * s.dil_h, ix = j * s.stride_w - s.pad_left + q * s.dil_w;
                if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
                for (int64_t c = 0; c < s.in_c; ++c)
                  for (int64_t o = 0; o < s.out_c; ++o) {
                    int64_t xi = ((b * s.in_h + iy) * s.in_w + ix) * s.in_c + c, fi = ((r * s.k_w + q) * s.in_c + c) * s.out_c + o,
                            yi = ((b * s.out_h + i) * s.out_w + j) * s.out_c + o;
                    y_ref[yi] += double(x[xi]) * f[fi];
                    dx_ref[xi] += double(dy[yi]) * f[fi];
                    df_ref[fi] += double(x[xi]) * dy[yi];
                  }
              }
      std::vector<float> y(s.y_size()), dx(s.x_size()), df(s.filter_size());
      conv2d_forward_cpu(s, x.data(), f.data(), nullptr, Activation::Linear, 0.0f, y.data());
      conv2d_backprop_input_cpu(s, dy.data(), f.data(), dx.data());
      conv2d_backprop_filter_cpu(s, x.data(), dy.data(), df.data());
      CHECK_NEAR(relative_error(y, y_ref), 0.0, 1e-5);
      CHECK_NEAR(relative_error(dx, dx_ref), 0.0, 1e-5);
      CHECK_NEAR(relative_error(df, df_ref), 0.0, 1e-5);
    }
  }
}

HF_TEST("conv2d forward with a bias and each activation, and with a residual addend, (oneDNN in-kernel bias, sum and ReLU included) matches the formula then activate()") {
  const Conv2dShape shapes[] = {
      {2, 9, 11, 5, 9, 11, 7, 3, 3, 1, 1, 1, 1, 1, 1},
      {1, 13, 10, 3, 7, 5, 4, 5, 5, 2, 2, 1, 1, 2, 1},
  };
  const Activation acts[] = {Activation::Linear, Activation::Relu, Activation::Relu6, Activation::Elu, Activation::Sigmoid,
                             Activation::LeakyRelu};
  for (Engine e : engines()) {
    EngineScope scope(e);
    for (const auto& s : shapes)
      for (bool with_bias : {false, true})
        for (Activation act : acts) {
          auto x = random_vector(s.x_size(), 7), f = random_vector(s.filter_size(), 8), bias = random_vector(s.out_c, 9);
          std::vector<double> ref(s.y_size(), 0.0);
          for (int64_t b = 0; b < s.n; ++b)
            for (int64_t i = 0; i < s.out_h; ++i)
              for (int64_t j = 0; j < s.out_w; ++j)
                for (int64_t o = 0; o < s.out_c; ++o) {
                  double acc = with_bias ? bias[o] : 0.0;
                  for (int64_t r = 0; r < s.k_h; ++r)
                    for (int64_t q = 0; q < s.k_w; ++q) {
                      int64_t iy = i * s.stride_h - s.pad_top + r * s.dil_h, ix = j * s.stride_w - s.pad_left + q * s.dil_w;
                      if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
                      for (int64_t c = 0; c < s.in_c; ++c)
                        acc += double(x[((b * s.in_h + iy) * s.in_w + ix) * s.in_c + c]) * f[((r * s.k_w + q) * s.in_c + c) * s.out_c + o];
                    }
                  ref[((b * s.out_h + i) * s.out_w + j) * s.out_c + o] = activate(act, static_cast<float>(acc), 0.2f);
                }
          std::vector<float> y(s.y_size());
          conv2d_forward_cpu(s, x.data(), f.data(), with_bias ? bias.data() : nullptr, act, 0.2f, y.data());
          CHECK_NEAR(relative_error(y, ref), 0.0, 1e-5);
          // With a residual addend before the activation (oneDNN: sum post-op; otherwise one pass).
          if (act != Activation::Linear && act != Activation::Relu) continue;
          auto addend = random_vector(s.y_size(), 10);
          std::vector<double> ref_add(s.y_size());
          std::vector<float> lin(s.y_size()), out(s.y_size());
          conv2d_forward_cpu(s, x.data(), f.data(), with_bias ? bias.data() : nullptr, Activation::Linear, 0.0f, lin.data());
          for (int64_t i = 0; i < s.y_size(); ++i) ref_add[i] = activate(act, lin[i] + addend[i], 0.0f);
          conv2d_forward_add_cpu(s, x.data(), f.data(), with_bias ? bias.data() : nullptr, addend.data(), act, 0.0f, out.data());
          CHECK_NEAR(relative_error(out, ref_add), 0.0, 1e-5);
        }
  }
}

HF_TEST("selecting the oneDNN engine in a build without it is an UnavailableError, and the engine stays as it was") {
  if (onednn_available()) return;
  Engine before = engine();
  bool threw = false;
  try {
    set_engine(Engine::OneDnn);
  } catch (const hf::UnavailableError&) {
    threw = true;
  }
  CHECK(threw);
  CHECK(engine() == before);
}

namespace {

struct ThreadScope {
  int saved = hf::cpu_threads();
  explicit ThreadScope(int n) { hf::set_cpu_threads(n); }
  ~ThreadScope() { hf::set_cpu_threads(saved); }
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

HF_TEST("training batch norm: moments, output and gradient match a double-precision reference, and the same bits for 1, 2 and 3 threads") {
  // rows not a multiple of the 128-row blocks; a large offset against a small
  // spread (the case a one-pass Σx² − N·mean² variance gets wrong).
  const int64_t shapes[][2] = {{4 * 7 * 5, 3}, {2 * 9 * 9, 130}, {1, 4}, {300, 1}};
  for (const auto& sh : shapes) {
    const int64_t rows = sh[0], c = sh[1], n = rows * c;
    auto x = random_vector(n, 11), scale = random_vector(c, 12), offset = random_vector(c, 13), dy = random_vector(n, 14);
    for (int64_t i = 0; i < n; ++i) x[i] = 1000.0f + 0.25f * x[i] + float(i % c);
    const float eps = 1e-3f;
    std::vector<double> mean(c, 0), var(c, 0), sdy(c, 0), sdyx(c, 0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < c; ++k) mean[k] += x[r * c + k] / double(rows);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < c; ++k) var[k] += std::pow(x[r * c + k] - mean[k], 2) / double(rows);
    std::vector<double> y_ref(n), dx_ref(n), ds_ref(c), do_ref(c);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < c; ++k) {
        double xh = (x[r * c + k] - mean[k]) / std::sqrt(var[k] + eps);
        y_ref[r * c + k] = offset[k] + scale[k] * xh;
        sdy[k] += dy[r * c + k];
        sdyx[k] += dy[r * c + k] * xh;
      }
    for (int64_t k = 0; k < c; ++k) {
      do_ref[k] = sdy[k];
      ds_ref[k] = sdyx[k];
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < c; ++k) {
        double inv = 1.0 / std::sqrt(var[k] + eps), xh = (x[r * c + k] - mean[k]) * inv;
        dx_ref[r * c + k] = scale[k] * inv * (dy[r * c + k] - sdy[k] / rows - xh * sdyx[k] / rows);
      }
    std::vector<float> first_y, first_dx;
    for (int threads : {1, 2, 3}) {
      ThreadScope scope(threads);
      std::vector<float> y(n), m(c), v(c), dx(n), ds(c), doff(c);
      batch_norm_train_cpu(x.data(), rows, c, scale.data(), offset.data(), eps, false, y.data(), m.data(), v.data());
      batch_norm_train_grad_cpu(dy.data(), x.data(), rows, c, m.data(), v.data(), scale.data(), eps, nullptr, dx.data(), ds.data(), doff.data());
      // The mean to float precision; the variance (0.25²/3 + …) to 1e-4 of itself
      // although x ≈ 1000; y and dx to 1e-4 of their largest magnitude.
      CHECK_NEAR(relative_error(m, mean), 0.0, 1e-6);
      CHECK_NEAR(relative_error(v, var), 0.0, 1e-4);
      CHECK_NEAR(relative_error(y, y_ref), 0.0, 1e-4);
      CHECK_NEAR(relative_error(dx, dx_ref), 0.0, 1e-4);
      CHECK_NEAR(relative_error(ds, ds_ref), 0.0, 1e-4);
      CHECK_NEAR(relative_error(doff, do_ref), 0.0, 1e-5);
      // With the ReLU fused: y is max(y, 0), and the gradient is the plain one of dy·step(y).
      std::vector<float> yr(n), mr(c), vr(c), dxr(n), dsr(c), dor(c), dxm(n), dsm(c), dom(c), dym(n);
      batch_norm_train_cpu(x.data(), rows, c, scale.data(), offset.data(), eps, true, yr.data(), mr.data(), vr.data());
      bool relu_ok = true;
      for (int64_t i = 0; i < n; ++i) relu_ok = relu_ok && yr[i] == (y[i] > 0.0f ? y[i] : 0.0f);
      CHECK(relu_ok);
      for (int64_t i = 0; i < n; ++i) dym[i] = dy[i] * (yr[i] > 0.0f ? 1.0f : 0.0f);
      batch_norm_train_grad_cpu(dy.data(), x.data(), rows, c, mr.data(), vr.data(), scale.data(), eps, yr.data(), dxr.data(), dsr.data(), dor.data());
      batch_norm_train_grad_cpu(dym.data(), x.data(), rows, c, mr.data(), vr.data(), scale.data(), eps, nullptr, dxm.data(), dsm.data(), dom.data());
      CHECK(same_bits(dxr, dxm));
      CHECK(same_bits(dsr, dsm));
      CHECK(same_bits(dor, dom));
      if (first_y.empty()) {
        first_y = y;
        first_dx = dx;
      } else {
        CHECK(same_bits(y, first_y));
        CHECK(same_bits(dx, first_dx));
      }
    }
  }
  bool threw = false;
  try {
    std::vector<float> x(4), y(4), m(1), v(1);
    batch_norm_train_cpu(x.data(), 4, 1, nullptr, nullptr, -1.0f, false, y.data(), m.data(), v.data());
  } catch (const hf::ArgumentError&) {
    threw = true;
  }
  CHECK(threw);
}

HF_TEST("max-pool gradient: dy at each window's first maximum, 0 elsewhere, for tiling, padded and overlapping windows, ties and -inf windows") {
  const Conv2dShape shapes[] = {
      // n, in_h, in_w, c, out_h, out_w, c, k_h, k_w, sh, sw, dh, dw, pad_top, pad_left
      {2, 8, 6, 5, 4, 3, 5, 2, 2, 2, 2, 1, 1, 0, 0},   // 2x2/2 tiling the input
      {1, 7, 5, 3, 4, 3, 3, 2, 2, 2, 2, 1, 1, 0, 0},   // 'same' on odd sizes: clipped windows
      {1, 7, 7, 4, 3, 3, 4, 2, 2, 3, 3, 1, 1, 0, 0},   // stride 3 > k: inputs in no window
      {2, 9, 9, 3, 4, 4, 3, 3, 3, 2, 2, 1, 1, 0, 0},   // 3x3/2: overlapping windows
  };
  for (const auto& s : shapes) {
    auto x = random_vector(s.x_size(), 21), dy = random_vector(s.y_size(), 22);
    // Ties (the first in row-major order wins) and an all -inf channel (no gradient).
    for (int64_t i = 0; i < s.x_size(); ++i) {
      if (i % 7 == 0) x[i] = 0.5f;
      if (i % s.in_c == 1 % s.in_c && s.in_c > 2) x[i] = -std::numeric_limits<float>::infinity();
    }
    std::vector<double> ref(s.x_size(), 0.0);
    for (int64_t b = 0; b < s.n; ++b)
      for (int64_t i = 0; i < s.out_h; ++i)
        for (int64_t j = 0; j < s.out_w; ++j)
          for (int64_t k = 0; k < s.in_c; ++k) {
            float best = -std::numeric_limits<float>::infinity();
            int64_t where = -1;
            for (int64_t r = 0; r < s.k_h; ++r)
              for (int64_t q = 0; q < s.k_w; ++q) {
                int64_t iy = i * s.stride_h - s.pad_top + r * s.dil_h, ix = j * s.stride_w - s.pad_left + q * s.dil_w;
                if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
                int64_t xi = ((b * s.in_h + iy) * s.in_w + ix) * s.in_c + k;
                if (x[xi] > best) {
                  best = x[xi];
                  where = xi;
                }
              }
            if (where >= 0) ref[where] += dy[((b * s.out_h + i) * s.out_w + j) * s.in_c + k];
          }
    std::vector<float> dx(s.x_size(), std::numeric_limits<float>::quiet_NaN());  // poisoned: every element must be written
    max_pool_grad_cpu(s, dy.data(), x.data(), dx.data());
    CHECK_NEAR(relative_error(dx, ref), 0.0, 1e-6);
    bool all_written = true;
    for (float v : dx) all_written = all_written && !std::isnan(v);
    CHECK(all_written);
  }
}

namespace {

// visit(x index, filter index, y index) for every term x·f of conv2d.h's sum for a 3×3, stride-1 shape.
template <typename Visit>
void for_each_term(const Conv2dShape& s, Visit visit) {
  for (int64_t b = 0; b < s.n; ++b)
    for (int64_t i = 0; i < s.out_h; ++i)
      for (int64_t j = 0; j < s.out_w; ++j)
        for (int64_t r = 0; r < 3; ++r)
          for (int64_t q = 0; q < 3; ++q) {
            int64_t iy = i - s.pad_top + r, ix = j - s.pad_left + q;
            if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
            for (int64_t c = 0; c < s.in_c; ++c)
              for (int64_t o = 0; o < s.out_c; ++o)
                visit(((b * s.in_h + iy) * s.in_w + ix) * s.in_c + c, ((r * 3 + q) * s.in_c + c) * s.out_c + o,
                      ((b * s.out_h + i) * s.out_w + j) * s.out_c + o);
          }
}

// act(Σ x·w + bias + addend) in double, and the scale Σ|x·w| + |bias| + |addend| of each output.
void conv3x3_reference(const Conv2dShape& s, const std::vector<float>& x, const std::vector<float>& f, const float* bias,
                       const float* addend, Activation act, std::vector<double>& ref, std::vector<double>& scale) {
  ref.assign(s.y_size(), 0.0);
  scale.assign(s.y_size(), 0.0);
  for (int64_t b = 0; b < s.n; ++b)
    for (int64_t i = 0; i < s.out_h; ++i)
      for (int64_t j = 0; j < s.out_w; ++j)
        for (int64_t o = 0; o < s.out_c; ++o) {
          const int64_t yi = ((b * s.out_h + i) * s.out_w + j) * s.out_c + o;
          double acc = bias ? bias[o] : 0.0, mag = bias ? std::fabs(bias[o]) : 0.0;
          if (addend) acc += addend[yi], mag += std::fabs(addend[yi]);
          for (int64_t r = 0; r < 3; ++r)
            for (int64_t q = 0; q < 3; ++q) {
              int64_t iy = i - s.pad_top + r, ix = j - s.pad_left + q;
              if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
              for (int64_t c = 0; c < s.in_c; ++c) {
                double p = double(x[((b * s.in_h + iy) * s.in_w + ix) * s.in_c + c]) * f[((r * 3 + q) * s.in_c + c) * s.out_c + o];
                acc += p;
                mag += std::fabs(p);
              }
            }
          ref[yi] = activate(act, static_cast<float>(acc), 0.2f);
          scale[yi] = mag;
        }
}

// max over outputs of |y − ref| / scale
double scaled_error(const std::vector<float>& y, const std::vector<double>& ref, const std::vector<double>& scale) {
  double worst = 0;
  for (size_t i = 0; i < y.size(); ++i) worst = std::max(worst, std::fabs(y[i] - ref[i]) / std::max(scale[i], 1e-30));
  return worst;
}

}  // namespace

HF_TEST("Winograd F(4x4,3x3) forward matches the direct sum within 1e-5 of sum|x*w| for ragged tiles and channels, padding, bias, addend and every activation, on every engine") {
  const Conv2dShape shapes[] = {
      // n, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, sh, sw, dh, dw, pad_top, pad_left
      {2, 9, 11, 19, 9, 11, 21, 3, 3, 1, 1, 1, 1, 1, 1},     // 'same', ragged tiles, channels not a vector
      {1, 13, 13, 16, 11, 11, 32, 3, 3, 1, 1, 1, 1, 0, 0},   // 'valid'
      {3, 8, 8, 8, 8, 8, 40, 3, 3, 1, 1, 1, 1, 1, 1},        // the fewest channels it takes
      {1, 6, 7, 33, 8, 6, 17, 3, 3, 1, 1, 1, 1, 2, 0},       // explicit, uneven padding
      {5, 24, 24, 64, 24, 24, 64, 3, 3, 1, 1, 1, 1, 1, 1},   // several blocks of tiles
  };
  const Activation acts[] = {Activation::Linear, Activation::Relu, Activation::Relu6, Activation::Elu, Activation::Sigmoid,
                             Activation::LeakyRelu};
  double worst = 0;
  for (Engine e : engines()) {
    EngineScope scope(e);
    for (const auto& s : shapes) {
      CHECK(winograd_applies(s));
      auto x = random_vector(s.x_size(), 11), f = random_vector(s.filter_size(), 12), bias = random_vector(s.out_c, 13),
           addend = random_vector(s.y_size(), 14);
      for (float& v : x) v *= 40.0f;  // not only unit-sized inputs
      for (Activation act : acts)
        for (int variant = 0; variant < 3; ++variant) {
          const float* b = variant >= 1 ? bias.data() : nullptr;
          const float* a = variant == 2 ? addend.data() : nullptr;
          std::vector<double> ref, scale;
          conv3x3_reference(s, x, f, b, a, act, ref, scale);
          std::vector<float> y(s.y_size(), NAN);
          if (a) {
            if (act != Activation::Linear && act != Activation::Relu) continue;
            conv2d_forward_add_cpu(s, x.data(), f.data(), b, a, act, 0.2f, y.data());
          } else {
            conv2d_forward_cpu(s, x.data(), f.data(), b, act, 0.2f, y.data());
          }
          double err = scaled_error(y, ref, scale);
          worst = std::max(worst, err);
          CHECK_NEAR(err, 0.0, 1e-5);
        }
    }
  }
  std::printf("    Winograd worst error: %.3g of sum|x*w|\n", worst);
}

HF_TEST("Winograd: the same bits for 1, 2 and 3 threads; turned off, the forward is the direct convolution's") {
  const Conv2dShape s{4, 20, 20, 24, 20, 20, 48, 3, 3, 1, 1, 1, 1, 1, 1};
  auto x = random_vector(s.x_size(), 15), f = random_vector(s.filter_size(), 16), bias = random_vector(s.out_c, 17);
  std::vector<float> one(s.y_size());
  {
    ThreadScope scope(1);
    conv2d_forward_cpu(s, x.data(), f.data(), bias.data(), Activation::Relu, 0.0f, one.data());
  }
  for (int threads : {2, 3}) {
    ThreadScope scope(threads);
    std::vector<float> y(s.y_size());
    conv2d_forward_cpu(s, x.data(), f.data(), bias.data(), Activation::Relu, 0.0f, y.data());
    CHECK(same_bits(y, one));
  }
  set_winograd(false);
  CHECK(!winograd_applies(s));
  std::vector<float> direct(s.y_size()), builtin(s.y_size());
  conv2d_forward_cpu(s, x.data(), f.data(), bias.data(), Activation::Relu, 0.0f, direct.data());
  {
    EngineScope scope(Engine::Builtin);
    conv2d_forward_cpu(s, x.data(), f.data(), bias.data(), Activation::Relu, 0.0f, builtin.data());
  }
  set_winograd(true);
  CHECK(winograd_applies(s));
  CHECK(!same_bits(direct, one));  // a different summation: not bit-identical
  std::vector<double> ref, scale;
  conv3x3_reference(s, x, f, bias.data(), nullptr, Activation::Relu, ref, scale);
  CHECK_NEAR(scaled_error(direct, ref, scale), 0.0, 1e-6);
  CHECK_NEAR(scaled_error(builtin, ref, scale), 0.0, 1e-6);
  // Not taken: stride 2, dilation 2, 5x5, too few channels, an output under 4x4.
  const Conv2dShape others[] = {{1, 9, 9, 16, 5, 5, 16, 3, 3, 2, 2, 1, 1, 1, 1},
                                {1, 9, 9, 16, 9, 9, 16, 3, 3, 1, 1, 2, 2, 2, 2},
                                {1, 9, 9, 16, 9, 9, 16, 5, 5, 1, 1, 1, 1, 2, 2},
                                {1, 9, 9, 3, 9, 9, 16, 3, 3, 1, 1, 1, 1, 1, 1},
                                {1, 3, 9, 16, 3, 9, 16, 3, 3, 1, 1, 1, 1, 1, 1}};
  for (const auto& o : others) CHECK(!winograd_applies(o));
}

HF_TEST("Winograd: a NaN input pixel reaches only the outputs of the 4x4 tiles whose 6x6 input window holds it") {
  const Conv2dShape s{1, 16, 16, 8, 16, 16, 8, 3, 3, 1, 1, 1, 1, 1, 1};
  CHECK(winograd_applies(s));
  auto x = random_vector(s.x_size(), 18), f = random_vector(s.filter_size(), 19);
  std::vector<float> clean(s.y_size()), dirty(s.y_size());
  conv2d_forward_cpu(s, x.data(), f.data(), nullptr, Activation::Linear, 0.0f, clean.data());
  const int64_t py = 9, px = 6;  // the input pixel: tile rows/cols whose window (4t − 1 … 4t + 4) covers it
  x[(py * s.in_w + px) * s.in_c + 3] = NAN;
  conv2d_forward_cpu(s, x.data(), f.data(), nullptr, Activation::Linear, 0.0f, dirty.data());
  auto covers = [](int64_t tile, int64_t p) { return p >= 4 * tile - 1 && p <= 4 * tile + 4; };
  for (int64_t i = 0; i < s.out_h; ++i)
    for (int64_t j = 0; j < s.out_w; ++j) {
      const bool reached = covers(i / 4, py) && covers(j / 4, px);
      for (int64_t o = 0; o < s.out_c; ++o) {
        const int64_t at = (i * s.out_w + j) * s.out_c + o;
        if (reached) {
          // Within the pixel's 3x3 neighbourhood the direct sum is NaN too; elsewhere in the tile, the transforms' 0·NaN.
          if (std::abs(i - py) <= 1 && std::abs(j - px) <= 1) CHECK(std::isnan(dirty[at]));
        } else {
          CHECK(dirty[at] == clean[at]);
        }
      }
    }
}

HF_TEST("Winograd input gradient (dy against the turned filter) matches conv2d.h's formula within 1e-5 of sum|dy*w| for 'same', 'valid' and uneven padding") {
  const Conv2dShape shapes[] = {
      {2, 9, 11, 19, 9, 11, 21, 3, 3, 1, 1, 1, 1, 1, 1},
      {1, 13, 13, 16, 11, 11, 32, 3, 3, 1, 1, 1, 1, 0, 0},
      {1, 6, 7, 33, 8, 6, 17, 3, 3, 1, 1, 1, 1, 2, 0},
      {3, 24, 20, 40, 24, 20, 8, 3, 3, 1, 1, 1, 1, 1, 1},
  };
  double worst = 0;
  for (Engine e : engines()) {
    EngineScope scope(e);
    for (const auto& s : shapes) {
      CHECK(winograd_applies_backprop_input(s));
      auto dy = random_vector(s.y_size(), 20), f = random_vector(s.filter_size(), 21);
      std::vector<double> ref(s.x_size(), 0.0), scale(s.x_size(), 0.0);
      for_each_term(s, [&](int64_t xi, int64_t fi, int64_t yi) {
        double p = double(dy[yi]) * f[fi];
        ref[xi] += p;
        scale[xi] += std::fabs(p);
      });
      std::vector<float> dx(s.x_size(), NAN);
      conv2d_backprop_input_cpu(s, dy.data(), f.data(), dx.data());
      double err = scaled_error(dx, ref, scale);
      worst = std::max(worst, err);
      CHECK_NEAR(err, 0.0, 1e-5);
    }
  }
  std::printf("    Winograd input gradient worst error: %.3g of sum|dy*w|\n", worst);
  // Padding over 2 (the turned convolution would need a negative one): the direct kernels.
  CHECK(!winograd_applies_backprop_input(Conv2dShape{1, 8, 8, 16, 12, 12, 16, 3, 3, 1, 1, 1, 1, 3, 3}));
}

HF_TEST("Winograd filter gradient matches conv2d.h's formula within 1e-5 of sum|x*dy| per weight, for 1, 2 and 3 threads, on every engine") {
  const Conv2dShape shapes[] = {
      {2, 9, 11, 19, 9, 11, 21, 3, 3, 1, 1, 1, 1, 1, 1},
      {1, 13, 13, 16, 11, 11, 32, 3, 3, 1, 1, 1, 1, 0, 0},
      {1, 6, 7, 33, 8, 6, 17, 3, 3, 1, 1, 1, 1, 2, 0},
      {6, 24, 20, 8, 24, 20, 40, 3, 3, 1, 1, 1, 1, 1, 1},
      {8, 4, 4, 128, 4, 4, 128, 3, 3, 1, 1, 1, 1, 1, 1},  // one tile per image (the baseline's last block at 16²)
  };
  double worst = 0;
  for (Engine e : engines()) {
    EngineScope scope(e);
    for (const auto& s : shapes) {
      CHECK(winograd_applies(s));
      auto x = random_vector(s.x_size(), 22), dy = random_vector(s.y_size(), 23);
      std::vector<double> ref(s.filter_size(), 0.0), scale(s.filter_size(), 0.0);
      for_each_term(s, [&](int64_t xi, int64_t fi, int64_t yi) {
        double p = double(x[xi]) * dy[yi];
        ref[fi] += p;
        scale[fi] += std::fabs(p);
      });
      for (int threads : {1, 2, 3}) {
        ThreadScope threads_scope(threads);
        std::vector<float> df(s.filter_size(), NAN), again(s.filter_size(), NAN);
        conv2d_backprop_filter_cpu(s, x.data(), dy.data(), df.data());
        conv2d_backprop_filter_cpu(s, x.data(), dy.data(), again.data());
        CHECK(same_bits(df, again));
        double err = scaled_error(df, ref, scale);
        worst = std::max(worst, err);
        CHECK_NEAR(err, 0.0, 1e-5);
      }
    }
  }
  std::printf("    Winograd filter gradient worst error: %.3g of sum|x*dy|\n", worst);
}
