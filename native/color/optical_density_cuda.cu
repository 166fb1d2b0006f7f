// Beer–Lambert optical density on the device (formulas in optical_density.h).
// One thread per channel value; the forward map is a 256-entry table.
#include "color/od_table.cuh"
#include "color/optical_density.h"
#include "core/cuda_check.cuh"

namespace hf {

namespace {

constexpr int kThreads = 256;

__global__ void rgb_to_od_kernel(const uint8_t* __restrict__ in, int64_t values, const float* __restrict__ table,
                                 float* __restrict__ out) {
  __shared__ float od[256];
  load_byte_table(table, od);
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < values; k += int64_t{gridDim.x} * blockDim.x)
    out[k] = od[in[k]];
}

__global__ void od_to_rgb_kernel(const float* __restrict__ od, int64_t values, float io, float offset,
                                 uint8_t* __restrict__ out) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < values; k += int64_t{gridDim.x} * blockDim.x) {
    float v = rintf(io * expf(-od[k]) - offset);
    out[k] = static_cast<uint8_t>(fminf(fmaxf(v, 0.f), 255.f));
  }
}

}  // namespace

void rgb_to_od_cuda(const RgbBatch& in, const OdParams& p, float* out) {
  const char* op = "rgb_to_od_cuda";
  const int64_t values = in.bytes();
  if (values == 0) return;
  ByteTable table = od_table(p);
  DeviceBuffer<float> d_table(256, op);
  DeviceBuffer<uint8_t> d_in(values, op);
  DeviceBuffer<float> d_out(values, op);
  d_table.upload(table.value, 256, op);
  d_in.upload(in.data, values, op);
  HF_CUDA_LAUNCH(op, rgb_to_od_kernel<<<grid_blocks(values, kThreads), kThreads>>>(
                     d_in.data(), values, d_table.data(), d_out.data()));
  d_out.download(out, values, op);
}

void od_to_rgb_cuda(const float* od, int64_t pixels, const OdParams& p, uint8_t* out) {
  const char* op = "od_to_rgb_cuda";
  const int64_t values = pixels * 3;
  if (values <= 0) return;
  DeviceBuffer<float> d_od(values, op);
  DeviceBuffer<uint8_t> d_out(values, op);
  d_od.upload(od, values, op);
  HF_CUDA_LAUNCH(op, od_to_rgb_kernel<<<grid_blocks(values, kThreads), kThreads>>>(
                     d_od.data(), values, p.io, p.offset, d_out.data()));
  d_out.download(out, values, op);
}

}  // namespace hf
