#include "core/runtime.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

#ifdef __linux__
#include <sched.h>
#endif

#ifdef HISTOFLOW_WITH_OPENMP
#include <omp.h>
#endif

namespace hf {

namespace {
// OMP_NUM_THREADS when it names a count (its first, for a nested list), else
// the CPUs this process may run on: a cpuset or taskset narrows that below
// the machine's core count, and a thread per core of the machine would then
// share the allowed cores.
int default_threads() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && (*end == '\0' || *end == ',') && n >= 1 && n <= 4096) return static_cast<int>(n);
  }
#ifdef __linux__
  cpu_set_t mask;
  if (sched_getaffinity(0, sizeof mask, &mask) == 0 && CPU_COUNT(&mask) > 0) return CPU_COUNT(&mask);
#endif
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
