// augment (augment/augment.h) against a plain double-precision reference that
// follows the header's order of operations step by step: numpy's rot90/fliplr
// on a resized crop, skimage's rgb2hed/hed2rgb, colorsys' HSV, a direct
// gaussian, Box–Muller on splitmix64; and CUDA vs CPU.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "augment/augment.h"
#include "core/error.h"
#include "core/random.h"
#include "core/runtime.h"
#include "harness.h"
#include "augment_params.h"
#include "test_support.h"

using namespace hf;
using namespace hf_test;

namespace {

using Image = std::vector<double>;  // h x w x 3, row-major

// ---- the reference ----------------------------------------------------------

// The generator itself is core/random.h's splitmix64, checked against its
// published outputs in test_random.cc.
double ref_noise(uint64_t seed, uint64_t i) {
  const double u1 = std::ldexp(static_cast<double>(splitmix64(seed, 2 * i) >> 11), -53);
  const double u2 = std::ldexp(static_cast<double>(splitmix64(seed, 2 * i + 1) >> 11), -53);
  return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(6.283185307179586 * u2);
}

// np.rot90(m, 1): out[i][j] = m[j][w − 1 − i], shape (w, h).
Image rot90(const Image& m, int& h, int& w) {
  Image out(m.size());
  for (int i = 0; i < w; ++i)
    for (int j = 0; j < h; ++j)
      for (int c = 0; c < 3; ++c) out[(i * h + j) * 3 + c] = m[(j * w + (w - 1 - i)) * 3 + c];
  std::swap(h, w);
  return out;
}

Image fliplr(const Image& m, int h, int w) {
  Image out(m.size());
  for (int i = 0; i < h; ++i)
    for (int j = 0; j < w; ++j)
      for (int c = 0; c < 3; ++c) out[(i * w + j) * 3 + c] = m[(i * w + (w - 1 - j)) * 3 + c];
  return out;
}

// Crop, bilinear resize to rh x rw (align_corners = false), values / 255.
Image resize_crop(const uint8_t* img, int W, int cy, int cx, int ch, int cw, int rh, int rw) {
  Image out(static_cast<size_t>(rh * rw * 3));
  for (int y = 0; y < rh; ++y)
    for (int x = 0; x < rw; ++x) {
      const double sy = std::min(std::max((y + 0.5) * ch / rh - 0.5, 0.0), ch - 1.0);
      const double sx = std::min(std::max((x + 0.5) * cw / rw - 0.5, 0.0), cw - 1.0);
      const int y0 = static_cast<int>(std::floor(sy)), x0 = static_cast<int>(std::floor(sx));
      const int y1 = std::min(y0 + 1, ch - 1), x1 = std::min(x0 + 1, cw - 1);
      const double wy = sy - y0, wx = sx - x0;
      auto at = [&](int yy, int xx, int c) { return double(img[((cy + yy) * W + cx + xx) * 3 + c]); };
      for (int c = 0; c < 3; ++c)
        out[(y * rw + x) * 3 + c] = ((1 - wy) * ((1 - wx) * at(y0, x0, c) + wx * at(y0, x1, c)) +
                                     wy * ((1 - wx) * at(y1, x0, c) + wx * at(y1, x1, c))) /
                                    255.0;
    }
  return out;
}

void ref_hed(double* px, const AugmentImageParams& p) {
  double inv[9];
  invert3(kRgbFromHed, inv);
  double l[3], s[3];
  for (int c = 0; c < 3; ++c) l[c] = std::log(std::max(px[c], 1e-6)) / std::log(1e-6);
  for (int k = 0; k < 3; ++k)
    s[k] = std::max(l[0] * inv[k] + l[1] * inv[3 + k] + l[2] * inv[6 + k], 0.0) * p.hed_alpha[k] + p.hed_beta[k];
  for (int c = 0; c < 3; ++c) {
    double log_rgb = 0;
    for (int k = 0; k < 3; ++k) log_rgb += -(s[k] * -std::log(1e-6)) * kRgbFromHed[k * 3 + c];
    px[c] = std::min(std::max(std::exp(log_rgb), 0.0), 1.0);
  }
}

double clip01(double v) { return std::min(std::max(v, 0.0), 1.0); }

// colorsys.rgb_to_hsv / hsv_to_rgb.
void rgb_to_hsv(double r, double g, double b, double& h, double& s, double& v) {
  const double maxc = std::max({r, g, b}), minc = std::min({r, g, b});
  v = maxc;
  if (minc == maxc) {
    h = 0, s = 0;
    return;
  }
  const double range = maxc - minc;
  s = range / maxc;
  const double rc = (maxc - r) / range, gc = (maxc - g) / range, bc = (maxc - b) / range;
  if (r == maxc)
    h = bc - gc;
  else if (g == maxc)
    h = 2.0 + rc - bc;
  else
    h = 4.0 + gc - rc;
  h = h / 6.0 - std::floor(h / 6.0);
}
void hsv_to_rgb(double h, double s, double v, double* out) {
  if (s == 0.0) {
    out[0] = out[1] = out[2] = v;
    return;
  }
  int i = static_cast<int>(h * 6.0);
  const double f = h * 6.0 - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (i % 6) {
    case 0: out[0] = v, out[1] = t, out[2] = p; break;
    case 1: out[0] = q, out[1] = v, out[2] = p; break;
    case 2: out[0] = p, out[1] = v, out[2] = t; break;
    case 3: out[0] = p, out[1] = q, out[2] = v; break;
    case 4: out[0] = t, out[1] = p, out[2] = v; break;
    default: out[0] = v, out[1] = p, out[2] = q; break;
  }
}

void ref_colour(Image& im, const AugmentImageParams& p) {
  const size_t n = im.size() / 3;
  double mean_gray = 0;
  for (size_t i = 0; i < n; ++i) mean_gray += 0.299 * im[3 * i] + 0.587 * im[3 * i + 1] + 0.114 * im[3 * i + 2];
  mean_gray /= static_cast<double>(n);
  for (size_t i = 0; i < n; ++i) {
    double* px = &im[3 * i];
    if (p.brightness != 1.f)
      for (int c = 0; c < 3; ++c) px[c] = clip01(px[c] * p.brightness);
    if (p.contrast != 1.f)
      for (int c = 0; c < 3; ++c) px[c] = clip01((px[c] - mean_gray) * p.contrast + mean_gray);
    if (p.saturation != 1.f) {
      const double gray = 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2];
      for (int c = 0; c < 3; ++c) px[c] = clip01(gray + (px[c] - gray) * p.saturation);
    }
    if (p.hue != 0.f) {
      double h, s, v;
      rgb_to_hsv(px[0], px[1], px[2], h, s, v);
      h += p.hue;
      h -= std::floor(h);
      hsv_to_rgb(h, s, v, px);
      for (int c = 0; c < 3; ++c) px[c] = clip01(px[c]);
    }
  }
}

