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
#include <vector>

// No code here reads floating-point exception flags; without trapping math GCC
// may if-convert selects and vectorize the per-tile loops.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "stain/macenko.h"
#include "stain/stain_fit_internal.h"
#include "stain/stain_math.h"

namespace hf {

namespace {

using namespace stain_cpu;

// Strictly increasing in atan2(y, x) over (−π, π]: 1 − x/(|x|+|y|), mirrored
// for y < 0; in [−2, 2].
inline float pseudo_angle(float x, float y) {
  float s = std::fabs(x) + std::fabs(y);
  s = s > 1e-30f ? s : 1e-30f;
  return std::copysign(1.f - x / s, y);
}
inline double angle_of_pseudo(double d) {
  double a = std::fabs(d);
  double x = 1.0 - a, y = 1.0 - std::fabs(x);
  double phi = std::atan2(y, x);
  return d < 0 ? -phi : phi;
}

// Layout of one block's sums in StainScratch::block_sums.
struct CovarianceSums {
  double count = 0, sum[3] = {0, 0, 0}, cross[6] = {0, 0, 0, 0, 0, 0};  // xx xy xz yy yz zz
};
static_assert(sizeof(CovarianceSums) == 10 * sizeof(double), "CovarianceSums is ten doubles");

void fit_image(const uint8_t* rgb, int64_t pixels, const MacenkoParams& p, const OdTable& od, int slots,
               StainScratch& scratch, StainFit& fit) {
  fit = StainFit{};
  TissueTable tissue;
  make_tissue_table(rgb, pixels, p.tissue, p.od, slots, &tissue);

  const int64_t blocks = block_count(pixels);
  scratch.block_sums.assign(blocks * 10, 0.0);
  CovarianceSums* block_sums = reinterpret_cast<CovarianceSums*>(scratch.block_sums.data());
  for_blocks(pixels, slots, [&](int, int64_t blk, int64_t b, int64_t e) {
    // Branch-free: a non-tissue pixel contributes zeros (w = 0). Four-lane
    // double accumulators {r, g, b, 1}·w, and their products with r, g, b.
    typedef double v4d __attribute__((vector_size(32)));
    v4d sum = {0, 0, 0, 0}, by_r = sum, by_g = sum, by_b = sum;
    for (int64_t i = b; i < e; ++i) {
      const uint8_t* px = rgb + 3 * i;
      const double w = tissue.is_tissue(px) ? 1.0 : 0.0;
      const double r = od.od[px[0]], g = od.od[px[1]], bl = od.od[px[2]];
      const v4d a = {r * w, g * w, bl * w, w};
      sum += a;
      by_r += a * r;
      by_g += a * g;
      by_b += a * bl;
    }
    CovarianceSums s;
    s.count = sum[3];
    s.sum[0] = sum[0], s.sum[1] = sum[1], s.sum[2] = sum[2];
    s.cross[0] = by_r[0], s.cross[1] = by_g[0], s.cross[2] = by_b[0];
    s.cross[3] = by_g[1], s.cross[4] = by_b[1], s.cross[5] = by_b[2];
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
  // np.cov: (Σ od·odᵀ − n·μμᵀ) / (n − 1).
  double mean[3], cov[9];
  for (int k = 0; k < 3; ++k) mean[k] = total.sum[k] / n;
  const int upper[3][3] = {{0, 1, 2}, {1, 3, 4}, {2, 4, 5}};
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) cov[a * 3 + b] = (total.cross[upper[a][b]] - n * mean[a] * mean[b]) / (n - 1);
  double evals[3], evecs[9];
  eigh3(cov, evals, evecs);
  double e1[3] = {evecs[2], evecs[5], evecs[8]}, e2[3] = {evecs[1], evecs[4], evecs[7]};
  if (e1[0] * mean[0] + e1[1] * mean[1] + e1[2] * mean[2] < 0)
    for (double& v : e1) v = -v;
  const float f1[3] = {float(e1[0]), float(e1[1]), float(e1[2])};
  const float f2[3] = {float(e2[0]), float(e2[1]), float(e2[2])};

  // Pseudo-angles of the tissue pixels, each block compacted into its own run.
  scratch.reserve(pixels, slots);
  for (int s = 0; s < slots; ++s) scratch.hist_a[s].reset(-2.0, 2.0);
  float* angles = scratch.values_a.data();
  for_blocks(pixels, slots, [&](int slot, int64_t blk, int64_t b, int64_t e) {
    RankHistogram& hist = scratch.hist_a[slot];
    // Per tile: OD, projections and pseudo-angles of every pixel (a loop the
    // compiler vectorizes), then a branch-free compaction of the tissue ones.
    constexpr int64_t kTile = 256;
    alignas(64) float tile_angle[kTile];
    alignas(64) uint8_t tile_tissue[kTile];
    int64_t kept = b;
    for (int64_t t0 = b; t0 < e; t0 += kTile) {
      const int64_t count = std::min(kTile, e - t0);
      const uint8_t* px = rgb + 3 * t0;
      for (int64_t i = 0; i < count; ++i) {
        float r = od.od[px[3 * i]], g = od.od[px[3 * i + 1]], bl = od.od[px[3 * i + 2]];
        float x = f2[0] * r + f2[1] * g + f2[2] * bl;
        float y = f1[0] * r + f1[1] * g + f1[2] * bl;
        tile_angle[i] = pseudo_angle(x, y);
        tile_tissue[i] = tissue.score[0][px[3 * i]] + tissue.score[1][px[3 * i + 1]] + tissue.score[2][px[3 * i + 2]] <
                         tissue.below;
      }
      for (int64_t i = 0; i < count; ++i) {
        angles[kept] = tile_angle[i];
        kept += tile_tissue[i];
      }
    }
    for (int64_t i = b; i < kept; ++i) hist.add(angles[i]);
    scratch.segments[blk] = Segment{b, kept - b};
  });
  for (int s = 1; s < slots; ++s) scratch.hist_a[0].merge(scratch.hist_a[s]);

  auto percentile_angle = [&](double percent) {
    OrderPair pair = select_order_pair(angles, scratch.segments.data(), static_cast<int>(blocks), scratch.hist_a[0],
                                       percentile_rank(percent, n));
    return OrderPair::lerp(angle_of_pseudo(pair.lo), angle_of_pseudo(pair.hi), pair.frac);
  };
  const double phi_min = percentile_angle(p.alpha), phi_max = percentile_angle(100.0 - p.alpha);
  double v_min[3], v_max[3];
  for (int k = 0; k < 3; ++k) {
    v_min[k] = e2[k] * std::cos(phi_min) + e1[k] * std::sin(phi_min);
    v_max[k] = e2[k] * std::cos(phi_max) + e1[k] * std::sin(phi_max);
  }
  const double* h = v_min[0] > v_max[0] ? v_min : v_max;
  const double* e = v_min[0] > v_max[0] ? v_max : v_min;
  double h_norm = 1, e_norm = 1;
  if (p.unit_rows) {
    h_norm = std::sqrt(h[0] * h[0] + h[1] * h[1] + h[2] * h[2]);
    e_norm = std::sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2]);
    if (!(h_norm > 0) || !(e_norm > 0)) {
      fit.status = kFitDegenerate;
      return;
    }
  }
  for (int k = 0; k < 3; ++k) {
    fit.he[k] = static_cast<float>(h[k] / h_norm);
    fit.he[3 + k] = static_cast<float>(e[k] / e_norm);
  }
  fit.status = kFitOk;
  fit_max_c(rgb, pixels, od, slots, scratch, fit);
}

}  // namespace

void macenko_fit_cpu(const RgbBatch& in, const MacenkoParams& p, StainFit* fits) {
  const OdTable od = make_od_table(p.od);
  for_each_image(in, [&](int64_t i, int slots, StainScratch& scratch) {
    fit_image(in.image(i), in.pixels_per_image(), p, od, slots, scratch, fits[i]);
  });
}

}  // namespace hf
