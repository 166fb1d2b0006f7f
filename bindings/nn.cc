// N-API glue for native/nn: the kernels of the `native` TF.js backend.
//
// Unlike the other families these calls are SYNCHRONOUS: a TF.js kernel
// function must return its output tensor before the next op runs (the
// backend's kernelFuncs are synchronous), and tensors live in the backend's
// own Float32Arrays. Each call reads its inputs and writes its output
// Float32Array in place (no copy either way) and returns when done; the
// kernels themselves use every CPU thread. Shapes come from TF.js's own shape
// logic in src/tfjs; here every array's length is re-checked against them.
#include <napi.h>

#include "core/allocator.h"

#include <string>

#include "common.h"
#include "core/runtime.h"
#include "nn/batch_norm.h"
#include "nn/concat.h"
#include "nn/conv2d.h"
#include "nn/depthwise_conv2d.h"
#include "nn/elementwise.h"
#include "nn/engine.h"
#include "nn/matmul.h"
#include "nn/pool.h"
#include "nn/reduce.h"

namespace hfb {
namespace {

// A Float32Array of exactly `length` elements, viewed in place (byteOffset respected).
float* F32(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t length) {
  Napi::Value v = info.Length() > i ? info[i] : info.Env().Undefined();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(info.Env(), std::string("Expected a Float32Array for ") + name);
  }
  auto ta = v.As<Napi::Float32Array>();
  if (static_cast<int64_t>(ta.ElementLength()) != length) {
    throw Napi::RangeError::New(info.Env(), std::string("Expected ") + name + " to hold " + std::to_string(length) +
                                                " elements but it holds " + std::to_string(ta.ElementLength()));
  }
  return ta.Data();
}

// null, or a Float32Array of any length (returned in *length).
float* OptionalF32(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t* length) {
  Napi::Value v = info[i];
  if (v.IsNull() || v.IsUndefined()) {
    *length = 0;
    return nullptr;
  }
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(info.Env(), std::string("Expected a Float32Array or null for ") + name);
  }
  auto ta = v.As<Napi::Float32Array>();
  *length = static_cast<int64_t>(ta.ElementLength());
  return ta.Data();
}

// An array of non-negative integers (at most `max` of them).
std::vector<int64_t> Ints(const Napi::CallbackInfo& info, size_t i, const char* name, size_t max) {
  if (!info[i].IsArray()) throw Napi::TypeError::New(info.Env(), std::string("Expected an array of integers for ") + name);
  auto arr = info[i].As<Napi::Array>();
  if (arr.Length() > max) throw Napi::RangeError::New(info.Env(), std::string("Too many values in ") + name);
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value e = arr.Get(k);
    double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d != static_cast<double>(static_cast<int64_t>(d)) || d > 9.0e15) {
      throw Napi::RangeError::New(info.Env(), std::string("Expected non-negative integers in ") + name);
    }
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

// The element count of a shape, overflow-checked (a RangeError naming it).
int64_t Product(const Napi::CallbackInfo& info, const std::vector<int64_t>& v, const char* name) {
  int64_t p = 1;
  for (int64_t d : v) {
    if (__builtin_mul_overflow(p, d, &p)) {
      throw Napi::RangeError::New(info.Env(), std::string("Expected the size of ") + name + " to fit in 64 bits");
    }
  }
  return p;
}

double NumberArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string("Expected a number for ") + name);
  return info[i].As<Napi::Number>().DoubleValue();
}

// [n, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left]
hf::nn::Conv2dShape ConvShapeArg(const Napi::CallbackInfo& info, size_t i) {
  auto v = Ints(info, i, "convShape", 15);
  if (v.size() != 15) throw Napi::RangeError::New(info.Env(), "Expected 15 integers for convShape");
  hf::nn::Conv2dShape s{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14]};
  for (int k = 0; k < 13; ++k) {
    if (v[k] < 1) throw Napi::RangeError::New(info.Env(), "Expected convShape dimensions, strides and dilations ≥ 1");
  }
  // x_size(), y_size() and filter_size() (which bounds the depthwise filter) multiply these unchecked.
  CheckedProduct(info.Env(), {s.n, s.in_h, s.in_w, s.in_c}, "convShape's input (n·inH·inW·inC)");
  CheckedProduct(info.Env(), {s.n, s.out_h, s.out_w, s.out_c}, "convShape's output (n·outH·outW·outC)");
  CheckedProduct(info.Env(), {s.k_h, s.k_w, s.in_c, s.out_c}, "convShape's filter (kH·kW·inC·outC)");
  return s;
}

