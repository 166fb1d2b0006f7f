// Reinhard transfer (stain/reinhard.h, color/lab.h) against tiatoolbox's
// recipe with OpenCV's LAB formula written in double here, and CUDA vs CPU.
#include <array>
#include <cmath>
#include <vector>

#include "color/lab.h"
#include "harness.h"
#include "stain/reinhard.h"
#include "test_support.h"

using namespace hf;
using namespace hf_test;

namespace {

double linear(double v) { return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4); }
double f(double t) { return t > 0.008856 ? std::cbrt(t) : 7.787 * t + 16.0 / 116.0; }

// cv2.cvtColor(uint8 RGB, COLOR_RGB2LAB) as tiatoolbox reads it back:
// (L8/2.55, a8 − 128, b8 − 128) with L8 = round(L·2.55), a8 = round(a + 128).
std::array<double, 3> reference_lab8(const uint8_t* px) {
  const double r = linear(px[0] / 255.0), g = linear(px[1] / 255.0), b = linear(px[2] / 255.0);
  const double x = (0.412453 * r + 0.357580 * g + 0.180423 * b) / 0.950456;
  const double y = 0.212671 * r + 0.715160 * g + 0.072169 * b;
  const double z = (0.019334 * r + 0.119193 * g + 0.950227 * b) / 1.088754;
  const double l = y > 0.008856 ? 116 * f(y) - 16 : 903.3 * y;
  const double a = 500 * (f(x) - f(y)), bb = 200 * (f(y) - f(z));
  auto q = [](double v) { return std::round(std::min(std::max(v, 0.0), 255.0)); };
  return {q(l * 2.55) / 2.55, q(a + 128) - 128, q(bb + 128) - 128};
}

LabStats reference_stats(const uint8_t* rgb, int64_t pixels) {
  LabStats s;
  for (int c = 0; c < 3; ++c) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < pixels; ++i) {
      double v = reference_lab8(rgb + 3 * i)[c];
      sum += v, sq += v * v;
    }
    s.mean[c] = sum / pixels;
    s.std[c] = std::sqrt(std::max(0.0, sq / pixels - s.mean[c] * s.mean[c]));
  }
  s.pixels = pixels;
  return s;
}

}  // namespace

HF_TEST("srgb_to_lab follows OpenCV's float formula (D65, sRGB gamma, L in 0..100)") {
  const uint8_t samples[][3] = {{0, 0, 0}, {255, 255, 255}, {255, 0, 0}, {12, 200, 99}, {3, 3, 3}, {180, 90, 200}};
  for (const auto& px : samples) {
    float lab[3];
    srgb_to_lab(px[0], px[1], px[2], lab);
    const double r = linear(px[0] / 255.0), g = linear(px[1] / 255.0), b = linear(px[2] / 255.0);
    const double y = 0.212671 * r + 0.715160 * g + 0.072169 * b;
    const double x = (0.412453 * r + 0.357580 * g + 0.180423 * b) / 0.950456;
    CHECK_NEAR(lab[0], y > 0.008856 ? 116 * f(y) - 16 : 903.3 * y, 1e-3);
    CHECK_NEAR(lab[1], 500 * (f(x) - f(y)), 1e-3);
  }
}

HF_TEST("lab_to_srgb inverts srgb_to_lab to within one level") {
  const auto rgb = synthetic_he(1, 31, 29, 51);
  for (size_t i = 0; i < rgb.size(); i += 3) {
    float lab[3];
    uint8_t back[3];
    srgb_to_lab(rgb[i], rgb[i + 1], rgb[i + 2], lab);
    lab_to_srgb(lab, back);
    for (int c = 0; c < 3; ++c) CHECK(std::abs(back[c] - rgb[i + c]) <= 1);
  }
}