void ref_blur(Image& im, int h, int w, double sigma) {
  const int r = static_cast<int>(std::ceil(3.0 * sigma));
  std::vector<double> k(2 * r + 1);
  double sum = 0;
  for (int i = -r; i <= r; ++i) sum += k[i + r] = std::exp(-(i * i) / (2 * sigma * sigma));
  for (double& v : k) v /= sum;
  Image tmp(im.size(), 0.0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int t = -r; t <= r; ++t) {
        const int xx = std::min(std::max(x + t, 0), w - 1);
        for (int c = 0; c < 3; ++c) tmp[(y * w + x) * 3 + c] += k[t + r] * im[(y * w + xx) * 3 + c];
      }
  std::fill(im.begin(), im.end(), 0.0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int t = -r; t <= r; ++t) {
        const int yy = std::min(std::max(y + t, 0), h - 1);
        for (int c = 0; c < 3; ++c) im[(y * w + x) * 3 + c] += k[t + r] * tmp[(yy * w + x) * 3 + c];
      }
}

// augment.h step 1b in double: control grid α·(2u − 1) (rounded to float, as
// the header says), cubic B-spline weights (rounded to float), the 16-term
// sum, bilinear sampling with mirrored (BORDER_REFLECT) indices.
int ref_reflect(int i, int n) {
  const int period = 2 * n;
  const int m = ((i % period) + period) % period;
  return m < n ? m : period - 1 - m;
}

