// noise_value (augment.h, step 5): a counter-based standard normal, Box–Muller
// on two splitmix64 outputs in double. One definition for every backend and
// the tests (HF_HOST_DEVICE); augment_cpu.cc evaluates it in float instead
// (its noise_block), to about 1e-6.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/host_device.h"
#include "core/random.h"

namespace hf {

HF_HOST_DEVICE inline double noise_value(uint64_t seed, uint64_t index) {
  const double u1 = uniform_double(splitmix64(seed, 2 * index));
  const double u2 = uniform_double(splitmix64(seed, 2 * index + 1));
  return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

}  // namespace hf
