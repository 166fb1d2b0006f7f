#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "core/runtime.h"
#include "nn/reduce.h"

namespace hf::nn {

void reduce_sum_cpu(const float* x, int64_t outer, int64_t reduce, int64_t inner, bool mean, float* out) {
  if (outer < 1 || reduce < 1 || inner < 1) throw ArgumentError("reduceSum: every dimension must be ≥ 1");
  const int64_t kept = outer * inner;
  if (inner == 1 && kept >= 4 * int64_t{cpu_threads()}) {
    // Contiguous sums, enough of them to share out: one thread per block of outputs.
    parallel_for(kept, std::max<int64_t>(1, 16384 / reduce), [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        const float* p = x + k * reduce;
        double acc = 0.0;
        for (int64_t r = 0; r < reduce; ++r) acc += p[r];
        out[k] = static_cast<float>(mean ? acc / double(reduce) : acc);
      }
    });
    return;
  }
  // Few outputs, long reductions: split `reduce` into a fixed number of parts.
  const int64_t parts = std::min<int64_t>(cpu_threads() * 4, std::max<int64_t>(1, reduce / 256));
  std::vector<double> partial(parts * kept, 0.0);
  parallel_for(parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t part = p0; part < p1; ++part) {
      double* acc = partial.data() + part * kept;
      int64_t r0 = reduce * part / parts, r1 = reduce * (part + 1) / parts;
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t r = r0; r < r1; ++r) {
          const float* row = x + (o * reduce + r) * inner;
          double* a = acc + o * inner;
          for (int64_t i = 0; i < inner; ++i) a[i] += row[i];
        }
    }
  });
  for (int64_t k = 0; k < kept; ++k) {
    double acc = 0.0;
    for (int64_t part = 0; part < parts; ++part) acc += partial[part * kept + k];
    out[k] = static_cast<float>(mean ? acc / double(reduce) : acc);
  }
}

}  // namespace hf::nn