hf::nn::Activation ActivationArg(const Napi::CallbackInfo& info, size_t i) {
  std::string a = String(info[i], "activation");
  using A = hf::nn::Activation;
  if (a == "linear") return A::Linear;
  if (a == "relu") return A::Relu;
  if (a == "relu6") return A::Relu6;
  if (a == "elu") return A::Elu;
  if (a == "sigmoid") return A::Sigmoid;
  if (a == "leakyrelu") return A::LeakyRelu;
  throw Napi::RangeError::New(info.Env(), "Expected linear, relu, relu6, elu, sigmoid or leakyrelu for activation but received '" + a + "'");
}

// Runs a kernel, turning its C++ exceptions into JS errors.
template <typename Fn>
Napi::Value Run(const Napi::CallbackInfo& info, const char* name, Fn&& fn) {
  try {
    fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const hf::UnavailableError& e) {
    Napi::Error err = Napi::Error::New(info.Env(), e.what());
    err.Set("code", Napi::String::New(info.Env(), "HISTOFLOW_UNAVAILABLE"));
    throw err;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string(name) + ": " + e.what());
  }
  return info.Env().Undefined();
}

// The leading arguments of conv2d and conv2dAdd: shape, x, filter, bias | null.
struct ConvForwardArgs {
  hf::nn::Conv2dShape s;
  float *x, *filter, *bias;
};

ConvForwardArgs ConvForwardArg(const Napi::CallbackInfo& info) {
  ConvForwardArgs a{ConvShapeArg(info, 0), nullptr, nullptr, nullptr};
  a.x = F32(info, 1, "x", a.s.x_size());
  a.filter = F32(info, 2, "filter", a.s.filter_size());
  int64_t bias_len;
  a.bias = OptionalF32(info, 3, "bias", &bias_len);
  if (a.bias && bias_len != a.s.out_c) throw Napi::RangeError::New(info.Env(), "Expected bias to hold outChannels elements");
  return a;
}

// conv2d(shape, x, filter, bias | null, activation, alpha, y)
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  auto a = ConvForwardArg(info);
  auto act = ActivationArg(info, 4);
  float alpha = static_cast<float>(NumberArg(info, 5, "alpha"));
  float* y = F32(info, 6, "y", a.s.y_size());
  return Run(info, "conv2d", [&] { hf::nn::conv2d_forward_cpu(a.s, a.x, a.filter, a.bias, act, alpha, y); });
}

// conv2dAdd(shape, x, filter, bias | null, addend, activation, alpha, y): y = act(conv + bias + addend)
Napi::Value Conv2dAdd(const Napi::CallbackInfo& info) {
  auto a = ConvForwardArg(info);
  float* addend = F32(info, 4, "addend", a.s.y_size());
  auto act = ActivationArg(info, 5);
  float alpha = static_cast<float>(NumberArg(info, 6, "alpha"));
  float* y = F32(info, 7, "y", a.s.y_size());
  return Run(info, "conv2dAdd", [&] { hf::nn::conv2d_forward_add_cpu(a.s, a.x, a.filter, a.bias, addend, act, alpha, y); });
}

// conv2dBackpropInput(shape, dy, filter, dx)
Napi::Value Conv2dBackpropInput(const Napi::CallbackInfo& info) {
  auto s = ConvShapeArg(info, 0);
  float* dy = F32(info, 1, "dy", s.y_size());
  float* f = F32(info, 2, "filter", s.filter_size());
  float* dx = F32(info, 3, "dx", s.x_size());
  return Run(info, "conv2dBackpropInput", [&] { hf::nn::conv2d_backprop_input_cpu(s, dy, f, dx); });
}

