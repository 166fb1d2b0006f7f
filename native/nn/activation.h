// The activations TF.js fuses into conv2d and matmul (fused_util.ts
// applyActivation), with TF.js's definitions:
//   relu(x) = max(x, 0)          relu6(x) = min(max(x, 0), 6)
//   elu(x)  = x ≥ 0 ? x : eˣ − 1  sigmoid(x) = 1 / (1 + e⁻ˣ)
//   leakyrelu(x) = x < 0 ? α·x : x
#pragma once
#include <cmath>
#include <cstdint>

namespace hf::nn {

enum class Activation { Linear = 0, Relu = 1, Relu6 = 2, Elu = 3, Sigmoid = 4, LeakyRelu = 5 };

inline float activate(Activation a, float x, float alpha) {
  switch (a) {
    case Activation::Relu: return x > 0.0f ? x : 0.0f;
    case Activation::Relu6: return x > 0.0f ? (x < 6.0f ? x : 6.0f) : 0.0f;
    case Activation::Elu: return x >= 0.0f ? x : std::expm1(x);
    case Activation::Sigmoid: return 1.0f / (1.0f + std::exp(-x));
    case Activation::LeakyRelu: return x < 0.0f ? alpha * x : x;
    default: return x;
  }
}

// out[r·channels + c] = act(out[…] + bias[c]) over `rows` rows (bias may be null).
void bias_activation(float* out, int64_t rows, int64_t channels, const float* bias, Activation act, float alpha);

}  // namespace hf::nn
