#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "nn/concat.h"
#include "nn/elementwise.h"

namespace hf::nn {
namespace {

// Floats one thread copies at least (below this, threads cost more than the copy).
constexpr int64_t kMinChunk = 1 << 15;

}  // namespace

void concat_cpu(const float* const* inputs, const int64_t* inner, int count, int64_t outer, float* out) {
  if (count < 1) throw ArgumentError("concat: no inputs");
  if (outer < 0) throw ArgumentError("concat: outer must be ≥ 0");
  // start[i]: where input i's run begins in an output row.
  std::vector<int64_t> start(count + 1, 0);
  for (int i = 0; i < count; ++i) {
    if (inner[i] < 0) throw ArgumentError("concat: inner sizes must be ≥ 0");
    start[i + 1] = start[i] + inner[i];
  }
  const int64_t row = start[count];
  if (row == 0 || outer == 0) return;
  // Output elements [b, e) → the runs that cover them, wherever rows and inputs break.
  parallel_for(outer * row, kMinChunk, [&](int64_t b, int64_t e) {
    int64_t o = b / row, col = b % row;
    int i = static_cast<int>(std::upper_bound(start.begin(), start.end(), col) - start.begin()) - 1;
    for (int64_t pos = b; pos < e;) {
      while (col >= start[i + 1]) ++i;  // skips empty inputs too
      const int64_t n = std::min(start[i + 1] - col, e - pos);
      std::memcpy(out + pos, inputs[i] + o * inner[i] + (col - start[i]), static_cast<size_t>(n) * sizeof(float));
      pos += n;
      col += n;
      if (col == row) {
        col = 0;
        ++o;
        i = 0;
      }
    }
  });
}

void slice_cpu(const float* x, const int64_t* shape, const int64_t* begin, const int64_t* size, int rank, float* out) {
  if (rank < 1 || rank > kMaxRank) throw ArgumentError("slice: rank out of range");
  int64_t total = 1;
  for (int d = 0; d < rank; ++d) {
    if (shape[d] < 0 || begin[d] < 0 || size[d] < 0 || begin[d] > shape[d] || size[d] > shape[d] - begin[d]) {
      throw ArgumentError("slice: the box [begin, begin + size) must lie inside the shape");
    }
    total *= size[d];
  }
  if (total == 0) return;
  // The innermost dims the box takes whole merge into one contiguous run of `run` floats
  // starting at dim k; the dims before k are the rows.
  int k = rank - 1;
  int64_t tail = 1;  // Π shape[k+1:]
  while (k > 0 && size[k] == shape[k]) {
    tail *= shape[k];
    --k;
  }
  const int64_t run = size[k] * tail;
  int64_t stride[kMaxRank];  // x's strides
  stride[rank - 1] = 1;
  for (int d = rank - 2; d >= 0; --d) stride[d] = stride[d + 1] * shape[d + 1];
  const int64_t rows = total / run;
  const int64_t first = begin[k] * stride[k];
  parallel_for(rows, std::max<int64_t>(1, kMinChunk / run), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t off = first, rem = r;
      for (int d = k - 1; d >= 0; --d) {
        off += (begin[d] + rem % size[d]) * stride[d];
        rem /= size[d];
      }
      std::memcpy(out + r * run, x + off, static_cast<size_t>(run) * sizeof(float));
    }
  });
}

}  // namespace hf::nn
