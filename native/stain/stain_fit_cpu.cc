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

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

namespace {

// max_c from per-block concentrations: compute(b, e) fills c0[b, e) and
// c1[b, e); then histograms and the exact 99th percentiles.
template <typename Compute>
void max_c_of(int64_t pixels, const double pinv[6], const OdTable& od, float* c0, float* c1, int slots,
              StainScratch& scratch, StainFit& fit, Compute&& compute) {
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
  for (int s = 0; s < slots; ++s) {
    scratch.hist_a[s].reset(bound_lo[0], bound_hi[0], pixels);
    scratch.hist_b[s].reset(bound_lo[1], bound_hi[1], pixels);
  }
  for_blocks(pixels, slots, [&](int slot, int64_t blk, int64_t b, int64_t e) {
    RankHistogram& h0 = scratch.hist_a[slot];
    RankHistogram& h1 = scratch.hist_b[slot];
    compute(b, e);
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
  scratch.reserve(pixels, slots);
  float* c0 = scratch.values_a.data();
  float* c1 = scratch.values_b.data();
  max_c_of(pixels, pinv, od, c0, c1, slots, scratch, fit,
           [&](int64_t b, int64_t e) { concentrations(rgb + 3 * b, e - b, od, p, c0 + b, c1 + b); });
}

namespace {

// One concentration from a pixel's plane projections, rounded the same way
// on every path (a pinned fused multiply-add, not left to contraction).
inline float plane_concentration(float qa, float qb, float x, float y) {
#if defined(__FMA__)
  return __builtin_fmaf(qa, x, qb * y);
#else
  return qa * x + qb * y;
#endif
}

// The exact linear percentile at `rank` of c = qa·x + qb·y over n pixels,
// one thread, without a histogram: a strided sample gives a threshold t a
// little below the wanted rank, one pass counts and gathers the values
// ≥ t, and the rank is selected among those. False (nothing decided)
// when t turns out not to lie below the rank, too many values lie above it,
// or a value is NaN; the caller then takes the histogram path.
bool tail_percentile(const float* x, const float* y, int64_t n, float qa, float qb, const OrderRank& rank, float* buf,
                     int64_t cap, double* result) {
  const int64_t m = std::min<int64_t>(n, std::max<int64_t>(256, n / 64));
  if (n < 64 || cap < m + 16) return false;
  const int64_t stride = n / m;
  for (int64_t i = 0; i < m; ++i) buf[i] = plane_concentration(qa, qb, x[i * stride], y[i * stride]);
  // The sample's share below the threshold: the rank's, less five standard
  // errors of a sampled share (and one sample).
  const double p = static_cast<double>(rank.k) / static_cast<double>(n);
  const double share = p - 5.0 * std::sqrt(p * (1.0 - p) / static_cast<double>(m)) - 1.0 / static_cast<double>(m);
  if (!(share > 0)) return false;
  const int64_t sample_rank = std::min<int64_t>(m - 1, static_cast<int64_t>(share * static_cast<double>(m)));
  std::nth_element(buf, buf + sample_rank, buf + m);
  const float t = buf[sample_rank];
  if (t != t) return false;
  int64_t found = 0, nans = 0;
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 vqa = _mm512_set1_ps(qa), vqb = _mm512_set1_ps(qb), vt = _mm512_set1_ps(t);
  for (; i + 16 <= n; i += 16) {
    if (found + 16 > cap) return false;
    const __m512 c = _mm512_fmadd_ps(vqa, _mm512_loadu_ps(x + i), _mm512_mul_ps(vqb, _mm512_loadu_ps(y + i)));
    const __mmask16 above = _mm512_cmp_ps_mask(c, vt, _CMP_GE_OQ);
    nans += _mm512_cmp_ps_mask(c, c, _CMP_UNORD_Q) != 0;
    _mm512_storeu_ps(buf + found, _mm512_maskz_compress_ps(above, c));
    found += __builtin_popcount(above);
  }
#endif
  for (; i < n; ++i) {
    if (found + 1 > cap) return false;
    const float c = plane_concentration(qa, qb, x[i], y[i]);
    buf[found] = c;
    found += c >= t;
    nans += c != c;
  }
  if (nans) return false;
  const int64_t below = n - found;
  if (rank.k < below) return false;
  float* kth = buf + (rank.k - below);
  std::nth_element(buf, kth, buf + found);
  OrderPair pair;
  pair.frac = rank.frac;
  pair.lo = pair.hi = static_cast<double>(*kth);
  if (rank.has_next && kth + 1 != buf + found) pair.hi = static_cast<double>(*std::min_element(kth + 1, buf + found));
  *result = pair.interpolate();
  return true;
}

}  // namespace

void fit_max_c_in_plane(float* x, float* y, int64_t pixels, const double e1[3], const double e2[3], const OdTable& od,
                        int slots, StainScratch& scratch, StainFit& fit) {
  double pinv[6];
  if (pixels < 1 || !stain_pinv(fit.he, pinv)) {
    fit.status = kFitDegenerate;
    fit.max_c[0] = fit.max_c[1] = 0.f;
    return;
  }
  // c = pinv·od, and pinv's rows lie in the plane of e1, e2 (orthonormal):
  // c = (pinv·e2)·x + (pinv·e1)·y.
  float q[4];
  for (int k = 0; k < 2; ++k) {
    double a = 0, b = 0;
    for (int j = 0; j < 3; ++j) a += pinv[k * 3 + j] * e2[j], b += pinv[k * 3 + j] * e1[j];
    q[2 * k] = static_cast<float>(a);
    q[2 * k + 1] = static_cast<float>(b);
  }
  scratch.reserve(pixels, slots);
  // One thread on a large image: the sampled threshold (below); on small
  // images a histogram of all values costs less than the sample's selection.
  if (slots == 1 && pixels >= (int64_t{1} << 16)) {
    const OrderRank rank = percentile_rank(99.0, pixels);
    const int64_t cap = std::min<int64_t>(static_cast<int64_t>(scratch.values_a.size()), pixels / 4 + 64);
    double m0, m1;
    if (tail_percentile(x, y, pixels, q[0], q[1], rank, scratch.values_a.data(), cap, &m0) &&
        tail_percentile(x, y, pixels, q[2], q[3], rank, scratch.values_a.data(), cap, &m1)) {
      fit.max_c[0] = static_cast<float>(m0);
      fit.max_c[1] = static_cast<float>(m1);
      if (!(fit.max_c[0] > 0.f) || !(fit.max_c[1] > 0.f) || !std::isfinite(fit.max_c[0]) ||
          !std::isfinite(fit.max_c[1]))
        fit.status = kFitDegenerate;
      return;
    }
  }
  max_c_of(pixels, pinv, od, x, y, slots, scratch, fit, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float xi = x[i], yi = y[i];
      x[i] = plane_concentration(q[0], q[1], xi, yi);
      y[i] = plane_concentration(q[2], q[3], xi, yi);
    }
  });
}

namespace {

constexpr int64_t kTile = 512;  // pixels rendered per stack buffer

// Renders out[c] = io·exp(−Σ_i m[c][i]·od_i) for one image, tile by tile:
// table lookups and the 3x3 product first, then exp and the uint8 store in a
// contiguous loop the compiler vectorizes. (The general path: ExpTables below
// is used whenever its exponents stay in range.)
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
    for (int64_t i = 0; i < 3 * count; ++i) dst[i] = render_value(io, tile[i], overflow);
  }
}

