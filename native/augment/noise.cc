// noise_value (augment/augment.h, step 5): a counter-based standard normal,
// Box–Muller on two splitmix64 outputs, shared by every backend.
#include <cmath>

#include "augment/augment.h"
#include "stain/stain_math.h"

namespace hf {

double noise_value(uint64_t seed, uint64_t index) {
  const double u1 = static_cast<double>(splitmix64(seed, 2 * index) >> 11) * 0x1.0p-53;
  const double u2 = static_cast<double>(splitmix64(seed, 2 * index + 1) >> 11) * 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace hf