// conv2dBackpropFilter(shape, x, dy, dfilter)
Napi::Value Conv2dBackpropFilter(const Napi::CallbackInfo& info) {
  auto s = ConvShapeArg(info, 0);
  float* x = F32(info, 1, "x", s.x_size());
  float* dy = F32(info, 2, "dy", s.y_size());
  float* df = F32(info, 3, "dfilter", s.filter_size());
  return Run(info, "conv2dBackpropFilter", [&] { hf::nn::conv2d_backprop_filter_cpu(s, x, dy, df); });
}

// Depthwise filters are [k_h, k_w, in_c, multiplier]: k_h·k_w·out_c elements.
int64_t DepthwiseFilterSize(const hf::nn::Conv2dShape& s) { return s.k_h * s.k_w * s.out_c; }

Napi::Value DepthwiseConv2d(const Napi::CallbackInfo& info) {
  auto s = ConvShapeArg(info, 0);
  float* x = F32(info, 1, "x", s.x_size());
  float* f = F32(info, 2, "filter", DepthwiseFilterSize(s));
  float* y = F32(info, 3, "y", s.y_size());
  return Run(info, "depthwiseConv2d", [&] { hf::nn::depthwise_conv2d_forward_cpu(s, x, f, y); });
}

Napi::Value DepthwiseConv2dBackpropInput(const Napi::CallbackInfo& info) {
  auto s = ConvShapeArg(info, 0);
  float* dy = F32(info, 1, "dy", s.y_size());
  float* f = F32(info, 2, "filter", DepthwiseFilterSize(s));
  float* dx = F32(info, 3, "dx", s.x_size());
  return Run(info, "depthwiseConv2dBackpropInput", [&] { hf::nn::depthwise_conv2d_backprop_input_cpu(s, dy, f, dx); });
}

Napi::Value DepthwiseConv2dBackpropFilter(const Napi::CallbackInfo& info) {
  auto s = ConvShapeArg(info, 0);
  float* x = F32(info, 1, "x", s.x_size());
  float* dy = F32(info, 2, "dy", s.y_size());
  float* df = F32(info, 3, "dfilter", DepthwiseFilterSize(s));
  return Run(info, "depthwiseConv2dBackpropFilter", [&] { hf::nn::depthwise_conv2d_backprop_filter_cpu(s, x, dy, df); });
}

// maxPool / avgPool(shape, x, y); maxPoolGrad(shape, dy, x, dx); avgPoolGrad(shape, dy, dx)
Napi::Value Pool(const Napi::CallbackInfo& info, bool max) {
  auto s = ConvShapeArg(info, 0);
  float* x = F32(info, 1, "x", s.x_size());
  float* y = F32(info, 2, "y", s.y_size());
  return Run(info, max ? "maxPool" : "avgPool", [&] { max ? hf::nn::max_pool_cpu(s, x, y) : hf::nn::avg_pool_cpu(s, x, y); });
}
Napi::Value MaxPool(const Napi::CallbackInfo& info) { return Pool(info, true); }
Napi::Value AvgPool(const Napi::CallbackInfo& info) { return Pool(info, false); }

Napi::Value MaxPoolGrad(const Napi::CallbackInfo& info) {
  auto s = ConvShapeArg(info, 0);
  float* dy = F32(info, 1, "dy", s.y_size());
  float* x = F32(info, 2, "x", s.x_size());
  float* dx = F32(info, 3, "dx", s.x_size());
  return Run(info, "maxPoolGrad", [&] { hf::nn::max_pool_grad_cpu(s, dy, x, dx); });
}

Napi::Value AvgPoolGrad(const Napi::CallbackInfo& info) {
  auto s = ConvShapeArg(info, 0);
  float* dy = F32(info, 1, "dy", s.y_size());
  float* dx = F32(info, 2, "dx", s.x_size());
  return Run(info, "avgPoolGrad", [&] { hf::nn::avg_pool_grad_cpu(s, dy, dx); });
}

