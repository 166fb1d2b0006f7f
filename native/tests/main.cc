// Runs every registered test; see harness.h for the output contract.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "core/cpu_level.h"
#include "core/runtime.h"
#include "harness.h"

namespace hf_test {

std::vector<TestCase>& registry() {
  static std::vector<TestCase> tests;
  return tests;
}

namespace {
int g_failures_in_test = 0;
}

void record_failure(const char* file, int line, const std::string& what) {
  if (g_failures_in_test < 5) std::printf("    %s:%d: %s\n", file, line, what.c_str());
  ++g_failures_in_test;
}

std::string why_no_cuda() {
  std::string why;
  if (!hf::cuda_devices(&why).empty()) return "";
  return why.empty() ? "no device found" : why;
}

}  // namespace hf_test

int main(int argc, char** argv) {
  using namespace hf_test;
  const std::vector<std::string> levels = hf::supported_cpu_levels();
  if (argc > 1 && std::string(argv[1]) == "--cpu-levels") {
    // The levels this CPU runs, one a line (scripts/native-tests.sh runs each built one).
    for (const std::string& l : levels) std::printf("%s\n", l.c_str());
    return 0;
  }
  std::string cpu;
  for (const std::string& l : levels) cpu += " " + l;
  std::printf("cpu level: compiled %s, this CPU runs%s\n", hf::compiled_cpu_level(), cpu.empty() ? " (not x86-64)" : cpu.c_str());
  // A test runs when its name contains the filter, or one of its |-separated parts.
  std::vector<std::string> filters;
  if (argc > 1) {
    std::string f = argv[1];
    for (size_t start = 0;;) {
      const size_t bar = f.find('|', start);
      filters.push_back(f.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
  }
  auto selected = [&](const std::string& name) {
    if (filters.empty()) return true;
    for (const std::string& f : filters)
      if (name.find(f) != std::string::npos) return true;
    return false;
  };
  int passed = 0, failed = 0, skipped = 0;
  auto& tests = registry();
  std::stable_sort(tests.begin(), tests.end(), [](const TestCase& a, const TestCase& b) { return a.name < b.name; });
  for (const TestCase& t : tests) {
    if (!selected(t.name)) continue;
    g_failures_in_test = 0;
    try {
      t.fn();
    } catch (const Skipped& s) {
      std::printf("SKIP %s: no CUDA device (%s)\n", t.name.c_str(), s.reason.c_str());
      ++skipped;
      continue;
    } catch (const std::exception& e) {
      record_failure(__FILE__, __LINE__, std::string("threw: ") + e.what());
    }
    std::fflush(stdout);
    if (g_failures_in_test == 0) {
      std::printf("PASS %s\n", t.name.c_str());
      ++passed;
    } else {
      std::printf("FAIL %s (%d failed checks)\n", t.name.c_str(), g_failures_in_test);
      ++failed;
    }
  }
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return std::min(failed, 100);
}