// cv2's uint8 path is fixed-point: a pixel's 8-bit L may differ from the
// rounded float formula by one level (0.39 in L), a and b by one.
HF_TEST("reinhard statistics are the mean and population std of OpenCV's 8-bit LAB") {
  const int64_t n = 257, h = 5, w = 3;
  const auto rgb = synthetic_he(n, h, w, 52);
  std::vector<LabStats> stats(n);
  reinhard_fit_cpu(batch_of(rgb, n, h, w), stats.data());
  for (int64_t i : {int64_t{0}, int64_t{77}, n - 1}) {
    const LabStats ref = reference_stats(rgb.data() + i * h * w * 3, h * w);
    CHECK(stats[i].pixels == h * w);
    for (int c = 0; c < 3; ++c) {
      CHECK_NEAR(stats[i].mean[c], ref.mean[c], 0.4);
      CHECK_NEAR(stats[i].std[c], ref.std[c], 0.4);
    }
  }
}

HF_TEST("reinhard maps an image onto itself almost unchanged, and onto a target's statistics") {
  const int64_t h = 67, w = 45;
  const auto rgb = synthetic_he(1, h, w, 53);
  LabStats self, target;  // a target far from the 0/255 clips
  target.mean[0] = 55, target.mean[1] = 18, target.mean[2] = -8;
  target.std[0] = 8, target.std[1] = 4, target.std[2] = 3;
  reinhard_fit_cpu(batch_of(rgb, 1, h, w), &self);
  std::vector<uint8_t> out(rgb.size());
  reinhard_transform_cpu(batch_of(rgb, 1, h, w), self, out.data());
  CHECK(byte_diff(out.data(), rgb.data(), rgb.size()).mean < 1.0);
  reinhard_transform_cpu(batch_of(rgb, 1, h, w), target, out.data());
  const LabStats after = reference_stats(out.data(), h * w);
  for (int c = 0; c < 3; ++c) {
    CHECK_NEAR(after.mean[c], target.mean[c], 1.5);
    CHECK_NEAR(after.std[c], target.std[c], 1.5);
  }
}

HF_TEST("reinhard shifts a flat image without dividing by zero, and keeps 1x1 images finite") {
  for (auto [h, w] : {std::array<int64_t, 2>{1, 1}, {6, 9}}) {
    const auto flat = uniform_image(1, h, w, 200, 120, 180);
    LabStats target;
    target.mean[0] = 60, target.mean[1] = 20, target.mean[2] = -10;
    target.std[0] = 10, target.std[1] = 5, target.std[2] = 5;
    std::vector<uint8_t> out(flat.size());
    reinhard_transform_cpu(batch_of(flat, 1, h, w), target, out.data());
    for (size_t i = 3; i < out.size(); ++i) CHECK(out[i] == out[i % 3]);
    const auto lab = reference_lab8(out.data());
    CHECK_NEAR(lab[0], 60, 1.5);
  }
}

HF_TEST("reinhard on CUDA equals the CPU reference (1x1, odd sizes, batch 1 and 257)") {
  SKIP_WITHOUT_CUDA();
  for (auto [n, h, w] : {std::array<int64_t, 3>{1, 1, 1}, {1, 211, 173}, {257, 13, 11}}) {
    const auto rgb = synthetic_he(n, h, w, 55);
    std::vector<LabStats> cpu(n), gpu(n);
    reinhard_fit_cpu(batch_of(rgb, n, h, w), cpu.data());
    reinhard_fit_cuda(batch_of(rgb, n, h, w), gpu.data());
    for (int64_t i = 0; i < n; ++i)
      for (int c = 0; c < 3; ++c) {
        CHECK_NEAR(gpu[i].mean[c], cpu[i].mean[c], 1e-3 * (1 + std::fabs(cpu[i].mean[c])));
        CHECK_NEAR(gpu[i].std[c], cpu[i].std[c], 1e-3 * (1 + cpu[i].std[c]));
      }
    std::vector<uint8_t> out_cpu(rgb.size()), out_gpu(rgb.size());
    reinhard_transform_cpu(batch_of(rgb, n, h, w), cpu[0], out_cpu.data());
    reinhard_transform_cuda(batch_of(rgb, n, h, w), cpu[0], out_gpu.data());
    const ByteDiff d = byte_diff(out_cpu.data(), out_gpu.data(), rgb.size());
    CHECK(d.max <= 2);
    CHECK(d.mean < 0.05);
  }
}
