// The counter-based generator behind every seeded per-pixel or per-sample
// choice in native/ (augmentation noise and elastic field, Vahadane's
// subsample): one definition for the CPU reference, its CUDA twin and the host
// code that draws for the device.
#pragma once
#include <cstdint>

#include "core/host_device.h"

namespace hf {

// splitmix64 (Steele, Lea & Flood 2014; Vigna's splitmix64.c): output k of the
// generator whose state starts at `seed`, i.e. the mix of seed + (k + 1)·γ.
HF_HOST_DEVICE constexpr uint64_t splitmix64(uint64_t seed, uint64_t k) {
  uint64_t z = seed + (k + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The top 53 bits of a 64-bit output as a double in [0, 1): (bits >> 11)·2⁻⁵³.
HF_HOST_DEVICE constexpr double uniform_double(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

}  // namespace hf
