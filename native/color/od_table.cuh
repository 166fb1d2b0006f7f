// 256-entry lookup tables over the 8-bit channel values (optical density, and
// the like). They are computed on the host with the CPU reference's formula
// (double, as numpy, then float), so device and CPU read bitwise-equal values;
// kernels copy a table into shared memory, where every thread indexes it freely.
#pragma once
#include <cmath>
#include <cstdint>

#include "color/optical_density.h"

namespace hf {

struct ByteTable {
  float value[256];
};

// od = max(-ln((I + offset) / io), min_od); with offset 0 a 0 is read as 1.
inline ByteTable od_table(const OdParams& p) {
  ByteTable t;
  for (int v = 0; v < 256; ++v) {
    double light = v + static_cast<double>(p.offset);
    if (p.offset == 0.f && v == 0) light = 1.0;
    double od = -std::log(light / static_cast<double>(p.io));
    t.value[v] = static_cast<float>(od > p.min_od ? od : static_cast<double>(p.min_od));
  }
  return t;
}

#ifdef __CUDACC__
// Copies a table (global memory) into this block's shared `dst`; ends with a barrier.
__device__ inline void load_byte_table(const float* __restrict__ src, float* dst) {
  for (int i = threadIdx.x; i < 256; i += blockDim.x) dst[i] = src[i];
  __syncthreads();
}
#endif

}  // namespace hf
