// Vahadane et al., IEEE TMI 2016, on the device: the procedure of vahadane.h,
// step for step as vahadane_cpu.cc, in double precision. Per pixel on the
// device: tissue mask, raster-order compaction, the seeded subsample, and each
// iteration's closed-form lasso with the CᵀC / CᵀOD sums (per-image block
// reduction); the 2x3 dictionary update on the host. All images of the batch
// iterate together, one launch per iteration.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <cub/device/device_scan.cuh>

#include "stain/stain_cuda.cuh"
#include "stain/stain_math.h"
#include "stain/vahadane.h"

namespace hf {

namespace {

using stain_cuda::kThreads;

__global__ void flags_kernel(const uint8_t* __restrict__ mask, int64_t pixels, int64_t* __restrict__ flags) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < pixels; k += int64_t{gridDim.x} * blockDim.x)
    flags[k] = mask[k];
}

// rank: exclusive prefix count of tissue pixels over the batch, so tissue pixel
// r of the batch (image-major, raster order) is pixel tissue_pixel[r].
__global__ void compact_kernel(const uint8_t* __restrict__ mask, const int64_t* __restrict__ rank, int64_t pixels,
                               int64_t* __restrict__ tissue_pixel) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < pixels; k += int64_t{gridDim.x} * blockDim.x)
    if (mask[k]) tissue_pixel[rank[k]] = k;
}

struct SampleImage {
  int64_t tissue_offset;  // first of the image's tissue pixels in tissue_pixel
  int64_t sample_offset;  // first of its samples in the sample array
  int64_t samples;        // 0 for an image that is not fitted
  int64_t tissue;         // its tissue pixel count
  double step;            // count / max_pixels when subsampled, else 0
};

// Step 2: sample k of an image is tissue pixel floor((k + u)·step) (k itself
// when the image is not subsampled).
__global__ void sample_kernel(const float* __restrict__ od, const int64_t* __restrict__ tissue_pixel, int64_t n,
                              const SampleImage* __restrict__ images, double u, float* __restrict__ sample) {
  for (int64_t img = blockIdx.y; img < n; img += gridDim.y) {
    const SampleImage im = images[img];
    for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < im.samples;
         k += int64_t{gridDim.x} * blockDim.x) {
      int64_t src = k;
      if (im.step > 0) {
        src = static_cast<int64_t>(floor((static_cast<double>(k) + u) * im.step));
        src = src < im.tissue - 1 ? src : im.tissue - 1;
      }
      const int64_t px = tissue_pixel[im.tissue_offset + src];
      for (int c = 0; c < 3; ++c) sample[3 * (im.sample_offset + k) + c] = od[3 * px + c];
    }
  }
}

// One image's W for an iteration, with G = W·Wᵀ (00, 01, 11) and its inverse.
struct Dictionary {
  double w[2][3];
  double g[3], g_inv[3];
};

// Step 4a: argmin_c≥0 ½‖od − c·W‖² + λ(c₀ + c₁) in closed form (vahadane_cpu.cc's
// sparse_code), then the terms of CᵀC (00, 01, 11) and CᵀOD (H row, E row).
struct LassoTerm {
  const float* sample;
  const SampleImage* images;
  const Dictionary* dictionaries;
  double lambda;
  __device__ int64_t items(int64_t img) const { return images[img].samples; }
  __device__ void operator()(int64_t img, int64_t k, double* acc) const {
    const Dictionary& d = dictionaries[img];
    const float* xf = sample + 3 * (images[img].sample_offset + k);
    const double x[3] = {xf[0], xf[1], xf[2]};
    const double b0 = d.w[0][0] * x[0] + d.w[0][1] * x[1] + d.w[0][2] * x[2];
    const double b1 = d.w[1][0] * x[0] + d.w[1][1] * x[1] + d.w[1][2] * x[2];
    const double u0 = b0 - lambda, u1 = b1 - lambda;
    double c0 = d.g_inv[0] * u0 + d.g_inv[1] * u1, c1 = d.g_inv[1] * u0 + d.g_inv[2] * u1;
    if (!(c0 >= 0 && c1 >= 0)) {
      // The objective without the constant ½‖od‖² ranks the one-stain candidates.
      auto objective = [&](double x0, double x1) {
        return -(x0 * b0 + x1 * b1) + 0.5 * (d.g[0] * x0 * x0 + 2 * d.g[1] * x0 * x1 + d.g[2] * x1 * x1) +
               lambda * (x0 + x1);
      };
      const double only_h = fmax(0.0, u0 / d.g[0]), only_e = fmax(0.0, u1 / d.g[2]);
      if (objective(only_h, 0) <= objective(0, only_e)) {
        c0 = only_h, c1 = 0;
      } else {
        c0 = 0, c1 = only_e;
      }
    }
    acc[0] += c0 * c0, acc[1] += c0 * c1, acc[2] += c1 * c1;
    for (int j = 0; j < 3; ++j) {
      acc[3 + j] += c0 * x[j];
      acc[6 + j] += c1 * x[j];
    }
  }
};

