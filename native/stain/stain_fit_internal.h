// Pieces shared by the CPU stain kernels (Macenko, Vahadane, fixed matrices,
// the transform): 256-entry lookup tables for uint8 inputs, the tissue rules as
// table sums, the transform's matrix, a vectorizable exp, block-parallel
// iteration and max_c. The tables and the matrix are also what the CUDA twins
// upload (stain_fit_cuda.cu), so both backends read the same values.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "color/optical_density.h"
#include "core/fast_exp.h"
#include "core/host_device.h"
#include "core/image.h"
#include "core/parallel.h"
#include "core/runtime.h"
#include "stain/order_statistics.h"
#include "stain/stain_fit.h"

namespace hf {
namespace stain_cpu {

// Pixels per block: partial sums are kept per block and combined in block
// order, so results do not depend on the number of threads.
constexpr int64_t kPixelBlock = 1 << 16;

// od(v) for every uint8 level, computed in double (numpy's precision).
struct OdTable {
  float od[256];
  double od64[256];  // the same values before rounding to float
  float min_od, max_od;
};
OdTable make_od_table(const OdParams& p);

// A tissue rule as a table sum: pixel (r, g, b) is tissue when
// score[0][r] + score[1][g] + score[2][b] < below. The OD-threshold rule is
// also min(od_r, od_g, od_b) ≥ min_od_cut on the OD table's floats (exactly
// the same pixels), which hot loops use to skip three lookups.
struct TissueTable {
  float score[3][256];
  float below;
  bool by_min_od = false;
  float min_od_cut = 0.f;
  bool is_tissue(const uint8_t* px) const { return score[0][px[0]] + score[1][px[1]] + score[2][px[2]] < below; }
};
// The luminosity rule depends on the image (its contrast stretch), hence `rgb`.
void make_tissue_table(const uint8_t* rgb, int64_t pixels, const TissueParams& tissue, const OdParams& od, int slots,
                       TissueTable* out);
// Runs body(std::true_type) when the tissue test may read min(od) ≥
// min_od_cut, body(std::false_type) when it must sum the score tables.
template <typename Body>
void with_tissue_test(const TissueTable& tissue, Body&& body) {
  if (tissue.by_min_od)
    body(std::true_type{});
  else
    body(std::false_type{});
}

// The stain transform's matrix for the stains kept (use_h, use_e), in double:
// M[j][c] = Σ_k target_he[k][j]·scale_k·pinv[k][c] with scale_k =
// target_max_c[k] / max_c[k], so that out = io·exp(−M·od). static: each
// backend's translation unit keeps its own copy, compiled with its own flags
// (the CPU levels contract a·b + c into an FMA, nvcc's host pass does not).
static inline void transform_matrix(const StainTransformParams& p, const StainFit& fit, const double pinv[6],
                                    bool use_h, bool use_e, double m[9]) {
  const double scale[2] = {static_cast<double>(p.target_max_c[0]) / fit.max_c[0],
                           static_cast<double>(p.target_max_c[1]) / fit.max_c[1]};
  for (int j = 0; j < 3; ++j)
    for (int c = 0; c < 3; ++c) {
      double v = 0;
      if (use_h) v += p.target_he[j] * scale[0] * pinv[c];
      if (use_e) v += p.target_he[3 + j] * scale[1] * pinv[3 + c];
      m[j * 3 + c] = v;
    }
}

using hf::fast_exp;  // core/fast_exp.h, shared with the CUDA twin

// One rendered channel value of the transform, from its exponent −M·od:
// io·exp(exponent), above 255 → overflow, truncated to uint8 as numpy's
// astype(uint8). Both backends' general render path (HF_HOST_DEVICE).
HF_HOST_DEVICE inline uint8_t render_value(float io, float exponent, float overflow) {
  float v = io * fast_exp(exponent);
  v = v > 255.f ? overflow : v;
  return static_cast<uint8_t>(static_cast<int32_t>(v));
}

// exp(x) in double for tables of floats: Cody–Waite reduction and a degree-8
// Taylor polynomial (relative error < 3e-10, far below a float's rounding);
// x clamped to [-700, 700].
inline double fast_exp_double(double x) {
  x = x < -700.0 ? -700.0 : (x > 700.0 ? 700.0 : x);
  double n = __builtin_floor(x * 1.4426950408889634 + 0.5);
  double r = x - n * 6.93147180369123816490e-01;
  r = r - n * 1.90821492927058770002e-10;
  double p = 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  int64_t bits = (static_cast<int64_t>(n) + 1023) << 52;
  double scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// Calls fn(slot, block, begin, end) for every block of [0, pixels); `slots`
// workers run in parallel, each on a contiguous run of blocks.
template <typename Fn>
void for_blocks(int64_t pixels, int slots, Fn&& fn) {
  const int64_t blocks = (pixels + kPixelBlock - 1) / kPixelBlock;
  if (blocks == 0) return;
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(slots, blocks));
  parallel_for(workers, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w)
      for (int64_t blk = blocks * w / workers; blk < blocks * (w + 1) / workers; ++blk)
        fn(static_cast<int>(w), blk, blk * kPixelBlock, std::min(pixels, (blk + 1) * kPixelBlock));
  });
}
inline int64_t block_count(int64_t pixels) { return (pixels + kPixelBlock - 1) / kPixelBlock; }

