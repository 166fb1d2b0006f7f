// Per-level lookup tables behind the CPU stain kernels: optical density and
// the two tissue rules (stain/stain_fit.h), so no pixel takes a logarithm.
#include <algorithm>
#include <cmath>
#include <limits>

#include "color/lab_opencv8.h"
#include "stain/stain_fit_internal.h"

namespace hf {
namespace stain_cpu {

OdTable make_od_table(const OdParams& p) {
  OdTable t;
  for (int v = 0; v < 256; ++v) {
    double light = v + static_cast<double>(p.offset);
    if (p.offset == 0.f && v == 0) light = 1.0;
    double od = std::max(-std::log(light / static_cast<double>(p.io)), static_cast<double>(p.min_od));
    t.od64[v] = od;
    t.od[v] = static_cast<float>(od);
  }
  t.min_od = *std::min_element(t.od, t.od + 256);
  t.max_od = *std::max_element(t.od, t.od + 256);
  return t;
}

namespace {

// Macenko 2009 / HEnorm_python: tissue when every channel's OD ≥ beta
// (compared in double, as numpy compares its float64 OD).
// The OD table is non-increasing in the level, so the passing levels are a
// prefix and the smallest passing float OD is an exact cut on the floats.
void od_threshold_table(const TissueParams& tissue, const OdParams& p, TissueTable* out) {
  const OdTable table = make_od_table(p);
  bool monotone = true;
  float cut = std::numeric_limits<float>::infinity();
  for (int v = 0; v < 256; ++v) {
    double light = v + static_cast<double>(p.offset);
    if (p.offset == 0.f && v == 0) light = 1.0;
    double od = std::max(-std::log(light / static_cast<double>(p.io)), static_cast<double>(p.min_od));
    const bool passes = od >= static_cast<double>(tissue.beta);
    for (int c = 0; c < 3; ++c) out->score[c][v] = passes ? 0.f : 1.f;
    if (passes) cut = std::min(cut, table.od[v]);
    if (v > 0 && table.od[v] > table.od[v - 1]) monotone = false;
  }
  out->below = 0.5f;
  // Equivalent only when no failing level has a float OD at or above the cut.
  bool exact = monotone;
  for (int v = 0; v < 256; ++v)
    if (out->score[0][v] != 0.f && table.od[v] >= cut) exact = false;
  out->by_min_od = exact;
  out->min_od_cut = cut;
}

// numpy.percentile (linear) of the uint8 values counted in `hist` (total n).
double byte_percentile(const int64_t hist[256], int64_t n, double p) {
  OrderRank rank = percentile_rank(p, n);
  auto value_at = [&](int64_t k) {
    int64_t seen = 0;
    for (int v = 0; v < 256; ++v) {
      seen += hist[v];
      if (seen > k) return static_cast<double>(v);
    }
    return 255.0;
  };
  double lo = value_at(rank.k), hi = rank.has_next ? value_at(rank.k + 1) : lo;
  return OrderPair::lerp(lo, hi, rank.frac);
}

// tiatoolbox get_luminosity_tissue_mask: contrast_enhancer (2–98 % percentiles
// over all channel values, skimage rescale_intensity to 0..255, astype uint8),
// then cv2 8-bit LAB (color/lab_opencv8.h), tissue when L/255 < threshold. L8 is monotone in the
// weighted gamma sum, so the rule is a threshold on three per-level tables
// (integers below 2^24, exact in float).
void luminosity_table(const uint8_t* rgb, int64_t pixels, const TissueParams& tissue, int slots, TissueTable* out) {
  const OpenCvLab8& lightness = OpenCvLab8::instance();
  const int64_t values = pixels * 3;
  std::vector<int64_t> partial(static_cast<size_t>(std::max(slots, 1)) * 256, 0);
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(slots, values / 65536 + 1));
  parallel_for(workers, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      int64_t* h = partial.data() + w * 256;
      for (int64_t i = values * w / workers; i < values * (w + 1) / workers; ++i) ++h[rgb[i]];
    }
  });
  int64_t hist[256] = {0};
  for (int64_t w = 0; w < workers; ++w)
    for (int v = 0; v < 256; ++v) hist[v] += partial[w * 256 + v];

  double p_low = byte_percentile(hist, values, 2.0), p_high = byte_percentile(hist, values, 98.0);
  if (p_low >= p_high) {
    int lo = 0, hi = 255;
    while (lo < 255 && hist[lo] == 0) ++lo;
    while (hi > 0 && hist[hi] == 0) --hi;
    p_low = lo;
    p_high = hi;
  }
  for (int v = 0; v < 256; ++v) {
    double s = v;
    if (p_high > p_low) s = (std::min(std::max(s, p_low), p_high) - p_low) / (p_high - p_low) * 255.0;
    const int stretched = static_cast<int>(s);
    for (int c = 0; c < 3; ++c)
      out->score[c][v] = static_cast<float>(OpenCvLab8::kY[c] * lightness.gamma(stretched));
  }
  // Tissue when L8/255 < threshold (compared in float: the threshold is a
  // float and numpy compares the same decimal in double). Find the smallest
  // weighted sum whose L8 fails.
  int l8_fail = 0;
  while (l8_fail < 256 && static_cast<float>(l8_fail) / 255.f < tissue.luminosity_threshold) ++l8_fail;
  int64_t sum_fail = 0;
  const int64_t max_sum = int64_t{4096} * 2040 + 4096;
  while (sum_fail <= max_sum && lightness.lightness_of_weighted_sum(sum_fail) < l8_fail) sum_fail += 4096;
  // Refine within the last step of 4096 (descale rounds at 2048).
  int64_t lo = std::max<int64_t>(0, sum_fail - 4096);
  while (lo < sum_fail && lightness.lightness_of_weighted_sum(lo) < l8_fail) ++lo;
  out->below = sum_fail > max_sum ? std::numeric_limits<float>::infinity() : static_cast<float>(lo);
}

}  // namespace

void make_tissue_table(const uint8_t* rgb, int64_t pixels, const TissueParams& tissue, const OdParams& od, int slots,
                       TissueTable* out) {
  if (tissue.rule == TissueRule::Luminosity)
    luminosity_table(rgb, pixels, tissue, slots, out);
  else
    od_threshold_table(tissue, od, out);
}

}  // namespace stain_cpu
}  // namespace hf
