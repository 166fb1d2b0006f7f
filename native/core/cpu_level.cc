#include "core/cpu_level.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define HF_X86_CPUID 1
#endif

#ifndef HF_CPU_LEVEL
#define HF_CPU_LEVEL "base"
#endif

namespace hf {

const char* compiled_cpu_level() { return HF_CPU_LEVEL; }

#ifdef HF_X86_CPUID
namespace {

bool bit(unsigned reg, int b) { return ((reg >> b) & 1u) != 0; }

// XCR0: the register states the OS saves on a context switch.
unsigned long long xcr0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

}  // namespace

std::vector<std::string> supported_cpu_levels() {
  unsigned a = 0, b = 0, c1 = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c1, &d)) return {"v1"};
  unsigned b7 = 0, c7 = 0, d7 = 0;
  if (!__get_cpuid_count(7, 0, &a, &b7, &c7, &d7)) b7 = 0;
  unsigned ce = 0;
  if (!__get_cpuid(0x80000001u, &a, &b, &ce, &d)) ce = 0;

  std::vector<std::string> levels{"v1"};
  // v2: CMPXCHG16B, LAHF/SAHF, POPCNT, SSE3, SSE4.1, SSE4.2, SSSE3.
  const bool v2 = bit(c1, 13) && bit(ce, 0) && bit(c1, 23) && bit(c1, 0) && bit(c1, 19) && bit(c1, 20) && bit(c1, 9);
  if (!v2) return levels;
  levels.push_back("v2");
  // v3: AVX, AVX2, BMI1, BMI2, F16C, FMA, LZCNT, MOVBE, OSXSAVE; XMM and YMM state saved.
  const bool osxsave = bit(c1, 27);
  const unsigned long long x = osxsave ? xcr0() : 0;
  const bool v3 = osxsave && (x & 0x6) == 0x6 && bit(c1, 28) && bit(b7, 5) && bit(b7, 3) && bit(b7, 8) &&
                  bit(c1, 29) && bit(c1, 12) && bit(ce, 5) && bit(c1, 22);
  if (!v3) return levels;
  levels.push_back("v3");
  // v4: AVX512F, AVX512BW, AVX512CD, AVX512DQ, AVX512VL; opmask and ZMM state saved.
  const bool v4 = (x & 0xE6) == 0xE6 && bit(b7, 16) && bit(b7, 30) && bit(b7, 28) && bit(b7, 17) && bit(b7, 31);
  if (v4) levels.push_back("v4");
  return levels;
}
#else
std::vector<std::string> supported_cpu_levels() { return {}; }
#endif

}  // namespace hf
