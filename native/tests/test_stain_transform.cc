// stain_transform / stain_concentrations / stain_fit_fixed (stain/stain_fit.h)
// against Macenko's eq. 5-6 written in double per pixel, and CUDA vs CPU.
#include <array>
#include <cmath>
#include <vector>

#include "harness.h"
#include "stain/macenko.h"
#include "stain/stain_fit.h"
#include "test_support.h"

using namespace hf;
using namespace hf_test;

namespace {

const float kRuifrok[6] = {0.65f, 0.70f, 0.29f, 0.07f, 0.99f, 0.11f};
const float kHeRef[6] = {0.5626f, 0.7201f, 0.4062f, 0.2159f, 0.8012f, 0.5581f};

StainTransformParams henorm_params() {
  StainTransformParams p;
  p.od = OdParams{240.f, 1.f, -INFINITY};
  std::copy(kHeRef, kHeRef + 6, p.target_he);
  p.target_max_c[0] = 1.9705f, p.target_max_c[1] = 1.0308f;
  p.overflow_value = 254.f;
  return p;
}

// out = io·exp(−HE_targetᵀ·C·max_c_target/max_c), > 255 → overflow, truncated;
// stain ∈ {0: both, 1: H only, 2: E only}.
uint8_t reference_pixel(const uint8_t* px, int channel, const StainFit& fit, const StainTransformParams& p, int stain) {
  double od[3], he[6], c[2];
  for (int k = 0; k < 3; ++k) od[k] = reference_od(px[k], p.od.io, p.od.offset, p.od.min_od);
  for (int k = 0; k < 6; ++k) he[k] = fit.he[k];
  reference_lstsq(he, od, c);
  double out_od = 0;
  if (stain != 2) out_od += p.target_he[channel] * c[0] * p.target_max_c[0] / fit.max_c[0];
  if (stain != 1) out_od += p.target_he[3 + channel] * c[1] * p.target_max_c[1] / fit.max_c[1];
  double v = p.od.io * std::exp(-out_od);
  if (v > 255) v = p.overflow_value;
  return static_cast<uint8_t>(v);
}

}  // namespace

HF_TEST("stain transform renders io·exp(-HE_target·C·scale) with HEnorm's overflow and truncation") {
  const int64_t n = 2, h = 41, w = 37;
  const auto rgb = synthetic_he(n, h, w, 31);
  std::vector<StainFit> fits(n);
  macenko_fit_cpu(batch_of(rgb, n, h, w), MacenkoParams{henorm_params().od, {}, 1.f, false}, fits.data());
  const StainTransformParams p = henorm_params();
  std::vector<uint8_t> out(rgb.size()), h_only(rgb.size()), e_only(rgb.size());
  stain_transform_cpu(batch_of(rgb, n, h, w), fits.data(), p, out.data(), h_only.data(), e_only.data());
  int64_t off_by_one = 0;
  for (int64_t i = 0; i < n * h * w; ++i)
    for (int c = 0; c < 3; ++c) {
      const uint8_t* px = &rgb[3 * i];
      const StainFit& fit = fits[i / (h * w)];
      int d[3] = {std::abs(out[3 * i + c] - reference_pixel(px, c, fit, p, 0)),
                  std::abs(h_only[3 * i + c] - reference_pixel(px, c, fit, p, 1)),
                  std::abs(e_only[3 * i + c] - reference_pixel(px, c, fit, p, 2))};
      for (int k = 0; k < 3; ++k) {
        CHECK(d[k] <= 1);  // float vs double on a truncation boundary
        off_by_one += d[k];
      }
    }
  CHECK(off_by_one * 1000 <= n * h * w * 9);
}

HF_TEST("stain concentrations equal np.linalg.lstsq(HE, OD) per pixel") {
  const int64_t h = 23, w = 29;
  const auto rgb = synthetic_he(1, h, w, 32);
  StainFit fit;
  std::copy(kRuifrok, kRuifrok + 6, fit.he);
  const OdParams od{255.f, 0.f, 1e-6f};
  std::vector<float> c(h * w * 2);
  stain_concentrations_cpu(batch_of(rgb, 1, h, w), &fit, od, c.data());
  double he[6];
  for (int k = 0; k < 6; ++k) he[k] = kRuifrok[k];
  for (int64_t i = 0; i < h * w; ++i) {
    double o[3], ref[2];
    for (int k = 0; k < 3; ++k) o[k] = reference_od(rgb[3 * i + k], 255, 0, 1e-6);
    reference_lstsq(he, o, ref);
    CHECK_NEAR(c[2 * i], ref[0], 1e-5 * (1 + std::fabs(ref[0])));
    CHECK_NEAR(c[2 * i + 1], ref[1], 1e-5 * (1 + std::fabs(ref[1])));
  }
}

