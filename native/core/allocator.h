// Keeping freed memory for reuse, for training on the native TF.js backend.
//
// A training step allocates and frees arrays of tens of MB per op (TF.js
// makes a fresh output per kernel and frees it soon after). glibc serves
// blocks above its mmap threshold (at most 32 MiB by default) with a fresh
// mmap and unmaps them on free, so every op pays first-touch page faults on
// its whole output: on the reference CNN (96², batch 64) that was half of a
// 3.6 s step. Raising the mmap threshold and the trim threshold makes such
// blocks come from the heap, and freed ones are reused already faulted in —
// what PyTorch's caching allocator achieves for its tensors. The cost: the
// process keeps its peak working set instead of returning it to the OS.
//
// Process-wide, so histoflow only does it when the native TF.js backend is
// registered (HISTOFLOW_NN_MALLOC=0 opts out). A no-op (returns false) where
// the C library is not glibc.
#pragma once
#include <cstddef>

namespace hf {

// Serves blocks up to `bytes` from the heap and keeps up to `bytes` of freed
// heap before trimming. True when the C library took both settings.
bool retain_freed_memory(size_t bytes);

// The C library's heap, summed over its arenas (glibc mallinfo2): bytes it
// holds from the OS in heaps (arena) and in separately mapped blocks (mmapped),
// of the heaps' bytes those in use and those free (kept for reuse, part of the
// RSS once touched), and the free top that trimming would return.
struct HeapStats {
  size_t arena, mmapped, in_use, free, releasable;
};
// False (and zeros) where the C library is not glibc.
bool heap_stats(HeapStats& out);

}  // namespace hf
