// Batched augmentation on the device (augment.h: the order of operations and
// the formulas). The batch and the per-image parameters are uploaded once; each
// stage is one launch over the whole batch, blockIdx.y walking the images:
//   1. sample_kernel   geometry (D4, crop, bilinear resize), elastic warp (four
//                       geometry samples per pixel, from the image's control
//                       grid drawn on the host) + HED jitter → float RGB
//   2. gray_mean_kernel per-image mean gray for contrast (one block per image,
//                       double sums, deterministic)
//   3. colour_kernel   brightness, contrast, saturation, hue (in place)
//   4. blur_kernel x2  separable gaussian, per-image radius and weights (host
//                       computed, as the CPU reference), rows then columns
//   5. finish_kernel   gaussian noise (counter-based, double) + normalize → out
// The per-pixel formulas are augment_cpu.cc's own (augment_device.cuh says
// which headers, and the two places the backends differ), so the two agree
// to ~1e-6.
#include <cub/block/block_reduce.cuh>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "augment/augment.h"
#include "augment/augment_check.h"
#include "augment/augment_device.cuh"
#include "core/cuda_check.cuh"

namespace hf {

namespace {

constexpr int kThreads = 256;
constexpr unsigned kMaxGridY = 65535u;

// Grid for a per-item kernel over the batch: x strides through one image's
// items, y through the images.
dim3 batch_grid(int64_t n, int64_t items_per_image) {
  const unsigned x = grid_blocks(items_per_image, kThreads, 4096u);
  const unsigned y = static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(n, 1), kMaxGridY));
  return dim3(x, y, 1);
}

#define HF_FOR_EACH_IMAGE(img, n) for (int64_t img = blockIdx.y; img < (n); img += gridDim.y)
#define HF_FOR_EACH_ITEM(k, items) \
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < (items); k += int64_t{gridDim.x} * blockDim.x)

// ---- 1. geometry + HED ----------------------------------------------------------

// By value: the tables (2 KiB) travel in the launch's parameter space, and
// each block copies them to shared memory.
struct SampleArgs {
  const uint8_t* in;
  int64_t height, width;  // source image
  AugmentBatchParams batch;
  augment_dev::Tables tables;
};

// controls + offsets[img]: image img's elastic control grids (when its
// elastic_alpha > 0; both null when no image of the batch has one).
__global__ void sample_kernel(SampleArgs a, int64_t n, const AugmentImageParams* __restrict__ params,
                              const float* __restrict__ controls, const int64_t* __restrict__ offsets,
                              float* __restrict__ buf) {
  // The tables into shared memory: the 256-entry lookups index them freely.
  static_assert(sizeof(augment_dev::Tables) % sizeof(float) == 0, "Tables is copied as floats");
  constexpr int kTableFloats = sizeof(augment_dev::Tables) / sizeof(float);
  __shared__ augment_dev::Tables tables;
  for (int i = threadIdx.x; i < kTableFloats; i += blockDim.x)
    reinterpret_cast<float*>(&tables)[i] = reinterpret_cast<const float*>(&a.tables)[i];
  __syncthreads();
  const int out_h = a.batch.out_h, out_w = a.batch.out_w;
  const int64_t ppi = int64_t{out_h} * out_w;
  HF_FOR_EACH_IMAGE(img, n) {
    const AugmentImageParams& p = params[img];
    const uint8_t* src = a.in + img * a.height * a.width * 3;
    const bool warp = p.elastic_alpha > 0.f;  // block-uniform
    HF_FOR_EACH_ITEM(k, ppi) {
      const int y = static_cast<int>(k / out_w), x = static_cast<int>(k % out_w);
      float rgb[3];
      if (warp)
        augment_dev::elastic_pixel(src, a.width, a.batch, p, tables, controls + offsets[img], y, x, rgb);
      else
        augment_dev::sample_pixel(src, a.width, a.batch, p, tables, y, x, rgb);
      float* o = buf + (img * ppi + k) * 3;
      o[0] = rgb[0], o[1] = rgb[1], o[2] = rgb[2];
    }
  }
}

// ---- 2. mean gray (contrast) ------------------------------------------------------

// One block per image (x walks the images), one thread per row: each row is
// summed in float from left to right, the rows in double, and the block
// reduction is in a fixed order, so the mean does not depend on scheduling.
// (augment_cpu's gray_sum_row keeps sixteen partial float sums per row, which
// vectorize: the two means agree to float rounding, not bit for bit.)
__global__ void gray_mean_kernel(const float* __restrict__ buf, int64_t n, int out_h, int out_w,
                                 const AugmentImageParams* __restrict__ params, float* __restrict__ mean_gray) {
  using BlockReduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  const int64_t ppi = int64_t{out_h} * out_w;
  for (int64_t img = blockIdx.x; img < n; img += gridDim.x) {
    if (params[img].contrast == 1.f) continue;  // block-uniform
    double acc = 0.0;
    for (int y = threadIdx.x; y < out_h; y += blockDim.x) {
      const float* px = buf + (img * ppi + int64_t{y} * out_w) * 3;
      float row = 0.f;
      for (int x = 0; x < out_w; ++x) row += augment::gray_of(px[3 * x], px[3 * x + 1], px[3 * x + 2]);
      acc += row;
    }
    const double total = BlockReduce(temp).Sum(acc);
    if (threadIdx.x == 0) mean_gray[img] = static_cast<float>(total / static_cast<double>(ppi));
    __syncthreads();  // temp is reused by the next image
  }
}