// batchMatMul([batch, batchA, batchB, m, n, k, transA, transB], a, b, bias | null, activation, alpha, out)
Napi::Value BatchMatMul(const Napi::CallbackInfo& info) {
  auto v = Ints(info, 0, "matmulShape", 8);
  if (v.size() != 8) throw Napi::RangeError::New(info.Env(), "Expected 8 integers for matmulShape");
  hf::nn::MatMulShape s{v[0], v[1], v[2], v[3], v[4], v[5], v[6] != 0, v[7] != 0};
  float* a = F32(info, 1, "a", CheckedProduct(info.Env(), {s.batch_a, s.m, s.k}, "a (batchA·m·k)"));
  float* b = F32(info, 2, "b", CheckedProduct(info.Env(), {s.batch_b, s.k, s.n}, "b (batchB·k·n)"));
  int64_t bias_len;
  float* bias = OptionalF32(info, 3, "bias", &bias_len);
  auto act = ActivationArg(info, 4);
  float alpha = static_cast<float>(NumberArg(info, 5, "alpha"));
  float* out = F32(info, 6, "out", CheckedProduct(info.Env(), {s.batch, s.m, s.n}, "out (batch·m·n)"));
  return Run(info, "batchMatMul", [&] { hf::nn::batch_matmul_cpu(s, a, b, bias, bias_len, act, alpha, out); });
}

// A Float32Array of any non-zero length (returned in *length).
float* NonEmptyF32(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t* length) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(info.Env(), std::string("Expected a Float32Array for ") + name);
  }
  auto ta = v.As<Napi::Float32Array>();
  *length = static_cast<int64_t>(ta.ElementLength());
  if (*length < 1) throw Napi::RangeError::New(info.Env(), std::string("Expected ") + name + " to hold at least one value");
  return ta.Data();
}

// A channel count that divides `size` (x's length), ≥ 1.
int64_t ChannelsArg(const Napi::CallbackInfo& info, size_t i, int64_t size) {
  double c = NumberArg(info, i, "channels");
  if (!(c >= 1) || c != static_cast<double>(static_cast<int64_t>(c)) || c > 9.0e15)
    throw Napi::RangeError::New(info.Env(), "Expected channels to be an integer ≥ 1");
  int64_t k = static_cast<int64_t>(c);
  if (size < 1 || size % k != 0)
    throw Napi::RangeError::New(info.Env(), "Expected x to hold a whole number of rows of " + std::to_string(k) + " channels (it holds " + std::to_string(size) + " values)");
  return k;
}

// batchNorm(x, mean, variance, offset | null, scale | null, epsilon, y)
Napi::Value BatchNorm(const Napi::CallbackInfo& info) {
  int64_t size, mean_len, var_len, off_len, scale_len;
  float* x = OptionalF32(info, 0, "x", &size);
  hf::nn::BatchNormArgs p{};
  p.mean = OptionalF32(info, 1, "mean", &mean_len);
  p.variance = OptionalF32(info, 2, "variance", &var_len);
  p.offset = OptionalF32(info, 3, "offset", &off_len);
  p.scale = OptionalF32(info, 4, "scale", &scale_len);
  if (!x || !p.mean || !p.variance) throw Napi::TypeError::New(info.Env(), "Expected Float32Arrays for x, mean and variance");
  p.mean_len = mean_len;
  p.variance_len = var_len;
  p.offset_len = off_len;
  p.scale_len = scale_len;
  p.epsilon = static_cast<float>(NumberArg(info, 5, "epsilon"));
  float* y = F32(info, 6, "y", size);
  return Run(info, "batchNorm", [&] { hf::nn::batch_norm_cpu(x, size, p, y); });
}

// batchNormTrain(x, c, scale | null, offset | null, epsilon, relu, y, mean, variance): x is [rows, c].
Napi::Value BatchNormTrain(const Napi::CallbackInfo& info) {
  int64_t size, scale_len, off_len;
  float* x = NonEmptyF32(info, 0, "x", &size);
  int64_t c = ChannelsArg(info, 1, size);
  float* scale = OptionalF32(info, 2, "scale", &scale_len);
  float* offset = OptionalF32(info, 3, "offset", &off_len);
  if ((scale && scale_len != c) || (offset && off_len != c))
    throw Napi::RangeError::New(info.Env(), "Expected scale and offset to hold one value per channel (" + std::to_string(c) + ")");
  double eps = NumberArg(info, 4, "epsilon");
  if (!(eps >= 0 && eps < 1e30)) throw Napi::RangeError::New(info.Env(), "Expected a finite epsilon ≥ 0");
  if (!info[5].IsBoolean()) throw Napi::TypeError::New(info.Env(), "Expected a boolean for relu");
  bool relu = info[5].As<Napi::Boolean>().Value();
  float* y = F32(info, 6, "y", size);
  float* mean = F32(info, 7, "mean", c);
  float* variance = F32(info, 8, "variance", c);
  return Run(info, "batchNormTrain", [&] {
    hf::nn::batch_norm_train_cpu(x, size / c, c, scale, offset, static_cast<float>(eps), relu, y, mean, variance);
  });
}

