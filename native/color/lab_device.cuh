// sRGB (D65) ↔ CIE L*a*b* on the device: the double-precision formulas of
// color/lab.cc (OpenCV's cv::COLOR_RGB2Lab / COLOR_Lab2RGB constants: sRGB
// gamma, D65 white folded into the matrices, L in [0, 100]), operation for
// operation, so device and CPU agree to the last rounding of pow / cbrt.
#pragma once
#include <cstdint>

namespace hf {
namespace lab_device {

constexpr double kXn = 0.950456, kZn = 1.088754;
constexpr double kThreshold = 0.008856;
constexpr double kSlope = 7.787, kBias = 16.0 / 116.0;

__device__ inline double srgb_to_linear(double v) {
  return v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
}
__device__ inline double linear_to_srgb(double v) {
  return v <= 0.0031308 ? 12.92 * v : 1.055 * pow(v, 1.0 / 2.4) - 0.055;
}
__device__ inline double lab_f(double t) { return t > kThreshold ? cbrt(t) : kSlope * t + kBias; }

}  // namespace lab_device

__device__ inline void srgb_to_lab_device(uint8_t r8, uint8_t g8, uint8_t b8, float lab[3]) {
  using namespace lab_device;
  const double r = srgb_to_linear(r8 / 255.0), g = srgb_to_linear(g8 / 255.0), b = srgb_to_linear(b8 / 255.0);
  const double x = (0.412453 * r + 0.357580 * g + 0.180423 * b) / kXn;
  const double y = 0.212671 * r + 0.715160 * g + 0.072169 * b;
  const double z = (0.019334 * r + 0.119193 * g + 0.950227 * b) / kZn;
  const double fx = lab_f(x), fy = lab_f(y), fz = lab_f(z);
  lab[0] = static_cast<float>(y > kThreshold ? 116.0 * fy - 16.0 : 903.3 * y);
  lab[1] = static_cast<float>(500.0 * (fx - fy));
  lab[2] = static_cast<float>(200.0 * (fy - fz));
}

__device__ inline void lab_to_srgb_device(const float lab[3], uint8_t rgb[3]) {
  using namespace lab_device;
  const double l = lab[0], a = lab[1], bb = lab[2];
  double y, fy;
  if (l <= kThreshold * 903.3) {
    y = l / 903.3;
    fy = kSlope * y + kBias;
  } else {
    fy = (l + 16.0) / 116.0;
    y = fy * fy * fy;
  }
  auto f_inv = [](double f) { return f <= 0.20689303442 ? (f - kBias) / kSlope : f * f * f; };
  const double x = f_inv(a / 500.0 + fy) * kXn;
  const double z = f_inv(fy - bb / 200.0) * kZn;
  const double lin[3] = {3.240479 * x - 1.53715 * y - 0.498535 * z, -0.969256 * x + 1.875991 * y + 0.041556 * z,
                         0.055648 * x - 0.204043 * y + 1.057311 * z};
  for (int c = 0; c < 3; ++c) {
    const double v = linear_to_srgb(fmin(fmax(lin[c], 0.0), 1.0));
    rgb[c] = static_cast<uint8_t>(rint(fmin(fmax(v, 0.0), 1.0) * 255.0));
  }
}

// OpenCV's 8-bit LAB of one pixel (reinhard_cpu.cc's lab8): L·2.55, a + 128,
// b + 128 in float, clamped to [0, 255], rounded half to even.
__device__ inline void srgb_to_lab8_device(const uint8_t* px, uint8_t out[3]) {
  float lab[3];
  srgb_to_lab_device(px[0], px[1], px[2], lab);
  const float v[3] = {lab[0] * 2.55f, lab[1] + 128.f, lab[2] + 128.f};
  for (int c = 0; c < 3; ++c) out[c] = static_cast<uint8_t>(rintf(fminf(fmaxf(v[c], 0.f), 255.f)));
}

}  // namespace hf
