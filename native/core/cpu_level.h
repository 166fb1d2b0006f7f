// CPU levels: which x86-64 psABI level this build was compiled for, and which
// levels this CPU and its OS run. The loader loads the highest built level the
// CPU runs (see CMakeLists.txt, "CPU levels").
#pragma once
#include <string>
#include <vector>

namespace hf {

// The level this build was compiled for: "v2", "v3", "v4" (x86-64), "native"
// (-march=native) or "base" (the compiler's defaults, off x86-64).
const char* compiled_cpu_level();

// The x86-64 levels this CPU and OS run, lowest first, e.g. {"v1","v2","v3"}:
// the instructions from CPUID, and for AVX and AVX-512 also the OS's saving of
// their registers (XCR0). Empty off x86-64.
std::vector<std::string> supported_cpu_levels();

}  // namespace hf