// batchNormTrainGrad(dy, x, c, mean, variance, scale | null, epsilon, reluY | null, dx, dscale | null, doffset | null)
Napi::Value BatchNormTrainGrad(const Napi::CallbackInfo& info) {
  int64_t size, scale_len, ds_len, do_len;
  float* dy = NonEmptyF32(info, 0, "dy", &size);
  float* x = F32(info, 1, "x", size);
  int64_t c = ChannelsArg(info, 2, size);
  float* mean = F32(info, 3, "mean", c);
  float* variance = F32(info, 4, "variance", c);
  float* scale = OptionalF32(info, 5, "scale", &scale_len);
  if (scale && scale_len != c)
    throw Napi::RangeError::New(info.Env(), "Expected scale to hold one value per channel (" + std::to_string(c) + ")");
  double eps = NumberArg(info, 6, "epsilon");
  if (!(eps >= 0 && eps < 1e30)) throw Napi::RangeError::New(info.Env(), "Expected a finite epsilon ≥ 0");
  int64_t y_len;
  float* relu_y = OptionalF32(info, 7, "reluY", &y_len);
  if (relu_y && y_len != size) throw Napi::RangeError::New(info.Env(), "Expected reluY to hold " + std::to_string(size) + " elements");
  float* dx = F32(info, 8, "dx", size);
  float* dscale = OptionalF32(info, 9, "dscale", &ds_len);
  float* doffset = OptionalF32(info, 10, "doffset", &do_len);
  if ((dscale && ds_len != c) || (doffset && do_len != c))
    throw Napi::RangeError::New(info.Env(), "Expected dscale and doffset to hold one value per channel (" + std::to_string(c) + ")");
  return Run(info, "batchNormTrainGrad", [&] {
    hf::nn::batch_norm_train_grad_cpu(dy, x, size / c, c, mean, variance, scale, static_cast<float>(eps), relu_y, dx, dscale, doffset);
  });
}

// unary(op, x, alpha, y)
Napi::Value Unary(const Napi::CallbackInfo& info) {
  static const std::pair<const char*, hf::nn::UnaryOp> ops[] = {
      {"neg", hf::nn::UnaryOp::Neg},   {"square", hf::nn::UnaryOp::Square}, {"sqrt", hf::nn::UnaryOp::Sqrt},
      {"rsqrt", hf::nn::UnaryOp::Rsqrt}, {"exp", hf::nn::UnaryOp::Exp},     {"log", hf::nn::UnaryOp::Log},
      {"abs", hf::nn::UnaryOp::Abs},   {"relu", hf::nn::UnaryOp::Relu},     {"relu6", hf::nn::UnaryOp::Relu6},
      {"elu", hf::nn::UnaryOp::Elu},   {"sigmoid", hf::nn::UnaryOp::Sigmoid}, {"step", hf::nn::UnaryOp::Step}};
  std::string name = String(info[0], "op");
  int64_t size;
  float* x = OptionalF32(info, 1, "x", &size);
  if (!x) throw Napi::TypeError::New(info.Env(), "Expected a Float32Array for x");
  float alpha = static_cast<float>(NumberArg(info, 2, "alpha"));
  float* y = F32(info, 3, "y", size);
  for (auto& [n, op] : ops) {
    if (name == n) return Run(info, "unary", [&, op = op] { hf::nn::unary_cpu(op, x, size, alpha, y); });
  }
  throw Napi::RangeError::New(info.Env(), "Unknown unary op '" + name + "'");
}

