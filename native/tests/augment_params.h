// Random per-image augmentation parameters for the native tests (CPU
// reference tests and the CUDA parity tests draw them the same way).
#pragma once
#include <cstdint>

#include "augment/augment.h"
#include "test_support.h"

namespace hf_test {

// Random draws of every augmentation step for one image of h x w (each step on
// about half the time), as src/augment/params.ts would draw them.
inline hf::AugmentImageParams random_params(Lcg& rng, int64_t h, int64_t w, const hf::AugmentBatchParams& b) {
  hf::AugmentImageParams p;
  p.d4 = static_cast<int>(rng.uniform() * 8);
  p.crop_y = static_cast<int>(rng.uniform() * (h - b.crop_h + 1));
  p.crop_x = static_cast<int>(rng.uniform() * (w - b.crop_w + 1));
  p.hed_enabled = rng.uniform() < 0.5;
  for (int k = 0; k < 3; ++k) {
    p.hed_alpha[k] = static_cast<float>(1 + 0.1 * (rng.uniform() - 0.5));
    p.hed_beta[k] = static_cast<float>(0.1 * (rng.uniform() - 0.5));
  }
  if (rng.uniform() < 0.5) p.brightness = static_cast<float>(0.7 + 0.6 * rng.uniform());
  if (rng.uniform() < 0.5) p.contrast = static_cast<float>(0.7 + 0.6 * rng.uniform());
  if (rng.uniform() < 0.5) p.saturation = static_cast<float>(0.5 + rng.uniform());
  if (rng.uniform() < 0.5) p.hue = static_cast<float>(rng.uniform() - 0.5);
  if (rng.uniform() < 0.5) p.blur_sigma = static_cast<float>(0.1 + 1.9 * rng.uniform());
  if (rng.uniform() < 0.5) p.noise_sigma = static_cast<float>(0.05 * rng.uniform());
  p.noise_seed = static_cast<uint64_t>(rng.uniform() * 0x1.0p53);
  if (rng.uniform() < 0.5) {
    p.elastic_alpha = static_cast<float>(0.5 + 6 * rng.uniform());
    p.elastic_sigma = static_cast<float>(1 + 5 * rng.uniform());
  }
  p.elastic_seed = static_cast<uint64_t>(rng.uniform() * 0x1.0p53);
  return p;
}

}  // namespace hf_test
