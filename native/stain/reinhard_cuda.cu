// Reinhard et al. 2001 colour transfer on the device, as reinhard_cpu.cc
// (tiatoolbox's ReinhardNormalizer on uint8 images): per pixel OpenCV 8-bit
// LAB on the device (color/lab_device.cuh), per-image statistics as exact sums
// over three 256-bin histograms (counted on the device, summed on the host:
// stain/reinhard_tables.h, as the CPU), the transfer as a 256-entry table per
// channel, LAB8→sRGB on the device.
#include <algorithm>
#include <cmath>
#include <vector>

#include "color/lab_device.cuh"
#include "core/cuda_check.cuh"
#include "stain/reinhard.h"
#include "stain/reinhard_tables.h"

namespace hf {

namespace {

constexpr int kThreads = 256;

dim3 batch_grid(int64_t n, int64_t pixels_per_image) {
  const unsigned x = grid_blocks(pixels_per_image, kThreads, 4096);
  const unsigned y = static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(n, 1), 65535));
  return dim3(x, y);
}

// hist[img][channel][level] of the 8-bit LAB values.
__global__ void lab8_histogram_kernel(const uint8_t* __restrict__ rgb, int64_t n, int64_t ppi,
                                      const Lab8DeviceTables* __restrict__ lab_tables,
                                      unsigned long long* __restrict__ hist) {
  __shared__ unsigned int block_hist[3 * 256];
  for (int64_t img = blockIdx.y; img < n; img += gridDim.y) {
    for (int i = threadIdx.x; i < 3 * 256; i += blockDim.x) block_hist[i] = 0;
    __syncthreads();
    for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < ppi; k += int64_t{gridDim.x} * blockDim.x) {
      uint8_t q[3];
      srgb_to_lab8_device(*lab_tables, rgb + (img * ppi + k) * 3, q);
      atomicAdd(&block_hist[q[0]], 1u);
      atomicAdd(&block_hist[256 + q[1]], 1u);
      atomicAdd(&block_hist[512 + q[2]], 1u);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < 3 * 256; i += blockDim.x)
      if (block_hist[i] > 0) atomicAdd(&hist[img * 768 + i], static_cast<unsigned long long>(block_hist[i]));
    __syncthreads();
  }
}

struct TransferTable {
  uint8_t level[3][256];
};

__global__ void reinhard_transfer_kernel(const uint8_t* __restrict__ rgb, int64_t n, int64_t ppi,
                                         const TransferTable* __restrict__ tables,
                                         const Lab8DeviceTables* __restrict__ lab_tables, uint8_t* __restrict__ out) {
  __shared__ TransferTable table;
  for (int64_t img = blockIdx.y; img < n; img += gridDim.y) {
    __syncthreads();  // the previous image's table is no longer read
    for (int i = threadIdx.x; i < 3 * 256; i += blockDim.x) (&table.level[0][0])[i] = (&tables[img].level[0][0])[i];
    __syncthreads();
    for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < ppi; k += int64_t{gridDim.x} * blockDim.x) {
      const int64_t base = (img * ppi + k) * 3;
      uint8_t q[3];
      srgb_to_lab8_device(*lab_tables, rgb + base, q);
      const uint8_t mapped[3] = {table.level[0][q[0]], table.level[1][q[1]], table.level[2][q[2]]};
      lab8_to_srgb_device(*lab_tables, mapped, out + base);
    }
  }
}

// The LAB tables on the device, once per call.
DeviceBuffer<Lab8DeviceTables> upload_lab_tables(const char* op) {
  static const Lab8DeviceTables tables = make_lab8_device_tables();
  DeviceBuffer<Lab8DeviceTables> d_tables(1, op);
  d_tables.upload(&tables, 1, op);
  return d_tables;
}

// Every image's LAB statistics; the batch stays on the device in `d_rgb`.
std::vector<LabStats> batch_stats(const RgbBatch& in, const DeviceBuffer<uint8_t>& d_rgb,
                                  const DeviceBuffer<Lab8DeviceTables>& lab_tables, const char* op) {
  const int64_t n = in.n, ppi = in.pixels_per_image();
  std::vector<unsigned long long> hist(n * 768, 0);
  if (in.pixels() > 0) {
    DeviceBuffer<unsigned long long> d_hist(n * 768, op);
    d_hist.zero(op);
    HF_CUDA_LAUNCH(op, lab8_histogram_kernel<<<batch_grid(n, ppi), kThreads>>>(d_rgb.data(), n, ppi, lab_tables.data(),
                                                                               d_hist.data()));
    d_hist.download(hist.data(), hist.size(), op);
  }
  std::vector<LabStats> stats(n);
  for (int64_t i = 0; i < n; ++i) stats[i] = reinhard::stats_of(&hist[i * 768], ppi);
  return stats;
}

}  // namespace

void reinhard_fit_cuda(const RgbBatch& in, LabStats* stats) {
  const char* op = "reinhard_fit_cuda";
  if (in.n == 0) return;
  DeviceBuffer<uint8_t> d_rgb(in.bytes(), op);
  d_rgb.upload(in.data, in.bytes(), op);
  const DeviceBuffer<Lab8DeviceTables> lab_tables = upload_lab_tables(op);
  const std::vector<LabStats> computed = batch_stats(in, d_rgb, lab_tables, op);
  std::copy(computed.begin(), computed.end(), stats);
}

void reinhard_transform_cuda(const RgbBatch& in, const LabStats& target, uint8_t* out) {
  const char* op = "reinhard_transform_cuda";
  const int64_t n = in.n, ppi = in.pixels_per_image();
  if (in.pixels() == 0) return;
  DeviceBuffer<uint8_t> d_rgb(in.bytes(), op);
  d_rgb.upload(in.data, in.bytes(), op);
  const DeviceBuffer<Lab8DeviceTables> lab_tables = upload_lab_tables(op);
  const std::vector<LabStats> sources = batch_stats(in, d_rgb, lab_tables, op);

  std::vector<TransferTable> tables(n);
  for (int64_t i = 0; i < n; ++i) reinhard::transfer_table(sources[i], target, tables[i].level);
  DeviceBuffer<TransferTable> d_tables(n, op);
  d_tables.upload(tables.data(), n, op);
  DeviceBuffer<uint8_t> d_out(in.bytes(), op);
  HF_CUDA_LAUNCH(op, reinhard_transfer_kernel<<<batch_grid(n, ppi), kThreads>>>(d_rgb.data(), n, ppi, d_tables.data(),
                                                                                lab_tables.data(), d_out.data()));
  d_out.download(out, in.bytes(), op);
}

}  // namespace hf