// Inputs are uint8, so exp(−Σ_j m[c][j]·od_j) = Π_j exp(−m[c][j]·od(level_j)):
// per input channel j and level v, the factors of the three outputs (io folded
// into the red ones), each exp taken in double and rounded once to float. A
// pixel is then three 4-float loads and two products, no exp.
struct ExpTables {
  alignas(64) float t[3][256][4];
};
// False (tables unusable) when an exponent leaves [-40, 40]: then no product
// of three factors can be 0·inf, and the general path handles the rest.
bool build_exp_tables(const OdTable& od, const double m[9], double io, ExpTables* out) {
  bool ok = true;
  for (int j = 0; j < 3; ++j)
    for (int c = 0; c < 3; ++c) {
      const double mc = m[c * 3 + j], s = j == 0 ? io : 1.0;
      double lo = 0, hi = 0;
      alignas(64) double arg[256];
      for (int v = 0; v < 256; ++v) {
        arg[v] = -mc * od.od64[v];
        lo = arg[v] < lo ? arg[v] : lo;
        hi = arg[v] > hi ? arg[v] : hi;
      }
      ok = ok && lo >= -40.0 && hi <= 40.0;
      for (int v = 0; v < 256; ++v) out->t[j][v][c] = static_cast<float>(s * fast_exp_double(arg[v]));
    }
  for (int j = 0; j < 3; ++j)
    for (int v = 0; v < 256; ++v) out->t[j][v][3] = 1.f;
  return ok;
}

