// Macenko et al., ISBI 2009, as HEnorm_python computes it (stain/macenko.h):
//   OD of tissue pixels → covariance (np.cov) → eigenvectors e1 (largest), e2
//   φ = atan2(od·e1, od·e2); φ_min, φ_max = percentiles alpha, 100 − alpha
//   v = e2·cos φ + e1·sin φ; hematoxylin = the v with the larger red OD
//   max_c = 99th percentile of pinv(HE)·OD over all pixels
// Ranking uses a monotone pseudo-angle (no atan2 per pixel); atan2 is taken only
// on the order statistics. e1's sign is fixed so tissue projects positively,
// and the result does not depend on e2's (a reflection that swaps φ_min, φ_max).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

// No code here reads floating-point exception flags; without trapping math GCC
// may if-convert selects and vectorize the per-tile loops.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "stain/macenko.h"
#include "stain/macenko_plane.h"
#include "stain/stain_fit_internal.h"
#include "stain/stain_math.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace hf {

namespace {

using namespace stain_cpu;

// (std::min from a header compiled before the pragma above would not inline.)
inline float min3(float a, float b, float c) {
  const float m = a < b ? a : b;
  return m < c ? m : c;
}

// Layout of one block's sums in StainScratch::block_sums.
struct CovarianceSums {
  double count = 0, sum[3] = {0, 0, 0}, cross[6] = {0, 0, 0, 0, 0, 0};  // xx xy xz yy yz zz
};
static_assert(sizeof(CovarianceSums) == 10 * sizeof(double), "CovarianceSums is ten doubles");

void fit_image(const uint8_t* rgb, int64_t pixels, const MacenkoParams& p, const OdTable& od,
               const TissueTable* shared_tissue, int slots, StainScratch& scratch, StainFit& fit) {
  fit = StainFit{};
  TissueTable own_tissue;
  if (!shared_tissue) make_tissue_table(rgb, pixels, p.tissue, p.od, slots, &own_tissue);
  const TissueTable& tissue = shared_tissue ? *shared_tissue : own_tissue;

  const int64_t blocks = block_count(pixels);
  scratch.block_sums.assign(blocks * 10, 0.0);
  CovarianceSums* block_sums = reinterpret_cast<CovarianceSums*>(scratch.block_sums.data());
  for_blocks(pixels, slots, [&](int, int64_t blk, int64_t b, int64_t e) {
    // Per tile: masked OD in float (w = 0 for non-tissue pixels, a loop the
    // compiler vectorizes), then sums in eight-lane double accumulators with a
    // fixed lane per pixel position, so the result depends on nothing but the
    // block. Sums: {r, g, b, 1}·w and their products with r, g, b.
    typedef float v8f __attribute__((vector_size(32)));
    typedef double v8d __attribute__((vector_size(64)));
    constexpr int64_t kTile = 256;
    alignas(64) float tr[kTile], tg[kTile], tb[kTile], tw[kTile];
    v8d acc[10] = {};
    for (int64_t t0 = b; t0 < e; t0 += kTile) {
      const int64_t count = std::min(kTile, e - t0);
      const uint8_t* px = rgb + 3 * t0;
      with_tissue_test(tissue, [&](auto by_min_od) {
        for (int64_t i = 0; i < count; ++i) {
          const float r = od.od[px[3 * i]], g = od.od[px[3 * i + 1]], bl = od.od[px[3 * i + 2]];
          float w;
          if constexpr (decltype(by_min_od)::value) {
            w = min3(r, g, bl) >= tissue.min_od_cut ? 1.f : 0.f;
          } else {
            const float score = tissue.score[0][px[3 * i]] + tissue.score[1][px[3 * i + 1]] + tissue.score[2][px[3 * i + 2]];
            w = score < tissue.below ? 1.f : 0.f;
          }
          tw[i] = w, tr[i] = r * w, tg[i] = g * w, tb[i] = bl * w;
        }
      });
      const int64_t padded = (count + 7) & ~int64_t{7};
      for (int64_t i = count; i < padded; ++i) tw[i] = tr[i] = tg[i] = tb[i] = 0.f;
      for (int64_t i = 0; i < padded; i += 8) {
        v8f fr, fg, fb, fw;
        std::memcpy(&fr, tr + i, sizeof fr);
        std::memcpy(&fg, tg + i, sizeof fg);
        std::memcpy(&fb, tb + i, sizeof fb);
        std::memcpy(&fw, tw + i, sizeof fw);
        const v8d r = __builtin_convertvector(fr, v8d), g = __builtin_convertvector(fg, v8d);
        const v8d bl = __builtin_convertvector(fb, v8d), w = __builtin_convertvector(fw, v8d);
        acc[0] += w, acc[1] += r, acc[2] += g, acc[3] += bl;
        acc[4] += r * r, acc[5] += r * g, acc[6] += r * bl;
        acc[7] += g * g, acc[8] += g * bl, acc[9] += bl * bl;
      }
    }
    double total[10];
    for (int k = 0; k < 10; ++k) {
      total[k] = 0;
      for (int lane = 0; lane < 8; ++lane) total[k] += acc[k][lane];
    }
    CovarianceSums s;
    s.count = total[0];
    for (int k = 0; k < 3; ++k) s.sum[k] = total[1 + k];
    for (int k = 0; k < 6; ++k) s.cross[k] = total[4 + k];
    block_sums[blk] = s;
  });
  CovarianceSums total;
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const CovarianceSums& s = block_sums[blk];
    total.count += s.count;
    for (int k = 0; k < 3; ++k) total.sum[k] += s.sum[k];
    for (int k = 0; k < 6; ++k) total.cross[k] += s.cross[k];
  }
  const int64_t n = static_cast<int64_t>(total.count);
  fit.tissue_pixels = n;
  if (n < 2) {
    fit.status = kFitTooFewTissuePixels;
    return;
  }
  double e1[3], e2[3];
  macenko::plane(n, total.sum, total.cross, e1, e2);
  const float f1[3] = {float(e1[0]), float(e1[1]), float(e1[2])};
  const float f2[3] = {float(e2[0]), float(e2[1]), float(e2[2])};

