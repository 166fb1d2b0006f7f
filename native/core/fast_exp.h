// exp(x) by Cody–Waite reduction x = n·ln2 + r, |r| ≤ ln2/2, and a degree-6
// Taylor polynomial for exp(r): relative error < 3e-7. Straight-line code that
// compilers vectorize; x is clamped to [-87, 88] (no inf, no denormals).
// The stain transform renders with it on every native backend, so cpu and
// cuda truncate to uint8 at the same values.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/host_device.h"

namespace hf {

HF_HOST_DEVICE inline float fast_exp(float x) {
  x = x < -87.f ? -87.f : (x > 88.f ? 88.f : x);
#if defined(__CUDA_ARCH__)
  const float n = floorf(x * 1.44269504088896341f + 0.5f);
#else
  const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
#endif
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

}  // namespace hf
