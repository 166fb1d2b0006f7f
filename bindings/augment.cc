// N-API glue for native/augment: the batched, seeded augmentation kernel.
// src/augment draws every per-image parameter on the host and validates the
// pipeline; here we re-check only what would make the kernel read or write
// out of bounds: the typed arrays' kinds and lengths, one params object per
// image, the crop window inside the source, d4 in 0..7, sizes that fit int32,
// a finite blur σ (its radius sizes a buffer) and elastic σ ≥ 1 (its control
// grid is (out/σ + 4)² points).
#include <napi.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "augment/augment.h"
#include "common.h"
#include "params.h"

namespace hfb {
namespace {

constexpr int64_t kMaxSide = 65536;
constexpr double kMaxBlurSigma = 1024;

[[noreturn]] void Range(Napi::Env env, const std::string& message) { throw Napi::RangeError::New(env, message); }

int32_t SideArg(const Napi::Object& o, const char* key) {
  double d = Number(o, key);
  if (!(d >= 1 && d <= static_cast<double>(kMaxSide)) || d != std::floor(d)) {
    Range(o.Env(), std::string("Expected an integer between 1 and 65536 for batchParams.") + key);
  }
  return static_cast<int32_t>(d);
}

hf::AugmentBatchParams BatchParamsArg(const Napi::Object& o, const hf::RgbBatch& in) {
  hf::AugmentBatchParams b;
  b.crop_h = SideArg(o, "cropH");
  b.crop_w = SideArg(o, "cropW");
  b.out_h = SideArg(o, "outH");
  b.out_w = SideArg(o, "outW");
  if (b.crop_h > in.height || b.crop_w > in.width) {
    Range(o.Env(), "Expected a crop window of at most the image size " + std::to_string(in.height) + "x" +
                       std::to_string(in.width) + " but received " + std::to_string(b.crop_h) + "x" +
                       std::to_string(b.crop_w));
  }
  Numbers<float>(o, "mean", b.mean, 3);
  Numbers<float>(o, "std", b.std, 3);
  return b;
}

hf::AugmentImageParams ImageParamsArg(const Napi::Object& o, const hf::RgbBatch& in, const hf::AugmentBatchParams& b,
                                      uint32_t index) {
  Napi::Env env = o.Env();
  const std::string at = "params[" + std::to_string(index) + "].";
  hf::AugmentImageParams p;
  double d4 = Number(o, "d4");
  if (!(d4 >= 0 && d4 <= 7) || d4 != std::floor(d4)) Range(env, "Expected an integer between 0 and 7 for " + at + "d4");
  p.d4 = static_cast<int32_t>(d4);
  double cy = Number(o, "cropY"), cx = Number(o, "cropX");
  if (!(cy >= 0 && cy == std::floor(cy) && cy + b.crop_h <= static_cast<double>(in.height)) ||
      !(cx >= 0 && cx == std::floor(cx) && cx + b.crop_w <= static_cast<double>(in.width))) {
    Range(env, "Expected the crop window of " + at + "cropY/cropX inside the " + std::to_string(in.height) + "x" +
                   std::to_string(in.width) + " image");
  }
  p.crop_y = static_cast<int32_t>(cy);
  p.crop_x = static_cast<int32_t>(cx);
  p.hed_enabled = Bool(o, "hedEnabled") ? 1 : 0;
  Numbers<float>(o, "hedAlpha", p.hed_alpha, 3);
  Numbers<float>(o, "hedBeta", p.hed_beta, 3);
  p.brightness = static_cast<float>(Number(o, "brightness"));
  p.contrast = static_cast<float>(Number(o, "contrast"));
  p.saturation = static_cast<float>(Number(o, "saturation"));
  p.hue = static_cast<float>(Number(o, "hue"));
  double blur = Number(o, "blurSigma");
  if (!(blur >= 0 && blur <= kMaxBlurSigma)) Range(env, "Expected a number between 0 and 1024 for " + at + "blurSigma");
  p.blur_sigma = static_cast<float>(blur);
  p.noise_sigma = static_cast<float>(Number(o, "noiseSigma"));
  double seed = Number(o, "noiseSeed");
  if (!(seed >= 0 && seed <= 9007199254740991.0) || seed != std::floor(seed)) {
    Range(env, "Expected an integer between 0 and 2^53 - 1 for " + at + "noiseSeed");
  }
  p.noise_seed = static_cast<uint64_t>(seed);
  // Elastic: α sizes nothing, σ sizes the control grid (≥ 1), both finite.
  double alpha = Number(o, "elasticAlpha"), sigma = Number(o, "elasticSigma");
  if (!(alpha >= 0 && alpha <= 65536)) Range(env, "Expected a number between 0 and 65536 for " + at + "elasticAlpha");
  if (alpha > 0 && !(sigma >= 1 && sigma <= 65536)) {
    Range(env, "Expected a number between 1 and 65536 for " + at + "elasticSigma");
  }
  p.elastic_alpha = static_cast<float>(alpha);
  p.elastic_sigma = alpha > 0 ? static_cast<float>(sigma) : 1.f;
  double eseed = Number(o, "elasticSeed");
  if (!(eseed >= 0 && eseed <= 9007199254740991.0) || eseed != std::floor(eseed)) {
    Range(env, "Expected an integer between 0 and 2^53 - 1 for " + at + "elasticSeed");
  }
  p.elastic_seed = static_cast<uint64_t>(eseed);
  return p;
}

// augment(device, batch, params: object[N], batchParams, out: Float32Array) → Promise<void>
Napi::Value Augment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Device device = DeviceArg(info, 0);
  PinnedBatch batch = BatchArg(info, 1);
  if (batch.view.height > kMaxSide || batch.view.width > kMaxSide) {
    Range(env, "Expected images of at most 65536x65536 for batch");
  }
  if (info.Length() <= 2 || !info[2].IsArray()) throw Napi::TypeError::New(env, "Expected an array for params");
  Napi::Array list = info[2].As<Napi::Array>();
  hf::AugmentBatchParams b = BatchParamsArg(ObjectArg(info, 3, "batchParams"), batch.view);
  if (static_cast<int64_t>(list.Length()) != batch.view.n) {
    Range(env, "Expected one params object per image (" + std::to_string(batch.view.n) + ") but received " +
                   std::to_string(list.Length()));
  }
  auto params = std::make_shared<std::vector<hf::AugmentImageParams>>(static_cast<size_t>(batch.view.n));
  for (uint32_t k = 0; k < list.Length(); ++k) {
    Napi::Value v = list.Get(k);
    if (!v.IsObject()) throw Napi::TypeError::New(env, "Expected an object for params[" + std::to_string(k) + "]");
    (*params)[k] = ImageParamsArg(v.As<Napi::Object>(), batch.view, b, k);
  }
  int64_t values = CheckedProduct(env, {batch.view.n, b.out_h, b.out_w, 3}, "out (n·outHeight·outWidth·3)");
  auto out = TypedArg<float>(info.Length() > 4 ? info[4] : env.Undefined(), napi_float32_array, "Float32Array", "out",
                             values, Access::Output);
  Pins pins;
  pins.push_back(std::move(batch.pin));
  pins.push_back(std::move(out.pin));
  return PromiseWorker::Start(env, "augment", std::move(pins),
      [device, v = batch.view, params, b, o = out.data] {
        device == Device::Cuda ? hf::augment_cuda(v, params->data(), b, o) : hf::augment_cpu(v, params->data(), b, o);
      },
      nullptr);
}

}  // namespace

void InitAugment(Napi::Env env, Napi::Object exports) {
  exports.Set("augment", Napi::Function::New(env, Augment, "augment"));
}

}  // namespace hfb
