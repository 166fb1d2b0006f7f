// macenko_fit_cpu (stain/macenko.h) against HEnorm_python's recipe written
// plainly in double: OD per pixel with log, np.cov, eigenvectors by power
// iteration, atan2 per pixel, sort-based numpy percentiles. CUDA vs CPU.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "core/runtime.h"
#include "harness.h"
#include "stain/macenko.h"
#include "test_support.h"

using namespace hf;
using namespace hf_test;

namespace {

MacenkoParams canonical() {
  MacenkoParams p;
  p.od = OdParams{240.f, 1.f, -INFINITY};
  return p;
}

// Largest eigenvector of a symmetric 3x3 by power iteration.
void power_vector(const double a[9], double v[3]) {
  v[0] = 0.6, v[1] = 0.5, v[2] = 0.62;
  for (int it = 0; it < 2000; ++it) {
    double w[3] = {a[0] * v[0] + a[1] * v[1] + a[2] * v[2], a[3] * v[0] + a[4] * v[1] + a[5] * v[2],
                   a[6] * v[0] + a[7] * v[1] + a[8] * v[2]};
    double n = std::sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
    for (int k = 0; k < 3; ++k) v[k] = w[k] / n;
  }
}

struct ReferenceFit {
  double he[6], max_c[2];
  int64_t tissue = 0;
};

ReferenceFit reference_macenko(const uint8_t* rgb, int64_t pixels, double io, double beta, double alpha) {
  std::vector<std::array<double, 3>> all(pixels), tissue;
  for (int64_t i = 0; i < pixels; ++i) {
    for (int c = 0; c < 3; ++c) all[i][c] = -std::log((rgb[3 * i + c] + 1.0) / io);
    if (all[i][0] >= beta && all[i][1] >= beta && all[i][2] >= beta) tissue.push_back(all[i]);
  }
  ReferenceFit f;
  f.tissue = static_cast<int64_t>(tissue.size());
  double mean[3] = {0, 0, 0}, cov[9] = {0};
  for (auto& o : tissue)
    for (int k = 0; k < 3; ++k) mean[k] += o[k] / tissue.size();
  for (auto& o : tissue)
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) cov[a * 3 + b] += (o[a] - mean[a]) * (o[b] - mean[b]) / (tissue.size() - 1);
  double e1[3], e2[3];
  power_vector(cov, e1);
  double l1 = 0;
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) l1 += e1[a] * cov[a * 3 + b] * e1[b];
  double deflated[9];
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) deflated[a * 3 + b] = cov[a * 3 + b] - l1 * e1[a] * e1[b];
  power_vector(deflated, e2);
  std::vector<double> phi;
  for (auto& o : tissue)
    phi.push_back(std::atan2(o[0] * e1[0] + o[1] * e1[1] + o[2] * e1[2], o[0] * e2[0] + o[1] * e2[1] + o[2] * e2[2]));
  const double lo = numpy_percentile(phi, alpha), hi = numpy_percentile(phi, 100 - alpha);
  double v_min[3], v_max[3];
  for (int k = 0; k < 3; ++k) {
    v_min[k] = e2[k] * std::cos(lo) + e1[k] * std::sin(lo);
    v_max[k] = e2[k] * std::cos(hi) + e1[k] * std::sin(hi);
  }
  const double* h = v_min[0] > v_max[0] ? v_min : v_max;
  const double* e = v_min[0] > v_max[0] ? v_max : v_min;
  for (int k = 0; k < 3; ++k) f.he[k] = h[k], f.he[3 + k] = e[k];
  std::vector<double> c0, c1;
  for (auto& o : all) {
    double c[2];
    reference_lstsq(f.he, o.data(), c);
    c0.push_back(c[0]), c1.push_back(c[1]);
  }
  f.max_c[0] = numpy_percentile(c0, 99), f.max_c[1] = numpy_percentile(c1, 99);
  return f;
}

// An eigenvector's sign is arbitrary; the fitted stains are not.
void check_fit_matches(const StainFit& fit, const ReferenceFit& ref) {
  CHECK(fit.status == kFitOk);
  CHECK(fit.tissue_pixels == ref.tissue);
  for (int k = 0; k < 6; ++k) CHECK_NEAR(fit.he[k], ref.he[k], 2e-4);
  for (int k = 0; k < 2; ++k) CHECK_NEAR(fit.max_c[k], ref.max_c[k], 1e-3 * ref.max_c[k]);
}

}  // namespace

HF_TEST("macenko fit matches HEnorm_python's recipe on a synthetic H&E image") {
  const int64_t h = 211, w = 173;
  const auto rgb = synthetic_he(1, h, w, 1);
  StainFit fit;
  macenko_fit_cpu(batch_of(rgb, 1, h, w), canonical(), &fit);
  check_fit_matches(fit, reference_macenko(rgb.data(), h * w, 240, 0.15, 1));
}

HF_TEST("macenko fit of a large image (threads inside the image) matches the recipe") {
  const int64_t h = 523, w = 611;
  const auto rgb = synthetic_he(1, h, w, 2);
  StainFit fit;
  macenko_fit_cpu(batch_of(rgb, 1, h, w), canonical(), &fit);
  check_fit_matches(fit, reference_macenko(rgb.data(), h * w, 240, 0.15, 1));
}