void ref_bspline(double pos, double sigma, int& first, double w[4]) {
  const double t = pos / sigma, f = t - std::floor(t);
  first = static_cast<int>(std::floor(t));
  const double v[4] = {(1 - f) * (1 - f) * (1 - f) / 6, (3 * f * f * f - 6 * f * f + 4) / 6,
                       (-3 * f * f * f + 3 * f * f + 3 * f + 1) / 6, f * f * f / 6};
  for (int k = 0; k < 4; ++k) w[k] = static_cast<float>(v[k]);
}

Image ref_elastic(const Image& im, int h, int w, const AugmentImageParams& p) {
  const double sigma = p.elastic_sigma;
  const int gh = static_cast<int>(std::floor((h - 1) / sigma)) + 4, gw = static_cast<int>(std::floor((w - 1) / sigma)) + 4;
  auto control = [&](int j, int i, int d) {
    const uint64_t k = 2 * static_cast<uint64_t>(j * gw + i) + d;
    const double u = std::ldexp(static_cast<double>(splitmix64(p.elastic_seed, k) >> 11), -53);
    return static_cast<double>(static_cast<float>(p.elastic_alpha * (2 * u - 1)));
  };
  Image out(im.size());
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      int jy, jx;
      double wy[4], wx[4];
      ref_bspline(y, sigma, jy, wy);
      ref_bspline(x, sigma, jx, wx);
      double d[2] = {0, 0};
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b)
          for (int k = 0; k < 2; ++k) d[k] += wy[a] * wx[b] * control(jy + a, jx + b, k);
      const double fy = std::floor(d[0]), fx = std::floor(d[1]);
      const double ty = d[0] - fy, tx = d[1] - fx;
      const int y0 = ref_reflect(y + static_cast<int>(fy), h), y1 = ref_reflect(y + static_cast<int>(fy) + 1, h);
      const int x0 = ref_reflect(x + static_cast<int>(fx), w), x1 = ref_reflect(x + static_cast<int>(fx) + 1, w);
      for (int c = 0; c < 3; ++c) {
        auto at = [&](int yy, int xx) { return im[(yy * w + xx) * 3 + c]; };
        out[(y * w + x) * 3 + c] = (1 - ty) * ((1 - tx) * at(y0, x0) + tx * at(y0, x1)) + ty * ((1 - tx) * at(y1, x0) + tx * at(y1, x1));
      }
    }
  return out;
}

// The whole of augment.h for one image, in double.
Image reference_augment(const uint8_t* img, int W, const AugmentImageParams& p, const AugmentBatchParams& b) {
  const int k = p.d4 & 3;
  int h = (k & 1) ? b.out_w : b.out_h, w = (k & 1) ? b.out_h : b.out_w;
  Image im = resize_crop(img, W, p.crop_y, p.crop_x, b.crop_h, b.crop_w, h, w);
  for (int i = 0; i < k; ++i) im = rot90(im, h, w);
  if (p.d4 & 4) im = fliplr(im, h, w);
  if (p.elastic_alpha > 0) im = ref_elastic(im, h, w, p);
  if (p.hed_enabled)
    for (size_t i = 0; i < im.size(); i += 3) ref_hed(&im[i], p);
  ref_colour(im, p);
  if (p.blur_sigma > 0) ref_blur(im, h, w, p.blur_sigma);
  if (p.noise_sigma > 0)
    for (size_t i = 0; i < im.size(); ++i) im[i] = clip01(im[i] + p.noise_sigma * ref_noise(p.noise_seed, i));
  for (size_t i = 0; i < im.size(); ++i) im[i] = (im[i] - b.mean[i % 3]) / b.std[i % 3];
  return im;
}

