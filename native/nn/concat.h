// Concat and slice: block copies along axes (TF.js Concat, Slice, SplitV, the
// ops of a UNet's skip connections and of their gradient).
//   concat: every input viewed as [outer, inner_i], outer = Π shape[:axis] (the
//           same for all), inner_i = Π shape_i[axis:]; out is [outer, Σ inner_i]
//           with out[o] = x_0[o] ‖ x_1[o] ‖ …
//   slice:  the box [begin, begin + size) of x (rank ≤ kMaxRank), row-major.
// Both are memcpy of contiguous runs, split over threads by output range
// (balanced whatever the axis: one huge row or millions of short ones).
#pragma once
#include <cstdint>

namespace hf::nn {

// inputs[i] holds outer·inner[i] floats; out holds outer·Σ inner[i].
void concat_cpu(const float* const* inputs, const int64_t* inner, int count, int64_t outer, float* out);

// begin[d] + size[d] ≤ shape[d] for every d (ArgumentError otherwise); out holds Π size.
void slice_cpu(const float* x, const int64_t* shape, const int64_t* begin, const int64_t* size, int rank, float* out);

}  // namespace hf::nn