void render_tables(const uint8_t* rgb, int64_t pixels, const ExpTables& tables, float overflow, uint8_t* out) {
  typedef float v4f __attribute__((vector_size(16)));
  int64_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  // Four pixels per step: four 4-lane products in one register, the overflow
  // rule, truncation, and the twelve bytes kept of the sixteen.
  const __m512 limit = _mm512_set1_ps(255.f), over = _mm512_set1_ps(overflow);
  const __m128i keep = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
  auto pixel = [&](const uint8_t* px) {
    const __m128 a = _mm_load_ps(tables.t[0][px[0]]), b = _mm_load_ps(tables.t[1][px[1]]);
    const __m128 c = _mm_load_ps(tables.t[2][px[2]]);
    return _mm_mul_ps(_mm_mul_ps(a, b), c);
  };
  for (; i + 4 <= pixels; i += 4) {
    const uint8_t* px = rgb + 3 * i;
    __m512 v = _mm512_zextps128_ps512(pixel(px));
    v = _mm512_insertf32x4(v, pixel(px + 3), 1);
    v = _mm512_insertf32x4(v, pixel(px + 6), 2);
    v = _mm512_insertf32x4(v, pixel(px + 9), 3);
    v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, limit, _CMP_GT_OQ), v, over);
    const __m128i bytes = _mm512_maskz_cvtepi32_epi8(0xffff, _mm512_maskz_cvttps_epi32(0xffff, v));
    _mm_mask_storeu_epi8(out + 3 * i, 0x0fff, _mm_shuffle_epi8(bytes, keep));
  }
#endif
  for (; i < pixels; ++i) {
    const uint8_t* px = rgb + 3 * i;
    v4f a, b, c;
    std::memcpy(&a, tables.t[0][px[0]], sizeof a);
    std::memcpy(&b, tables.t[1][px[1]], sizeof b);
    std::memcpy(&c, tables.t[2][px[2]], sizeof c);
    const v4f v = a * b * c;
    for (int k = 0; k < 3; ++k) {
      float x = v[k];
      x = x > 255.f ? overflow : x;
      out[3 * i + k] = static_cast<uint8_t>(static_cast<int32_t>(x));
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
    struct Render {
      float m[9];
      double md[9];
      ExpTables tables;
      bool use_tables;
    };
    auto matrix = [&](bool use_h, bool use_e, Render& r) {
      stain_cpu::transform_matrix(p, fit, pinv, use_h, use_e, r.md);
      for (int k = 0; k < 9; ++k) r.m[k] = static_cast<float>(r.md[k]);
      r.use_tables = build_exp_tables(od, r.md, p.od.io, &r.tables);
    };
    Render both, h, e;
    matrix(true, true, both);
    if (h_only) matrix(true, false, h);
    if (e_only) matrix(false, true, e);
    auto run = [&](const Render& r, int64_t b, int64_t e, uint8_t* dst) {
      if (r.use_tables)
        render_tables(rgb + 3 * b, e - b, r.tables, p.overflow_value, dst + offset + 3 * b);
      else
        render(rgb + 3 * b, e - b, od, r.m, p.od.io, p.overflow_value, dst + offset + 3 * b);
    };
    for_blocks(n_pixels, slots, [&](int, int64_t, int64_t b, int64_t e_) {
      run(both, b, e_, out);
      if (h_only) run(h, b, e_, h_only);
      if (e_only) run(e, b, e_, e_only);
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
