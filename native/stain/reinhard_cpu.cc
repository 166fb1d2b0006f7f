// Reinhard et al. 2001 colour transfer as tiatoolbox's ReinhardNormalizer does
// it on uint8 images (stain/reinhard.h):
//   lab8 = cv2.cvtColor(rgb, RGB2LAB)  (8-bit: L·255/100, a+128, b+128, rounded)
//   x = (L8/2.55, a8−128, b8−128); stats = per-channel mean, population std
//   y = (x − μ_s)·σ_t/σ_s + μ_t → (y_L·2.55, y_a+128, y_b+128), clip [0,255],
//       astype(uint8) (truncation) → cv2 LAB2RGB (rounded)
// Because the 8-bit LAB values are integers, the statistics are exact sums over
// three 256-bin histograms and the transfer is a 256-entry table per channel.
// RGB → LAB8 is OpenCV's fixed-point path (color/lab_opencv8.h); LAB8 → RGB is
// OpenCV's float formula (color/lab.h) with the final gamma and rounding read
// from a table of the linear values where each 8-bit output level begins.
#include <algorithm>
#include <cmath>
#include <vector>

#include "color/lab8_to_srgb.h"
#include "color/lab_opencv8.h"
#include "core/parallel.h"
#include "stain/reinhard.h"
#include "stain/reinhard_tables.h"

namespace hf {

namespace {

constexpr int64_t kMinChunk = 1 << 14;

inline void lab8(const uint8_t* px, uint8_t out[3]) { OpenCvLab8::instance().convert(px, out); }

LabStats image_stats(const uint8_t* rgb, int64_t pixels, int threads) {
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads, pixels / kMinChunk + 1));
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
  int64_t hist[3 * 256];
  for (int i = 0; i < 3 * 256; ++i) {
    int64_t count = 0;
    for (int64_t w = 0; w < workers; ++w) count += partial[w * 768 + i];
    hist[i] = count;
  }
  return reinhard::stats_of(hist, pixels);
}

// Batches of at least as many images as threads run one image per thread;
// otherwise every thread works inside each image.
template <typename Fn>
void for_each_image(const RgbBatch& in, Fn&& per_image) {
  const int threads = cpu_threads();
  if (in.n >= threads) {
    parallel_for(in.n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) per_image(i, 1);
    });
  } else {
    for (int64_t i = 0; i < in.n; ++i) per_image(i, threads);
  }
}

void transform_image(const uint8_t* rgb, int64_t pixels, const LabStats& target, int threads, uint8_t* dst) {
  static const Srgb8Levels levels = make_srgb8_levels();
  const LabStats source = image_stats(rgb, pixels, threads);
  uint8_t table[3][256];
  reinhard::transfer_table(source, target, table);
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads, pixels / kMinChunk + 1));
  parallel_for(workers, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w)
      for (int64_t k = pixels * w / workers; k < pixels * (w + 1) / workers; ++k) {
        uint8_t q[3];
        lab8(rgb + 3 * k, q);
        const uint8_t mapped[3] = {table[0][q[0]], table[1][q[1]], table[2][q[2]]};
        lab8_to_srgb(mapped, [](float lin) { return linear_to_srgb8(levels, lin); }, dst + 3 * k);
      }
  });
}

}  // namespace

void reinhard_fit_cpu(const RgbBatch& in, LabStats* stats) {
  for_each_image(in, [&](int64_t i, int threads) { stats[i] = image_stats(in.image(i), in.pixels_per_image(), threads); });
}

void reinhard_transform_cpu(const RgbBatch& in, const LabStats& target, uint8_t* out) {
  const int64_t pixels = in.pixels_per_image();
  for_each_image(in, [&](int64_t i, int threads) { transform_image(in.image(i), pixels, target, threads, out + i * pixels * 3); });
}

}  // namespace hf
