// Reinhard et al. 2001 colour transfer as tiatoolbox's ReinhardNormalizer does
// it on uint8 images (stain/reinhard.h):
//   lab8 = cv2.cvtColor(rgb, RGB2LAB)  (8-bit: L·255/100, a+128, b+128, rounded)
//   x = (L8/2.55, a8−128, b8−128); stats = per-channel mean, population std
//   y = (x − μ_s)·σ_t/σ_s + μ_t → (y_L·2.55, y_a+128, y_b+128), clip [0,255],
//       astype(uint8) (truncation) → cv2 LAB2RGB (rounded)
// Because the 8-bit LAB values are integers, the statistics are exact sums over
// three 256-bin histograms and the transfer is a 256-entry table per channel.
#include <algorithm>
#include <cmath>
#include <vector>

#include "color/lab.h"
#include "core/parallel.h"
#include "stain/reinhard.h"

namespace hf {

namespace {

constexpr int64_t kMinChunk = 1 << 14;

// OpenCV's 8-bit LAB of one pixel from the exact float formula.
inline void lab8(const uint8_t* px, uint8_t out[3]) {
  float lab[3];
  srgb_to_lab(px[0], px[1], px[2], lab);
  const float v[3] = {lab[0] * 2.55f, lab[1] + 128.f, lab[2] + 128.f};
  for (int c = 0; c < 3; ++c) out[c] = static_cast<uint8_t>(std::nearbyint(std::min(std::max(v[c], 0.f), 255.f)));
}

// The tiatoolbox channel value of an 8-bit LAB level.
inline double unscaled(int channel, int level) { return channel == 0 ? level / 2.55 : level - 128.0; }

LabStats image_stats(const uint8_t* rgb, int64_t pixels) {
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(cpu_threads(), pixels / kMinChunk + 1));
  std::vector<int64_t> partial(workers * 3 * 256, 0);
  parallel_for(workers, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      int64_t* h = partial.data() + w * 3 * 256;
      for (int64_t i = pixels * w / workers; i < pixels * (w + 1) / workers; ++i) {
        uint8_t q[3];
        lab8(rgb + 3 * i, q);
        ++h[q[0]], ++h[256 + q[1]], ++h[512 + q[2]];
      }
    }
  });
  LabStats s;
  s.pixels = pixels;
  if (pixels == 0) return s;
  for (int c = 0; c < 3; ++c) {
    double sum = 0, sum_sq = 0;
    for (int v = 0; v < 256; ++v) {
      int64_t count = 0;
      for (int64_t w = 0; w < workers; ++w) count += partial[w * 768 + c * 256 + v];
      double x = unscaled(c, v);
      sum += count * x;
      sum_sq += count * x * x;
    }
    s.mean[c] = sum / pixels;
    s.std[c] = std::sqrt(std::max(0.0, sum_sq / pixels - s.mean[c] * s.mean[c]));
  }
  return s;
}

}  // namespace

void reinhard_fit_cpu(const RgbBatch& in, LabStats* stats) {
  for (int64_t i = 0; i < in.n; ++i) stats[i] = image_stats(in.image(i), in.pixels_per_image());
}

void reinhard_transform_cpu(const RgbBatch& in, const LabStats& target, uint8_t* out) {
  const int64_t pixels = in.pixels_per_image();
  for (int64_t i = 0; i < in.n; ++i) {
    const uint8_t* rgb = in.image(i);
    const LabStats source = image_stats(rgb, pixels);
    uint8_t table[3][256];
    for (int c = 0; c < 3; ++c) {
      const double gain = source.std[c] < 1e-6 ? 1.0 : target.std[c] / source.std[c];
      for (int v = 0; v < 256; ++v) {
        double y = (unscaled(c, v) - source.mean[c]) * gain + target.mean[c];
        double scaled = c == 0 ? y * 2.55 : y + 128.0;
        table[c][v] = static_cast<uint8_t>(std::min(std::max(scaled, 0.0), 255.0));
      }
    }
    uint8_t* dst = out + i * pixels * 3;
    parallel_for(pixels, kMinChunk, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        uint8_t q[3];
        lab8(rgb + 3 * k, q);
        const float lab[3] = {table[0][q[0]] * (100.f / 255.f), table[1][q[1]] - 128.f, table[2][q[2]] - 128.f};
        lab_to_srgb(lab, dst + 3 * k);
      }
    });
  }
}

}  // namespace hf
