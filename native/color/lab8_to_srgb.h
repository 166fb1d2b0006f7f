// OpenCV's float CIELAB → sRGB (color/lab.cc) for an 8-bit LAB value
// (L·255/100, a+128, b+128), rounded to uint8 by `gamma` (linear → 8-bit
// sRGB, e.g. linear_to_srgb8). One definition for the CPU reference and its
// CUDA twin (Reinhard).
#pragma once
#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace hf {

// round(255·srgb_gamma(linear)) without pow: level k starts at linear value
// srgb_to_linear((k − 0.5)/255); a coarse index gives the level at the start
// of the value's bucket, at most a step or two below the answer.
struct Srgb8Levels {
  static constexpr int kCoarse = 8192;
  float start[256];             // linear value where 8-bit level k begins (level 0: -1)
  uint8_t coarse[kCoarse + 1];  // the level at linear i/kCoarse
};

inline Srgb8Levels make_srgb8_levels() {
  Srgb8Levels t;
  for (int k = 1; k < 256; ++k) {
    const double v = (k - 0.5) / 255.0;
    t.start[k] = static_cast<float>(v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4));
  }
  t.start[0] = -1.f;
  int level = 0;
  for (int i = 0; i <= Srgb8Levels::kCoarse; ++i) {
    const float lin = static_cast<float>(i) / Srgb8Levels::kCoarse;
    while (level < 255 && lin >= t.start[level + 1]) ++level;
    t.coarse[i] = static_cast<uint8_t>(level);
  }
  return t;
}

// The 8-bit sRGB level of a linear value, clipped to [0, 1] first.
HF_HOST_DEVICE inline uint8_t linear_to_srgb8(const Srgb8Levels& t, float lin) {
  lin = hd_min(hd_max(lin, 0.f), 1.f);
  int level = t.coarse[static_cast<int>(lin * Srgb8Levels::kCoarse)];
  while (level < 255 && lin >= t.start[level + 1]) ++level;
  return static_cast<uint8_t>(level);
}

template <typename Gamma>
HF_HOST_DEVICE inline void lab8_to_srgb(const uint8_t lab8[3], const Gamma& gamma, uint8_t* rgb) {
  const float l = lab8[0] * (100.f / 255.f), a = lab8[1] - 128.f, b = lab8[2] - 128.f;
  float y, fy;
  if (l <= 0.008856f * 903.3f) {
    y = l / 903.3f;
    fy = 7.787f * y + 16.f / 116.f;
  } else {
    fy = (l + 16.f) / 116.f;
    y = fy * fy * fy;
  }
  auto f_inv = [](float f) { return f <= 0.20689303442f ? (f - 16.f / 116.f) / 7.787f : f * f * f; };
  const float x = f_inv(a / 500.f + fy) * 0.950456f, z = f_inv(fy - b / 200.f) * 1.088754f;
  rgb[0] = gamma(3.240479f * x - 1.53715f * y - 0.498535f * z);
  rgb[1] = gamma(-0.969256f * x + 1.875991f * y + 0.041556f * z);
  rgb[2] = gamma(0.055648f * x - 0.204043f * y + 1.057311f * z);
}

}  // namespace hf
