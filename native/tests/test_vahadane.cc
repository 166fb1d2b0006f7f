// vahadane_fit_cpu (stain/vahadane.h) against the header's procedure written
// plainly in double (per-pixel candidates enumerated, 2x2 solves by Cramer),
// robustness on degenerate images, and CUDA vs CPU.
#include <array>
#include <cmath>
#include <vector>

#include "core/random.h"
#include "harness.h"
#include "stain/vahadane.h"
#include "test_support.h"

using namespace hf;
using namespace hf_test;

namespace {

// Canonical OD and the OD-threshold rule keep the reference free of the
// luminosity mask (which the Macenko tests cover).
VahadaneParams plain_params() {
  VahadaneParams p;
  p.od = OdParams{255.f, 0.f, 1e-6f};
  p.tissue.rule = TissueRule::OdThreshold;
  p.tissue.beta = 0.15f;
  p.max_pixels = 500;
  p.iterations = 12;
  p.seed = 7;
  return p;
}

bool reference_vahadane(const uint8_t* rgb, int64_t pixels, const VahadaneParams& p, double he[6]) {
  std::vector<std::array<double, 3>> tissue;
  for (int64_t i = 0; i < pixels; ++i) {
    std::array<double, 3> o;
    for (int c = 0; c < 3; ++c) o[c] = reference_od(rgb[3 * i + c], p.od.io, p.od.offset, p.od.min_od);
    if (o[0] >= p.tissue.beta && o[1] >= p.tissue.beta && o[2] >= p.tissue.beta) tissue.push_back(o);
  }
  std::vector<std::array<double, 3>> x = tissue;
  if (static_cast<int64_t>(tissue.size()) > p.max_pixels) {
    x.clear();
    const double u = static_cast<double>(splitmix64(p.seed, 0) >> 11) * std::pow(2.0, -53);
    const double step = static_cast<double>(tissue.size()) / p.max_pixels;
    for (int64_t k = 0; k < p.max_pixels; ++k) x.push_back(tissue[static_cast<size_t>(std::floor((k + u) * step))]);
  }
  double w[2][3] = {{0.65, 0.70, 0.29}, {0.07, 0.99, 0.11}};
  for (auto& row : w) {
    double n = std::sqrt(row[0] * row[0] + row[1] * row[1] + row[2] * row[2]);
    for (double& v : row) v /= n;
  }
  const double lam = p.lambda;
  for (int it = 0; it < p.iterations; ++it) {
    double g00 = 0, g01 = 0, g11 = 0;
    for (int k = 0; k < 3; ++k) g00 += w[0][k] * w[0][k], g01 += w[0][k] * w[1][k], g11 += w[1][k] * w[1][k];
    if (!(g00 * g11 - g01 * g01 > 1e-12 * (g00 + g11) * (g00 + g11))) return false;
    double a00 = 0, a01 = 0, a11 = 0, b[2][3] = {{0}};
    for (auto& o : x) {
      double b0 = 0, b1 = 0;
      for (int k = 0; k < 3; ++k) b0 += w[0][k] * o[k], b1 += w[1][k] * o[k];
      auto objective = [&](double c0, double c1) {
        double r = 0;
        for (int k = 0; k < 3; ++k) r += std::pow(o[k] - c0 * w[0][k] - c1 * w[1][k], 2);
        return 0.5 * r + lam * (c0 + c1);
      };
      const double det = g00 * g11 - g01 * g01;
      double c0 = (g11 * (b0 - lam) - g01 * (b1 - lam)) / det, c1 = (g00 * (b1 - lam) - g01 * (b0 - lam)) / det;
      if (c0 < 0 || c1 < 0) {
        const double h = std::max(0.0, (b0 - lam) / g00), e = std::max(0.0, (b1 - lam) / g11);
        if (objective(h, 0) <= objective(0, e)) c0 = h, c1 = 0;
        else c0 = 0, c1 = e;
      }
      a00 += c0 * c0, a01 += c0 * c1, a11 += c1 * c1;
      for (int k = 0; k < 3; ++k) b[0][k] += c0 * o[k], b[1][k] += c1 * o[k];
    }
    // Mairal et al. 2010: rows in order, clipped at 0, into the unit ball.
    const double am[2][2] = {{a00, a01}, {a01, a11}};
    for (int j = 0; j < 2; ++j) {
      if (!(am[j][j] > 1e-12)) continue;
      double updated[3];
      for (int k = 0; k < 3; ++k)
        updated[k] = std::max(0.0, w[j][k] + (b[j][k] - am[j][0] * w[0][k] - am[j][1] * w[1][k]) / am[j][j]);
      const double n = std::sqrt(updated[0] * updated[0] + updated[1] * updated[1] + updated[2] * updated[2]);
      for (int k = 0; k < 3; ++k) w[j][k] = updated[k] / std::max(n, 1.0);
    }
  }
  for (auto& row : w) {
    double n = std::sqrt(row[0] * row[0] + row[1] * row[1] + row[2] * row[2]);
    if (!(n > 0)) return false;
    for (double& v : row) v /= n;
  }
  const int h = w[0][0] >= w[1][0] ? 0 : 1;
  for (int k = 0; k < 3; ++k) he[k] = w[h][k], he[3 + k] = w[1 - h][k];
  return true;
}

}  // namespace