// binary(op, a, aShape, b, bShape, outShape, out)
Napi::Value Binary(const Napi::CallbackInfo& info) {
  static const std::pair<const char*, hf::nn::BinaryOp> ops[] = {
      {"add", hf::nn::BinaryOp::Add},         {"sub", hf::nn::BinaryOp::Sub},
      {"mul", hf::nn::BinaryOp::Mul},         {"div", hf::nn::BinaryOp::Div},
      {"squaredDifference", hf::nn::BinaryOp::SquaredDifference},
      {"maximum", hf::nn::BinaryOp::Maximum}, {"minimum", hf::nn::BinaryOp::Minimum},
      {"eluGrad", hf::nn::BinaryOp::EluGrad}, {"reluGrad", hf::nn::BinaryOp::ReluGrad}};
  std::string name = String(info[0], "op");
  auto a_shape = Ints(info, 2, "aShape", hf::nn::kMaxRank);
  auto b_shape = Ints(info, 4, "bShape", hf::nn::kMaxRank);
  auto out_shape = Ints(info, 5, "outShape", hf::nn::kMaxRank);
  float* a = F32(info, 1, "a", Product(info, a_shape, "aShape"));
  float* b = F32(info, 3, "b", Product(info, b_shape, "bShape"));
  float* out = F32(info, 6, "out", Product(info, out_shape, "outShape"));
  for (auto& [n, op] : ops) {
    if (name == n) {
      return Run(info, "binary", [&, op = op] {
        hf::nn::binary_cpu(op, a, a_shape.data(), static_cast<int>(a_shape.size()), b, b_shape.data(),
                           static_cast<int>(b_shape.size()), out_shape.data(), static_cast<int>(out_shape.size()), out);
      });
    }
  }
  throw Napi::RangeError::New(info.Env(), "Unknown binary op '" + name + "'");
}

// tile(x, shape, reps, out)
Napi::Value Tile(const Napi::CallbackInfo& info) {
  auto shape = Ints(info, 1, "shape", hf::nn::kMaxRank);
  auto reps = Ints(info, 2, "reps", hf::nn::kMaxRank);
  if (reps.size() != shape.size() || shape.empty()) throw Napi::RangeError::New(info.Env(), "Expected one rep per dimension");
  float* x = F32(info, 0, "x", Product(info, shape, "shape"));
  float* out = F32(info, 3, "out", CheckedProduct(info.Env(), {Product(info, shape, "shape"), Product(info, reps, "reps")},
                                                  "out (shape·reps)"));
  return Run(info, "tile", [&] { hf::nn::tile_cpu(x, shape.data(), reps.data(), static_cast<int>(shape.size()), out); });
}

// reduceSum(x, outer, reduce, inner, mean, out)
Napi::Value ReduceSum(const Napi::CallbackInfo& info) {
  auto dims = Ints(info, 1, "dims", 3);
  if (dims.size() != 3) throw Napi::RangeError::New(info.Env(), "Expected [outer, reduce, inner] for dims");
  float* x = F32(info, 0, "x", Product(info, dims, "dims"));
  if (!info[2].IsBoolean()) throw Napi::TypeError::New(info.Env(), "Expected a boolean for mean");
  bool mean = info[2].As<Napi::Boolean>().Value();
  float* out = F32(info, 3, "out", CheckedProduct(info.Env(), {dims[0], dims[2]}, "out (outer·inner)"));
  return Run(info, "reduceSum", [&] { hf::nn::reduce_sum_cpu(x, dims[0], dims[1], dims[2], mean, out); });
}

