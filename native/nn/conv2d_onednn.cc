// oneDNN 2.x convolution primitives over TF.js's own buffers: activations in
// nhwc (no reorder), weights reordered between hwio and the layout oneDNN's
// kernel prefers (`any`; the weights are small). Primitives are built once per
// shape and cached: building one costs far more than running it on a batch.
#include "nn/conv2d.h"

#ifdef HISTOFLOW_WITH_ONEDNN
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>

#include "core/parallel.h"

namespace hf::nn {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// Forward: the training forward (no bias, no activation: what the backward
// primitives take as their hint). ForwardBias / ForwardRelu / ForwardBiasRelu:
// inference forwards with the bias and a ReLU applied inside the kernel
// (oneDNN's bias argument and eltwise post-op), no extra pass over the output.
// ForwardAdd / ForwardAddRelu: an inference forward with an optional bias, a
// tensor of the output's shape added (oneDNN's binary post-op: a residual
// shortcut) and optionally a ReLU, all inside the kernel.
enum class Pass { Forward, BackwardData, BackwardWeights, ForwardBias, ForwardRelu, ForwardBiasRelu, ForwardAdd, ForwardAddRelu };

struct Geometry {
  memory::desc src, weights_any, weights_user, dst;
  memory::dims strides, dilates, pad_l, pad_r;
};

// TF.js's right padding is implied by its output size; oneDNN wants it
// explicitly. Returns false for a shape oneDNN cannot express.
bool geometry(const Conv2dShape& s, Geometry& g) {
  auto right_pad = [](int64_t in, int64_t out, int64_t k, int64_t stride, int64_t dil, int64_t pad_l, int64_t& pad_r) {
    int64_t eff = (k - 1) * dil + 1;
    pad_r = std::max<int64_t>(0, (out - 1) * stride + eff - in - pad_l);
    return (in + pad_l + pad_r - eff) / stride + 1 == out;
  };
  int64_t pr_h, pr_w;
  if (!right_pad(s.in_h, s.out_h, s.k_h, s.stride_h, s.dil_h, s.pad_top, pr_h)) return false;
  if (!right_pad(s.in_w, s.out_w, s.k_w, s.stride_w, s.dil_w, s.pad_left, pr_w)) return false;
  g.src = memory::desc({s.n, s.in_c, s.in_h, s.in_w}, dt::f32, tag::nhwc);
  g.dst = memory::desc({s.n, s.out_c, s.out_h, s.out_w}, dt::f32, tag::nhwc);
  g.weights_user = memory::desc({s.out_c, s.in_c, s.k_h, s.k_w}, dt::f32, tag::hwio);
  g.weights_any = memory::desc({s.out_c, s.in_c, s.k_h, s.k_w}, dt::f32, tag::any);
  g.strides = {s.stride_h, s.stride_w};
  g.dilates = {s.dil_h - 1, s.dil_w - 1};
  g.pad_l = {s.pad_top, s.pad_left};
  g.pad_r = {pr_h, pr_w};
  return true;
}

dnnl::convolution_forward::desc forward_desc(const Geometry& g) {
  return dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, g.src,
                                         g.weights_any, g.dst, g.strides, g.dilates, g.pad_l, g.pad_r);
}

memory::desc bias_desc(const Conv2dShape& s) { return memory::desc({s.out_c}, dt::f32, tag::a); }

// One cached primitive with its weights reorder (user hwio ↔ the kernel's layout).
struct Cached {
  dnnl::primitive conv;
  memory::desc weights;  // the layout the primitive uses
  memory::desc weights_user;
  bool reorder;
  dnnl::reorder weights_reorder;  // hwio → weights (forward, backward data) or back (backward weights)
};

using Key = std::tuple<int, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t, int64_t>;

std::mutex cache_mutex;
std::map<Key, std::shared_ptr<Cached>> cache;

