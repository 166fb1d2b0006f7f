// augment.h's steps per output pixel, as augment_cuda.cu's kernels run them
// (one thread per pixel), and the host-built per-image inputs (elastic control
// grids, blur weights). The formulas are augment_pixel.h's, elastic_field.h's
// and noise.h's, shared with augment_cpu.cc, which applies the same formulas
// to rows of planes instead. The two differ on purpose in two places: noise
// (here noise_value in double, clipped in double; augment_cpu a vectorized
// float evaluation, ~1e-6 of a standard deviation away) and the order of the
// contrast step's gray sum (augment_cuda.cu's gray_mean_kernel).
#pragma once
#include <cstdint>
#include <vector>

#include "augment/augment.h"
#include "augment/augment_pixel.h"
#include "augment/augment_tables.h"
#include "augment/elastic_field.h"
#include "augment/noise.h"
#include "core/host_device.h"

namespace hf {
namespace augment_dev {

// Host-built constants of steps 1–2 (augment_tables.h, shared with augment_cpu).
using Tables = AugmentTables;

// ---- 1. geometry ------------------------------------------------------------------

// Output pixel (y, x) of step 1: the geometry, in [0, 1], or its optical
// density (augment::hed_od) when `hed`. An exact geometry (crop =
// pre-transform grid) reads the tables; a resize samples bilinearly.
HF_HOST_DEVICE inline void geometry_pixel(const uint8_t* src, int64_t width, const AugmentBatchParams& b,
                                          const AugmentImageParams& p, const Tables& t, bool hed, int y, int x,
                                          float rgb[3]) {
  const augment::Geometry g = augment::make_geometry(p.d4, b.out_h, b.out_w);
  const int hp = g.hp, wp = g.wp;
  const bool exact = b.crop_h == hp && b.crop_w == wp;
  const uint8_t* origin = src + (int64_t{p.crop_y} * width + p.crop_x) * 3;
  const int u = g.uy * y + g.ux * x + g.u0, v = g.vy * y + g.vx * x + g.v0;
  if (exact) {
    const uint8_t* px = origin + (int64_t{u} * width + v) * 3;
    const float* tab = hed ? t.od : t.unit;
    for (int c = 0; c < 3; ++c) rgb[c] = tab[px[c]];
  } else {
    const augment::Tap a = augment::make_tap(u, b.crop_h, hp), cc = augment::make_tap(v, b.crop_w, wp);
    const uint8_t* r0 = origin + int64_t{a.i0} * width * 3;
    const uint8_t* r1 = origin + int64_t{a.i1} * width * 3;
    const int c0 = cc.i0 * 3, c1 = cc.i1 * 3;
    for (int ch = 0; ch < 3; ++ch) {
      const float p00 = r0[c0 + ch], p01 = r0[c1 + ch], p10 = r1[c0 + ch], p11 = r1[c1 + ch];
      const float top = p00 + cc.w * (p01 - p00), bot = p10 + cc.w * (p11 - p10);
      rgb[ch] = (top + a.w * (bot - top)) / 255.f;
    }
    if (hed)
      for (int c = 0; c < 3; ++c) rgb[c] = augment::hed_od(rgb[c]);
  }
}

// Output pixel (y, x) of steps 1–2 without elastic deformation.
HF_HOST_DEVICE inline void sample_pixel(const uint8_t* src, int64_t width, const AugmentBatchParams& b,
                                        const AugmentImageParams& p, const Tables& t, int y, int x, float rgb[3]) {
  const bool hed = p.hed_enabled != 0;
  geometry_pixel(src, width, b, p, t, hed, y, x, rgb);
  if (hed) augment::hed_jitter(p, t, rgb);
}

// Output pixel (y, x) of steps 1, 1b and 2 (elastic_alpha > 0): the
// displacement from the image's control grid (cy then cx, gh x gw each:
// elastic_field.h), summed in augment.h's order (augment_cpu's elastic_planes
// caches each row's sums along y; the order of the additions is the same),
// then four step-1 samples blended bilinearly, then HED jitter.
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
    for (int c = 0; c < 3; ++c) rgb[c] = augment::hed_od(rgb[c]);
    augment::hed_jitter(p, t, rgb);
  }
}

// Appends the control grids of an image (cy then cx) to `into`.
inline void elastic_controls(const AugmentImageParams& p, int out_h, int out_w, std::vector<float>& into) {
  const int gh = elastic::grid_size(out_h, p.elastic_sigma), gw = elastic::grid_size(out_w, p.elastic_sigma);
  const size_t grid = static_cast<size_t>(gh) * gw, at = into.size();
  into.resize(at + 2 * grid);
  elastic::control_grids(p.elastic_seed, p.elastic_alpha, grid, into.data() + at, into.data() + at + grid);
}

// ---- 3. colour ----------------------------------------------------------------------

// Brightness, contrast, saturation, hue; a step at its identity value is skipped.
HF_HOST_DEVICE inline void colour_pixel(float rgb[3], const AugmentImageParams& p, float mean_gray) {
  if (p.brightness != 1.f)
    for (int c = 0; c < 3; ++c) rgb[c] = augment::brightness_step(rgb[c], p.brightness);
  if (p.contrast != 1.f)
    for (int c = 0; c < 3; ++c) rgb[c] = augment::contrast_step(rgb[c], p.contrast, mean_gray);
  if (p.saturation != 1.f) {
    const float gray = augment::gray_of(rgb[0], rgb[1], rgb[2]);
    for (int c = 0; c < 3; ++c) rgb[c] = augment::saturation_step(rgb[c], gray, p.saturation);
  }
  if (p.hue != 0.f) augment::rotate_hue(rgb, augment::hue_shift(p.hue));
}

// ---- 4. blur taps (host) ---------------------------------------------------------------

// augment::blur_weights of radius augment::blur_radius(σ); {1} (radius 0, a
// copy) when σ ≤ 0.
inline std::vector<float> blur_weights(float sigma) {
  if (!(sigma > 0.f)) return {1.f};
  const int radius = augment::blur_radius(sigma);
  std::vector<float> wt(2 * radius + 1);
  augment::blur_weights(sigma, radius, wt.data());
  return wt;
}

// ---- 5. noise, 6. normalize ---------------------------------------------------------------

// v + σ·noise_value in double, clipped to [0, 1], then float.
HF_HOST_DEVICE inline float add_noise(float v, float sigma, uint64_t seed, uint64_t index) {
  const double w = static_cast<double>(v) + static_cast<double>(sigma) * noise_value(seed, index);
  return static_cast<float>(w < 0.0 ? 0.0 : (w > 1.0 ? 1.0 : w));
}

HF_HOST_DEVICE inline float normalize(float v, float mean, float std) { return (v - mean) / std; }

}  // namespace augment_dev
}  // namespace hf