// ---- helpers -------------------------------------------------------------------

AugmentBatchParams batch_params(int crop_h, int crop_w, int out_h, int out_w) {
  AugmentBatchParams b;
  b.crop_h = crop_h, b.crop_w = crop_w, b.out_h = out_h, b.out_w = out_w;
  const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  for (int c = 0; c < 3; ++c) b.mean[c] = mean[c], b.std[c] = std[c];
  return b;
}

// (x/255 − mean)/std in double, rounded once to float: the exact result.
float exactly_normalized(int x, const AugmentBatchParams& b, int c) {
  return static_cast<float>((x / 255.0 - static_cast<double>(b.mean[c])) / static_cast<double>(b.std[c]));
}

std::vector<float> run_cpu(const std::vector<uint8_t>& rgb, int64_t n, int64_t h, int64_t w,
                           const std::vector<AugmentImageParams>& params, const AugmentBatchParams& b) {
  std::vector<float> out(static_cast<size_t>(n * b.out_h * b.out_w * 3));
  augment_cpu(batch_of(rgb, n, h, w), params.data(), b, out.data());
  return out;
}

// Largest |out − reference| over the batch.
double max_error(const std::vector<uint8_t>& rgb, int64_t n, int64_t h, int64_t w,
                 const std::vector<AugmentImageParams>& params, const AugmentBatchParams& b,
                 const std::vector<float>& out) {
  double worst = 0;
  const size_t per = static_cast<size_t>(b.out_h * b.out_w * 3);
  for (int64_t i = 0; i < n; ++i) {
    const Image ref = reference_augment(&rgb[static_cast<size_t>(i * h * w * 3)], static_cast<int>(w), params[i], b);
    for (size_t j = 0; j < per; ++j) worst = std::max(worst, std::fabs(out[i * per + j] - ref[j]));
  }
  return worst;
}


std::vector<AugmentImageParams> random_batch(uint64_t seed, int64_t n, int64_t h, int64_t w,
                                             const AugmentBatchParams& b) {
  Lcg rng(seed);
  std::vector<AugmentImageParams> params;
  for (int64_t i = 0; i < n; ++i) params.push_back(random_params(rng, h, w, b));
  return params;
}

}  // namespace

// ---- geometry -------------------------------------------------------------------

HF_TEST("augment d4 is numpy rot90 counter-clockwise then fliplr") {
  // 2x2 source [[10, 20], [30, 40]] (red channel); the 8 outputs row-major.
  const std::vector<uint8_t> rgb = {10, 0, 0, 20, 0, 0, 30, 0, 0, 40, 0, 0};
  const int expected[8][4] = {{10, 20, 30, 40}, {20, 40, 10, 30}, {40, 30, 20, 10}, {30, 10, 40, 20},
                              {20, 10, 40, 30}, {40, 20, 30, 10}, {30, 40, 10, 20}, {10, 30, 20, 40}};
  AugmentBatchParams b;
  b.crop_h = b.crop_w = b.out_h = b.out_w = 2;
  for (int d4 = 0; d4 < 8; ++d4) {
    std::vector<AugmentImageParams> params(1);
    params[0].d4 = d4;
    const auto out = run_cpu(rgb, 1, 2, 2, params, b);
    for (int i = 0; i < 4; ++i) CHECK(out[3 * i] == static_cast<float>(expected[d4][i]) / 255.f);
  }
}

