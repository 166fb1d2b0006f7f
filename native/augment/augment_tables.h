// The host-built constants of augment.h's steps 1–2, shared by augment_cpu.cc
// and augment_cuda.cu (which copies them into each block's shared memory), so
// both backends read the very same floats.
#pragma once

namespace hf {

constexpr double kAugmentLogAdjust = -13.815510557964274;  // ln(1e-6)

struct AugmentTables {
  float hed_from_rgb[9];      // inv(rgb_from_hed) (skimage), row-major for row vectors
  float log_rgb_from_hed[9];  // ln(1e-6) · rgb_from_hed: the exponent of combine_stains
  float od[256];              // ln(max(v/255, 1e-6)) / ln(1e-6)
  float unit[256];            // v / 255
};

// Built once, on first use (thread-safe); call it outside parallel regions
// to keep the first build off the hot path.
const AugmentTables& augment_tables();

}  // namespace hf