HF_TEST("vahadane follows the specified factorization step by step (seeded subsample included)") {
  const int64_t h = 61, w = 47;
  const auto rgb = synthetic_he(1, h, w, 41);
  const VahadaneParams p = plain_params();
  StainFit fit;
  vahadane_fit_cpu(batch_of(rgb, 1, h, w), p, &fit);
  double ref[6];
  CHECK(reference_vahadane(rgb.data(), h * w, p, ref));
  CHECK(fit.status == kFitOk);
  CHECK(fit.tissue_pixels > p.max_pixels);
  for (int k = 0; k < 6; ++k) CHECK_NEAR(fit.he[k], ref[k], 1e-5);
  CHECK(fit.max_c[0] > 0 && fit.max_c[1] > 0);
}

HF_TEST("vahadane is deterministic for a seed and fits each image of a batch of 257 alone") {
  const int64_t n = 257, h = 9, w = 7;
  const auto rgb = synthetic_he(n, h, w, 42, 0.2);
  VahadaneParams p = plain_params();
  p.max_pixels = 20;
  std::vector<StainFit> a(n), b(n);
  vahadane_fit_cpu(batch_of(rgb, n, h, w), p, a.data());
  vahadane_fit_cpu(batch_of(rgb, n, h, w), p, b.data());
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < 6; ++k) CHECK(a[i].he[k] == b[i].he[k]);
  StainFit alone;
  vahadane_fit_cpu(RgbBatch{rgb.data() + 200 * h * w * 3, 1, h, w}, p, &alone);
  for (int k = 0; k < 6; ++k) CHECK(alone.he[k] == a[200].he[k]);
}

HF_TEST("vahadane refuses all-white, 1x1 and all-black images without NaN") {
  const VahadaneParams p = plain_params();
  struct Case {
    std::vector<uint8_t> rgb;
    int64_t h, w;
  };
  const std::vector<Case> cases = {{uniform_image(1, 8, 8, 255, 255, 255), 8, 8},
                                   {uniform_image(1, 1, 1, 90, 40, 120), 1, 1},
                                   {uniform_image(1, 8, 8, 0, 0, 0), 8, 8}};
  for (const Case& c : cases) {
    StainFit fit;
    vahadane_fit_cpu(batch_of(c.rgb, 1, c.h, c.w), p, &fit);
    CHECK(fit.status != kFitOk);
    for (float v : fit.he) CHECK(std::isfinite(v));
    for (float v : fit.max_c) CHECK(std::isfinite(v));
  }
}

HF_TEST("vahadane on CUDA equals the CPU reference (1x1, odd sizes, batch 1 and 257)") {
  SKIP_WITHOUT_CUDA();
  for (auto [n, h, w] : {std::array<int64_t, 3>{1, 1, 1}, {1, 211, 173}, {257, 13, 11}}) {
    const auto rgb = synthetic_he(n, h, w, 43, 0.2);
    VahadaneParams p;
    p.od = OdParams{255.f, 0.f, 1e-6f};
    p.tissue.rule = TissueRule::Luminosity;
    std::vector<StainFit> cpu(n), gpu(n);
    vahadane_fit_cpu(batch_of(rgb, n, h, w), p, cpu.data());
    vahadane_fit_cuda(batch_of(rgb, n, h, w), p, gpu.data());
    for (int64_t i = 0; i < n; ++i) {
      CHECK(gpu[i].status == cpu[i].status);
      for (int k = 0; k < 6; ++k) CHECK_NEAR(gpu[i].he[k], cpu[i].he[k], 1e-4);
      for (int k = 0; k < 2; ++k) CHECK_NEAR(gpu[i].max_c[k], cpu[i].max_c[k], 1e-3 * (1 + std::fabs(cpu[i].max_c[k])));
    }
  }
}
