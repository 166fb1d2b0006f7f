// Functions compiled for both the CPU reference and its CUDA twin, so that the
// two backends share one definition of a formula instead of two copies.
#pragma once

#if defined(__CUDACC__)
#define HF_HOST_DEVICE __host__ __device__
#else
#define HF_HOST_DEVICE
#endif