HF_TEST("augment d4 and crops without resize are bit-exact permutations (all 8, odd sizes)") {
  const int64_t n = 8, h = 9, w = 7;
  const auto rgb = synthetic_he(n, h, w, 31);
  for (int d4 = 0; d4 < 8; ++d4) {
    // A 6x4 crop; quarter turns give a 4x6 output.
    const AugmentBatchParams b = (d4 & 1) ? batch_params(6, 4, 4, 6) : batch_params(6, 4, 6, 4);
    std::vector<AugmentImageParams> params(n);
    for (int64_t i = 0; i < n; ++i) params[i].d4 = d4, params[i].crop_y = i % 4, params[i].crop_x = (i * 3) % 4;
    const auto out = run_cpu(rgb, n, h, w, params, b);
    const size_t per = 6 * 4 * 3;
    for (int64_t i = 0; i < n; ++i) {
      // The reference in double is exact here: undo the normalize, read bytes.
      const Image ref = reference_augment(&rgb[i * h * w * 3], w, params[i], b);
      for (size_t j = 0; j < per; ++j) {
        const int c = j % 3;
        const double unit = ref[j] * b.std[c] + b.mean[c];
        const auto byte = static_cast<int>(std::lround(unit * 255.0));
        CHECK(out[i * per + j] == exactly_normalized(byte, b, c));
      }
    }
  }
}

HF_TEST("augment with identity parameters gives exactly x/255 normalized, rounded once (1x1, odd sizes, batch 1 and 257)") {
  for (auto [n, h, w] : {std::array<int64_t, 3>{1, 1, 1}, {1, 7, 5}, {257, 5, 3}, {3, 96, 96}}) {
    const auto rgb = synthetic_he(n, h, w, 32);
    const AugmentBatchParams b = batch_params(h, w, h, w);
    const std::vector<AugmentImageParams> params(n);
    const auto out = run_cpu(rgb, n, h, w, params, b);
    for (size_t j = 0; j < out.size(); ++j) {
      const int c = j % 3;
      CHECK(out[j] == exactly_normalized(rgb[j], b, c));
    }
  }
}

HF_TEST("augment bilinear resize matches align_corners=false sampling within 1e-4 (7x5, crop 5x3, out 4x6)") {
  const int64_t n = 8, h = 7, w = 5;
  const auto rgb = synthetic_he(n, h, w, 33);
  for (auto sizes : {std::array<int, 4>{5, 3, 4, 6}, {7, 5, 13, 2}, {2, 2, 1, 1}, {1, 1, 3, 4}}) {
    const AugmentBatchParams b = batch_params(sizes[0], sizes[1], sizes[2], sizes[3]);
    std::vector<AugmentImageParams> params(n);
    for (int64_t i = 0; i < n; ++i)
      params[i].d4 = static_cast<int>(i), params[i].crop_y = (i * 5) % (h - b.crop_h + 1),
      params[i].crop_x = i % (w - b.crop_w + 1);
    const auto out = run_cpu(rgb, n, h, w, params, b);
    CHECK_NEAR(max_error(rgb, n, h, w, params, b, out), 0, 1e-4);
  }
}

// ---- colour -----------------------------------------------------------------------

HF_TEST("augment HED jitter matches skimage rgb2hed / hed2rgb within 1e-4, with and without resize") {
  const int64_t n = 16, h = 13, w = 11;
  auto rgb = synthetic_he(n, h, w, 34);
  rgb[0] = rgb[1] = rgb[2] = 0;  // black: the 1e-6 floor
  rgb[3] = rgb[4] = rgb[5] = 255;
  for (auto sizes : {std::array<int, 4>{13, 11, 13, 11}, {10, 9, 7, 12}}) {
    const AugmentBatchParams b = batch_params(sizes[0], sizes[1], sizes[2], sizes[3]);
    Lcg rng(35);
    std::vector<AugmentImageParams> params(n);
    for (int64_t i = 0; i < n; ++i) {
      params[i].d4 = static_cast<int>(i % 8);
      params[i].hed_enabled = 1;
      params[i].crop_y = i % (h - b.crop_h + 1);
      for (int k = 0; k < 3; ++k) {
        params[i].hed_alpha[k] = static_cast<float>(1 + 0.3 * (rng.uniform() - 0.5));
        params[i].hed_beta[k] = static_cast<float>(0.3 * (rng.uniform() - 0.5));
      }
    }
    if (sizes[0] == sizes[2]) params[0].d4 = params[1].d4 = 0;  // (odd d4 would be a resize: square only)
    const auto out = run_cpu(rgb, n, h, w, params, b);
    CHECK_NEAR(max_error(rgb, n, h, w, params, b, out), 0, 1e-4);
  }
}