// concat(inputs, outer, inners, out): inputs[i] is [outer, inners[i]], out [outer, Σ inners].
Napi::Value Concat(const Napi::CallbackInfo& info) {
  if (!info[0].IsArray()) throw Napi::TypeError::New(info.Env(), "Expected an array of Float32Arrays for inputs");
  auto arr = info[0].As<Napi::Array>();
  const double outer_d = NumberArg(info, 1, "outer");
  if (!(outer_d >= 0 && outer_d <= 9.0e15) || outer_d != static_cast<double>(static_cast<int64_t>(outer_d))) {
    throw Napi::RangeError::New(info.Env(), "Expected a non-negative integer for outer");
  }
  const int64_t outer = static_cast<int64_t>(outer_d);
  auto inner = Ints(info, 2, "inners", 1 << 16);
  if (inner.empty() || inner.size() != arr.Length()) {
    throw Napi::RangeError::New(info.Env(), "Expected one inner size per input (at least one input)");
  }
  // Every element is read before any pointer is taken: reading one may run JS
  // (a getter) that detaches or shrinks an input already checked.
  std::vector<Napi::Value> values(inner.size());
  for (uint32_t k = 0; k < values.size(); ++k) values[k] = arr.Get(k);
  std::vector<const float*> inputs(inner.size());
  int64_t row = 0;
  for (uint32_t k = 0; k < values.size(); ++k) {
    Napi::Value v = values[k];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw Napi::TypeError::New(info.Env(), "Expected a Float32Array for inputs[" + std::to_string(k) + "]");
    }
    auto ta = v.As<Napi::Float32Array>();
    int64_t length = CheckedProduct(info.Env(), {outer, inner[k]}, "an input (outer·inner)");
    if (static_cast<int64_t>(ta.ElementLength()) != length) {
      throw Napi::RangeError::New(info.Env(), "Expected inputs[" + std::to_string(k) + "] to hold " + std::to_string(length) +
                                                  " elements but it holds " + std::to_string(ta.ElementLength()));
    }
    inputs[k] = ta.Data();
    if (__builtin_add_overflow(row, inner[k], &row)) throw Napi::RangeError::New(info.Env(), "Expected Σ inners to fit in 64 bits");
  }
  float* out = F32(info, 3, "out", CheckedProduct(info.Env(), {outer, row}, "out (outer·Σ inners)"));
  return Run(info, "concat", [&] {
    hf::nn::concat_cpu(inputs.data(), inner.data(), static_cast<int>(inner.size()), outer, out);
  });
}

// slice(x, shape, begin, size, out)
Napi::Value Slice(const Napi::CallbackInfo& info) {
  auto shape = Ints(info, 1, "shape", hf::nn::kMaxRank);
  auto begin = Ints(info, 2, "begin", hf::nn::kMaxRank);
  auto size = Ints(info, 3, "size", hf::nn::kMaxRank);
  if (shape.empty() || begin.size() != shape.size() || size.size() != shape.size()) {
    throw Napi::RangeError::New(info.Env(), "Expected shape, begin and size of one rank (1 to 8)");
  }
  for (size_t d = 0; d < shape.size(); ++d) {
    if (begin[d] > shape[d] || size[d] > shape[d] - begin[d]) {
      throw Napi::RangeError::New(info.Env(), "Expected begin + size ≤ shape in dimension " + std::to_string(d));
    }
  }
  float* x = F32(info, 0, "x", Product(info, shape, "shape"));
  float* out = F32(info, 4, "out", Product(info, size, "size"));
  return Run(info, "slice", [&] {
    hf::nn::slice_cpu(x, shape.data(), begin.data(), size.data(), static_cast<int>(shape.size()), out);
  });
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("engine", hf::nn::engine_name(hf::nn::engine()));
  o.Set("onednn", hf::nn::onednn_available());
  o.Set("threads", hf::cpu_threads());
  o.Set("winograd", hf::nn::winograd_enabled());
  return o;
}

// setEngine('onednn' | 'builtin')
Napi::Value SetEngine(const Napi::CallbackInfo& info) {
  std::string e = String(info[0], "engine");
  if (e != "onednn" && e != "builtin") {
    throw Napi::RangeError::New(info.Env(), "Expected 'onednn' or 'builtin' for engine but received '" + e + "'");
  }
  return Run(info, "setEngine", [&] { hf::nn::set_engine(e == "onednn" ? hf::nn::Engine::OneDnn : hf::nn::Engine::Builtin); });
}

// setWinograd(on): 3×3 stride-1 forwards as Winograd F(4×4, 3×3) or direct (nn/conv2d.h).
Napi::Value SetWinograd(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "Expected a boolean for on");
  hf::nn::set_winograd(info[0].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
}

}  // namespace