  // Pseudo-angles of the tissue pixels, each block compacted into its own run.
  scratch.reserve(pixels, slots);
  for (int s = 0; s < slots; ++s) scratch.hist_a[s].reset(-2.0, 2.0, n);
  float* angles = scratch.values_a.data();
  float* proj_x = scratch.values_b.data();
  float* proj_y = scratch.values_c.data();
  for_blocks(pixels, slots, [&](int slot, int64_t blk, int64_t b, int64_t e) {
    RankHistogram& hist = scratch.hist_a[slot];
    // Per tile: OD, projections and pseudo-angles of every pixel (a loop the
    // compiler vectorizes), then a branch-free compaction of the tissue ones.
    constexpr int64_t kTile = 256;
    alignas(64) float tile_angle[kTile], tile_x[kTile], tile_y[kTile];
    alignas(64) uint8_t tile_tissue[kTile];
    int64_t kept = b;
    for (int64_t t0 = b; t0 < e; t0 += kTile) {
      const int64_t count = std::min(kTile, e - t0);
      const uint8_t* px = rgb + 3 * t0;
      with_tissue_test(tissue, [&](auto by_min_od) {
        for (int64_t i = 0; i < count; ++i) {
          const float r = od.od[px[3 * i]], g = od.od[px[3 * i + 1]], bl = od.od[px[3 * i + 2]];
          const float x = f2[0] * r + f2[1] * g + f2[2] * bl;
          const float y = f1[0] * r + f1[1] * g + f1[2] * bl;
          tile_angle[i] = macenko::pseudo_angle(x, y);
          tile_x[i] = x;
          tile_y[i] = y;
          if constexpr (decltype(by_min_od)::value) {
            tile_tissue[i] = static_cast<uint8_t>(min3(r, g, bl) >= tissue.min_od_cut);
          } else {
            const float score = tissue.score[0][px[3 * i]] + tissue.score[1][px[3 * i + 1]] + tissue.score[2][px[3 * i + 2]];
            tile_tissue[i] = static_cast<uint8_t>(score < tissue.below);
          }
        }
      });
      std::memcpy(proj_x + t0, tile_x, sizeof(float) * count);
      std::memcpy(proj_y + t0, tile_y, sizeof(float) * count);
      int64_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
      // Sixteen at a time: compress in a register, store all sixteen lanes
      // (kept ≤ this pixel's index, so they stay inside this block's run).
      for (; i + 16 <= count; i += 16) {
        const __mmask16 keep = _mm_test_epi8_mask(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tile_tissue + i)),
                                                  _mm_set1_epi8(1));
        _mm512_storeu_ps(angles + kept, _mm512_maskz_compress_ps(keep, _mm512_load_ps(tile_angle + i)));
        kept += __builtin_popcount(keep);
      }
#endif
      for (; i < count; ++i) {
        angles[kept] = tile_angle[i];
        kept += tile_tissue[i];
      }
    }
    hist.add_all(angles + b, kept - b);
    scratch.segments[blk] = Segment{b, kept - b};
  });
  for (int s = 1; s < slots; ++s) scratch.hist_a[0].merge(scratch.hist_a[s]);

  auto percentile_angle = [&](double percent) {
    OrderPair pair = select_order_pair(angles, scratch.segments.data(), static_cast<int>(blocks), scratch.hist_a[0],
                                       percentile_rank(percent, n));
    return OrderPair::lerp(macenko::angle_of_pseudo(pair.lo), macenko::angle_of_pseudo(pair.hi), pair.frac);
  };
  const double phi_min = percentile_angle(p.alpha), phi_max = percentile_angle(100.0 - p.alpha);
  if (!macenko_stain_vectors(e1, e2, phi_min, phi_max, p.unit_rows, fit.he)) {
    fit.status = kFitDegenerate;
    return;
  }
  fit.status = kFitOk;
  fit_max_c_in_plane(proj_x, proj_y, pixels, e1, e2, od, slots, scratch, fit);
}

}  // namespace

void macenko_fit_cpu(const RgbBatch& in, const MacenkoParams& p, StainFit* fits) {
  const OdTable od = make_od_table(p.od);
  // The OD-threshold rule does not depend on the image: one table for all.
  TissueTable shared;
  const bool per_image = p.tissue.rule == TissueRule::Luminosity;
  if (!per_image) make_tissue_table(nullptr, 0, p.tissue, p.od, 1, &shared);
  for_each_image(in, [&](int64_t i, int slots, StainScratch& scratch) {
    fit_image(in.image(i), in.pixels_per_image(), p, od, per_image ? nullptr : &shared, slots, scratch, fits[i]);
  });
}

}  // namespace hf
