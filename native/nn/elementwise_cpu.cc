#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/parallel.h"
#include "nn/activation.h"
#include "nn/elementwise.h"

namespace hf::nn {
namespace {

template <typename F>
void map(const float* x, int64_t size, float* y, F f) {
  parallel_for(size, 16384, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = f(x[i]);
  });
}

template <BinaryOp op>
inline float apply(float a, float b) {
  if constexpr (op == BinaryOp::Add) return a + b;
  if constexpr (op == BinaryOp::Sub) return a - b;
  if constexpr (op == BinaryOp::Mul) return a * b;
  if constexpr (op == BinaryOp::Div) return a / b;
  if constexpr (op == BinaryOp::SquaredDifference) return (a - b) * (a - b);
  if constexpr (op == BinaryOp::Maximum) return std::isnan(a) || std::isnan(b) ? NAN : (a > b ? a : b);
  if constexpr (op == BinaryOp::Minimum) return std::isnan(a) || std::isnan(b) ? NAN : (a < b ? a : b);
  if constexpr (op == BinaryOp::EluGrad) return b >= 0.0f ? a : a * (b + 1.0f);
  if constexpr (op == BinaryOp::ReluGrad) return a * (std::isnan(b) ? b : (b > 0.0f ? 1.0f : 0.0f));
  return 0.0f;
}

// The operands' strides against the output, with runs of dimensions that
// broadcast alike merged, so the inner loop is as long as possible.
struct Plan {
  int rank = 0;
  int64_t shape[kMaxRank];
  int64_t sa[kMaxRank];
  int64_t sb[kMaxRank];
};

Plan plan(const int64_t* a_shape, int a_rank, const int64_t* b_shape, int b_rank, const int64_t* out_shape, int rank) {
  if (rank < 0 || rank > kMaxRank || a_rank > rank || b_rank > rank || a_rank < 0 || b_rank < 0)
    throw ArgumentError("binary: rank out of range");
  int64_t da[kMaxRank], db[kMaxRank];
  for (int d = 0; d < rank; ++d) {
    int ia = d - (rank - a_rank), ib = d - (rank - b_rank);
    da[d] = ia >= 0 ? a_shape[ia] : 1;
    db[d] = ib >= 0 ? b_shape[ib] : 1;
    if ((da[d] != out_shape[d] && da[d] != 1) || (db[d] != out_shape[d] && db[d] != 1) || out_shape[d] < 0)
      throw ArgumentError("binary: shapes do not broadcast to the output shape");
  }
  // Row-major strides, 0 where broadcast.
  int64_t ra = 1, rb = 1, full_a[kMaxRank], full_b[kMaxRank];
  for (int d = rank - 1; d >= 0; --d) {
    full_a[d] = da[d] == 1 ? 0 : ra;
    full_b[d] = db[d] == 1 ? 0 : rb;
    ra *= da[d];
    rb *= db[d];
  }
  Plan p;
  for (int d = 0; d < rank; ++d) {
    if (out_shape[d] == 1) continue;
    if (p.rank > 0) {
      int q = p.rank - 1;
      // Mergeable with the previous kept dim when both operands step contiguously across it.
      if (p.sa[q] == full_a[d] * out_shape[d] && p.sb[q] == full_b[d] * out_shape[d]) {
        p.shape[q] *= out_shape[d];
        p.sa[q] = full_a[d];
        p.sb[q] = full_b[d];
        continue;
      }
    }
    p.shape[p.rank] = out_shape[d];
    p.sa[p.rank] = full_a[d];
    p.sb[p.rank] = full_b[d];
    ++p.rank;
  }
  if (p.rank == 0) {
    p.rank = 1;
    p.shape[0] = 1;
    p.sa[0] = p.sb[0] = 0;
  }
  return p;
}

template <BinaryOp op>
void binary(const float* a, const float* b, const Plan& p, float* out) {
  const int last = p.rank - 1;
  const int64_t inner = p.shape[last], sa = p.sa[last], sb = p.sb[last];
  int64_t rows = 1;
  for (int d = 0; d < last; ++d) rows *= p.shape[d];
  // Work items are (row, column block) pairs so that one long row (same-shape
  // operands merge into a single row) is still shared among threads.
  constexpr int64_t kBlock = 16384;
  const int64_t blocks = (inner + kBlock - 1) / kBlock;
  parallel_for(rows * blocks, std::max<int64_t>(1, kBlock / std::max<int64_t>(1, inner)), [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      int64_t r = w / blocks, j0 = (w % blocks) * kBlock, j1 = std::min(inner, j0 + kBlock);
      int64_t oa = 0, ob = 0, rem = r;
      for (int d = last - 1; d >= 0; --d) {
        int64_t idx = rem % p.shape[d];
        rem /= p.shape[d];
        oa += idx * p.sa[d];
        ob += idx * p.sb[d];
      }
      const float* __restrict ar = a + oa;
      const float* __restrict br = b + ob;
      float* __restrict o = out + r * inner;
      if (sa == 1 && sb == 1) {
        for (int64_t j = j0; j < j1; ++j) o[j] = apply<op>(ar[j], br[j]);
      } else if (sa == 1) {
        const float bv = br[0];
        for (int64_t j = j0; j < j1; ++j) o[j] = apply<op>(ar[j], bv);
      } else if (sb == 1) {
        const float av = ar[0];
        for (int64_t j = j0; j < j1; ++j) o[j] = apply<op>(av, br[j]);
      } else {
        const float v = apply<op>(ar[0], br[0]);
        for (int64_t j = j0; j < j1; ++j) o[j] = v;
      }
    }
  });
}

}  // namespace

