// What this build and this machine can do: compiled features, SIMD level,
// CPU threads and CUDA devices. Reported by `histoflow info`.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace hf {

struct CudaDevice {
  int index = 0;
  std::string name;
  size_t total_memory = 0;  // bytes
  int major = 0, minor = 0; // compute capability
  int multiprocessors = 0;
};

struct BuildInfo {
  bool cuda = false;       // CUDA kernels compiled in
  std::string cuda_version;  // runtime version when compiled in, e.g. "13.0"
  bool openmp = false;
  std::string simd;        // "avx512", "avx2", "sse4.2", "neon", "scalar"
  std::string compiler;
};

BuildInfo build_info();

// Threads the CPU kernels use. Default: OMP_NUM_THREADS when set to a count,
// else the CPUs in this process's affinity mask (taskset, cpusets), else the
// hardware concurrency.
int cpu_threads();
void set_cpu_threads(int n);

// CUDA devices visible at run time; empty in a CPU-only build or without a GPU.
// Never throws: a driver error yields an empty list and a reason.
std::vector<CudaDevice> cuda_devices(std::string* why_none = nullptr);

// "13.0" (the CUDA runtime compiled in) or "" in a CPU-only build.
std::string cuda_runtime_version();

}  // namespace hf