// ---- 3. colour --------------------------------------------------------------------

__global__ void colour_kernel(float* __restrict__ buf, int64_t n, int64_t ppi,
                              const AugmentImageParams* __restrict__ params, const float* __restrict__ mean_gray) {
  HF_FOR_EACH_IMAGE(img, n) {
    const AugmentImageParams& p = params[img];
    if (augment::colour_identity(p)) continue;
    const float m = p.contrast == 1.f ? 0.f : mean_gray[img];
    HF_FOR_EACH_ITEM(k, ppi) {
      float* o = buf + (img * ppi + k) * 3;
      float rgb[3] = {o[0], o[1], o[2]};
      augment_dev::colour_pixel(rgb, p, m);
      o[0] = rgb[0], o[1] = rgb[1], o[2] = rgb[2];
    }
  }
}

// ---- 4. gaussian blur ---------------------------------------------------------------

// One pass of the separable blur along x (vertical false) or y (vertical true),
// replicate edges. weights + offsets[img] holds 2·radius[img] + 1 taps; a
// radius of 0 copies the image.
__global__ void blur_kernel(const float* __restrict__ src, float* __restrict__ dst, int64_t n, int out_h, int out_w,
                            bool vertical, const float* __restrict__ weights, const int64_t* __restrict__ offsets,
                            const int* __restrict__ radius) {
  const int64_t ppi = int64_t{out_h} * out_w;
  HF_FOR_EACH_IMAGE(img, n) {
    const int r = radius[img];
    const float* w = weights + offsets[img];
    const float* s = src + img * ppi * 3;
    float* d = dst + img * ppi * 3;
    HF_FOR_EACH_ITEM(k, ppi) {
      const int y = static_cast<int>(k / out_w), x = static_cast<int>(k % out_w);
      if (r == 0) {
        d[3 * k] = s[3 * k], d[3 * k + 1] = s[3 * k + 1], d[3 * k + 2] = s[3 * k + 2];
        continue;
      }
      float acc[3] = {0.f, 0.f, 0.f};
      for (int t = -r; t <= r; ++t) {
        int64_t q;
        if (vertical) {
          const int yy = min(max(y + t, 0), out_h - 1);
          q = int64_t{yy} * out_w + x;
        } else {
          const int xx = min(max(x + t, 0), out_w - 1);
          q = int64_t{y} * out_w + xx;
        }
        const float wt = w[t + r];
        acc[0] += wt * s[3 * q];
        acc[1] += wt * s[3 * q + 1];
        acc[2] += wt * s[3 * q + 2];
      }
      d[3 * k] = acc[0], d[3 * k + 1] = acc[1], d[3 * k + 2] = acc[2];
    }
  }
}

// ---- 5. noise + normalize -----------------------------------------------------------

__global__ void finish_kernel(const float* __restrict__ buf, int64_t n, int64_t ppi, AugmentBatchParams batch,
                              const AugmentImageParams* __restrict__ params, float* __restrict__ out) {
  HF_FOR_EACH_IMAGE(img, n) {
    const AugmentImageParams& p = params[img];
    HF_FOR_EACH_ITEM(k, ppi) {
      const int64_t base = (img * ppi + k) * 3;
      for (int c = 0; c < 3; ++c) {
        float v = buf[base + c];
        if (p.noise_sigma != 0.f)
          v = augment_dev::add_noise(v, p.noise_sigma, p.noise_seed, static_cast<uint64_t>(k * 3 + c));
        out[base + c] = augment_dev::normalize(v, batch.mean[c], batch.std[c]);
      }
    }
  }
}

#undef HF_FOR_EACH_IMAGE
#undef HF_FOR_EACH_ITEM

}  // namespace

