// sRGB (D65) ↔ CIE L*a*b*, OpenCV's float formula (imgproc/src/color_lab.cpp,
// cv::COLOR_RGB2Lab / COLOR_Lab2RGB): sRGB gamma, its RGB↔XYZ matrices with the
// white point folded in, f(t) = cbrt(t) above 0.008856 and 7.787·t + 16/116
// below, L = 116·f(Y) − 16 (903.3·Y below the threshold).
#include "color/lab.h"

#include <algorithm>
#include <cmath>

namespace hf {

namespace {

constexpr double kXn = 0.950456, kZn = 1.088754;
constexpr double kThreshold = 0.008856;
constexpr double kSlope = 7.787, kBias = 16.0 / 116.0;

double srgb_to_linear(double v) {
  return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
}
double linear_to_srgb(double v) {
  return v <= 0.0031308 ? 12.92 * v : 1.055 * std::pow(v, 1.0 / 2.4) - 0.055;
}
double lab_f(double t) { return t > kThreshold ? std::cbrt(t) : kSlope * t + kBias; }

}  // namespace

void srgb_to_lab(uint8_t r8, uint8_t g8, uint8_t b8, float lab[3]) {
  double r = srgb_to_linear(r8 / 255.0), g = srgb_to_linear(g8 / 255.0), b = srgb_to_linear(b8 / 255.0);
  double x = (0.412453 * r + 0.357580 * g + 0.180423 * b) / kXn;
  double y = 0.212671 * r + 0.715160 * g + 0.072169 * b;
  double z = (0.019334 * r + 0.119193 * g + 0.950227 * b) / kZn;
  double fx = lab_f(x), fy = lab_f(y), fz = lab_f(z);
  lab[0] = static_cast<float>(y > kThreshold ? 116.0 * fy - 16.0 : 903.3 * y);
  lab[1] = static_cast<float>(500.0 * (fx - fy));
  lab[2] = static_cast<float>(200.0 * (fy - fz));
}

void lab_to_srgb(const float lab[3], uint8_t rgb[3]) {
  double l = lab[0], a = lab[1], bb = lab[2];
  double y, fy;
  if (l <= kThreshold * 903.3) {
    y = l / 903.3;
    fy = kSlope * y + kBias;
  } else {
    fy = (l + 16.0) / 116.0;
    y = fy * fy * fy;
  }
  auto f_inv = [](double f) {
    return f <= 0.20689303442 ? (f - kBias) / kSlope : f * f * f;
  };
  double x = f_inv(a / 500.0 + fy) * kXn;
  double z = f_inv(fy - bb / 200.0) * kZn;
  double lin[3] = {3.240479 * x - 1.53715 * y - 0.498535 * z,
                   -0.969256 * x + 1.875991 * y + 0.041556 * z,
                   0.055648 * x - 0.204043 * y + 1.057311 * z};
  for (int c = 0; c < 3; ++c) {
    double v = linear_to_srgb(std::min(std::max(lin[c], 0.0), 1.0));
    rgb[c] = static_cast<uint8_t>(std::nearbyint(std::min(std::max(v, 0.0), 1.0) * 255.0));
  }
}

}  // namespace hf
