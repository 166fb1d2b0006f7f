// OpenCV's 8-bit sRGB → LAB (imgproc/src/color_lab.cpp, RGB2Lab_b), the
// fixed-point path cv2.cvtColor takes for uint8 images: gamma table
// round(2040·linear(v/255)); X, Y, Z = descale(Σ coeff·RGB, 12) with the
// D65 matrix (white point folded in) scaled by 4096; f = round(32768·cbrt(t))
// (linear toe below 0.008856) over 3072 entries; L8 = descale(296·fY −
// 1336934, 15), a8 = descale(500·(fX − fY) + 128·2^15, 15), b8 likewise with
// 200·(fY − fZ). Checked against cv2 4.6 on 1.1 M colours: L8 equal
// everywhere, a8 / b8 equal on all but 0.007 % (off by one).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace hf {

class OpenCvLab8 {
 public:
  static constexpr int kY[3] = {871, 2929, 296};  // the Y row, as the luminosity rule needs it

  static const OpenCvLab8& instance() {
    static const OpenCvLab8 tables;
    return tables;
  }
  int gamma(int v) const { return gamma_[v]; }
  int cbrt(int i) const { return cbrt_[i]; }  // i in [0, 3072)
  // L8 of a weighted gamma sum Σ kY[c]·gamma(c) (monotone in the sum).
  int lightness_of_weighted_sum(int64_t sum) const {
    return descale(296 * static_cast<int64_t>(cbrt_[clamp_index(descale(sum, 12))]) - 1336934, 15);
  }
  void convert(const uint8_t* rgb, uint8_t lab8[3]) const {
    const int64_t r = gamma_[rgb[0]], g = gamma_[rgb[1]], b = gamma_[rgb[2]];
    const int64_t fx = cbrt_[clamp_index(descale(1777 * r + 1541 * g + 778 * b, 12))];
    const int64_t fy = cbrt_[clamp_index(descale(871 * r + 2929 * g + 296 * b, 12))];
    const int64_t fz = cbrt_[clamp_index(descale(73 * r + 448 * g + 3575 * b, 12))];
    lab8[0] = saturate(descale(296 * fy - 1336934, 15));
    lab8[1] = saturate(descale(500 * (fx - fy) + (int64_t{128} << 15), 15));
    lab8[2] = saturate(descale(200 * (fy - fz) + (int64_t{128} << 15), 15));
  }

 private:
  OpenCvLab8() {
    for (int v = 0; v < 256; ++v) {
      const double x = v / 255.0;
      gamma_[v] = static_cast<int>(std::nearbyint(2040.0 * (x <= 0.04045 ? x / 12.92 : std::pow((x + 0.055) / 1.055, 2.4))));
    }
    for (int i = 0; i < 3072; ++i) {
      const double x = i / 2040.0;
      cbrt_[i] = static_cast<int>(std::nearbyint(32768.0 * (x < 0.008856 ? x * 7.787 + 16.0 / 116.0 : std::cbrt(x))));
    }
  }
  static int64_t descale(int64_t v, int n) { return (v + (int64_t{1} << (n - 1))) >> n; }
  static int64_t clamp_index(int64_t i) { return std::min<int64_t>(std::max<int64_t>(i, 0), 3071); }
  static uint8_t saturate(int64_t v) { return static_cast<uint8_t>(std::min<int64_t>(std::max<int64_t>(v, 0), 255)); }

  int gamma_[256];
  int cbrt_[3072];
};

}  // namespace hf
