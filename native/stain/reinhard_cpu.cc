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

#include "color/lab_opencv8.h"
#include "core/parallel.h"
#include "stain/reinhard.h"
#include "color/lab8_to_srgb.h"

namespace hf {

namespace {

constexpr int64_t kMinChunk = 1 << 14;

inline void lab8(const uint8_t* px, uint8_t out[3]) { OpenCvLab8::instance().convert(px, out); }

// round(255·srgb_gamma(linear)) for linear in [0, 1] without pow: level k
// starts at linear = srgb_to_linear((k − 0.5)/255); a coarse index gives the
// level at the bucket start, at most a step or two below the answer.
class LinearToSrgb8 {
 public:
  LinearToSrgb8() {
    for (int k = 1; k < 256; ++k) {
      const double v = (k - 0.5) / 255.0;
      starts_[k] = static_cast<float>(v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4));
    }
    starts_[0] = -1.f;
    int level = 0;
    for (int i = 0; i <= kCoarse; ++i) {
      const float lin = static_cast<float>(i) / kCoarse;
      while (level < 255 && lin >= starts_[level + 1]) ++level;
      coarse_[i] = static_cast<uint8_t>(level);
    }
  }
  uint8_t operator()(float lin) const {
    lin = std::min(std::max(lin, 0.f), 1.f);
    int level = coarse_[static_cast<int>(lin * kCoarse)];
    while (level < 255 && lin >= starts_[level + 1]) ++level;
    return static_cast<uint8_t>(level);
  }

 private:
  static constexpr int kCoarse = 8192;
  float starts_[256];
  uint8_t coarse_[kCoarse + 1];
};

// The tiatoolbox channel value of an 8-bit LAB level.
inline double unscaled(int channel, int level) { return channel == 0 ? level / 2.55 : level - 128.0; }

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
  static const LinearToSrgb8 gamma;
  const LabStats source = image_stats(rgb, pixels, threads);
  uint8_t table[3][256];
  for (int c = 0; c < 3; ++c) {
    const double gain = source.std[c] < 1e-6 ? 1.0 : target.std[c] / source.std[c];
    for (int v = 0; v < 256; ++v) {
      double y = (unscaled(c, v) - source.mean[c]) * gain + target.mean[c];
      double scaled = c == 0 ? y * 2.55 : y + 128.0;
      table[c][v] = static_cast<uint8_t>(std::min(std::max(scaled, 0.0), 255.0));
    }
  }
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads, pixels / kMinChunk + 1));
  parallel_for(workers, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w)
      for (int64_t k = pixels * w / workers; k < pixels * (w + 1) / workers; ++k) {
        uint8_t q[3];
        lab8(rgb + 3 * k, q);
        const uint8_t mapped[3] = {table[0][q[0]], table[1][q[1]], table[2][q[2]]};
        lab8_to_srgb(mapped, gamma, dst + 3 * k);
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
