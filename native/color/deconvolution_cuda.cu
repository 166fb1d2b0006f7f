// Colour deconvolution on the device (Ruifrok & Johnston 2001, scikit-image's
// separate_stains / combine_stains; formulas in deconvolution.h). One thread per
// pixel; ln(max(I/255, 1e-6)) / ln(1e-6) is a 256-entry table built on the host.
#include <algorithm>
#include <cmath>

#include "color/deconvolution.h"
#include "color/od_table.cuh"
#include "core/cuda_check.cuh"

namespace hf {

namespace {

constexpr int kThreads = 256;

struct Matrix3 {
  float m[9];
};

constexpr double kLogAdjust = -13.815510557964274;  // ln(1e-6)

ByteTable log_adjusted_table() {
  ByteTable t;
  for (int v = 0; v < 256; ++v) t.value[v] = static_cast<float>(std::log(std::max(v / 255.0, 1e-6)) / kLogAdjust);
  return t;
}

__global__ void deconvolve_kernel(const uint8_t* __restrict__ in, int64_t pixels, const float* __restrict__ table,
                                  Matrix3 stain_from_rgb, float* __restrict__ out) {
  __shared__ float log_rgb[256];
  load_byte_table(table, log_rgb);
  const float* m = stain_from_rgb.m;
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < pixels; k += int64_t{gridDim.x} * blockDim.x) {
    float r = log_rgb[in[3 * k]], g = log_rgb[in[3 * k + 1]], b = log_rgb[in[3 * k + 2]];
    for (int j = 0; j < 3; ++j) {
      float s = r * m[j] + g * m[3 + j] + b * m[6 + j];
      out[3 * k + j] = s > 0.f ? s : 0.f;
    }
  }
}

__global__ void reconvolve_kernel(const float* __restrict__ stains, int64_t pixels, Matrix3 rgb_from_stain,
                                  float scale, uint8_t* __restrict__ out) {
  const float* m = rgb_from_stain.m;
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < pixels; k += int64_t{gridDim.x} * blockDim.x) {
    const float* s = stains + 3 * k;
    for (int j = 0; j < 3; ++j) {
      float rgb = expf(scale * (s[0] * m[j] + s[1] * m[3 + j] + s[2] * m[6 + j]));
      rgb = fminf(fmaxf(rgb, 0.f), 1.f);
      out[3 * k + j] = static_cast<uint8_t>(rintf(rgb * 255.f));
    }
  }
}

}  // namespace

void deconvolve_cuda(const RgbBatch& in, const float stain_from_rgb[9], float* out) {
  const char* op = "deconvolve_cuda";
  const int64_t pixels = in.pixels();
  if (pixels == 0) return;
  ByteTable table = log_adjusted_table();
  Matrix3 m;
  for (int i = 0; i < 9; ++i) m.m[i] = stain_from_rgb[i];
  DeviceBuffer<float> d_table(256, op);
  DeviceBuffer<uint8_t> d_in(pixels * 3, op);
  DeviceBuffer<float> d_out(pixels * 3, op);
  d_table.upload(table.value, 256, op);
  d_in.upload(in.data, pixels * 3, op);
  HF_CUDA_LAUNCH(op, deconvolve_kernel<<<grid_blocks(pixels, kThreads), kThreads>>>(
                     d_in.data(), pixels, d_table.data(), m, d_out.data()));
  d_out.download(out, pixels * 3, op);
}

void reconvolve_cuda(const float* stains, int64_t pixels, const float rgb_from_stain[9], uint8_t* out) {
  const char* op = "reconvolve_cuda";
  if (pixels <= 0) return;
  Matrix3 m;
  for (int i = 0; i < 9; ++i) m.m[i] = rgb_from_stain[i];
  DeviceBuffer<float> d_stains(pixels * 3, op);
  DeviceBuffer<uint8_t> d_out(pixels * 3, op);
  d_stains.upload(stains, pixels * 3, op);
  const float scale = static_cast<float>(kLogAdjust);  // -(-ln 1e-6), as reconvolve_cpu
  HF_CUDA_LAUNCH(op, reconvolve_kernel<<<grid_blocks(pixels, kThreads), kThreads>>>(
                     d_stains.data(), pixels, m, scale, d_out.data()));
  d_out.download(out, pixels * 3, op);
}

}  // namespace hf
