// The transform every stain-matrix method shares (Macenko et al. 2009, eq. 5-6;
// HEnorm_python, tiatoolbox StainNormalizer):
//   C   = pinv(HE_source)·OD                     (np.linalg.lstsq)
//   C'  = C · max_c_target / max_c_source
//   out = io·exp(−HE_targetᵀ·C'), values > 255 → overflow_value, astype(uint8)
// The three steps are one 3x3 matrix per image, M = HE_targetᵀ·diag(s)·pinv,
// applied to table-looked-up OD; exp is the vectorizable polynomial.
#include <algorithm>
#include <cmath>
#include <cstring>

// No code here reads floating-point exception flags; without trapping math GCC
// may if-convert the clamps and selects, which is what lets the exp / store
// loop vectorize.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "stain/stain_fit_internal.h"
#include "stain/stain_math.h"

namespace hf {
namespace stain_cpu {

namespace {

// c = pinv·od for a run of pixels (table lookups, then a 2x3 product).
void concentrations(const uint8_t* rgb, int64_t pixels, const OdTable& od, const float p[6], float* __restrict c0,
                    float* __restrict c1) {
  for (int64_t i = 0; i < pixels; ++i) {
    float r = od.od[rgb[3 * i]], g = od.od[rgb[3 * i + 1]], b = od.od[rgb[3 * i + 2]];
    c0[i] = p[0] * r + p[1] * g + p[2] * b;
    c1[i] = p[3] * r + p[4] * g + p[5] * b;
  }
}

}  // namespace

void fit_max_c(const uint8_t* rgb, int64_t pixels, const OdTable& od, int slots, StainScratch& scratch, StainFit& fit) {
  double pinv[6];
  if (pixels < 1 || !stain_pinv(fit.he, pinv)) {
    fit.status = kFitDegenerate;
    fit.max_c[0] = fit.max_c[1] = 0.f;
    return;
  }
  float p[6];
  for (int k = 0; k < 6; ++k) p[k] = static_cast<float>(pinv[k]);
  // Every c lies within the bounds the table's OD range allows.
  double bound_lo[2], bound_hi[2];
  for (int k = 0; k < 2; ++k) {
    bound_lo[k] = bound_hi[k] = 0;
    for (int j = 0; j < 3; ++j) {
      double a = pinv[k * 3 + j] * od.min_od, b = pinv[k * 3 + j] * od.max_od;
      bound_lo[k] += std::min(a, b);
      bound_hi[k] += std::max(a, b);
    }
  }
  scratch.reserve(pixels, slots);
  for (int s = 0; s < slots; ++s) {
    scratch.hist_a[s].reset(bound_lo[0], bound_hi[0], pixels);
    scratch.hist_b[s].reset(bound_lo[1], bound_hi[1], pixels);
  }
  float* c0 = scratch.values_a.data();
  float* c1 = scratch.values_b.data();
  for_blocks(pixels, slots, [&](int slot, int64_t blk, int64_t b, int64_t e) {
    RankHistogram& h0 = scratch.hist_a[slot];
    RankHistogram& h1 = scratch.hist_b[slot];
    concentrations(rgb + 3 * b, e - b, od, p, c0 + b, c1 + b);
    h0.add_all(c0 + b, e - b);
    h1.add_all(c1 + b, e - b);
    scratch.segments[blk] = Segment{b, e - b};
  });
  for (int s = 1; s < slots; ++s) {
    scratch.hist_a[0].merge(scratch.hist_a[s]);
    scratch.hist_b[0].merge(scratch.hist_b[s]);
  }
  const int nseg = static_cast<int>(block_count(pixels));
  const OrderRank rank = percentile_rank(99.0, pixels);
  const double m0 = select_order_pair(c0, scratch.segments.data(), nseg, scratch.hist_a[0], rank).interpolate();
  const double m1 = select_order_pair(c1, scratch.segments.data(), nseg, scratch.hist_b[0], rank).interpolate();
  fit.max_c[0] = static_cast<float>(m0);
  fit.max_c[1] = static_cast<float>(m1);
  if (!(fit.max_c[0] > 0.f) || !(fit.max_c[1] > 0.f) || !std::isfinite(fit.max_c[0]) || !std::isfinite(fit.max_c[1]))
    fit.status = kFitDegenerate;
}

namespace {

constexpr int64_t kTile = 512;  // pixels rendered per stack buffer

// Renders out[c] = io·exp(−Σ_i m[c][i]·od_i) for one image, tile by tile:
// table lookups and the 3x3 product first, then exp and the uint8 store in a
// contiguous loop the compiler vectorizes.
void render(const uint8_t* rgb, int64_t pixels, const OdTable& od, const float m[9], float io, float overflow,
            uint8_t* out) {
  alignas(64) float tile[kTile * 3];
  for (int64_t t0 = 0; t0 < pixels; t0 += kTile) {
    const int64_t count = std::min(kTile, pixels - t0);
    const uint8_t* px = rgb + 3 * t0;
    for (int64_t i = 0; i < count; ++i) {
      float r = od.od[px[3 * i]], g = od.od[px[3 * i + 1]], b = od.od[px[3 * i + 2]];
      tile[3 * i] = -(m[0] * r + m[1] * g + m[2] * b);
      tile[3 * i + 1] = -(m[3] * r + m[4] * g + m[5] * b);
      tile[3 * i + 2] = -(m[6] * r + m[7] * g + m[8] * b);
    }
    uint8_t* dst = out + 3 * t0;
    for (int64_t i = 0; i < 3 * count; ++i) {
      float v = io * fast_exp(tile[i]);
      v = v > 255.f ? overflow : v;
      dst[i] = static_cast<uint8_t>(static_cast<int32_t>(v));
    }
  }
}

}  // namespace

}  // namespace stain_cpu

void stain_transform_cpu(const RgbBatch& in, const StainFit* fits, const StainTransformParams& p, uint8_t* out,
                         uint8_t* h_only, uint8_t* e_only) {
  using namespace stain_cpu;
  const OdTable od = make_od_table(p.od);
  const int64_t n_pixels = in.pixels_per_image();
  const int threads = cpu_threads();
  const bool images_in_parallel = in.n >= threads || n_pixels < 2 * kPixelBlock;

  auto transform_image = [&](int64_t i, int slots) {
    const uint8_t* rgb = in.image(i);
    const int64_t offset = i * n_pixels * 3;
    double pinv[6];
    const StainFit& fit = fits[i];
    if (fit.status != kFitOk || !stain_pinv(fit.he, pinv) || !(fit.max_c[0] > 0.f) || !(fit.max_c[1] > 0.f)) {
      // Refused fits leave the image (and its single-stain views) as it was.
      for (uint8_t* dst : {out, h_only, e_only})
        if (dst) std::memcpy(dst + offset, rgb, static_cast<size_t>(n_pixels * 3));
      return;
    }
    const double scale[2] = {static_cast<double>(p.target_max_c[0]) / fit.max_c[0],
                             static_cast<double>(p.target_max_c[1]) / fit.max_c[1]};
    // M_stains[j][i] = Σ_k target_he[k][j]·scale_k·pinv[k][i] over the stains kept.
    auto matrix = [&](bool use_h, bool use_e, float m[9]) {
      for (int j = 0; j < 3; ++j)
        for (int c = 0; c < 3; ++c) {
          double v = 0;
          if (use_h) v += p.target_he[j] * scale[0] * pinv[c];
          if (use_e) v += p.target_he[3 + j] * scale[1] * pinv[3 + c];
          m[j * 3 + c] = static_cast<float>(v);
        }
    };
    float m_both[9], m_h[9], m_e[9];
    matrix(true, true, m_both);
    matrix(true, false, m_h);
    matrix(false, true, m_e);
    for_blocks(n_pixels, slots, [&](int, int64_t, int64_t b, int64_t e) {
      render(rgb + 3 * b, e - b, od, m_both, p.od.io, p.overflow_value, out + offset + 3 * b);
      if (h_only) render(rgb + 3 * b, e - b, od, m_h, p.od.io, p.overflow_value, h_only + offset + 3 * b);
      if (e_only) render(rgb + 3 * b, e - b, od, m_e, p.od.io, p.overflow_value, e_only + offset + 3 * b);
    });
  };
  if (images_in_parallel) {
    parallel_for(in.n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) transform_image(i, 1);
    });
  } else {
    for (int64_t i = 0; i < in.n; ++i) transform_image(i, threads);
  }
}

