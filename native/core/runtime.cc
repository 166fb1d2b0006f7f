#include "core/runtime.h"

#include <algorithm>
#include <atomic>
#include <thread>

#ifdef HISTOFLOW_WITH_OPENMP
#include <omp.h>
#endif

namespace hf {

namespace {
int default_threads() {
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}
std::atomic<int> g_threads{default_threads()};
}  // namespace

int cpu_threads() { return g_threads.load(std::memory_order_relaxed); }

void set_cpu_threads(int n) { g_threads.store(std::max(1, n), std::memory_order_relaxed); }

BuildInfo build_info() {
  BuildInfo b;
#ifdef HISTOFLOW_WITH_CUDA
  b.cuda = true;
  b.cuda_version = cuda_runtime_version();
#endif
#ifdef HISTOFLOW_WITH_OPENMP
  b.openmp = true;
#endif
#if defined(__AVX512F__)
  b.simd = "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
  b.simd = "avx2+fma";
#elif defined(__AVX2__)
  b.simd = "avx2";
#elif defined(__SSE4_2__)
  b.simd = "sse4.2";
#elif defined(__ARM_NEON)
  b.simd = "neon";
#else
  b.simd = "scalar";
#endif
#if defined(__clang__)
  b.compiler = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  b.compiler = std::string("gcc ") + __VERSION__;
#else
  b.compiler = "unknown";
#endif
  return b;
}

}  // namespace hf
