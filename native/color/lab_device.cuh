// OpenCV's 8-bit sRGB ↔ LAB on the device, as the CPU reference computes it:
// sRGB → LAB8 is cv2's fixed-point path (color/lab_opencv8.h: gamma table,
// integer D65 matrix, cbrt table, descale), integer arithmetic and therefore
// bit-exact; LAB8 → sRGB is OpenCV's float formula (color/lab.cc) with the
// final gamma and rounding read from the linear values where each 8-bit level
// begins (reinhard_cpu.cc's LinearToSrgb8). The tables are built on the host
// (make_lab8_device_tables) and read from global memory.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "color/lab_opencv8.h"

#include "color/lab8_to_srgb.h"

namespace hf {

struct Lab8DeviceTables {
  static constexpr int kCoarse = 8192;
  int gamma[256];              // round(2040·linear(v/255))
  int cbrt[3072];              // round(32768·f(i/2040)), f = cbrt with OpenCV's linear toe
  float level_start[256];      // linear value where 8-bit sRGB level k begins (level 0: -1)
  uint8_t coarse[kCoarse + 1]; // the level at linear i/kCoarse
};

inline Lab8DeviceTables make_lab8_device_tables() {
  Lab8DeviceTables t;
  const OpenCvLab8& lab8 = OpenCvLab8::instance();
  for (int v = 0; v < 256; ++v) t.gamma[v] = lab8.gamma(v);
  for (int i = 0; i < 3072; ++i) {
    const double x = i / 2040.0;
    t.cbrt[i] = static_cast<int>(std::nearbyint(32768.0 * (x < 0.008856 ? x * 7.787 + 16.0 / 116.0 : std::cbrt(x))));
  }
  for (int k = 1; k < 256; ++k) {
    const double v = (k - 0.5) / 255.0;
    t.level_start[k] = static_cast<float>(v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4));
  }
  t.level_start[0] = -1.f;
  int level = 0;
  for (int i = 0; i <= Lab8DeviceTables::kCoarse; ++i) {
    const float lin = static_cast<float>(i) / Lab8DeviceTables::kCoarse;
    while (level < 255 && lin >= t.level_start[level + 1]) ++level;
    t.coarse[i] = static_cast<uint8_t>(level);
  }
  return t;
}

#ifdef __CUDACC__
namespace lab_device {

// Every intermediate fits in 32 bits; >> of a negative value is arithmetic, as
// in the reference's int64 arithmetic.
__device__ inline int descale(int v, int n) { return (v + (1 << (n - 1))) >> n; }
__device__ inline int clamp_index(int i) { return min(max(i, 0), 3071); }
__device__ inline uint8_t saturate(int v) { return static_cast<uint8_t>(min(max(v, 0), 255)); }

__device__ inline uint8_t linear_to_srgb8(const Lab8DeviceTables& t, float lin) {
  lin = fminf(fmaxf(lin, 0.f), 1.f);
  int level = t.coarse[static_cast<int>(lin * Lab8DeviceTables::kCoarse)];
  while (level < 255 && lin >= t.level_start[level + 1]) ++level;
  return static_cast<uint8_t>(level);
}

}  // namespace lab_device

// cv2.cvtColor(RGB2LAB) of one uint8 pixel.
__device__ inline void srgb_to_lab8_device(const Lab8DeviceTables& t, const uint8_t* rgb, uint8_t lab8[3]) {
  using namespace lab_device;
  const int r = t.gamma[rgb[0]], g = t.gamma[rgb[1]], b = t.gamma[rgb[2]];
  const int fx = t.cbrt[clamp_index(descale(1777 * r + 1541 * g + 778 * b, 12))];
  const int fy = t.cbrt[clamp_index(descale(871 * r + 2929 * g + 296 * b, 12))];
  const int fz = t.cbrt[clamp_index(descale(73 * r + 448 * g + 3575 * b, 12))];
  lab8[0] = saturate(descale(296 * fy - 1336934, 15));
  lab8[1] = saturate(descale(500 * (fx - fy) + (128 << 15), 15));
  lab8[2] = saturate(descale(200 * (fy - fz) + (128 << 15), 15));
}

// OpenCV's float LAB → sRGB of an 8-bit LAB value (color/lab8_to_srgb.h),
// rounded to uint8 through the device's gamma table.
__device__ inline void lab8_to_srgb_device(const Lab8DeviceTables& t, const uint8_t lab8[3], uint8_t* rgb) {
  lab8_to_srgb(lab8, [&t](float lin) { return lab_device::linear_to_srgb8(t, lin); }, rgb);
}
#endif

}  // namespace hf
