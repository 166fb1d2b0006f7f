// N-API glue for native/stain: Reinhard, Macenko, Vahadane, fixed stain
// matrices and the shared stain transform. Fits come back as plain objects;
// images go into caller-provided Uint8Arrays (no copy either way).
#include <napi.h>

#include <memory>

#include "common.h"
#include "params.h"
#include "stain/macenko.h"
#include "stain/reinhard.h"
#include "stain/stain_fit.h"
#include "stain/vahadane.h"

namespace hfb {
namespace {


// reinhardFit(device, batch) → Promise<LabStats[]>
Napi::Value ReinhardFit(const Napi::CallbackInfo& info) {
  Device device = DeviceArg(info, 0);
  PinnedBatch batch = BatchArg(info, 1);
  auto stats = std::make_shared<std::vector<hf::LabStats>>(static_cast<size_t>(batch.view.n));
  Pins pins;
  pins.push_back(std::move(batch.pin));
  return PromiseWorker::Start(info.Env(), "reinhardFit", std::move(pins),
      [device, v = batch.view, stats] {
        device == Device::Cuda ? hf::reinhard_fit_cuda(v, stats->data()) : hf::reinhard_fit_cpu(v, stats->data());
      },
      [stats](Napi::Env env) { return LabStatsToJs(env, *stats); });
}

// reinhardTransform(device, batch, target: LabStats, out: Uint8Array) → Promise<void>
Napi::Value ReinhardTransform(const Napi::CallbackInfo& info) {
  Device device = DeviceArg(info, 0);
  PinnedBatch batch = BatchArg(info, 1);
  hf::LabStats target = LabStatsArg(ObjectArg(info, 2, "target"));
  auto out = TypedArg<uint8_t>(info[3], napi_uint8_array, "Uint8Array", "out", batch.view.bytes(), Access::Output);
  Pins pins;
  pins.push_back(std::move(batch.pin));
  pins.push_back(std::move(out.pin));
  return PromiseWorker::Start(info.Env(), "reinhardTransform", std::move(pins),
      [device, v = batch.view, target, o = out.data] {
        device == Device::Cuda ? hf::reinhard_transform_cuda(v, target, o) : hf::reinhard_transform_cpu(v, target, o);
      },
      nullptr);
}

hf::MacenkoParams MacenkoArg(const Napi::Object& o) {
  hf::MacenkoParams p;
  p.od = OdArg(SubObject(o, "od"));
  p.tissue = TissueArg(SubObject(o, "tissue"));
  p.alpha = static_cast<float>(Number(o, "alpha"));
  p.unit_rows = Bool(o, "unitRows");
  return p;
}

hf::VahadaneParams VahadaneArg(const Napi::Object& o) {
  hf::VahadaneParams p;
  p.od = OdArg(SubObject(o, "od"));
  p.tissue = TissueArg(SubObject(o, "tissue"));
  p.lambda = static_cast<float>(Number(o, "lambda"));
  p.iterations = static_cast<int32_t>(Number(o, "iterations"));
  p.max_pixels = static_cast<int64_t>(Number(o, "maxPixels"));
  p.seed = static_cast<uint64_t>(Number(o, "seed"));
  if (p.iterations < 1 || p.max_pixels < 2) throw Napi::RangeError::New(o.Env(), "Expected iterations ≥ 1 and maxPixels ≥ 2");
  return p;
}

// macenkoFit(device, batch, params) → Promise<StainFit[]>
Napi::Value MacenkoFit(const Napi::CallbackInfo& info) {
  Device device = DeviceArg(info, 0);
  PinnedBatch batch = BatchArg(info, 1);
  hf::MacenkoParams p = MacenkoArg(ObjectArg(info, 2, "params"));
  auto fits = std::make_shared<std::vector<hf::StainFit>>(static_cast<size_t>(batch.view.n));
  Pins pins;
  pins.push_back(std::move(batch.pin));
  return PromiseWorker::Start(info.Env(), "macenkoFit", std::move(pins),
      [device, v = batch.view, p, fits] {
        device == Device::Cuda ? hf::macenko_fit_cuda(v, p, fits->data()) : hf::macenko_fit_cpu(v, p, fits->data());
      },
      [fits](Napi::Env env) { return FitsToJs(env, *fits); });
}

// vahadaneFit(device, batch, params) → Promise<StainFit[]>
Napi::Value VahadaneFit(const Napi::CallbackInfo& info) {
  Device device = DeviceArg(info, 0);
  PinnedBatch batch = BatchArg(info, 1);
  hf::VahadaneParams p = VahadaneArg(ObjectArg(info, 2, "params"));
  auto fits = std::make_shared<std::vector<hf::StainFit>>(static_cast<size_t>(batch.view.n));
  Pins pins;
  pins.push_back(std::move(batch.pin));
  return PromiseWorker::Start(info.Env(), "vahadaneFit", std::move(pins),
      [device, v = batch.view, p, fits] {
        device == Device::Cuda ? hf::vahadane_fit_cuda(v, p, fits->data()) : hf::vahadane_fit_cpu(v, p, fits->data());
      },
      [fits](Napi::Env env) { return FitsToJs(env, *fits); });
}

// stainFitFixed(device, batch, he: number[6], od) → Promise<StainFit[]>
Napi::Value StainFitFixed(const Napi::CallbackInfo& info) {
  Device device = DeviceArg(info, 0);
  PinnedBatch batch = BatchArg(info, 1);
  Matrix<6> he = MatrixArg<6>(info, 2, "he");
  hf::OdParams od = OdArg(ObjectArg(info, 3, "od"));
  auto fits = std::make_shared<std::vector<hf::StainFit>>(static_cast<size_t>(batch.view.n));
  Pins pins;
  pins.push_back(std::move(batch.pin));
  return PromiseWorker::Start(info.Env(), "stainFitFixed", std::move(pins),
      [device, v = batch.view, he, od, fits] {
        device == Device::Cuda ? hf::stain_fit_fixed_cuda(v, he.v, od, fits->data())
                               : hf::stain_fit_fixed_cpu(v, he.v, od, fits->data());
      },
      [fits](Napi::Env env) { return FitsToJs(env, *fits); });
}

// stainTransform(device, batch, fits, params, out, hOnly|null, eOnly|null) → Promise<void>
Napi::Value StainTransform(const Napi::CallbackInfo& info) {
  Device device = DeviceArg(info, 0);
  PinnedBatch batch = BatchArg(info, 1);
  auto fits = std::make_shared<std::vector<hf::StainFit>>(FitsArg(info, 2, batch.view.n));
  Napi::Object po = ObjectArg(info, 3, "params");
  hf::StainTransformParams p;
  p.od = OdArg(SubObject(po, "od"));
  Numbers<float>(po, "targetHe", p.target_he, 6);
  Numbers<float>(po, "targetMaxC", p.target_max_c, 2);
  p.overflow_value = static_cast<float>(Number(po, "overflowValue"));
  int64_t bytes = batch.view.bytes();
  auto out = TypedArg<uint8_t>(info[4], napi_uint8_array, "Uint8Array", "out", bytes, Access::Output);
  Pins pins;
  pins.push_back(std::move(batch.pin));
  pins.push_back(std::move(out.pin));
  uint8_t* h_only = nullptr;
  uint8_t* e_only = nullptr;
  if (info.Length() > 5 && !info[5].IsNull() && !info[5].IsUndefined()) {
    auto h = TypedArg<uint8_t>(info[5], napi_uint8_array, "Uint8Array", "hOnly", bytes, Access::Output);
    h_only = h.data;
    pins.push_back(std::move(h.pin));
  }
  if (info.Length() > 6 && !info[6].IsNull() && !info[6].IsUndefined()) {
    auto e = TypedArg<uint8_t>(info[6], napi_uint8_array, "Uint8Array", "eOnly", bytes, Access::Output);
    e_only = e.data;
    pins.push_back(std::move(e.pin));
  }
  return PromiseWorker::Start(info.Env(), "stainTransform", std::move(pins),
      [device, v = batch.view, fits, p, o = out.data, h_only, e_only] {
        device == Device::Cuda ? hf::stain_transform_cuda(v, fits->data(), p, o, h_only, e_only)
                               : hf::stain_transform_cpu(v, fits->data(), p, o, h_only, e_only);
      },
      nullptr);
}

// stainConcentrations(device, batch, fits, od, out: Float32Array) → Promise<void>
Napi::Value StainConcentrations(const Napi::CallbackInfo& info) {
  Device device = DeviceArg(info, 0);
  PinnedBatch batch = BatchArg(info, 1);
  auto fits = std::make_shared<std::vector<hf::StainFit>>(FitsArg(info, 2, batch.view.n));
  hf::OdParams od = OdArg(ObjectArg(info, 3, "od"));
  auto out = TypedArg<float>(info[4], napi_float32_array, "Float32Array", "out",
                             batch.view.pixels() * 2, Access::Output);
  Pins pins;
  pins.push_back(std::move(batch.pin));
  pins.push_back(std::move(out.pin));
  return PromiseWorker::Start(info.Env(), "stainConcentrations", std::move(pins),
      [device, v = batch.view, fits, od, o = out.data] {
        device == Device::Cuda ? hf::stain_concentrations_cuda(v, fits->data(), od, o)
                               : hf::stain_concentrations_cpu(v, fits->data(), od, o);
      },
      nullptr);
}

}  // namespace

void InitStain(Napi::Env env, Napi::Object exports) {
  exports.Set("reinhardFit", Napi::Function::New(env, ReinhardFit, "reinhardFit"));
  exports.Set("reinhardTransform", Napi::Function::New(env, ReinhardTransform, "reinhardTransform"));
  exports.Set("macenkoFit", Napi::Function::New(env, MacenkoFit, "macenkoFit"));
  exports.Set("vahadaneFit", Napi::Function::New(env, VahadaneFit, "vahadaneFit"));
  exports.Set("stainFitFixed", Napi::Function::New(env, StainFitFixed, "stainFitFixed"));
  exports.Set("stainTransform", Napi::Function::New(env, StainTransform, "stainTransform"));
  exports.Set("stainConcentrations", Napi::Function::New(env, StainConcentrations, "stainConcentrations"));
}

}  // namespace hfb