HF_TEST("a fixed stain matrix keeps its rows and takes max_c as the 99th percentile of C") {
  const int64_t n = 257, h = 7, w = 5;
  const auto rgb = synthetic_he(n, h, w, 33);
  const OdParams od{255.f, 0.f, 1e-6f};
  std::vector<StainFit> fits(n);
  stain_fit_fixed_cpu(batch_of(rgb, n, h, w), kRuifrok, od, fits.data());
  double he[6];
  for (int k = 0; k < 6; ++k) he[k] = kRuifrok[k];
  for (int64_t i : {int64_t{0}, int64_t{128}, n - 1}) {
    CHECK(fits[i].status == kFitOk);
    for (int k = 0; k < 6; ++k) CHECK(fits[i].he[k] == kRuifrok[k]);
    std::vector<double> c0, c1;
    for (int64_t k = 0; k < h * w; ++k) {
      double o[3], c[2];
      for (int j = 0; j < 3; ++j) o[j] = reference_od(rgb[(i * h * w + k) * 3 + j], 255, 0, 1e-6);
      reference_lstsq(he, o, c);
      c0.push_back(c[0]), c1.push_back(c[1]);
    }
    CHECK_NEAR(fits[i].max_c[0], numpy_percentile(c0, 99), 1e-5);
    CHECK_NEAR(fits[i].max_c[1], numpy_percentile(c1, 99), 1e-5);
  }
}

HF_TEST("a fixed stain matrix on an all-white image is degenerate and the image comes back unchanged") {
  const auto rgb = uniform_image(1, 5, 5, 255, 255, 255);
  const OdParams od{255.f, 0.f, 1e-6f};
  StainFit fit;
  stain_fit_fixed_cpu(batch_of(rgb, 1, 5, 5), kRuifrok, od, &fit);
  CHECK(fit.status == kFitDegenerate);
  StainTransformParams p;
  p.od = od;
  std::copy(kRuifrok, kRuifrok + 6, p.target_he);
  std::vector<uint8_t> out(rgb.size());
  stain_transform_cpu(batch_of(rgb, 1, 5, 5), &fit, p, out.data(), nullptr, nullptr);
  CHECK(out == rgb);
}

HF_TEST("stain transform, concentrations and fixed fits on CUDA equal the CPU reference") {
  SKIP_WITHOUT_CUDA();
  for (auto [n, h, w] : {std::array<int64_t, 3>{1, 1, 1}, {1, 211, 173}, {257, 13, 11}}) {
    const auto rgb = synthetic_he(n, h, w, 34, 0.2);
    const RgbBatch in = batch_of(rgb, n, h, w);
    const StainTransformParams p = henorm_params();
    std::vector<StainFit> fits(n), fits_gpu(n);
    stain_fit_fixed_cpu(in, kRuifrok, p.od, fits.data());
    stain_fit_fixed_cuda(in, kRuifrok, p.od, fits_gpu.data());
    for (int64_t i = 0; i < n; ++i) {
      CHECK(fits_gpu[i].status == fits[i].status);
      for (int k = 0; k < 2; ++k) CHECK_NEAR(fits_gpu[i].max_c[k], fits[i].max_c[k], 1e-4 * (1 + fits[i].max_c[k]));
    }
    std::vector<uint8_t> cpu(rgb.size()), gpu(rgb.size()), cpu_h(rgb.size()), gpu_h(rgb.size());
    stain_transform_cpu(in, fits.data(), p, cpu.data(), cpu_h.data(), nullptr);
    stain_transform_cuda(in, fits.data(), p, gpu.data(), gpu_h.data(), nullptr);
    CHECK(byte_diff(cpu.data(), gpu.data(), cpu.size()).max <= 1);
    CHECK(byte_diff(cpu_h.data(), gpu_h.data(), cpu.size()).max <= 1);
    std::vector<float> c_cpu(n * h * w * 2), c_gpu(n * h * w * 2);
    stain_concentrations_cpu(in, fits.data(), p.od, c_cpu.data());
    stain_concentrations_cuda(in, fits.data(), p.od, c_gpu.data());
    for (size_t i = 0; i < c_cpu.size(); ++i) CHECK_NEAR(c_gpu[i], c_cpu[i], 1e-5 * (1 + std::fabs(c_cpu[i])));
  }
}