void augment_cuda(const RgbBatch& in, const AugmentImageParams* params, const AugmentBatchParams& batch, float* out) {
  const char* op = "augment_cuda";
  const int64_t n = in.n;
  if (n <= 0) return;
  check_augment_args(in, params, batch);
  const int64_t ppi = int64_t{batch.out_h} * batch.out_w;
  const int64_t values = n * ppi * 3;

  // Per-image blur taps, built on the host exactly as the CPU reference does.
  std::vector<int> radius(n);
  std::vector<int64_t> offsets(n);
  std::vector<float> weights;
  // Per-image elastic control grids, drawn on the host (elastic::control_grids).
  std::vector<int64_t> control_offsets(n);
  std::vector<float> controls;
  bool any_blur = false, any_contrast = false, any_colour = false;
  for (int64_t i = 0; i < n; ++i) {
    const AugmentImageParams& p = params[i];
    control_offsets[i] = static_cast<int64_t>(controls.size());
    if (p.elastic_alpha > 0.f) augment_dev::elastic_controls(p, batch.out_h, batch.out_w, controls);
    offsets[i] = static_cast<int64_t>(weights.size());
    std::vector<float> taps = augment_dev::blur_weights(p.blur_sigma);
    radius[i] = static_cast<int>(taps.size() / 2);
    any_blur = any_blur || radius[i] > 0;
    weights.insert(weights.end(), taps.begin(), taps.end());
    any_contrast = any_contrast || p.contrast != 1.f;
    any_colour = any_colour || !augment::colour_identity(p);
  }

  SampleArgs args;
  args.height = in.height;
  args.width = in.width;
  args.batch = batch;
  args.tables = augment_tables();

  // d_out doubles as the blur's intermediate: rows d_buf → d_out, columns
  // d_out → d_buf, then noise + normalize d_buf → d_out.
  DeviceBuffer<uint8_t> d_in(static_cast<size_t>(in.bytes()), op);
  DeviceBuffer<AugmentImageParams> d_params(static_cast<size_t>(n), op);
  DeviceBuffer<float> d_buf(static_cast<size_t>(values), op);
  DeviceBuffer<float> d_out(static_cast<size_t>(values), op);
  DeviceBuffer<float> d_mean, d_weights;
  DeviceBuffer<int64_t> d_offsets;
  DeviceBuffer<int> d_radius;
  DeviceBuffer<float> d_controls;
  DeviceBuffer<int64_t> d_control_offsets;
  if (!controls.empty()) {
    d_controls = DeviceBuffer<float>(controls.size(), op);
    d_control_offsets = DeviceBuffer<int64_t>(static_cast<size_t>(n), op);
    d_controls.upload(controls.data(), controls.size(), op);
    d_control_offsets.upload(control_offsets.data(), static_cast<size_t>(n), op);
  }
  d_in.upload(in.data, static_cast<size_t>(in.bytes()), op);
  d_params.upload(params, static_cast<size_t>(n), op);
  args.in = d_in.data();
  if (any_colour) {
    d_mean = DeviceBuffer<float>(static_cast<size_t>(n), op);
    d_mean.zero(op);
  }
  if (any_blur) {
    d_weights = DeviceBuffer<float>(weights.size(), op);
    d_offsets = DeviceBuffer<int64_t>(static_cast<size_t>(n), op);
    d_radius = DeviceBuffer<int>(static_cast<size_t>(n), op);
    d_weights.upload(weights.data(), weights.size(), op);
    d_offsets.upload(offsets.data(), static_cast<size_t>(n), op);
    d_radius.upload(radius.data(), static_cast<size_t>(n), op);
  }

  const dim3 grid = batch_grid(n, ppi);
  HF_CUDA_LAUNCH(op, sample_kernel<<<grid, kThreads>>>(args, n, d_params.data(), d_controls.data(),
                                                       d_control_offsets.data(), d_buf.data()));
  if (any_contrast) {
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(n, kMaxGridY));
    HF_CUDA_LAUNCH(op, gray_mean_kernel<<<blocks, kThreads>>>(d_buf.data(), n, batch.out_h, batch.out_w,
                                                              d_params.data(), d_mean.data()));
  }
  if (any_colour) {
    HF_CUDA_LAUNCH(op, colour_kernel<<<grid, kThreads>>>(d_buf.data(), n, ppi, d_params.data(), d_mean.data()));
  }
  if (any_blur) {
    HF_CUDA_LAUNCH(op, blur_kernel<<<grid, kThreads>>>(d_buf.data(), d_out.data(), n, batch.out_h, batch.out_w, false,
                                                       d_weights.data(), d_offsets.data(), d_radius.data()));
    HF_CUDA_LAUNCH(op, blur_kernel<<<grid, kThreads>>>(d_out.data(), d_buf.data(), n, batch.out_h, batch.out_w, true,
                                                       d_weights.data(), d_offsets.data(), d_radius.data()));
  }
  HF_CUDA_LAUNCH(op, finish_kernel<<<grid, kThreads>>>(d_buf.data(), n, ppi, batch, d_params.data(), d_out.data()));
  cuda_check(cudaDeviceSynchronize(), op, "cudaDeviceSynchronize");
  d_out.download(out, static_cast<size_t>(values), op);
}

}  // namespace hf
