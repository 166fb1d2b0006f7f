// The per-pixel arithmetic of augment_cuda.cu (augment.h's steps) and its
// host-built blur taps (the HED tables are augment_tables.h's, shared). HF_HOST_DEVICE, so the same
// code also compiles on the host. Each function mirrors augment_cpu.cc
// operation for operation (its make_geometry, make_taps, fast_log, hed_row,
// gray_sum_row, colour_row/hue_row, blur weights, noise clip): float pixels,
// the same clamps, the same tables.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "augment/augment.h"
#include "augment/augment_tables.h"
#include "augment/elastic_field.h"
#include "core/fast_exp.h"
#include "core/host_device.h"

#include "core/fast_log.h"

namespace hf {
namespace augment_dev {

HF_HOST_DEVICE inline float clamp01(float v) { return v < 0.f ? 0.f : (v > 1.f ? 1.f : v); }

// ---- 1. geometry ------------------------------------------------------------------

// The pre-transform grid (the resized crop before D4) is out_h x out_w, or
// out_w x out_h after an odd number of quarter turns.
HF_HOST_DEVICE inline int grid_h(int d4, int out_h, int out_w) { return (d4 & 1) ? out_w : out_h; }
HF_HOST_DEVICE inline int grid_w(int d4, int out_h, int out_w) { return (d4 & 1) ? out_h : out_w; }

// Output (y, x) → (u, v) in the pre-transform grid hp x wp: the output is
// fliplr^(d4&4)(rot90(R, d4&3)) in numpy's sense (augment_cpu's make_geometry).
HF_HOST_DEVICE inline void undo_d4(int d4, int out_h, int out_w, int y, int x, int* u, int* v) {
  const int hp = grid_h(d4, out_h, out_w), wp = grid_w(d4, out_h, out_w);
  const int j = (d4 & 4) ? out_w - 1 - x : x;  // column in rot90(R, k)
  switch (d4 & 3) {
    case 0: *u = y, *v = j; break;                     // R[i][j]
    case 1: *u = j, *v = wp - 1 - y; break;            // R[j][Wp − 1 − i]
    case 2: *u = hp - 1 - y, *v = wp - 1 - j; break;   // R[Hp − 1 − i][Wp − 1 − j]
    default: *u = hp - 1 - j, *v = y; break;           // R[Hp − 1 − j][i]
  }
}

// One axis of the bilinear resize (align_corners = false, clamped to the
// window), in double as augment_cpu's make_taps.
struct Tap {
  int i0, i1;
  float w;
};
HF_HOST_DEVICE inline Tap make_tap(int o, int in, int out) {
  double s = (o + 0.5) * in / out - 0.5;
  const double hi = static_cast<double>(in - 1);
  s = s < 0.0 ? 0.0 : (s > hi ? hi : s);
  const int i0 = static_cast<int>(s);
  return Tap{i0, i0 + 1 < in - 1 ? i0 + 1 : in - 1, static_cast<float>(s - i0)};
}

using hf::fast_log;  // core/fast_log.h, shared with augment_cpu

constexpr double kLogAdjust = kAugmentLogAdjust;

// Host-built constants of steps 1–2 (augment_tables.h, shared with augment_cpu).
using Tables = AugmentTables;

// ln(max(v, 1e-6)) / ln(1e-6) per channel (augment_cpu's od_row).
HF_HOST_DEVICE inline void to_od(float rgb[3]) {
  const float inv_adjust = static_cast<float>(1.0 / kLogAdjust);
  for (int c = 0; c < 3; ++c) rgb[c] = fast_log(rgb[c] > 1e-6f ? rgb[c] : 1e-6f) * inv_adjust;
}

// Output pixel (y, x) of step 1: the geometry, in [0, 1], or its optical
// density ln(max(v, 1e-6)) / ln(1e-6) when `hed`. An exact geometry (crop =
// pre-transform grid) reads the tables, as augment_cpu; a resize samples
// bilinearly.
HF_HOST_DEVICE inline void geometry_pixel(const uint8_t* src, int64_t width, const AugmentBatchParams& b,
                                          const AugmentImageParams& p, const Tables& t, bool hed, int y, int x,
                                          float rgb[3]) {
  const int hp = grid_h(p.d4, b.out_h, b.out_w), wp = grid_w(p.d4, b.out_h, b.out_w);
  const bool exact = b.crop_h == hp && b.crop_w == wp;
  const uint8_t* origin = src + (int64_t{p.crop_y} * width + p.crop_x) * 3;
  int u, v;
  undo_d4(p.d4, b.out_h, b.out_w, y, x, &u, &v);
  if (exact) {
    const uint8_t* px = origin + (int64_t{u} * width + v) * 3;
    const float* tab = hed ? t.od : t.unit;
    for (int c = 0; c < 3; ++c) rgb[c] = tab[px[c]];
  } else {
    const Tap a = make_tap(u, b.crop_h, hp), cc = make_tap(v, b.crop_w, wp);
    const uint8_t* r0 = origin + int64_t{a.i0} * width * 3;
    const uint8_t* r1 = origin + int64_t{a.i1} * width * 3;
    const int c0 = cc.i0 * 3, c1 = cc.i1 * 3;
    for (int ch = 0; ch < 3; ++ch) {
      const float p00 = r0[c0 + ch], p01 = r0[c1 + ch], p10 = r1[c0 + ch], p11 = r1[c1 + ch];
      const float top = p00 + cc.w * (p01 - p00), bot = p10 + cc.w * (p11 - p10);
      rgb[ch] = (top + a.w * (bot - top)) / 255.f;
    }
    if (hed) to_od(rgb);
  }
}

// Step 2 on one pixel: rgb holds ln(max(rgb, 1e-6)) / ln(1e-6); separate,
// jitter, combine.
HF_HOST_DEVICE inline void hed_pixel(const AugmentImageParams& p, const Tables& t, float rgb[3]) {
  const float* m = t.hed_from_rgb;
  const float* e = t.log_rgb_from_hed;
  const float l0 = rgb[0], l1 = rgb[1], l2 = rgb[2];
  const float s0 = fmaxf(l0 * m[0] + l1 * m[3] + l2 * m[6], 0.f) * p.hed_alpha[0] + p.hed_beta[0];
  const float s1 = fmaxf(l0 * m[1] + l1 * m[4] + l2 * m[7], 0.f) * p.hed_alpha[1] + p.hed_beta[1];
  const float s2 = fmaxf(l0 * m[2] + l1 * m[5] + l2 * m[8], 0.f) * p.hed_alpha[2] + p.hed_beta[2];
  for (int c = 0; c < 3; ++c) rgb[c] = clamp01(fast_exp(s0 * e[c] + s1 * e[3 + c] + s2 * e[6 + c]));
}

// Output pixel (y, x) of steps 1–2 without elastic deformation.
HF_HOST_DEVICE inline void sample_pixel(const uint8_t* src, int64_t width, const AugmentBatchParams& b,
                                        const AugmentImageParams& p, const Tables& t, int y, int x, float rgb[3]) {
  const bool hed = p.hed_enabled != 0;
  geometry_pixel(src, width, b, p, t, hed, y, x, rgb);
  if (hed) hed_pixel(p, t, rgb);
}

// Output pixel (y, x) of steps 1, 1b and 2 (elastic_alpha > 0): the
// displacement from the image's control grid (cy then cx, gh x gw each:
// elastic_field.h), in augment_cpu's elastic_planes order, then four step-1
// samples blended bilinearly, then HED jitter.
HF_HOST_DEVICE inline void elastic_pixel(const uint8_t* src, int64_t width, const AugmentBatchParams& b,
                                         const AugmentImageParams& p, const Tables& t, const float* controls, int y,
                                         int x, float rgb[3]) {
  const int h = b.out_h, w = b.out_w;
  const float sigma = p.elastic_sigma;
  const int gh = elastic::grid_size(h, sigma), gw = elastic::grid_size(w, sigma);
  int jy, jx;
  float wy[4], wx[4];
  elastic::axis(y, sigma, &jy, wy);
  elastic::axis(x, sigma, &jx, wx);
  float d[2];
  for (int k = 0; k < 2; ++k) {
    const float* c0 = controls + static_cast<int64_t>(k) * gh * gw + static_cast<int64_t>(jy) * gw + jx;
    float acc = 0.f;
    for (int j = 0; j < 4; ++j) {
      float r = wy[0] * c0[j];
      r += wy[1] * c0[gw + j];
      r += wy[2] * c0[2 * gw + j];
      r += wy[3] * c0[3 * gw + j];
      acc = j == 0 ? wx[0] * r : acc + wx[j] * r;
    }
    d[k] = acc;
  }
  int y0, y1, x0, x1;
  float fy, fx;
  elastic::taps(y, d[0], h, &y0, &y1, &fy);
  elastic::taps(x, d[1], w, &x0, &x1, &fx);
  float g00[3], g01[3], g10[3], g11[3];
  geometry_pixel(src, width, b, p, t, false, y0, x0, g00);
  geometry_pixel(src, width, b, p, t, false, y0, x1, g01);
  geometry_pixel(src, width, b, p, t, false, y1, x0, g10);
  geometry_pixel(src, width, b, p, t, false, y1, x1, g11);
  for (int c = 0; c < 3; ++c) {
    const float top = g00[c] + fx * (g01[c] - g00[c]);
    const float bot = g10[c] + fx * (g11[c] - g10[c]);
    rgb[c] = top + fy * (bot - top);
  }
  if (p.hed_enabled != 0) {
    to_od(rgb);
    hed_pixel(p, t, rgb);
  }
}

// The control grids of an image (cy then cx), as augment_cpu draws them.
inline void elastic_controls(const AugmentImageParams& p, int out_h, int out_w, std::vector<float>& into) {
  const int gh = elastic::grid_size(out_h, p.elastic_sigma), gw = elastic::grid_size(out_w, p.elastic_sigma);
  const size_t grid = static_cast<size_t>(gh) * gw, at = into.size();
  into.resize(at + 2 * grid);
  for (size_t k = 0; k < grid; ++k) {
    into[at + k] = elastic::control(p.elastic_seed, p.elastic_alpha, 2 * k);
    into[at + grid + k] = elastic::control(p.elastic_seed, p.elastic_alpha, 2 * k + 1);
  }
}

// ---- 3. colour ----------------------------------------------------------------------

HF_HOST_DEVICE inline float gray_of(float r, float g, float b) { return 0.299f * r + 0.587f * g + 0.114f * b; }

HF_HOST_DEVICE inline bool colour_identity(const AugmentImageParams& p) {
  return p.brightness == 1.f && p.contrast == 1.f && p.saturation == 1.f && p.hue == 0.f;
}

// One channel of the HSV hue rotation (augment_cpu's hue_row): V − C·clamp(
// min(k, 4 − k), 0, 1) with k = (n + h) mod 6.
HF_HOST_DEVICE inline float hue_channel(float n, float h, float M, float C) {
  float k = n + h;
  k -= 6.f * floorf(k * (1.f / 6.f));
  const float f = fminf(fmaxf(fminf(k, 4.f - k), 0.f), 1.f);
  return clamp01(M - C * f);
}

// Hue rotation by `turns` in HSV (colorsys), as augment_cpu's hue_row.
HF_HOST_DEVICE inline void rotate_hue(float rgb[3], float turns) {
  const float shift = 6.f * (turns - floorf(turns));
  const float R = rgb[0], G = rgb[1], B = rgb[2];
  const float M = fmaxf(fmaxf(R, G), B), m = fminf(fminf(R, G), B), C = M - m;
  const float inv = 1.f / (C > 0.f ? C : 1.f);
  const float hr = (G - B) * inv, hg = 2.f + (B - R) * inv, hb = 4.f + (R - G) * inv;
  const float h = (R == M ? hr : (G == M ? hg : hb)) + shift;
  rgb[0] = hue_channel(5.f, h, M, C);
  rgb[1] = hue_channel(3.f, h, M, C);
  rgb[2] = hue_channel(1.f, h, M, C);
}

HF_HOST_DEVICE inline void colour_pixel(float rgb[3], const AugmentImageParams& p, float mean_gray) {
  if (p.brightness != 1.f)
    for (int c = 0; c < 3; ++c) rgb[c] = clamp01(rgb[c] * p.brightness);
  if (p.contrast != 1.f)
    for (int c = 0; c < 3; ++c) rgb[c] = clamp01((rgb[c] - mean_gray) * p.contrast + mean_gray);
  if (p.saturation != 1.f) {
    const float gray = gray_of(rgb[0], rgb[1], rgb[2]);
    for (int c = 0; c < 3; ++c) rgb[c] = clamp01(gray + (rgb[c] - gray) * p.saturation);
  }
  if (p.hue != 0.f) rotate_hue(rgb, p.hue);
}

// ---- 4. blur taps (host) ---------------------------------------------------------------

// Radius ceil(3σ) and 2·radius + 1 normalized gaussian weights (double, then
// float), as augment_cpu; {1} (radius 0, a copy) when σ ≤ 0.
inline std::vector<float> blur_weights(float sigma) {
  if (!(sigma > 0.f)) return {1.f};
  const int radius = static_cast<int>(std::ceil(3.0 * static_cast<double>(sigma)));
  std::vector<double> wd(2 * radius + 1);
  const double sig = sigma;
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) sum += wd[i + radius] = std::exp(-0.5 * i * i / (sig * sig));
  std::vector<float> wt(wd.size());
  for (size_t i = 0; i < wd.size(); ++i) wt[i] = static_cast<float>(wd[i] / sum);
  return wt;
}

// ---- 5. noise, 6. normalize ---------------------------------------------------------------

// stain/stain_math.h's splitmix64, for the device.
HF_HOST_DEVICE inline uint64_t splitmix64(uint64_t seed, uint64_t k) {
  uint64_t z = seed + (k + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// augment.h's noise_value: Box–Muller on two counter-based uniforms, in double.
HF_HOST_DEVICE inline double noise_value(uint64_t seed, uint64_t index) {
  const double u1 = static_cast<double>(splitmix64(seed, 2 * index) >> 11) * 0x1p-53;
  const double u2 = static_cast<double>(splitmix64(seed, 2 * index + 1) >> 11) * 0x1p-53;
  return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

// v + σ·noise in double, clipped to [0, 1], then float (as augment_cpu).
HF_HOST_DEVICE inline float add_noise(float v, float sigma, uint64_t seed, uint64_t index) {
  const double w = static_cast<double>(v) + static_cast<double>(sigma) * noise_value(seed, index);
  return static_cast<float>(w < 0.0 ? 0.0 : (w > 1.0 ? 1.0 : w));
}

HF_HOST_DEVICE inline float normalize(float v, float mean, float std) { return (v - mean) / std; }

}  // namespace augment_dev
}  // namespace hf
