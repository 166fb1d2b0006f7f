// The per-pixel formulas of augment.h's steps, one definition for
// augment_cpu.cc (which applies them along rows of planes) and augment_cuda.cu
// (one thread per pixel, through augment_device.cuh). Float pixels; the
// clamps' min / max are core/host_device.h's.
//
// Values augment_cpu's row loops read straight from memory (hed_od, gray_of)
// are taken by reference: so GCC compiles those loops as when the formula was
// written inline. By value, at -march=x86-64-v3 it fuses the other product of
// 0.299r + 0.587g into the FMA, and the float results move.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "augment/augment.h"
#include "augment/augment_tables.h"
#include "core/fast_exp.h"
#include "core/fast_log.h"
#include "core/host_device.h"

namespace hf {
namespace augment {

// min(max(v, 0), 1), in std::min(std::max(v, 0.f), 1.f)'s order (a NaN stays NaN).
HF_HOST_DEVICE inline float clamp01(float v) {
  const float lo = v < 0.f ? 0.f : v;
  return 1.f < lo ? 1.f : lo;
}

// ---- 1. geometry ------------------------------------------------------------------

// Output (y, x) → (u, v) in the pre-transform grid hp x wp (the resized crop
// before d4, out_h x out_w or out_w x out_h after an odd number of quarter
// turns): the output is fliplr^(d4&4)(rot90(R, d4&3)) in numpy's sense.
struct Geometry {
  int hp = 0, wp = 0;
  int uy = 0, ux = 0, u0 = 0, vy = 0, vx = 0, v0 = 0;  // u = uy·y + ux·x + u0, v likewise
};

HF_HOST_DEVICE inline Geometry make_geometry(int d4, int oh, int ow) {
  const int k = d4 & 3;
  const bool flip = (d4 & 4) != 0;
  Geometry g;
  g.hp = (k & 1) ? ow : oh;
  g.wp = (k & 1) ? oh : ow;
  // In rot90(R, k) (oh x ow): i = y, j = flip ? ow − 1 − x : x.
  const int jx = flip ? -1 : 1, j0 = flip ? ow - 1 : 0;
  switch (k) {
    case 0:  // R[i][j]
      g.uy = 1, g.ux = 0, g.u0 = 0, g.vy = 0, g.vx = jx, g.v0 = j0;
      break;
    case 1:  // R[j][Wp − 1 − i]
      g.uy = 0, g.ux = jx, g.u0 = j0, g.vy = -1, g.vx = 0, g.v0 = g.wp - 1;
      break;
    case 2:  // R[Hp − 1 − i][Wp − 1 − j]
      g.uy = -1, g.ux = 0, g.u0 = g.hp - 1, g.vy = 0, g.vx = -jx, g.v0 = g.wp - 1 - j0;
      break;
    default:  // R[Hp − 1 − j][i]
      g.uy = 0, g.ux = -jx, g.u0 = g.hp - 1 - j0, g.vy = 1, g.vx = 0, g.v0 = 0;
      break;
  }
  return g;
}

// Output coordinate o of `out` along one axis of the bilinear resize from `in`
// (align_corners = false, clamped to the window): s = (o + 0.5)·in/out − 0.5
// in double, taps i0 and i0 + 1 (≤ in − 1), weight s − i0.
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

// ---- 2. HED jitter ----------------------------------------------------------------

// The optical density the jitter reads: ln(max(v, 1e-6)) / ln(1e-6).
HF_HOST_DEVICE inline float hed_od(const float& v) {
  const float inv_adjust = static_cast<float>(1.0 / kAugmentLogAdjust);
  return fast_log(hd_max(v, 1e-6f)) * inv_adjust;
}

// One pixel holding hed_od values: separate (rgb2hed), s' = max(s, 0)·alpha +
// beta per stain, combine (combine_stains), clip to [0, 1].
HF_HOST_DEVICE inline void hed_jitter(const AugmentImageParams& p, const AugmentTables& t, float rgb[3]) {
  const float* m = t.hed_from_rgb;
  const float* e = t.log_rgb_from_hed;
  const float l0 = rgb[0], l1 = rgb[1], l2 = rgb[2];
  const float s0 = hd_max(l0 * m[0] + l1 * m[3] + l2 * m[6], 0.f) * p.hed_alpha[0] + p.hed_beta[0];
  const float s1 = hd_max(l0 * m[1] + l1 * m[4] + l2 * m[7], 0.f) * p.hed_alpha[1] + p.hed_beta[1];
  const float s2 = hd_max(l0 * m[2] + l1 * m[5] + l2 * m[8], 0.f) * p.hed_alpha[2] + p.hed_beta[2];
  for (int c = 0; c < 3; ++c) rgb[c] = clamp01(fast_exp(s0 * e[c] + s1 * e[3 + c] + s2 * e[6 + c]));
}

// ---- 3. colour ----------------------------------------------------------------------

HF_HOST_DEVICE inline bool colour_identity(const AugmentImageParams& p) {
  return p.brightness == 1.f && p.contrast == 1.f && p.saturation == 1.f && p.hue == 0.f;
}

HF_HOST_DEVICE inline float gray_of(const float& r, const float& g, const float& b) { return 0.299f * r + 0.587f * g + 0.114f * b; }

HF_HOST_DEVICE inline float brightness_step(float v, float f) { return clamp01(v * f); }
HF_HOST_DEVICE inline float contrast_step(float v, float f, float mean_gray) {
  return clamp01((v - mean_gray) * f + mean_gray);
}
HF_HOST_DEVICE inline float saturation_step(float v, float gray, float f) { return clamp01(gray + (v - gray) * f); }

// A rotation by `turns` in HSV (colorsys) shifts the hue by 6·frac(turns) sextants.
HF_HOST_DEVICE inline float hue_shift(float turns) { return 6.f * (turns - floorf(turns)); }

// One channel of the rotated pixel: V − C·clamp(min(k, 4 − k), 0, 1) with
// k = (n + h) mod 6 (n = 5, 3, 1 for R, G, B).
HF_HOST_DEVICE inline float hue_channel(float n, float h, float M, float C) {
  float k = n + h;
  k -= 6.f * floorf(k * (1.f / 6.f));
  return clamp01(M - C * hd_min(hd_max(hd_min(k, 4.f - k), 0.f), 1.f));
}

// The hue rotation of one pixel by `shift` (hue_shift): h from the max channel.
HF_HOST_DEVICE inline void rotate_hue(float rgb[3], float shift) {
  const float R = rgb[0], G = rgb[1], B = rgb[2];
  const float M = hd_max(hd_max(R, G), B), m = hd_min(hd_min(R, G), B), C = M - m;
  const float inv = 1.f / (C > 0.f ? C : 1.f);
  const float hr = (G - B) * inv, hg = 2.f + (B - R) * inv, hb = 4.f + (R - G) * inv;
  const float h = (R == M ? hr : (G == M ? hg : hb)) + shift;
  rgb[0] = hue_channel(5.f, h, M, C);
  rgb[1] = hue_channel(3.f, h, M, C);
  rgb[2] = hue_channel(1.f, h, M, C);
}

// ---- 4. blur weights (host) -----------------------------------------------------------

inline int blur_radius(float sigma) { return static_cast<int>(std::ceil(3.0 * static_cast<double>(sigma))); }

// The 2·radius + 1 gaussian weights exp(−i²/2σ²) normalized to sum 1, in
// double, then float.
inline void blur_weights(float sigma, int radius, float* wt) {
  double small[1 + 2 * 64];
  std::vector<double> big;
  double* wd = small;
  if (2 * radius + 1 > static_cast<int>(sizeof small / sizeof small[0])) {
    big.resize(2 * radius + 1);
    wd = big.data();
  }
  const double sig = sigma;
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) sum += wd[i + radius] = std::exp(-0.5 * i * i / (sig * sig));
  for (int i = 0; i <= 2 * radius; ++i) wt[i] = static_cast<float>(wd[i] / sum);
}

}  // namespace augment
}  // namespace hf