std::shared_ptr<Cached> primitive_for(Pass pass, const Conv2dShape& s, bool with_bias = false) {
  Key key{static_cast<int>(pass), with_bias, s.n, s.in_h, s.in_w, s.in_c, s.out_h, s.out_w, s.out_c, s.k_h, s.k_w,
          s.stride_h, s.stride_w, s.dil_h, s.dil_w, s.pad_top, s.pad_left};
  std::lock_guard<std::mutex> lock(cache_mutex);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  Geometry g;
  if (!geometry(s, g)) return nullptr;
  auto c = std::make_shared<Cached>();
  c->weights_user = g.weights_user;
  auto& eng = cpu_engine();
  dnnl::convolution_forward::primitive_desc fwd(forward_desc(g), eng);
  if (pass == Pass::Forward) {
    c->conv = dnnl::convolution_forward(fwd);
    c->weights = fwd.weights_desc();
  } else if (pass == Pass::ForwardBias || pass == Pass::ForwardRelu || pass == Pass::ForwardBiasRelu ||
             pass == Pass::ForwardAdd || pass == Pass::ForwardAddRelu) {
    const bool add = pass == Pass::ForwardAdd || pass == Pass::ForwardAddRelu;
    const bool bias = add ? with_bias : pass != Pass::ForwardRelu;
    const bool relu = pass == Pass::ForwardRelu || pass == Pass::ForwardBiasRelu || pass == Pass::ForwardAddRelu;
    dnnl::primitive_attr attr;
    dnnl::post_ops ops;
    // The shortcut is copied into the output first and accumulated into by the
    // kernel (oneDNN's sum post-op, its fast path for residual blocks; its
    // binary post-op over a whole tensor measured slower than a separate add).
    if (add) ops.append_sum(1.0f);
    if (relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    if (add || relu) attr.set_post_ops(ops);
    auto d = bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, g.src,
                                                    g.weights_any, bias_desc(s), g.dst, g.strides, g.dilates, g.pad_l, g.pad_r)
                  : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, g.src,
                                                    g.weights_any, g.dst, g.strides, g.dilates, g.pad_l, g.pad_r);
    dnnl::convolution_forward::primitive_desc pd(d, attr, eng);
    c->conv = dnnl::convolution_forward(pd);
    c->weights = pd.weights_desc();
  } else if (pass == Pass::BackwardData) {
    dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, g.src, g.weights_any, g.dst,
                                            g.strides, g.dilates, g.pad_l, g.pad_r);
    dnnl::convolution_backward_data::primitive_desc pd(d, eng, fwd);
    c->conv = dnnl::convolution_backward_data(pd);
    c->weights = pd.weights_desc();
  } else {
    dnnl::convolution_backward_weights::desc d(dnnl::algorithm::convolution_direct, g.src, g.weights_any, g.dst,
                                               g.strides, g.dilates, g.pad_l, g.pad_r);
    dnnl::convolution_backward_weights::primitive_desc pd(d, eng, fwd);
    c->conv = dnnl::convolution_backward_weights(pd);
    c->weights = pd.diff_weights_desc();
  }
  c->reorder = c->weights != g.weights_user;
  if (c->reorder) {
    c->weights_reorder = pass == Pass::BackwardWeights ? dnnl::reorder(dnnl::reorder::primitive_desc(eng, c->weights, eng, g.weights_user))
                                                       : dnnl::reorder(dnnl::reorder::primitive_desc(eng, g.weights_user, eng, c->weights));
  }
  cache.emplace(key, c);
  return c;
}

memory user(const memory::desc& d, const float* p) { return memory(d, cpu_engine(), const_cast<float*>(p)); }

}  // namespace

namespace {

// The weights in the layout the primitive wants: the user's hwio buffer, or a reorder of it.
memory weights_for(const Cached& c, dnnl::stream& stream, const float* filter) {
  memory w_user = user(c.weights_user, filter);
  if (!c.reorder) return w_user;
  memory w(c.weights, cpu_engine());
  c.weights_reorder.execute(stream, w_user, w);
  return w;
}

// One forward primitive of `pass` on x → y, with the bias when given.
bool run_forward(Pass pass, const Conv2dShape& s, const float* x, const float* filter, const float* bias, float* y) {
  const bool with_bias = bias != nullptr && (pass == Pass::ForwardAdd || pass == Pass::ForwardAddRelu);
  auto c = primitive_for(pass, s, with_bias);
  if (!c) return false;
  Geometry g;
  geometry(s, g);
  dnnl::stream stream(cpu_engine());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, user(g.src, x)}, {DNNL_ARG_WEIGHTS, weights_for(*c, stream, filter)},
                                       {DNNL_ARG_DST, user(g.dst, y)}};
  if (bias) args.emplace(DNNL_ARG_BIAS, user(bias_desc(s), bias));
  c->conv.execute(stream, args);
  stream.wait();
  return true;
}

}  // namespace