// Memory reused across the images (and calls) one thread fits: never
// allocated per pixel or per block, grown only when an image is larger than
// any before it on that thread; it stays with the thread (a pool thread) so
// repeated calls neither allocate nor page-fault.
struct StainScratch {
  std::vector<float> values_a, values_b, values_c;   // per-pixel scratch (angles / c0, c1 / projections)
  std::vector<Segment> segments;          // each block's run in values_*
  std::vector<double> block_sums;         // per-block partial sums
  std::vector<RankHistogram> hist_a, hist_b;  // one per slot
  void reserve(int64_t pixels, int slots) {
    if (static_cast<int64_t>(values_a.size()) < pixels) values_a.resize(pixels);
    if (static_cast<int64_t>(values_b.size()) < pixels) values_b.resize(pixels);
    if (static_cast<int64_t>(values_c.size()) < pixels) values_c.resize(pixels);
    segments.resize(block_count(pixels));
    if (static_cast<int>(hist_a.size()) < slots) {
      hist_a.resize(slots);
      hist_b.resize(slots);
    }
  }
};

inline StainScratch& thread_scratch() {
  static thread_local StainScratch scratch;
  return scratch;
}

// max_c = 99th percentile (numpy linear) of the least-squares concentrations
// c = pinv(he)·od over all pixels of one image. Sets fit.max_c and turns the
// status to kFitDegenerate when he is singular or a max_c is not > 0.
void fit_max_c(const uint8_t* rgb, int64_t pixels, const OdTable& od, int slots, StainScratch& scratch, StainFit& fit);
// The same from each pixel's projections x = e2·od, y = e1·od on the
// orthonormal e1, e2 whose plane holds both stain vectors (Macenko): x and y
// (pixels each) are overwritten with the concentrations.
void fit_max_c_in_plane(float* x, float* y, int64_t pixels, const double e1[3], const double e2[3], const OdTable& od,
                        int slots, StainScratch& scratch, StainFit& fit);

// Runs fit_image(index, slots, scratch) for every image: images in parallel
// (one slot each) when there are at least as many images as threads,
// otherwise one image after another with every thread inside each image.
template <typename Fn>
void for_each_image(const RgbBatch& in, Fn&& fit_image) {
  const int threads = cpu_threads();
  if (in.n >= threads || in.pixels_per_image() < 2 * kPixelBlock) {
    parallel_for(in.n, 1, [&](int64_t b, int64_t e) {
      StainScratch& scratch = thread_scratch();
      for (int64_t i = b; i < e; ++i) fit_image(i, 1, scratch);
    });
  } else {
    StainScratch& scratch = thread_scratch();
    for (int64_t i = 0; i < in.n; ++i) fit_image(i, threads, scratch);
  }
}

}  // namespace stain_cpu
}  // namespace hf
