// augment_cpu (augment/augment.h): one pass per image, images in parallel.
//
// Each thread keeps planar float scratch (R, G, B planes of out_h x out_w, plus
// the blur's second set of planes), reused across images and calls. Per image:
//   stage 1, per output row: geometry into the planes (exact copies read a
//     256-entry table: x/255, or the HED optical density when jitter is on;
//     resizes are sampled for the whole image first, separably, then the d4
//     permutation is read row by row, with a vectorizable log for HED), the
//     HED jitter, and the row's gray sum for the contrast mean; with elastic
//     deformation, geometry fills planes of their own, elastic_planes warps
//     them into the planes, and HED jitter and the gray sum follow;
//   stage 2: the colour steps, row by row (fused into stage 4 without blur);
//   stage 3: the separable blur, plane by plane (register-blocked);
//   stage 4, per row: noise (noise_value evaluated in float, vectorized, to
//     ~1e-5 of a standard deviation), normalize, interleave into NHWC.
// An image whose only operations are an exact-copy geometry and the normalize
// is written straight from per-channel tables of (x/255 − mean)/std computed
// in double and rounded once to float (bit-exact with the TypeScript reference).
//
// GCC 12 vectorizes floorf (fast_exp's range reduction, the hue's mod 6) only
// without trapping math, and turns std::min/max clamps into vminps/vmaxps
// (instead of compare + blend) only with finite math and unsigned zeros. Every
// value here is finite (fast_exp clamps its argument, logs see ≥ 1e-6, the hue
// divides by a nonzero chroma), so no result changes except possibly the sign
// of a clamped zero; there is no reassociation (this is not -ffast-math). Set
// for the whole translation unit, before any include, so inlining still works.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "finite-math-only", "no-signed-zeros")
#endif
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "augment/augment.h"
#include "augment/augment_check.h"
#include "augment/augment_pixel.h"
#include "augment/augment_tables.h"
#include "augment/elastic_field.h"
#include "core/fast_log.h"
#include "core/parallel.h"
#include "core/random.h"

