// deconvolve / reconvolve (color/deconvolution.h) against scikit-image's
// separate_stains / combine_stains written out in double, and CUDA vs CPU.
#include <array>
#include <cmath>
#include <vector>

#include "color/deconvolution.h"
#include "harness.h"
#include "test_support.h"

using namespace hf;
using namespace hf_test;

namespace {

struct Matrices {
  float rgb_from_stain[9], stain_from_rgb[9];
  double inv[9];
};
Matrices hed_matrices() {
  Matrices m;
  invert3(kRgbFromHed, m.inv);
  for (int k = 0; k < 9; ++k) {
    m.rgb_from_stain[k] = static_cast<float>(kRgbFromHed[k]);
    m.stain_from_rgb[k] = static_cast<float>(m.inv[k]);
  }
  return m;
}

// stains = max(ln(max(I/255, 1e-6)) / ln(1e-6) · stain_from_rgb, 0)
void reference_separate(const uint8_t* px, const double inv[9], double out[3]) {
  double l[3];
  for (int c = 0; c < 3; ++c) l[c] = std::log(std::max(px[c] / 255.0, 1e-6)) / std::log(1e-6);
  for (int k = 0; k < 3; ++k) out[k] = std::max(l[0] * inv[k] + l[1] * inv[3 + k] + l[2] * inv[6 + k], 0.0);
}

}  // namespace

HF_TEST("deconvolve matches skimage separate_stains on odd sizes, 1x1 and batch 257") {
  const Matrices m = hed_matrices();
  for (auto [n, h, w] : {std::array<int64_t, 3>{1, 1, 1}, {1, 31, 17}, {257, 5, 3}}) {
    const auto rgb = synthetic_he(n, h, w, 21);
    std::vector<float> out(rgb.size());
    deconvolve_cpu(batch_of(rgb, n, h, w), m.stain_from_rgb, out.data());
    for (size_t i = 0; i < rgb.size(); i += 3) {
      double expected[3];
      reference_separate(&rgb[i], m.inv, expected);
      for (int k = 0; k < 3; ++k) CHECK_NEAR(out[i + k], expected[k], 1e-5 * (1 + expected[k]));
    }
  }
}

HF_TEST("deconvolve of black and white stays finite and non-negative") {
  const Matrices m = hed_matrices();
  std::vector<uint8_t> rgb = {0, 0, 0, 255, 255, 255};
  std::vector<float> out(6);
  deconvolve_cpu(batch_of(rgb, 1, 1, 2), m.stain_from_rgb, out.data());
  for (float v : out) CHECK(std::isfinite(v) && v >= 0.f);
}

HF_TEST("reconvolve matches skimage combine_stains (rounded to uint8)") {
  const Matrices m = hed_matrices();
  const auto rgb = synthetic_he(3, 13, 11, 22);
  std::vector<float> stains(rgb.size());
  deconvolve_cpu(batch_of(rgb, 3, 13, 11), m.stain_from_rgb, stains.data());
  std::vector<uint8_t> out(rgb.size());
  reconvolve_cpu(stains.data(), 3 * 13 * 11, m.rgb_from_stain, out.data());
  for (size_t i = 0; i < rgb.size(); i += 3)
    for (int c = 0; c < 3; ++c) {
      double log_rgb = 0;
      for (int k = 0; k < 3; ++k) log_rgb += -(stains[i + k] * -std::log(1e-6)) * kRgbFromHed[k * 3 + c];
      double expected = std::round(std::min(std::max(std::exp(log_rgb), 0.0), 1.0) * 255.0);
      CHECK_NEAR(out[i + c], expected, 1);
    }
}

HF_TEST("deconvolve and reconvolve on CUDA equal the CPU reference") {
  SKIP_WITHOUT_CUDA();
  const Matrices m = hed_matrices();
  for (auto [n, h, w] : {std::array<int64_t, 3>{1, 1, 1}, {1, 31, 17}, {257, 5, 3}}) {
    const auto rgb = synthetic_he(n, h, w, 23);
    std::vector<float> cpu(rgb.size()), gpu(rgb.size());
    deconvolve_cpu(batch_of(rgb, n, h, w), m.stain_from_rgb, cpu.data());
    deconvolve_cuda(batch_of(rgb, n, h, w), m.stain_from_rgb, gpu.data());
    for (size_t i = 0; i < cpu.size(); ++i) CHECK_NEAR(gpu[i], cpu[i], 1e-5 * (1 + std::fabs(cpu[i])));
    std::vector<uint8_t> back_cpu(rgb.size()), back_gpu(rgb.size());
    reconvolve_cpu(cpu.data(), n * h * w, m.rgb_from_stain, back_cpu.data());
    reconvolve_cuda(cpu.data(), n * h * w, m.rgb_from_stain, back_gpu.data());
    CHECK(byte_diff(back_cpu.data(), back_gpu.data(), rgb.size()).max <= 1);
  }
}