HF_TEST("augment brightness, contrast, saturation and hue each match their formulas within 1e-4") {
  const int64_t h = 15, w = 9;
  const auto rgb = synthetic_he(1, h, w, 36);
  const AugmentBatchParams b = batch_params(h, w, h, w);
  for (int step = 0; step < 4; ++step)
    for (float v : {0.f, 0.3f, 0.8f, 1.25f, 2.f}) {
      std::vector<AugmentImageParams> params(1);
      if (step == 0) params[0].brightness = v;
      if (step == 1) params[0].contrast = v;
      if (step == 2) params[0].saturation = v;
      if (step == 3) params[0].hue = v - 0.9f;  // −0.9 .. 1.1 turns
      const auto out = run_cpu(rgb, 1, h, w, params, b);
      CHECK_NEAR(max_error(rgb, 1, h, w, params, b, out), 0, 1e-4);
    }
}

HF_TEST("augment hue rotation equals colorsys HSV rotation on saturated colours and grays") {
  // Every hue sector, ties between channels, black, white and gray.
  std::vector<uint8_t> rgb;
  for (int r : {0, 40, 128, 200, 255})
    for (int g : {0, 40, 128, 200, 255})
      for (int bl : {0, 40, 128, 200, 255}) rgb.insert(rgb.end(), {uint8_t(r), uint8_t(g), uint8_t(bl)});
  const int64_t w = static_cast<int64_t>(rgb.size() / 3);
  const AugmentBatchParams b = batch_params(1, w, 1, w);
  for (float hue : {-0.75f, -1.f / 6, 0.05f, 0.25f, 0.5f, 1.f / 3, 0.999f, 3.2f}) {
    std::vector<AugmentImageParams> params(1);
    params[0].hue = hue;
    const auto out = run_cpu(rgb, 1, 1, w, params, b);
    CHECK_NEAR(max_error(rgb, 1, 1, w, params, b, out), 0, 1e-4);
  }
}

HF_TEST("augment contrast uses the mean gray of the image after geometry and HED, before brightness") {
  const int64_t h = 8, w = 8;
  const auto rgb = synthetic_he(1, h, w, 37);
  const AugmentBatchParams b = batch_params(h, w, h, w);
  std::vector<AugmentImageParams> params(1);
  params[0].brightness = 0.6f, params[0].contrast = 1.7f;
  const auto out = run_cpu(rgb, 1, h, w, params, b);
  CHECK_NEAR(max_error(rgb, 1, h, w, params, b, out), 0, 1e-4);
}

HF_TEST("augment gaussian blur matches a direct separable kernel with replicated edges within 1e-4") {
  const int64_t n = 4, h = 11, w = 7;
  const auto rgb = synthetic_he(n, h, w, 38);
  const AugmentBatchParams b = batch_params(h, w, h, w);
  for (float sigma : {0.1f, 0.5f, 1.3f, 2.f, 5.f, 25.f}) {
    std::vector<AugmentImageParams> params(n);
    for (int64_t i = 0; i < n; ++i) params[i].blur_sigma = sigma, params[i].d4 = static_cast<int>(2 * i);
    const auto out = run_cpu(rgb, n, h, w, params, b);
    CHECK_NEAR(max_error(rgb, n, h, w, params, b, out), 0, 1e-4);
  }
}

HF_TEST("augment gaussian noise matches noise_value at (y*out_w + x)*3 + c within 1e-4") {
  const int64_t n = 3, h = 9, w = 6;
  const auto rgb = synthetic_he(n, h, w, 39);
  const AugmentBatchParams b = batch_params(6, 5, 4, 7);
  std::vector<AugmentImageParams> params(n);
  for (int64_t i = 0; i < n; ++i)
    params[i].noise_sigma = 0.05f * (i + 1), params[i].noise_seed = 1234567 + i, params[i].d4 = static_cast<int>(i);
  const auto out = run_cpu(rgb, n, h, w, params, b);
  CHECK_NEAR(max_error(rgb, n, h, w, params, b, out), 0, 1e-4);
}