namespace hf {

namespace {

using Tables = AugmentTables;
const Tables& tables() { return augment_tables(); }

using augment::clamp01;
using augment::Geometry;
using augment::Tap;

// noise_value(seed, first + j) for j < count, in float and branch-free
// (absolute error ~1e-6 against the double definition):
//   ln(1 − u1): for u1 ≤ 0.29 as 2·atanh(−u1/(2 − u1)) from u1 itself (no
//   cancellation near 0), else as ln of 1 − u1 = (2^53 − k)·2^-53, exact in
//   integers; cos(2π·u2) = −sin(2π(¼ − |u2 − ½|)), a degree-11 odd polynomial
//   on [−π/2, π/2], with u2 from its top 24 bits.
void noise_block(uint64_t seed, uint64_t first, int count, float* __restrict out) {
  for (int j = 0; j < count; ++j) {
    const uint64_t i = first + static_cast<uint64_t>(j);
    const uint64_t k1 = splitmix64(seed, 2 * i) >> 11, k2 = splitmix64(seed, 2 * i + 1) >> 40;
    const float u1 = static_cast<float>(static_cast<int64_t>(k1)) * 0x1.0p-53f;
    const float w1 = static_cast<float>(static_cast<int64_t>((uint64_t{1} << 53) - k1)) * 0x1.0p-53f;
    const float s = -u1 / (2.f - u1), s2 = s * s;
    float p = 2.f / 11.f;
    p = p * s2 + 2.f / 9.f;
    p = p * s2 + 2.f / 7.f;
    p = p * s2 + 2.f / 5.f;
    p = p * s2 + 2.f / 3.f;
    p = p * s2 + 2.f;
    const float ln = u1 <= 0.29f ? s * p : fast_log(w1);
    const float rad = std::sqrt(std::max(-2.f * ln, 0.f));
    const float u2 = static_cast<float>(static_cast<int32_t>(k2)) * 0x1.0p-24f;
    const float x = 6.28318530717958648f * (0.25f - std::fabs(u2 - 0.5f)), x2 = x * x;
    float q = -2.50521084e-8f;
    q = q * x2 + 2.75573192e-6f;
    q = q * x2 - 1.98412698e-4f;
    q = q * x2 + 8.33333333e-3f;
    q = q * x2 - 1.66666667e-1f;
    q = q * x2 + 1.f;
    out[j] = -rad * (x * q);
  }
}

struct Scratch {
  std::vector<float> planes;  // 6 planes + the blur's padded row + a row of noise
  std::vector<Tap> taps;
  std::vector<float> resize;  // the resize's rows, planes and source line
  std::vector<int32_t> cols;  // the resize's column taps, as index arrays
  std::vector<float> elastic;         // control grid, a row of it interpolated, column weights
  std::vector<int32_t> elastic_cols;  // each column's first control point
};

// Step 1 for a resize: the crop window resampled to the pre-transform grid
// hp x wp as three planes (values / 255), rows first (each source row
// deinterleaved, then sampled at the column taps), then columns, vectorized
// across a row: the same lerps, in the same order, as sampling each pixel.
void resize_planes(const uint8_t* origin, int64_t stride, int crop_h, int crop_w, const Tap* ty, const Tap* tx,
                   int hp, int wp, Scratch& s, float* const R[3]) {
  const size_t rows_size = static_cast<size_t>(3) * crop_h * wp;
  if (s.resize.size() < rows_size + 3 * static_cast<size_t>(crop_w) + wp)
    s.resize.resize(rows_size + 3 * static_cast<size_t>(crop_w) + wp);
  if (s.cols.size() < 2 * static_cast<size_t>(wp)) s.cols.resize(2 * static_cast<size_t>(wp));
  float* hrows = s.resize.data();
  float* line = hrows + rows_size;
  float* xw = line + 3 * crop_w;
  int32_t* x0 = s.cols.data();
  int32_t* x1 = x0 + wp;
  for (int v = 0; v < wp; ++v) x0[v] = tx[v].i0, x1[v] = tx[v].i1, xw[v] = tx[v].w;
  const int64_t hplane = static_cast<int64_t>(crop_h) * wp;
  for (int i = 0; i < crop_h; ++i) {
    const uint8_t* row = origin + i * stride;
    for (int x = 0; x < crop_w; ++x)
      line[x] = row[3 * x], line[crop_w + x] = row[3 * x + 1], line[2 * crop_w + x] = row[3 * x + 2];
    for (int c = 0; c < 3; ++c) {
      const float* l = line + c * crop_w;
      float* o = hrows + c * hplane + static_cast<int64_t>(i) * wp;
      for (int v = 0; v < wp; ++v) {
        const float p0 = l[x0[v]], p1 = l[x1[v]];
        o[v] = p0 + xw[v] * (p1 - p0);
      }
    }
  }
  for (int u = 0; u < hp; ++u) {
    const Tap& a = ty[u];
    for (int c = 0; c < 3; ++c) {
      const float* top = hrows + c * hplane + static_cast<int64_t>(a.i0) * wp;
      const float* bot = hrows + c * hplane + static_cast<int64_t>(a.i1) * wp;
      float* o = R[c] + static_cast<int64_t>(u) * wp;
      const float w = a.w;
      for (int v = 0; v < wp; ++v) o[v] = (top[v] + w * (bot[v] - top[v])) / 255.f;
    }
  }
}
thread_local Scratch tls_scratch;

// Step 1b: G (h x w planes) warped into E by the elastic field of p
// (elastic_field.h). The control grid is drawn once per image; each row
// interpolates it along y once (ry, rx: one value per control column), then
// along x for the whole row (8 multiply-adds a pixel, vectorizable), then
// samples: rows whose taps all fall inside the image skip the reflection.
void elastic_planes(const float* const G[3], float* const E[3], int h, int w, const AugmentImageParams& p,
                    Scratch& s) {
  const float sigma = p.elastic_sigma, alpha = p.elastic_alpha;
  const int gh = elastic::grid_size(h, sigma), gw = elastic::grid_size(w, sigma);
  const size_t grid = static_cast<size_t>(gh) * gw;
  const size_t need = 2 * grid + 2 * static_cast<size_t>(gw) + 6 * static_cast<size_t>(w);
  if (s.elastic.size() < need) s.elastic.resize(need);
  if (s.elastic_cols.size() < 3 * static_cast<size_t>(w)) s.elastic_cols.resize(3 * static_cast<size_t>(w));
  float* cy = s.elastic.data();
  float* cx = cy + grid;
  float* ry = cx + grid;
  float* rx = ry + gw;
  float* wx = rx + gw;       // 4 per column
  float* fy = wx + 4 * w;    // the row's bilinear weights
  float* fx = fy + w;
  int32_t* jx = s.elastic_cols.data();
  int32_t* by = jx + w;      // the row's first taps, before reflection
  int32_t* bx = by + w;
  elastic::control_grids(p.elastic_seed, alpha, grid, cy, cx);
  for (int x = 0; x < w; ++x) elastic::axis(x, sigma, &jx[x], wx + 4 * x);
  for (int y = 0; y < h; ++y) {
    int jy;
    float wy[4];
    elastic::axis(y, sigma, &jy, wy);
    const float* c0 = cy + static_cast<size_t>(jy) * gw;
    const float* d0 = cx + static_cast<size_t>(jy) * gw;
    for (int i = 0; i < gw; ++i) {
      float a = wy[0] * c0[i];
      a += wy[1] * c0[gw + i];
      a += wy[2] * c0[2 * gw + i];
      a += wy[3] * c0[3 * gw + i];
      ry[i] = a;
      float b = wy[0] * d0[i];
      b += wy[1] * d0[gw + i];
      b += wy[2] * d0[2 * gw + i];
      b += wy[3] * d0[3 * gw + i];
      rx[i] = b;
    }
    // Three simple loops (displacement, taps, their extremes) so that each vectorizes.
    for (int x = 0; x < w; ++x) {
      const float* v = wx + 4 * x;
      const int j = jx[x];
      float dy = v[0] * ry[j];
      dy += v[1] * ry[j + 1];
      dy += v[2] * ry[j + 2];
      dy += v[3] * ry[j + 3];
      float dx = v[0] * rx[j];
      dx += v[1] * rx[j + 1];
      dx += v[2] * rx[j + 2];
      dx += v[3] * rx[j + 3];
      fy[x] = dy, fx[x] = dx;
    }
    for (int x = 0; x < w; ++x) {
      const float fly = std::floor(fy[x]), flx = std::floor(fx[x]);
      by[x] = y + static_cast<int32_t>(fly), fy[x] -= fly;
      bx[x] = x + static_cast<int32_t>(flx), fx[x] -= flx;
    }
    int lo = 0, hi = 0;  // the row's extreme taps
    for (int x = 0; x < w; ++x) {
      lo = std::min(lo, std::min(by[x], bx[x]));
      hi = std::max(hi, std::max(by[x] - (h - 2), bx[x] - (w - 2)));
    }
    const int64_t o = static_cast<int64_t>(y) * w;
    if (lo >= 0 && hi <= 0) {  // every tap inside: no reflection
      for (int x = 0; x < w; ++x) {
        const int64_t i00 = static_cast<int64_t>(by[x]) * w + bx[x];
        const float ax = fx[x], ay = fy[x];
        for (int c = 0; c < 3; ++c) {
          const float* g = G[c];
          const float top = g[i00] + ax * (g[i00 + 1] - g[i00]);
          const float bot = g[i00 + w] + ax * (g[i00 + w + 1] - g[i00 + w]);
          E[c][o + x] = top + ay * (bot - top);
        }
      }
      continue;
    }
    for (int x = 0; x < w; ++x) {
      const int y0 = elastic::reflect(by[x], h), y1 = elastic::reflect(by[x] + 1, h);
      const int x0 = elastic::reflect(bx[x], w), x1 = elastic::reflect(bx[x] + 1, w);
      const int64_t r0 = static_cast<int64_t>(y0) * w, r1 = static_cast<int64_t>(y1) * w;
      const float ax = fx[x], ay = fy[x];
      for (int c = 0; c < 3; ++c) {
        const float* g = G[c];
        const float top = g[r0 + x0] + ax * (g[r0 + x1] - g[r0 + x0]);
        const float bot = g[r1 + x0] + ax * (g[r1 + x1] - g[r1 + x0]);
        E[c][o + x] = top + ay * (bot - top);
      }
    }
  }
}

// The optical density HED jitter reads (augment::hed_od), in place.
void od_row(float* __restrict q, int n) {
  for (int x = 0; x < n; ++x) q[x] = augment::hed_od(q[x]);
}

void hed_row(float* __restrict r, float* __restrict g, float* __restrict b, int n, const AugmentImageParams& p,
             const Tables& t) {
  for (int i = 0; i < n; ++i) {
    float px[3] = {r[i], g[i], b[i]};
    augment::hed_jitter(p, t, px);
    r[i] = px[0], g[i] = px[1], b[i] = px[2];
  }
}

// Sixteen partial sums, so that the strict float order still vectorizes.
float gray_sum_row(const float* __restrict r, const float* __restrict g, const float* __restrict b, int n) {
  float acc[16] = {};
  int i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += augment::gray_of(r[i + j], g[i + j], b[i + j]);
  float s = 0.f;
  for (; i < n; ++i) s += augment::gray_of(r[i], g[i], b[i]);
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

// HSV hue rotation (colorsys, augment::rotate_hue).
void hue_row(float* __restrict r, float* __restrict g, float* __restrict b, int n, float hue) {
  const float shift = augment::hue_shift(hue);
  for (int i = 0; i < n; ++i) {
    float px[3] = {r[i], g[i], b[i]};
    augment::rotate_hue(px, shift);
    r[i] = px[0], g[i] = px[1], b[i] = px[2];
  }
}

// Brightness, contrast and saturation in one pass; a step at its identity
// value is compiled out (skipped, as the header says), not applied as ×1.
template <bool kBright, bool kContrast, bool kSat>
void bcs_row(float* __restrict r, float* __restrict g, float* __restrict b, int n, float fb, float fc, float mg,
             float fs) {
  for (int i = 0; i < n; ++i) {
    float R = r[i], G = g[i], B = b[i];
    if (kBright) {
      R = augment::brightness_step(R, fb), G = augment::brightness_step(G, fb), B = augment::brightness_step(B, fb);
    }
    if (kContrast) {
      R = augment::contrast_step(R, fc, mg), G = augment::contrast_step(G, fc, mg), B = augment::contrast_step(B, fc, mg);
    }
    if (kSat) {
      const float gray = augment::gray_of(R, G, B);
      R = augment::saturation_step(R, gray, fs), G = augment::saturation_step(G, gray, fs);
      B = augment::saturation_step(B, gray, fs);
    }
    r[i] = R, g[i] = G, b[i] = B;
  }
}

using BcsFn = void (*)(float*, float*, float*, int, float, float, float, float);
constexpr BcsFn kBcs[8] = {nullptr,
                           bcs_row<true, false, false>,
                           bcs_row<false, true, false>,
                           bcs_row<true, true, false>,
                           bcs_row<false, false, true>,
                           bcs_row<true, false, true>,
                           bcs_row<false, true, true>,
                           bcs_row<true, true, true>};

void colour_row(float* __restrict r, float* __restrict g, float* __restrict b, int n, const AugmentImageParams& p,
                float mean_gray) {
  const int which = (p.brightness != 1.f) | (p.contrast != 1.f) << 1 | (p.saturation != 1.f) << 2;
  if (which) kBcs[which](r, g, b, n, p.brightness, p.contrast, mean_gray, p.saturation);
  if (p.hue != 0.f) hue_row(r, g, b, n, p.hue);
}

// Separable gaussian, replicate edges: plane → tmp (rows) → plane (columns).
// Blocks of kLanes outputs accumulate in registers across the taps (GCC and
// Clang vector extensions; a plain loop elsewhere). `pad` holds a row with the
// radius replicated on both sides.
constexpr int kLanes = 16;
#if defined(__GNUC__)
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));
#endif

// o[x] = Σ_t wt[t]·src[t][x] for x in [0, w), src[t] = rows (or shifted pad).
inline void weighted_sum(float* __restrict o, const float* const* src, const float* __restrict wt, int taps, int w) {
  int x = 0;
#if defined(__GNUC__)
  for (; x + kLanes <= w; x += kLanes) {  // memcpy: unaligned vector loads and stores
    Lanes acc, v;
    std::memcpy(&v, src[0] + x, sizeof v);
    acc = wt[0] * v;
    for (int t = 1; t < taps; ++t) {
      std::memcpy(&v, src[t] + x, sizeof v);
      acc += wt[t] * v;
    }
    std::memcpy(o + x, &acc, sizeof acc);
  }
#endif
  for (; x < w; ++x) {
    float acc = wt[0] * src[0][x];
    for (int t = 1; t < taps; ++t) acc += wt[t] * src[t][x];
    o[x] = acc;
  }
}

constexpr int kMaxTaps = 2 * 64 + 1;

void blur_plane(float* __restrict plane, float* __restrict tmp, float* __restrict pad, int h, int w,
                const float* __restrict wt, int radius) {
  const int taps = 2 * radius + 1;
  if (taps > kMaxTaps) {  // σ > 21: plain loops
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        float acc = 0.f;
        for (int t = 0; t < taps; ++t) acc += wt[t] * plane[static_cast<int64_t>(y) * w + std::min(std::max(x - radius + t, 0), w - 1)];
        tmp[static_cast<int64_t>(y) * w + x] = acc;
      }
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        float acc = 0.f;
        for (int t = 0; t < taps; ++t) acc += wt[t] * tmp[static_cast<int64_t>(std::min(std::max(y - radius + t, 0), h - 1)) * w + x];
        plane[static_cast<int64_t>(y) * w + x] = acc;
      }
    return;
  }
  const float* src[kMaxTaps];
  for (int t = 0; t < taps; ++t) src[t] = pad + t;
  for (int y = 0; y < h; ++y) {
    const float* row = plane + static_cast<int64_t>(y) * w;
    for (int i = 0; i < radius; ++i) pad[i] = row[0], pad[radius + w + i] = row[w - 1];
    std::memcpy(pad + radius, row, sizeof(float) * w);
    weighted_sum(tmp + static_cast<int64_t>(y) * w, src, wt, taps, w);
  }
  for (int y = 0; y < h; ++y) {
    for (int t = 0; t < taps; ++t) src[t] = tmp + static_cast<int64_t>(std::min(std::max(y - radius + t, 0), h - 1)) * w;
    weighted_sum(plane + static_cast<int64_t>(y) * w, src, wt, taps, w);
  }
}

