// ln(x) for normal x > 0: x = m·2^e with m in [√½, √2), ln m = 2·atanh(s),
// s = (m − 1)/(m + 1), |s| ≤ 0.172; relative error ~1e-7. Branch-free, so
// loops over it vectorize. One definition for the CPU reference and its CUDA
// twin (augmentation's HED step).
#pragma once
#include <cstdint>
#include <cstring>

#include "core/host_device.h"

namespace hf {

HF_HOST_DEVICE inline float fast_log(float x) {
  int32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const int32_t e = (bits - 0x3f3504f3) >> 23;
  const int32_t mbits = static_cast<int32_t>(static_cast<uint32_t>(bits) - (static_cast<uint32_t>(e) << 23));
  float m;
  std::memcpy(&m, &mbits, sizeof m);
  const float s = (m - 1.f) / (m + 1.f), s2 = s * s;
  float p = 2.f / 11.f;
  p = p * s2 + 2.f / 9.f;
  p = p * s2 + 2.f / 7.f;
  p = p * s2 + 2.f / 5.f;
  p = p * s2 + 2.f / 3.f;
  p = p * s2 + 2.f;
  const float ef = static_cast<float>(e);
  return ef * 0.693359375f + (ef * -2.12194440e-4f + s * p);
}

}  // namespace hf