void stain_concentrations_cpu(const RgbBatch& in, const StainFit* fits, const OdParams& odp, float* out) {
  const stain_cpu::OdTable od = stain_cpu::make_od_table(odp);
  const int64_t n_pixels = in.pixels_per_image();
  for (int64_t i = 0; i < in.n; ++i) {
    double pinv[6];
    float* dst = out + i * n_pixels * 2;
    if (!stain_pinv(fits[i].he, pinv)) {
      std::fill(dst, dst + n_pixels * 2, 0.f);
      continue;
    }
    float p[6];
    for (int k = 0; k < 6; ++k) p[k] = static_cast<float>(pinv[k]);
    const uint8_t* rgb = in.image(i);
    parallel_for(n_pixels, 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const uint8_t* px = rgb + 3 * k;
        float r = od.od[px[0]], g = od.od[px[1]], bl = od.od[px[2]];
        dst[2 * k] = p[0] * r + p[1] * g + p[2] * bl;
        dst[2 * k + 1] = p[3] * r + p[4] * g + p[5] * bl;
      }
    });
  }
}

void stain_fit_fixed_cpu(const RgbBatch& in, const float he[6], const OdParams& odp, StainFit* fits) {
  const stain_cpu::OdTable od = stain_cpu::make_od_table(odp);
  stain_cpu::for_each_image(in, [&](int64_t i, int slots, stain_cpu::StainScratch& scratch) {
    StainFit& fit = fits[i];
    fit = StainFit{};
    std::copy(he, he + 6, fit.he);
    fit.tissue_pixels = in.pixels_per_image();
    fit.status = kFitOk;
    stain_cpu::fit_max_c(in.image(i), in.pixels_per_image(), od, slots, scratch, fit);
  });
}

}  // namespace hf