HF_TEST("augment full pipeline with random parameters matches the reference (odd sizes, 1x1, batch 257)") {
  struct Case {
    int64_t n, h, w;
    int crop_h, crop_w, out_h, out_w;
  };
  for (const Case& c : {Case{257, 7, 5, 5, 3, 4, 6}, Case{1, 1, 1, 1, 1, 1, 1}, Case{1, 1, 1, 1, 1, 3, 2},
                        Case{64, 20, 20, 16, 16, 16, 16}, Case{32, 21, 19, 17, 13, 9, 11}}) {
    const auto rgb = synthetic_he(c.n, c.h, c.w, 40);
    const AugmentBatchParams b = batch_params(c.crop_h, c.crop_w, c.out_h, c.out_w);
    const auto params = random_batch(41, c.n, c.h, c.w, b);
    const auto out = run_cpu(rgb, c.n, c.h, c.w, params, b);
    CHECK_NEAR(max_error(rgb, c.n, c.h, c.w, params, b, out), 0, 1e-4);
  }
}

// ---- determinism --------------------------------------------------------------------

HF_TEST("augment is identical for 1 and 2 threads and for a batch split in two halves") {
  const int64_t n = 57, h = 23, w = 21;
  const auto rgb = synthetic_he(n, h, w, 42);
  for (const AugmentBatchParams& b : {batch_params(20, 18, 20, 18), batch_params(20, 18, 12, 15)}) {
    const auto params = random_batch(43, n, h, w, b);
    const int threads = cpu_threads();
    set_cpu_threads(1);
    const auto one = run_cpu(rgb, n, h, w, params, b);
    set_cpu_threads(2);
    const auto two = run_cpu(rgb, n, h, w, params, b);
    set_cpu_threads(threads);
    CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);

    const int64_t half = n / 2;
    const size_t per = static_cast<size_t>(b.out_h * b.out_w * 3), bytes = static_cast<size_t>(h * w * 3);
    const std::vector<uint8_t> rgb_a(rgb.begin(), rgb.begin() + half * bytes), rgb_b(rgb.begin() + half * bytes, rgb.end());
    const std::vector<AugmentImageParams> pa(params.begin(), params.begin() + half), pb(params.begin() + half, params.end());
    const auto a = run_cpu(rgb_a, half, h, w, pa, b), bb = run_cpu(rgb_b, n - half, h, w, pb, b);
    CHECK(std::memcmp(a.data(), two.data(), a.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(bb.data(), two.data() + half * per, bb.size() * sizeof(float)) == 0);
  }
}

HF_TEST("augment elastic deformation matches the control-grid B-spline field with mirrored edges within 1e-4") {
  for (const AugmentBatchParams& b : {batch_params(19, 23, 19, 23), batch_params(9, 9, 14, 6), batch_params(1, 1, 1, 1)}) {
    const int64_t n = 6, h = 25, w = 25;
    const auto rgb = synthetic_he(n, h, w, 47);
    std::vector<AugmentImageParams> params(n);
    for (int64_t i = 0; i < n; ++i) {
      params[i].d4 = b.out_h == b.out_w ? static_cast<int>(i) : 0;
      params[i].elastic_alpha = static_cast<float>(1 + 3 * i);  // up to 16: past the 1x1 image, mirrored many times
      params[i].elastic_sigma = static_cast<float>(1 + 1.7 * i);
      params[i].elastic_seed = 1000 + static_cast<uint64_t>(i);
      params[i].hed_enabled = i % 2;
    }
    const auto out = run_cpu(rgb, n, h, w, params, b);
    CHECK_NEAR(max_error(rgb, n, h, w, params, b, out), 0, 1e-4);
  }
}