void unary_cpu(UnaryOp op, const float* x, int64_t size, float alpha, float* y) {
  switch (op) {
    case UnaryOp::Neg: return map(x, size, y, [](float v) { return -v; });
    case UnaryOp::Square: return map(x, size, y, [](float v) { return v * v; });
    case UnaryOp::Sqrt: return map(x, size, y, [](float v) { return std::sqrt(v); });
    case UnaryOp::Rsqrt: return map(x, size, y, [](float v) { return 1.0f / std::sqrt(v); });
    case UnaryOp::Exp: return map(x, size, y, [](float v) { return std::exp(v); });
    case UnaryOp::Log: return map(x, size, y, [](float v) { return std::log(v); });
    case UnaryOp::Abs: return map(x, size, y, [](float v) { return std::fabs(v); });
    case UnaryOp::Relu: return map(x, size, y, [](float v) { return activate(Activation::Relu, v, 0); });
    case UnaryOp::Relu6: return map(x, size, y, [](float v) { return activate(Activation::Relu6, v, 0); });
    case UnaryOp::Elu: return map(x, size, y, [](float v) { return activate(Activation::Elu, v, 0); });
    case UnaryOp::Sigmoid: return map(x, size, y, [](float v) { return activate(Activation::Sigmoid, v, 0); });
    case UnaryOp::Step:
      return map(x, size, y, [alpha](float v) { return std::isnan(v) ? v : (v > 0.0f ? 1.0f : alpha); });
  }
}

void binary_cpu(BinaryOp op, const float* a, const int64_t* a_shape, int a_rank, const float* b,
                const int64_t* b_shape, int b_rank, const int64_t* out_shape, int rank, float* out) {
  Plan p = plan(a_shape, a_rank, b_shape, b_rank, out_shape, rank);
  switch (op) {
    case BinaryOp::Add: return binary<BinaryOp::Add>(a, b, p, out);
    case BinaryOp::Sub: return binary<BinaryOp::Sub>(a, b, p, out);
    case BinaryOp::Mul: return binary<BinaryOp::Mul>(a, b, p, out);
    case BinaryOp::Div: return binary<BinaryOp::Div>(a, b, p, out);
    case BinaryOp::SquaredDifference: return binary<BinaryOp::SquaredDifference>(a, b, p, out);
    case BinaryOp::Maximum: return binary<BinaryOp::Maximum>(a, b, p, out);
    case BinaryOp::Minimum: return binary<BinaryOp::Minimum>(a, b, p, out);
    case BinaryOp::EluGrad: return binary<BinaryOp::EluGrad>(a, b, p, out);
    case BinaryOp::ReluGrad: return binary<BinaryOp::ReluGrad>(a, b, p, out);
  }
}

void tile_cpu(const float* x, const int64_t* in_shape, const int64_t* reps, int rank, float* out) {
  if (rank < 1 || rank > kMaxRank) throw ArgumentError("tile: rank out of range");
  int64_t out_shape[kMaxRank];
  for (int d = 0; d < rank; ++d) {
    if (in_shape[d] < 1 || reps[d] < 1) throw ArgumentError("tile: dims and reps must be ≥ 1");
    out_shape[d] = in_shape[d] * reps[d];
  }
  const int last = rank - 1;
  const int64_t inner = out_shape[last], in_inner = in_shape[last];
  int64_t rows = 1;
  for (int d = 0; d < last; ++d) rows *= out_shape[d];
  parallel_for(rows, std::max<int64_t>(1, 16384 / inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t off = 0, rem = r, stride = in_inner;
      for (int d = last - 1; d >= 0; --d) {
        int64_t idx = (rem % out_shape[d]) % in_shape[d];
        rem /= out_shape[d];
        off += idx * stride;
        stride *= in_shape[d];
      }
      const float* src = x + off;
      float* o = out + r * inner;
      for (int64_t j = 0; j < inner; j += in_inner) std::copy(src, src + in_inner, o + j);
    }
  });
}

}  // namespace hf::nn
