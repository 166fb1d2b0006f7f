// Threads for the CPU kernels: OpenMP when compiled with it, serial otherwise.
// parallel_for splits [0, n) into contiguous chunks, one call of fn(begin, end)
// per chunk, using hf::cpu_threads() threads. Chunks never overlap, so kernels
// that write disjoint outputs per index are deterministic for any thread count.
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/runtime.h"

namespace hf {

template <typename Fn>
void parallel_for(int64_t n, int64_t min_chunk, Fn&& fn) {
  if (n <= 0) return;
  int threads = cpu_threads();
  int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(1, min_chunk));
  int64_t chunks = std::min<int64_t>(threads, max_chunks);
#ifdef HISTOFLOW_WITH_OPENMP
  if (chunks > 1) {
#pragma omp parallel for num_threads(static_cast<int>(chunks)) schedule(static, 1)
    for (int64_t c = 0; c < chunks; ++c) {
      int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
      fn(b, e);
    }
    return;
  }
#endif
  fn(int64_t{0}, n);
}

}  // namespace hf
