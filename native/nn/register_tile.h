// The vector width and register tile of the nn/ GEMM kernels (the built-in
// sgemm and Winograd's), chosen from the instruction set this translation
// unit is compiled for (each CPU level builds its own): MR rows × NR = 2
// vectors of columns, so the 2·MR accumulators fit the vector register file
// (32 zmm on AVX-512, 16 ymm on AVX2, 16 xmm on SSE).
#pragma once

namespace hf::nn::tile {

#if defined(__AVX512F__)
constexpr int VL = 16;
constexpr int MR = 8;
#elif defined(__AVX__)
constexpr int VL = 8;
constexpr int MR = 6;
#else
constexpr int VL = 4;
constexpr int MR = 4;
#endif
constexpr int NR = 2 * VL;
// A vector of VL floats (GCC vector extension), and the same at float alignment for unaligned loads and stores.
typedef float vf __attribute__((vector_size(VL * sizeof(float))));
typedef float vfu __attribute__((vector_size(VL * sizeof(float)), aligned(4)));

}  // namespace hf::nn::tile
