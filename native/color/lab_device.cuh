// OpenCV's 8-bit sRGB ↔ LAB on the device, as the CPU reference computes it:
// sRGB → LAB8 is cv2's fixed-point path (color/lab_opencv8.h: gamma table,
// integer D65 matrix, cbrt table, descale), integer arithmetic and therefore
// bit-exact; LAB8 → sRGB is OpenCV's float formula (color/lab.cc) with the
// final gamma and rounding of color/lab8_to_srgb.h's linear_to_srgb8, as the
// CPU. The tables are built on the host (make_lab8_device_tables) and read
// from global memory.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "color/lab8_to_srgb.h"
#include "color/lab_opencv8.h"

namespace hf {

struct Lab8DeviceTables {
  int gamma[256];              // round(2040·linear(v/255))
  int cbrt[3072];              // round(32768·f(i/2040)), f = cbrt with OpenCV's linear toe
  Srgb8Levels srgb8;           // linear → 8-bit sRGB
};

inline Lab8DeviceTables make_lab8_device_tables() {
  Lab8DeviceTables t;
  const OpenCvLab8& lab8 = OpenCvLab8::instance();
  for (int v = 0; v < 256; ++v) t.gamma[v] = lab8.gamma(v);
  for (int i = 0; i < 3072; ++i) t.cbrt[i] = lab8.cbrt(i);
  t.srgb8 = make_srgb8_levels();
  return t;
}

#ifdef __CUDACC__
namespace lab_device {

// Every intermediate fits in 32 bits; >> of a negative value is arithmetic, as
// in the reference's int64 arithmetic.
__device__ inline int descale(int v, int n) { return (v + (1 << (n - 1))) >> n; }
__device__ inline int clamp_index(int i) { return min(max(i, 0), 3071); }
__device__ inline uint8_t saturate(int v) { return static_cast<uint8_t>(min(max(v, 0), 255)); }

}  // namespace lab_device

// cv2.cvtColor(RGB2LAB) of one uint8 pixel: OpenCvLab8::convert's integer
// formula on the same tables, in 32-bit integers (every intermediate fits;
// the host class works in int64), so bit-exact with it.
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
  lab8_to_srgb(lab8, [&t](float lin) { return linear_to_srgb8(t.srgb8, lin); }, rgb);
}
#endif

}  // namespace hf
