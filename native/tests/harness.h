// A tiny test harness: no framework, no Node. Tests register themselves with
// HF_TEST("a sentence naming the behaviour"); CHECK records a failure and goes
// on; SKIP_WITHOUT_CUDA ends a test as skipped when no CUDA device exists. The
// last line printed is "N passed, M failed, K skipped"; the exit code is the
// number of failures (capped), so 0 means every test passed.
#pragma once
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

namespace hf_test {

using TestFn = void (*)();
struct TestCase {
  std::string name;
  TestFn fn;
};
std::vector<TestCase>& registry();
struct Registrar {
  Registrar(const char* name, TestFn fn) { registry().push_back({name, fn}); }
};

// Thrown by SKIP_WITHOUT_CUDA; caught by the runner.
struct Skipped {
  std::string reason;
};

void record_failure(const char* file, int line, const std::string& what);
// Empty when a CUDA device exists; otherwise why not.
std::string why_no_cuda();

}  // namespace hf_test

#define HF_TEST_CONCAT2(a, b) a##b
#define HF_TEST_CONCAT(a, b) HF_TEST_CONCAT2(a, b)
#define HF_TEST(name)                                                                          \
  static void HF_TEST_CONCAT(hf_test_fn_, __LINE__)();                                         \
  static hf_test::Registrar HF_TEST_CONCAT(hf_test_reg_, __LINE__)(name, &HF_TEST_CONCAT(hf_test_fn_, __LINE__)); \
  static void HF_TEST_CONCAT(hf_test_fn_, __LINE__)()

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) hf_test::record_failure(__FILE__, __LINE__, #cond); \
  } while (0)

// |a − b| ≤ tol, and neither is NaN.
#define CHECK_NEAR(a, b, tol)                                                                   \
  do {                                                                                          \
    double hf_a_ = (a), hf_b_ = (b), hf_t_ = (tol);                                             \
    if (!(std::fabs(hf_a_ - hf_b_) <= hf_t_)) {                                                  \
      std::ostringstream hf_os_;                                                                \
      hf_os_.precision(9);                                                                      \
      hf_os_ << #a << " = " << hf_a_ << " vs " << #b << " = " << hf_b_ << " (tolerance " << hf_t_ << ")"; \
      hf_test::record_failure(__FILE__, __LINE__, hf_os_.str());                                \
    }                                                                                           \
  } while (0)

#define SKIP_WITHOUT_CUDA()                                             \
  do {                                                                  \
    std::string hf_why_ = hf_test::why_no_cuda();                       \
    if (!hf_why_.empty()) throw hf_test::Skipped{hf_why_};              \
  } while (0)
