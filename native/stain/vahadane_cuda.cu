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
#include "stain/vahadane.h"
#include "stain/vahadane_steps.h"

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
      const int64_t src = im.step > 0 ? vahadane::subsample_index(k, u, im.step, im.tissue) : k;
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

// Step 4a per sample (vahadane::lasso_term), summed per image.
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
    vahadane::lasso_term(d.w, d.g, d.g_inv, lambda, x, acc);
  }
};

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
  HF_CUDA_LAUNCH(op, flags_kernel<<<grid_blocks(pixels, kThreads), kThreads>>>(mask.data(), pixels, rank.data()));
  size_t temp_bytes = 0;
  cuda_check(cub::DeviceScan::ExclusiveSum(nullptr, temp_bytes, rank.data(), rank.data(), pixels), op,
             "cub::DeviceScan::ExclusiveSum");
  {
    DeviceBuffer<unsigned char> temp(temp_bytes, op);
    HF_CUDA_LAUNCH(op, cuda_check(cub::DeviceScan::ExclusiveSum(temp.data(), temp_bytes, rank.data(), rank.data(),
                                                              pixels),
                                  op, "cub::DeviceScan::ExclusiveSum"));
  }
  HF_CUDA_LAUNCH(op, compact_kernel<<<grid_blocks(pixels, kThreads), kThreads>>>(
                     mask.data(), rank.data(), pixels, tissue_pixel.data()));

  const double u = vahadane::subsample_offset(p.seed);
  DeviceBuffer<SampleImage> d_images(n, op);
  d_images.upload(images.data(), n, op);
  DeviceBuffer<float> sample(3 * sample_total, op);
  HF_CUDA_LAUNCH(op, sample_kernel<<<stain_cuda::batch_grid(n, max_samples), kThreads>>>(
                     batch.od.data(), tissue_pixel.data(), n, d_images.data(), u, sample.data()));

  // 3. Start from Ruifrok & Johnston's H and E.
  std::vector<Dictionary> dictionaries(n);
  std::vector<uint8_t> active(n, 0);
  for (int64_t i = 0; i < n; ++i) {
    Dictionary& d = dictionaries[i];
    std::memset(&d, 0, sizeof(d));
    if (images[i].samples == 0) continue;
    vahadane::ruifrok_start(d.w);
    active[i] = 1;
  }

  DeviceBuffer<Dictionary> d_dictionaries(n, op);
  for (int it = 0; it < p.iterations; ++it) {
    bool any_active = false;
    for (int64_t i = 0; i < n; ++i) {
      if (!active[i]) continue;
      Dictionary& d = dictionaries[i];
      if (!vahadane::gram(d.w, d.g, d.g_inv)) {
        fits[i].status = kFitDegenerate;
        active[i] = 0;
        continue;
      }
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

    // 4b. Dictionary update.
    for (int64_t i = 0; i < n; ++i)
      if (active[i]) vahadane::update_dictionary(dictionaries[i].w, &sums[9 * i]);
  }

  // 5. Unit rows, hematoxylin first.
  for (int64_t i = 0; i < n; ++i) {
    if (!active[i]) continue;
    if (vahadane::stain_rows(dictionaries[i].w, fits[i].he)) {
      fits[i].status = kFitOk;
    } else {
      fits[i].status = kFitDegenerate;
      active[i] = 0;
    }
  }
  // 6. max_c over all pixels.
  stain_cuda::fit_max_c(batch, fits, op);
}

}  // namespace hf
