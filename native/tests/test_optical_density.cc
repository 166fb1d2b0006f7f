// rgb_to_od / od_to_rgb (color/optical_density.h) against the Beer–Lambert
// formula in double, and the CUDA twin against the CPU reference.
#include <array>
#include <cmath>
#include <vector>

#include "color/optical_density.h"
#include "harness.h"
#include "test_support.h"

using namespace hf;
using namespace hf_test;

namespace {
const OdParams kCanonical{240.f, 1.f, -INFINITY};
const OdParams kTiatoolbox{255.f, 0.f, 1e-6f};
}  // namespace

HF_TEST("rgb_to_od matches -ln((I + offset)/io) for every level, both conventions") {
  std::vector<uint8_t> levels(256 * 3);
  for (int v = 0; v < 256; ++v) levels[3 * v] = levels[3 * v + 1] = levels[3 * v + 2] = static_cast<uint8_t>(v);
  for (const OdParams& p : {kCanonical, kTiatoolbox}) {
    std::vector<float> od(levels.size());
    rgb_to_od_cpu(batch_of(levels, 1, 1, 256), p, od.data());
    for (int v = 0; v < 256; ++v)
      for (int c = 0; c < 3; ++c) CHECK_NEAR(od[3 * v + c], reference_od(v, p.io, p.offset, p.min_od), 1e-6);
  }
}

HF_TEST("rgb_to_od reads a black pixel as 1 when the offset is 0 (never infinite)") {
  std::vector<uint8_t> black(3, 0);
  std::vector<float> od(3);
  rgb_to_od_cpu(batch_of(black, 1, 1, 1), kTiatoolbox, od.data());
  for (float v : od) CHECK_NEAR(v, std::log(255.0), 1e-5);
}

HF_TEST("od_to_rgb inverts rgb_to_od exactly on a batch of 257 odd-sized images") {
  const auto rgb = synthetic_he(257, 5, 7, 11);
  std::vector<float> od(rgb.size());
  std::vector<uint8_t> back(rgb.size());
  rgb_to_od_cpu(batch_of(rgb, 257, 5, 7), kCanonical, od.data());
  od_to_rgb_cpu(od.data(), 257 * 5 * 7, kCanonical, back.data());
  CHECK(byte_diff(rgb.data(), back.data(), rgb.size()).max == 0);
}

HF_TEST("od_to_rgb clamps to 0..255 and rounds io·exp(-od) - offset") {
  const std::vector<float> od = {-1.f, 0.f, 0.5f, 20.f, 0.2f, 1.f};
  std::vector<uint8_t> out(od.size());
  od_to_rgb_cpu(od.data(), 2, kCanonical, out.data());
  for (size_t i = 0; i < od.size(); ++i) {
    double expected = std::min(std::max(std::round(240.0 * std::exp(-double(od[i])) - 1.0), 0.0), 255.0);
    CHECK_NEAR(out[i], expected, 0);
  }
}

HF_TEST("rgb_to_od on CUDA equals the CPU reference (1x1, odd sizes, batch 257)") {
  SKIP_WITHOUT_CUDA();
  for (auto [n, h, w] : {std::array<int64_t, 3>{1, 1, 1}, {1, 37, 53}, {257, 9, 11}}) {
    const auto rgb = synthetic_he(n, h, w, 5);
    std::vector<float> cpu(rgb.size()), gpu(rgb.size());
    for (const OdParams& p : {kCanonical, kTiatoolbox}) {
      rgb_to_od_cpu(batch_of(rgb, n, h, w), p, cpu.data());
      rgb_to_od_cuda(batch_of(rgb, n, h, w), p, gpu.data());
      for (size_t i = 0; i < cpu.size(); ++i) CHECK_NEAR(gpu[i], cpu[i], 1e-5 * (1 + std::fabs(cpu[i])));
    }
  }
}

HF_TEST("od_to_rgb on CUDA equals the CPU reference within one level") {
  SKIP_WITHOUT_CUDA();
  const auto rgb = synthetic_he(257, 9, 11, 6);
  std::vector<float> od(rgb.size());
  rgb_to_od_cpu(batch_of(rgb, 257, 9, 11), kCanonical, od.data());
  std::vector<uint8_t> cpu(rgb.size()), gpu(rgb.size());
  od_to_rgb_cpu(od.data(), 257 * 9 * 11, kCanonical, cpu.data());
  od_to_rgb_cuda(od.data(), 257 * 9 * 11, kCanonical, gpu.data());
  CHECK(byte_diff(cpu.data(), gpu.data(), cpu.size()).max <= 1);
}