HF_TEST("macenko fits every image of a batch of 257 as if it were alone") {
  const int64_t n = 257, h = 13, w = 11;
  const auto rgb = synthetic_he(n, h, w, 3, 0.2);
  std::vector<StainFit> fits(n);
  macenko_fit_cpu(batch_of(rgb, n, h, w), canonical(), fits.data());
  for (int64_t i : {int64_t{0}, int64_t{100}, n - 1}) {
    StainFit alone;
    macenko_fit_cpu(RgbBatch{rgb.data() + i * h * w * 3, 1, h, w}, canonical(), &alone);
    CHECK(fits[i].status == alone.status);
    for (int k = 0; k < 6; ++k) CHECK(fits[i].he[k] == alone.he[k]);
    if (alone.status == kFitOk) check_fit_matches(fits[i], reference_macenko(rgb.data() + i * h * w * 3, h * w, 240, 0.15, 1));
  }
}

HF_TEST("macenko gives bit-identical fits with one thread and with several") {
  const int64_t h = 401, w = 389;  // large enough to split inside the image
  const auto rgb = synthetic_he(1, h, w, 6);
  const int threads = cpu_threads();
  StainFit one, many;
  set_cpu_threads(1);
  macenko_fit_cpu(batch_of(rgb, 1, h, w), canonical(), &one);
  set_cpu_threads(std::max(2, threads));
  macenko_fit_cpu(batch_of(rgb, 1, h, w), canonical(), &many);
  set_cpu_threads(threads);
  for (int k = 0; k < 6; ++k) CHECK(one.he[k] == many.he[k]);
  for (int k = 0; k < 2; ++k) CHECK(one.max_c[k] == many.max_c[k]);
  CHECK(one.tissue_pixels == many.tissue_pixels);
}

HF_TEST("macenko refuses all-white, all-black, 1x1 and single-colour images, and the transform leaves them unchanged") {
  struct Case {
    std::vector<uint8_t> rgb;
    int64_t h, w;
    int32_t status;
  };
  const std::vector<Case> cases = {
      {uniform_image(1, 17, 19, 255, 255, 255), 17, 19, kFitTooFewTissuePixels},
      {uniform_image(1, 1, 1, 120, 60, 150), 1, 1, kFitTooFewTissuePixels},
      {uniform_image(1, 16, 16, 0, 0, 0), 16, 16, kFitDegenerate},
      {uniform_image(1, 9, 7, 150, 80, 160), 9, 7, kFitDegenerate},
  };
  for (const Case& c : cases) {
    StainFit fit;
    macenko_fit_cpu(batch_of(c.rgb, 1, c.h, c.w), canonical(), &fit);
    CHECK(fit.status == c.status);
    for (float v : fit.he) CHECK(std::isfinite(v));
    StainTransformParams tp;
    tp.od = canonical().od;
    const float ref[6] = {0.5626f, 0.7201f, 0.4062f, 0.2159f, 0.8012f, 0.5581f};
    std::copy(ref, ref + 6, tp.target_he);
    std::vector<uint8_t> out(c.rgb.size());
    stain_transform_cpu(batch_of(c.rgb, 1, c.h, c.w), &fit, tp, out.data(), nullptr, nullptr);
    CHECK(out == c.rgb);
  }
}

HF_TEST("macenko with the tiatoolbox preset gives unit rows, hematoxylin first") {
  const auto rgb = synthetic_he(1, 97, 89, 4);
  MacenkoParams p;
  p.od = OdParams{255.f, 0.f, 1e-6f};
  p.tissue.rule = TissueRule::Luminosity;
  p.unit_rows = true;
  StainFit fit;
  macenko_fit_cpu(batch_of(rgb, 1, 97, 89), p, &fit);
  CHECK(fit.status == kFitOk);
  for (int r = 0; r < 2; ++r)
    CHECK_NEAR(std::sqrt(fit.he[3 * r] * fit.he[3 * r] + fit.he[3 * r + 1] * fit.he[3 * r + 1] + fit.he[3 * r + 2] * fit.he[3 * r + 2]), 1.0, 1e-6);
  CHECK(fit.he[0] > fit.he[3]);
  CHECK(fit.tissue_pixels > 0 && fit.tissue_pixels < 97 * 89);
}

HF_TEST("macenko on CUDA equals the CPU reference (1x1, odd sizes, batch 1 and 257)") {
  SKIP_WITHOUT_CUDA();
  for (auto [n, h, w] : {std::array<int64_t, 3>{1, 1, 1}, {1, 211, 173}, {257, 13, 11}}) {
    const auto rgb = synthetic_he(n, h, w, 5, 0.2);
    std::vector<StainFit> cpu(n), gpu(n);
    for (bool tia : {false, true}) {
      MacenkoParams p = canonical();
      if (tia) p.od = OdParams{255.f, 0.f, 1e-6f}, p.tissue.rule = TissueRule::Luminosity, p.unit_rows = true;
      macenko_fit_cpu(batch_of(rgb, n, h, w), p, cpu.data());
      macenko_fit_cuda(batch_of(rgb, n, h, w), p, gpu.data());
      for (int64_t i = 0; i < n; ++i) {
        CHECK(gpu[i].status == cpu[i].status);
        CHECK(gpu[i].tissue_pixels == cpu[i].tissue_pixels);
        for (int k = 0; k < 6; ++k) CHECK_NEAR(gpu[i].he[k], cpu[i].he[k], 1e-4);
        for (int k = 0; k < 2; ++k) CHECK_NEAR(gpu[i].max_c[k], cpu[i].max_c[k], 1e-3 * (1 + std::fabs(cpu[i].max_c[k])));
      }
    }
  }
}