bool conv2d_forward_onednn(const Conv2dShape& s, const float* x, const float* filter, float* y) {
  return run_forward(Pass::Forward, s, x, filter, nullptr, y);
}

bool conv2d_forward_fused_onednn(const Conv2dShape& s, const float* x, const float* filter, const float* bias, Activation act,
                                 float* y) {
  if (act != Activation::Linear && act != Activation::Relu) return false;
  if (!bias && act == Activation::Linear) return conv2d_forward_onednn(s, x, filter, y);
  const Pass pass = !bias ? Pass::ForwardRelu : act == Activation::Relu ? Pass::ForwardBiasRelu : Pass::ForwardBias;
  return run_forward(pass, s, x, filter, bias, y);
}

bool conv2d_forward_add_onednn(const Conv2dShape& s, const float* x, const float* filter, const float* bias, const float* addend,
                               Activation act, float* y) {
  if (act != Activation::Linear && act != Activation::Relu) return false;
  const Pass pass = act == Activation::Relu ? Pass::ForwardAddRelu : Pass::ForwardAdd;
  if (!primitive_for(pass, s, bias != nullptr)) return false;  // nothing written when oneDNN cannot run it
  // The sum post-op accumulates into y: the shortcut goes there first.
  if (addend != y) {
    const int64_t size = s.y_size();
    parallel_for(size, 1 << 16, [&](int64_t i0, int64_t i1) { std::copy(addend + i0, addend + i1, y + i0); });
  }
  return run_forward(pass, s, x, filter, bias, y);
}

bool conv2d_backprop_input_onednn(const Conv2dShape& s, const float* dy, const float* filter, float* dx) {
  auto c = primitive_for(Pass::BackwardData, s);
  if (!c) return false;
  Geometry g;
  geometry(s, g);
  dnnl::stream stream(cpu_engine());
  memory w = weights_for(*c, stream, filter);
  c->conv.execute(stream, {{DNNL_ARG_DIFF_DST, user(g.dst, dy)}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, user(g.src, dx)}});
  stream.wait();
  return true;
}

bool conv2d_backprop_filter_onednn(const Conv2dShape& s, const float* x, const float* dy, float* dfilter) {
  auto c = primitive_for(Pass::BackwardWeights, s);
  if (!c) return false;
  Geometry g;
  geometry(s, g);
  dnnl::stream stream(cpu_engine());
  memory w_user = user(c->weights_user, dfilter), w = w_user;
  if (c->reorder) w = memory(c->weights, cpu_engine());
  c->conv.execute(stream, {{DNNL_ARG_SRC, user(g.src, x)}, {DNNL_ARG_DIFF_DST, user(g.dst, dy)}, {DNNL_ARG_DIFF_WEIGHTS, w}});
  if (c->reorder) c->weights_reorder.execute(stream, w, w_user);
  stream.wait();
  return true;
}

}  // namespace hf::nn

#else

namespace hf::nn {
bool conv2d_forward_onednn(const Conv2dShape&, const float*, const float*, float*) { return false; }
bool conv2d_forward_fused_onednn(const Conv2dShape&, const float*, const float*, const float*, Activation, float*) { return false; }
bool conv2d_forward_add_onednn(const Conv2dShape&, const float*, const float*, const float*, const float*, Activation, float*) { return false; }
bool conv2d_backprop_input_onednn(const Conv2dShape&, const float*, const float*, float*) { return false; }
bool conv2d_backprop_filter_onednn(const Conv2dShape&, const float*, const float*, float*) { return false; }
}  // namespace hf::nn

#endif