HF_TEST("augment rejects elastic parameters the kernel cannot size (sigma < 1, NaN or negative alpha)") {
  const auto rgb = synthetic_he(1, 5, 5, 48);
  for (auto [alpha, sigma] : {std::pair<float, float>{2.f, 0.5f}, {NAN, 4.f}, {-1.f, 4.f}, {INFINITY, 4.f}}) {
    std::vector<AugmentImageParams> params(1);
    params[0].elastic_alpha = alpha;
    params[0].elastic_sigma = sigma;
    bool threw = false;
    try {
      run_cpu(rgb, 1, 5, 5, params, batch_params(5, 5, 5, 5));
    } catch (const ArgumentError&) {
      threw = true;
    }
    CHECK(threw);
  }
}

HF_TEST("augment rejects a crop window outside the source") {
  const auto rgb = synthetic_he(1, 5, 5, 44);
  std::vector<AugmentImageParams> params(1);
  params[0].crop_x = 2;
  bool threw = false;
  try {
    run_cpu(rgb, 1, 5, 5, params, batch_params(4, 4, 4, 4));
  } catch (const ArgumentError&) {
    threw = true;
  }
  CHECK(threw);
}

// ---- noise_value -----------------------------------------------------------------------

HF_TEST("noise_value is a standard normal over 1e5 draws (mean and std within 0.02)") {
  double sum = 0, sq = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double v = noise_value(99, static_cast<uint64_t>(i));
    sum += v, sq += v * v;
  }
  const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  CHECK_NEAR(mean, 0, 0.02);
  CHECK_NEAR(sd, 1, 0.02);
}

HF_TEST("noise_value is a pure function of (seed, index): Box-Muller on splitmix64") {
  for (uint64_t seed : {0ull, 1ull, 0xDEADBEEFull, ~0ull})
    for (uint64_t i : {0ull, 1ull, 2ull, 12345ull, (1ull << 40) + 7}) {
      const double v = noise_value(seed, i);
      CHECK(v == noise_value(seed, i));
      CHECK_NEAR(v, ref_noise(seed, i), 1e-12);
    }
  CHECK(noise_value(1, 0) != noise_value(2, 0));
  CHECK(noise_value(1, 0) != noise_value(1, 1));
}

// ---- CUDA ------------------------------------------------------------------------------

HF_TEST("augment on CUDA equals the CPU reference (identity bit-exact, random pipeline within 1e-4)") {
  SKIP_WITHOUT_CUDA();
  struct Case {
    int64_t n, h, w;
    int crop_h, crop_w, out_h, out_w;
  };
  for (const Case& c : {Case{257, 7, 5, 5, 3, 4, 6}, Case{1, 1, 1, 1, 1, 1, 1}, Case{40, 96, 96, 96, 96, 96, 96},
                        Case{16, 110, 100, 96, 96, 64, 64}}) {
    const auto rgb = synthetic_he(c.n, c.h, c.w, 45);
    const AugmentBatchParams b = batch_params(c.crop_h, c.crop_w, c.out_h, c.out_w);
    const auto params = random_batch(46, c.n, c.h, c.w, b);
    const auto cpu = run_cpu(rgb, c.n, c.h, c.w, params, b);
    std::vector<float> gpu(cpu.size());
    augment_cuda(batch_of(rgb, c.n, c.h, c.w), params.data(), b, gpu.data());
    double worst = 0;
    for (size_t i = 0; i < cpu.size(); ++i) worst = std::max(worst, std::fabs(double(cpu[i]) - gpu[i]));
    CHECK_NEAR(worst, 0, 1e-4);

    if (c.crop_h == c.out_h && c.crop_w == c.out_w) {
      std::vector<AugmentImageParams> ident(c.n);
      for (int64_t i = 0; i < c.n; ++i) ident[i].d4 = static_cast<int>(i % 8) & (c.out_h == c.out_w ? 7 : 6);
      const auto a = run_cpu(rgb, c.n, c.h, c.w, ident, b);
      augment_cuda(batch_of(rgb, c.n, c.h, c.w), ident.data(), b, gpu.data());
      CHECK(std::memcmp(a.data(), gpu.data(), a.size() * sizeof(float)) == 0);
    }
  }
}
