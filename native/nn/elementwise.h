// Element-wise kernels of a TF.js training step (found by profiling one step
// of the reference CNN on tfjs `cpu`: Multiply, Add, Sub, RealDiv, Square,
// Sqrt, Step, Tile… dominate after the convolutions), with TF.js's
// definitions (tfjs-backend-cpu kernels):
//   unary:  neg −x, square x², sqrt √x, rsqrt 1/√x, exp eˣ, log ln x, abs |x|,
//           relu, relu6, elu, sigmoid (activation.h), step: NaN→NaN, x > 0 ? 1 : α
//   binary: add, sub, mul, div, squared_difference (a−b)², maximum, minimum,
//           elu_grad(dy, y) = y ≥ 0 ? dy : dy·(y + 1),
//           relu_grad(dy, x) = dy · step(x)   (TF.js's Relu gradient, mul(dy, step(x)), in one pass)
// Binary ops broadcast NumPy-style: a and b are given by their shapes
// right-aligned against the output's (rank ≤ 8); dimensions of size 1 repeat.
// Tile: out[i₀…] = x[i₀ mod d₀, …].
#pragma once
#include <cstdint>

namespace hf::nn {

enum class UnaryOp { Neg, Square, Sqrt, Rsqrt, Exp, Log, Abs, Relu, Relu6, Elu, Sigmoid, Step };
enum class BinaryOp { Add, Sub, Mul, Div, SquaredDifference, Maximum, Minimum, EluGrad, ReluGrad };

constexpr int kMaxRank = 8;

void unary_cpu(UnaryOp op, const float* x, int64_t size, float alpha, float* y);

// out_shape has `rank` dims; a_shape / b_shape have a_rank / b_rank ≤ rank dims
// and each dim equals the output's or 1 (checked: ArgumentError otherwise).
void binary_cpu(BinaryOp op, const float* a, const int64_t* a_shape, int a_rank, const float* b,
                const int64_t* b_shape, int b_rank, const int64_t* out_shape, int rank, float* out);

// x has shape in_shape; out has in_shape[d]·reps[d] along each dim.
void tile_cpu(const float* x, const int64_t* in_shape, const int64_t* reps, int rank, float* out);

}  // namespace hf::nn
