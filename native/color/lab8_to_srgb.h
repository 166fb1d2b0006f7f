// OpenCV's float CIELAB → sRGB (color/lab.cc) for an 8-bit LAB value
// (L·255/100, a+128, b+128), rounded to uint8 by `gamma` (linear → 8-bit sRGB).
// One definition for the CPU reference and its CUDA twin (Reinhard).
#pragma once
#include <cstdint>

#include "core/host_device.h"

namespace hf {

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