struct OutTables {
  float mean[3], std[3];
  float direct[3][256];  // (v/255 − mean)/std, in double, rounded to float
};

void write_row(const float* __restrict r, const float* __restrict g, const float* __restrict b, int n,
               const OutTables& ot, float* __restrict out) {
  const float m0 = ot.mean[0], m1 = ot.mean[1], m2 = ot.mean[2];
  const float s0 = ot.std[0], s1 = ot.std[1], s2 = ot.std[2];
  for (int i = 0; i < n; ++i) {
    out[3 * i] = (r[i] - m0) / s0;
    out[3 * i + 1] = (g[i] - m1) / s1;
    out[3 * i + 2] = (b[i] - m2) / s2;
  }
}

void augment_image(const uint8_t* img, int64_t H, int64_t W, const AugmentImageParams& p,
                   const AugmentBatchParams& bp, const OutTables& ot, float* out) {
  const Tables& t = tables();
  const int oh = bp.out_h, ow = bp.out_w;
  const Geometry g = augment::make_geometry(p.d4, oh, ow);
  const bool exact = bp.crop_h == g.hp && bp.crop_w == g.wp;
  const bool hed = p.hed_enabled != 0;
  const bool colour = !augment::colour_identity(p);
  const bool blur = p.blur_sigma > 0.f;
  const bool noise = p.noise_sigma > 0.f;
  const bool warp = p.elastic_alpha > 0.f;
  const int64_t stride = W * 3;
  const uint8_t* origin = img + (static_cast<int64_t>(p.crop_y) * W + p.crop_x) * 3;
  const int64_t step = (g.ux * W + g.vx) * 3;  // source bytes per output x (exact copies)

  if (exact && !hed && !colour && !blur && !noise && !warp) {
    for (int y = 0; y < oh; ++y) {
      const uint8_t* src = origin + (static_cast<int64_t>(g.uy * y + g.u0) * W + (g.vy * y + g.v0)) * 3;
      float* o = out + static_cast<int64_t>(y) * ow * 3;
      for (int x = 0; x < ow; ++x, src += step) {
        o[3 * x] = ot.direct[0][src[0]];
        o[3 * x + 1] = ot.direct[1][src[1]];
        o[3 * x + 2] = ot.direct[2][src[2]];
      }
    }
    return;
  }

  const int64_t plane = static_cast<int64_t>(oh) * ow;
  const int radius = blur ? augment::blur_radius(p.blur_sigma) : 0;
  Scratch& s = tls_scratch;
  // A resize under a d4 other than 0 samples into planes of its own first.
  const bool permute = !exact && p.d4 != 0;
  // Scratch layout: the planes, then what each enabled step needs.
  int64_t need = 3 * plane;
  const int64_t at_tmp = need;
  if (blur) need += 3 * plane;
  const int64_t at_pad = need;
  if (blur) need += ow + 2 * radius;
  const int64_t at_wt = need;
  if (blur) need += 2 * radius + 1;
  const int64_t at_noise = need;
  if (noise) need += 3 * ow;
  const int64_t at_perm = need;
  if (permute) need += 3 * plane;
  const int64_t at_warp = need;  // step 1's planes, before the elastic warp
  if (warp) need += 3 * plane;
  if (s.planes.size() < static_cast<size_t>(need)) s.planes.resize(static_cast<size_t>(need));
  float* P[3] = {s.planes.data(), s.planes.data() + plane, s.planes.data() + 2 * plane};

  // Stage 1: geometry (into G), elastic warp (G → P), HED jitter, gray sum.
  float* G[3] = {P[0], P[1], P[2]};
  if (warp)
    for (int c = 0; c < 3; ++c) G[c] = s.planes.data() + at_warp + c * plane;
  // With a warp, HED jitter waits for it: geometry gives plain values.
  const bool hed_now = hed && !warp;
  const Tap* ty = nullptr;
  const Tap* tx = nullptr;
  if (!exact) {
    if (s.taps.size() < static_cast<size_t>(g.hp + g.wp)) s.taps.resize(g.hp + g.wp);
    for (int u = 0; u < g.hp; ++u) s.taps[u] = augment::make_tap(u, bp.crop_h, g.hp);
    for (int v = 0; v < g.wp; ++v) s.taps[g.hp + v] = augment::make_tap(v, bp.crop_w, g.wp);
    ty = s.taps.data(), tx = s.taps.data() + g.hp;
  }
  float* R[3] = {G[0], G[1], G[2]};
  if (permute)
    for (int c = 0; c < 3; ++c) R[c] = s.planes.data() + at_perm + c * plane;
  if (!exact) resize_planes(origin, stride, bp.crop_h, bp.crop_w, ty, tx, g.hp, g.wp, s, R);
  const int64_t rstep = static_cast<int64_t>(g.ux) * g.wp + g.vx;  // R elements per output x
  const float* tab = hed_now ? t.od : t.unit;
  double gray_sum = 0;
  for (int y = 0; y < oh; ++y) {
    float* r = G[0] + static_cast<int64_t>(y) * ow;
    float* gg = G[1] + static_cast<int64_t>(y) * ow;
    float* b = G[2] + static_cast<int64_t>(y) * ow;
    if (exact) {
      const uint8_t* src = origin + (static_cast<int64_t>(g.uy * y + g.u0) * W + (g.vy * y + g.v0)) * 3;
      for (int x = 0; x < ow; ++x, src += step) r[x] = tab[src[0]], gg[x] = tab[src[1]], b[x] = tab[src[2]];
    } else {
      if (permute) {
        int64_t k = static_cast<int64_t>(g.uy * y + g.u0) * g.wp + (g.vy * y + g.v0);
        for (int x = 0; x < ow; ++x, k += rstep) r[x] = R[0][k], gg[x] = R[1][k], b[x] = R[2][k];
      }
      if (hed_now)
        for (float* q : {r, gg, b}) od_row(q, ow);
    }
    if (warp) continue;
    if (hed) hed_row(r, gg, b, ow, p, t);
    if (p.contrast != 1.f) gray_sum += gray_sum_row(r, gg, b, ow);
  }
  if (warp) {
    elastic_planes(G, P, oh, ow, p, s);
    for (int y = 0; y < oh; ++y) {
      const int64_t o = static_cast<int64_t>(y) * ow;
      float* r = P[0] + o;
      float* gg = P[1] + o;
      float* b = P[2] + o;
      if (hed) {
        for (float* q : {r, gg, b}) od_row(q, ow);
        hed_row(r, gg, b, ow, p, t);
      }
      if (p.contrast != 1.f) gray_sum += gray_sum_row(r, gg, b, ow);
    }
  }
  const float mean_gray = static_cast<float>(gray_sum / static_cast<double>(plane));

  // Stages 2–3: colour, then blur.
  if (blur) {
    if (colour)
      for (int y = 0; y < oh; ++y) {
        const int64_t o = static_cast<int64_t>(y) * ow;
        colour_row(P[0] + o, P[1] + o, P[2] + o, ow, p, mean_gray);
      }
    float* tmp = s.planes.data() + at_tmp;
    float* pad = s.planes.data() + at_pad;
    float* wt = s.planes.data() + at_wt;
    augment::blur_weights(p.blur_sigma, radius, wt);
    for (int c = 0; c < 3; ++c) blur_plane(P[c], tmp, pad, oh, ow, wt, radius);
  }

  // Stage 4: (colour when no blur,) noise, normalize, interleave.
  float* nz = s.planes.data() + at_noise;
  for (int y = 0; y < oh; ++y) {
    const int64_t o = static_cast<int64_t>(y) * ow;
    float* r = P[0] + o;
    float* gg = P[1] + o;
    float* b = P[2] + o;
    if (colour && !blur) colour_row(r, gg, b, ow, p, mean_gray);
    if (noise) {
      noise_block(p.noise_seed, static_cast<uint64_t>(o * 3), 3 * ow, nz);
      const float sigma = p.noise_sigma;
      for (int x = 0; x < ow; ++x) {
        r[x] = clamp01(r[x] + sigma * nz[3 * x]);
        gg[x] = clamp01(gg[x] + sigma * nz[3 * x + 1]);
        b[x] = clamp01(b[x] + sigma * nz[3 * x + 2]);
      }
    }
    write_row(r, gg, b, ow, ot, out + o * 3);
  }
}

}  // namespace

void augment_cpu(const RgbBatch& in, const AugmentImageParams* params, const AugmentBatchParams& batch, float* out) {
  if (in.n <= 0) return;
  check_augment_args(in, params, batch);
  OutTables ot;
  for (int c = 0; c < 3; ++c) {
    ot.mean[c] = batch.mean[c], ot.std[c] = batch.std[c];
    // In double, rounded once: what the TypeScript reference computes, so that
    // exact copies (D4, crops) match it bit for bit.
    for (int v = 0; v < 256; ++v)
      ot.direct[c][v] = static_cast<float>((v / 255.0 - static_cast<double>(ot.mean[c])) / static_cast<double>(ot.std[c]));
  }
  tables();  // initialize outside the parallel region
  const int64_t out_image = static_cast<int64_t>(batch.out_h) * batch.out_w * 3;
  parallel_for(in.n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      augment_image(in.image(i), in.height, in.width, params[i], batch, ot, out + i * out_image);
  });
}

}  // namespace hf
