#include "core/allocator.h"

#include <climits>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace hf {

bool retain_freed_memory(size_t bytes) {
#if defined(__GLIBC__)
  int value = bytes > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(bytes);
  bool mmap_ok = mallopt(M_MMAP_THRESHOLD, value) == 1;
  bool trim_ok = mallopt(M_TRIM_THRESHOLD, value) == 1;
  return mmap_ok && trim_ok;
#else
  (void)bytes;
  return false;
#endif
}

bool heap_stats(HeapStats& out) {
  out = HeapStats{};
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 m = mallinfo2();
  out.arena = m.arena;
  out.mmapped = m.hblkhd;
  out.in_use = m.uordblks;
  out.free = m.fordblks;
  out.releasable = m.keepcost;
  return true;
#else
  return false;
#endif
}

}  // namespace hf