// retainFreedMemory(bytes) → boolean: native/core/allocator.h.
Napi::Value RetainFreedMemory(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "Expected a number of bytes for bytes");
  double bytes = info[0].As<Napi::Number>().DoubleValue();
  if (!(bytes >= 0 && bytes <= 9.0e15)) throw Napi::RangeError::New(info.Env(), "Expected a byte count ≥ 0 for bytes");
  return Napi::Boolean::New(info.Env(), hf::retain_freed_memory(static_cast<size_t>(bytes)));
}

// heapStats() → { arena, mmapped, inUse, free, releasable } bytes, or null off glibc: native/core/allocator.h.
Napi::Value HeapStats(const Napi::CallbackInfo& info) {
  hf::HeapStats h;
  if (!hf::heap_stats(h)) return info.Env().Null();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("arena", static_cast<double>(h.arena));
  o.Set("mmapped", static_cast<double>(h.mmapped));
  o.Set("inUse", static_cast<double>(h.in_use));
  o.Set("free", static_cast<double>(h.free));
  o.Set("releasable", static_cast<double>(h.releasable));
  return o;
}

void InitNn(Napi::Env env, Napi::Object exports) {
  Napi::Object nn = Napi::Object::New(env);
  nn.Set("info", Napi::Function::New(env, Info, "info"));
  nn.Set("setEngine", Napi::Function::New(env, SetEngine, "setEngine"));
  nn.Set("setWinograd", Napi::Function::New(env, SetWinograd, "setWinograd"));
  nn.Set("conv2d", Napi::Function::New(env, Conv2d, "conv2d"));
  nn.Set("conv2dAdd", Napi::Function::New(env, Conv2dAdd, "conv2dAdd"));
  nn.Set("conv2dBackpropInput", Napi::Function::New(env, Conv2dBackpropInput, "conv2dBackpropInput"));
  nn.Set("conv2dBackpropFilter", Napi::Function::New(env, Conv2dBackpropFilter, "conv2dBackpropFilter"));
  nn.Set("depthwiseConv2d", Napi::Function::New(env, DepthwiseConv2d, "depthwiseConv2d"));
  nn.Set("depthwiseConv2dBackpropInput", Napi::Function::New(env, DepthwiseConv2dBackpropInput, "depthwiseConv2dBackpropInput"));
  nn.Set("depthwiseConv2dBackpropFilter", Napi::Function::New(env, DepthwiseConv2dBackpropFilter, "depthwiseConv2dBackpropFilter"));
  nn.Set("maxPool", Napi::Function::New(env, MaxPool, "maxPool"));
  nn.Set("avgPool", Napi::Function::New(env, AvgPool, "avgPool"));
  nn.Set("maxPoolGrad", Napi::Function::New(env, MaxPoolGrad, "maxPoolGrad"));
  nn.Set("avgPoolGrad", Napi::Function::New(env, AvgPoolGrad, "avgPoolGrad"));
  nn.Set("batchMatMul", Napi::Function::New(env, BatchMatMul, "batchMatMul"));
  nn.Set("batchNorm", Napi::Function::New(env, BatchNorm, "batchNorm"));
  nn.Set("batchNormTrain", Napi::Function::New(env, BatchNormTrain, "batchNormTrain"));
  nn.Set("batchNormTrainGrad", Napi::Function::New(env, BatchNormTrainGrad, "batchNormTrainGrad"));
  nn.Set("unary", Napi::Function::New(env, Unary, "unary"));
  nn.Set("binary", Napi::Function::New(env, Binary, "binary"));
  nn.Set("tile", Napi::Function::New(env, Tile, "tile"));
  nn.Set("reduceSum", Napi::Function::New(env, ReduceSum, "reduceSum"));
  nn.Set("concat", Napi::Function::New(env, Concat, "concat"));
  nn.Set("slice", Napi::Function::New(env, Slice, "slice"));
  nn.Set("retainFreedMemory", Napi::Function::New(env, RetainFreedMemory, "retainFreedMemory"));
  nn.Set("heapStats", Napi::Function::New(env, HeapStats, "heapStats"));
  exports.Set("nn", nn);
}

}  // namespace hfb
