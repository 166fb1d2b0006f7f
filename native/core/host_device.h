// Functions compiled for both the CPU reference and its CUDA twin, so that the
// two backends share one definition of a formula instead of two copies.
#pragma once
#include <algorithm>

#if defined(__CUDACC__)
#define HF_HOST_DEVICE __host__ __device__
#else
#define HF_HOST_DEVICE
#endif

namespace hf {

// max / min as each backend computes them in a shared formula: std::max /
// std::min on the host (which GCC vectorizes; a translation unit that sets
// optimize pragmas must include <algorithm> after them, or they stay calls),
// fmax / fmin (fmaxf / fminf for floats: one FMNMX) on the device. The two
// differ only for a NaN operand or for zeros of opposite signs.
#if defined(__CUDA_ARCH__)
template <typename T> HF_HOST_DEVICE inline T hd_max(const T& a, const T& b) { return fmax(a, b); }
template <typename T> HF_HOST_DEVICE inline T hd_min(const T& a, const T& b) { return fmin(a, b); }
#else
template <typename T> HF_HOST_DEVICE inline T hd_max(const T& a, const T& b) { return std::max(a, b); }
template <typename T> HF_HOST_DEVICE inline T hd_min(const T& a, const T& b) { return std::min(a, b); }
#endif

}  // namespace hf
