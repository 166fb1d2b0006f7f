// Device pieces shared by the CUDA stain methods (Macenko, Vahadane, fixed
// stains), implemented in stain_fit_cuda.cu. They use the CPU reference's own
// per-level OD and tissue tables (stain_fit_internal.h), the same float
// arithmetic per pixel, and exact order statistics. A batch is
// uploaded once; every kernel covers the whole batch, blockIdx.y walking the
// images.
#pragma once
#include <cstdint>
#include <vector>

#include <cub/block/block_reduce.cuh>

#include "core/cuda_check.cuh"
#include "core/image.h"
#include "stain/order_statistics.h"
#include "stain/stain_fit.h"

namespace hf {
namespace stain_cuda {

constexpr int kThreads = 256;

// A batch on the device: its RGB values and their optical densities (both N*P*3).
struct DeviceBatch {
  int64_t n = 0;
  int64_t pixels_per_image = 0;
  DeviceBuffer<uint8_t> rgb;
  DeviceBuffer<float> od;
  int64_t pixels() const { return n * pixels_per_image; }
};
DeviceBatch upload_batch(const RgbBatch& in, const OdParams& od, const char* op);

// Grid of a per-item kernel over a batch: x strides through one image's items,
// y through the images.
dim3 batch_grid(int64_t n, int64_t items_per_image);

// 1 for each tissue pixel (TissueParams), and the count per image on the host.
// `in` is the batch on the host, which the luminosity rule's tables read.
DeviceBuffer<uint8_t> tissue_mask(const RgbBatch& in, const DeviceBatch& batch, const TissueParams& tissue,
                                  const OdParams& od, std::vector<int64_t>& counts, const char* op);

// numpy.percentile (linear) order statistics of values grouped by segment:
// values[k] belongs to segment segments[k], or to none when segments[k] ≥
// segment_count. Returns, for segment s and percent j, result[s·percents.size()
// + j] = the two neighbouring order statistics and the weight between them
// (NaN for an empty segment). One radix sort over (segment, value) keys serves
// every segment, whatever their sizes.
std::vector<OrderPair> segmented_order_pairs(const float* values, const uint32_t* segments, int64_t count,
                                             int64_t segment_count, const std::vector<double>& percents,
                                             const char* op);

// For every fit whose status is kFitOk on entry: max_c = 99th percentile of
// the least-squares concentrations (stain_pinv of its he) over all the image's
// pixels; kFitDegenerate (max_c 0) when he is singular or a max_c is not > 0.
// Its scratch (kFitScratchPerPixel bytes a pixel: two concentrations, their
// segments, the sort's keys, sorted keys and cub's alternate buffer) is kept
// under fit_scratch_bytes() by taking the batch a chunk of images at a time; an
// image larger than the bound is one chunk on its own.
void fit_max_c(const DeviceBatch& batch, StainFit* fits, const char* op);
constexpr size_t kFitScratchPerPixel = 2 * (4 + 4 + 8 + 8 + 8);
constexpr size_t kFitScratchBytes = size_t{256} << 20;
// kFitScratchBytes, or HISTOFLOW_CUDA_SCRATCH_BYTES from the environment (the
// parity tests set it small to check that chunking changes nothing).
size_t fit_scratch_bytes();

// ---- Per-image sums ---------------------------------------------------------------
// Sums K doubles per image: term.items(img) items, term(img, k, acc) adds item
// k's terms to acc. Each block writes its partial sums and a second kernel adds
// them in block order, so the result does not depend on scheduling.

template <int K, typename Term>
__global__ void per_image_block_sums_kernel(int64_t n, Term term, double* __restrict__ partials) {
  using BlockReduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename BlockReduce::TempStorage temp;
  for (int64_t img = blockIdx.y; img < n; img += gridDim.y) {
    double acc[K];
    for (int j = 0; j < K; ++j) acc[j] = 0.0;
    const int64_t items = term.items(img);
    for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < items; k += int64_t{gridDim.x} * blockDim.x)
      term(img, k, acc);
    for (int j = 0; j < K; ++j) {
      double total = BlockReduce(temp).Sum(acc[j]);
      if (threadIdx.x == 0) partials[(img * gridDim.x + blockIdx.x) * K + j] = total;
      __syncthreads();
    }
  }
}

template <int K>
__global__ void per_image_finish_sums_kernel(int64_t n, unsigned blocks, const double* __restrict__ partials,
                                             double* __restrict__ sums) {
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < n * K; t += int64_t{gridDim.x} * blockDim.x) {
    const int64_t img = t / K, j = t % K;
    double total = 0.0;
    for (unsigned b = 0; b < blocks; ++b) total += partials[(img * blocks + b) * K + j];
    sums[t] = total;
  }
}

// Host side: returns sums[img·K + j].
template <int K, typename Term>
std::vector<double> per_image_sums(int64_t n, int64_t max_items_per_image, const Term& term, const char* op) {
  std::vector<double> sums(n * K, 0.0);
  if (n == 0) return sums;
  const dim3 grid = batch_grid(n, max_items_per_image);
  DeviceBuffer<double> partials(n * grid.x * K, op), d_sums(n * K, op);
  HF_CUDA_LAUNCH(op, per_image_block_sums_kernel<K, Term><<<grid, kThreads>>>(n, term, partials.data()));
  HF_CUDA_LAUNCH(op, per_image_finish_sums_kernel<K><<<grid_blocks(n * K, kThreads), kThreads>>>(
                     n, grid.x, partials.data(), d_sums.data()));
  d_sums.download(sums.data(), sums.size(), op);
  return sums;
}

}  // namespace stain_cuda
}  // namespace hf