bool normalize_row(double w[3]) {
  const double norm = std::sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
  if (!(norm > 0) || !std::isfinite(norm)) return false;
  for (int k = 0; k < 3; ++k) w[k] /= norm;
  return true;
}

}  // namespace

void vahadane_fit_cuda(const RgbBatch& in, const VahadaneParams& p, StainFit* fits) {
  const char* op = "vahadane_fit_cuda";
  const int64_t n = in.n, ppi = in.pixels_per_image(), pixels = in.pixels();
  for (int64_t i = 0; i < n; ++i) fits[i] = StainFit{};
  if (n == 0) return;

  // 1. Tissue OD in raster order.
  stain_cuda::DeviceBatch batch = stain_cuda::upload_batch(in, p.od, op);
  std::vector<int64_t> tissue_counts;
  DeviceBuffer<uint8_t> mask = stain_cuda::tissue_mask(in, batch, p.tissue, p.od, tissue_counts, op);
  std::vector<SampleImage> images(n);
  int64_t tissue_total = 0, sample_total = 0, max_samples = 0;
  for (int64_t i = 0; i < n; ++i) {
    SampleImage& im = images[i];
    std::memset(&im, 0, sizeof(im));
    const int64_t count = tissue_counts[i];
    im.tissue_offset = tissue_total;
    im.tissue = count;
    tissue_total += count;
    fits[i].tissue_pixels = count;
    if (count < 2) {
      fits[i].status = kFitTooFewTissuePixels;
      continue;
    }
    // 2. Subsample when count > max_pixels.
    im.samples = count;
    if (p.max_pixels > 0 && count > p.max_pixels) {
      im.samples = p.max_pixels;
      im.step = static_cast<double>(count) / static_cast<double>(p.max_pixels);
    }
    im.sample_offset = sample_total;
    sample_total += im.samples;
    max_samples = std::max(max_samples, im.samples);
  }
  if (sample_total == 0) return;

  DeviceBuffer<int64_t> rank(pixels, op), tissue_pixel(tissue_total, op);
  flags_kernel<<<grid_blocks(pixels, kThreads), kThreads>>>(mask.data(), pixels, rank.data());
  HF_CUDA_CHECK_LAUNCH(op);
  size_t temp_bytes = 0;
  cuda_check(cub::DeviceScan::ExclusiveSum(nullptr, temp_bytes, rank.data(), rank.data(), pixels), op,
             "cub::DeviceScan::ExclusiveSum");
  {
    DeviceBuffer<unsigned char> temp(temp_bytes, op);
    cuda_check(cub::DeviceScan::ExclusiveSum(temp.data(), temp_bytes, rank.data(), rank.data(), pixels), op,
               "cub::DeviceScan::ExclusiveSum");
  }
  compact_kernel<<<grid_blocks(pixels, kThreads), kThreads>>>(mask.data(), rank.data(), pixels, tissue_pixel.data());
  HF_CUDA_CHECK_LAUNCH(op);

  const double u = static_cast<double>(splitmix64(p.seed, 0) >> 11) * 0x1.0p-53;
  DeviceBuffer<SampleImage> d_images(n, op);
  d_images.upload(images.data(), n, op);
  DeviceBuffer<float> sample(3 * sample_total, op);
  sample_kernel<<<stain_cuda::batch_grid(n, max_samples), kThreads>>>(batch.od.data(), tissue_pixel.data(), n,
                                                                      d_images.data(), u, sample.data());
  HF_CUDA_CHECK_LAUNCH(op);

  // 3. Start from Ruifrok & Johnston's H and E.
  std::vector<Dictionary> dictionaries(n);
  std::vector<uint8_t> active(n, 0);
  for (int64_t i = 0; i < n; ++i) {
    Dictionary& d = dictionaries[i];
    std::memset(&d, 0, sizeof(d));
    if (images[i].samples == 0) continue;
    const double start[2][3] = {{0.65, 0.70, 0.29}, {0.07, 0.99, 0.11}};
    std::memcpy(d.w, start, sizeof(start));
    normalize_row(d.w[0]);
    normalize_row(d.w[1]);
    active[i] = 1;
  }

  DeviceBuffer<Dictionary> d_dictionaries(n, op);
  for (int it = 0; it < p.iterations; ++it) {
    bool any_active = false;
    for (int64_t i = 0; i < n; ++i) {
      if (!active[i]) continue;
      Dictionary& d = dictionaries[i];
      const double(*w)[3] = d.w;
      d.g[0] = w[0][0] * w[0][0] + w[0][1] * w[0][1] + w[0][2] * w[0][2];
      d.g[1] = w[0][0] * w[1][0] + w[0][1] * w[1][1] + w[0][2] * w[1][2];
      d.g[2] = w[1][0] * w[1][0] + w[1][1] * w[1][1] + w[1][2] * w[1][2];
      const double det_g = d.g[0] * d.g[2] - d.g[1] * d.g[1];
      if (!(det_g > 1e-12 * (d.g[0] + d.g[2]) * (d.g[0] + d.g[2]))) {
        fits[i].status = kFitDegenerate;
        active[i] = 0;
        continue;
      }
      d.g_inv[0] = d.g[2] / det_g;
      d.g_inv[1] = -d.g[1] / det_g;
      d.g_inv[2] = d.g[0] / det_g;
      any_active = true;
    }
    if (!any_active) break;
    // Images that stopped contribute no samples to this iteration's sums.
    for (int64_t i = 0; i < n; ++i)
      if (!active[i]) images[i].samples = 0;
    d_images.upload(images.data(), n, op);
    d_dictionaries.upload(dictionaries.data(), n, op);
    const std::vector<double> sums = stain_cuda::per_image_sums<9>(
        n, max_samples, LassoTerm{sample.data(), d_images.data(), d_dictionaries.data(), p.lambda}, op);

    // 4b. Dictionary update of Mairal et al. 2010 with A = CᵀC, B = CᵀOD: each
    // row in turn, using the rows already updated, clipped at 0 and scaled
    // into the unit ball; a row with A_jj ≤ 1e-12 is left as is.
    for (int64_t i = 0; i < n; ++i) {
      if (!active[i]) continue;
      const double* s = &sums[9 * i];
      const double a[2][2] = {{s[0], s[1]}, {s[1], s[2]}};
      const double* b[2] = {s + 3, s + 6};
      double(*w)[3] = dictionaries[i].w;
      for (int j = 0; j < 2; ++j) {
        if (!(a[j][j] > 1e-12)) continue;
        for (int k = 0; k < 3; ++k)
          w[j][k] = std::max(0.0, w[j][k] + (b[j][k] - (a[j][0] * w[0][k] + a[j][1] * w[1][k])) / a[j][j]);
        const double norm = std::sqrt(w[j][0] * w[j][0] + w[j][1] * w[j][1] + w[j][2] * w[j][2]);
        const double scale = std::max(norm, 1.0);
        for (int k = 0; k < 3; ++k) w[j][k] /= scale;
      }
    }
  }

  // Unit rows; a zero row or collinear rows (|cos| > 1 − 1e-6) are degenerate.
  for (int64_t i = 0; i < n; ++i) {
    if (!active[i]) continue;
    double(*w)[3] = dictionaries[i].w;
    const bool unit = normalize_row(w[0]) && normalize_row(w[1]);
    if (!unit || std::fabs(w[0][0] * w[1][0] + w[0][1] * w[1][1] + w[0][2] * w[1][2]) > 1 - 1e-6) {
      fits[i].status = kFitDegenerate;
      active[i] = 0;
    }
  }

  // 5. Hematoxylin has the larger red OD.
  for (int64_t i = 0; i < n; ++i) {
    if (!active[i]) continue;
    const double(*w)[3] = dictionaries[i].w;
    const int h = w[0][0] >= w[1][0] ? 0 : 1;
    for (int k = 0; k < 3; ++k) {
      fits[i].he[k] = static_cast<float>(w[h][k]);
      fits[i].he[3 + k] = static_cast<float>(w[1 - h][k]);
    }
    fits[i].status = kFitOk;
  }
  // 6. max_c over all pixels.
  stain_cuda::fit_max_c(batch, fits, op);
}

}  // namespace hf
