// N-API glue for native/color: optical density and colour deconvolution.
// Every call writes into a caller-provided typed array (no copy either way;
// see ArrayPin in common.h for what detaching one mid-call does).
#include <napi.h>

#include "color/deconvolution.h"
#include "color/optical_density.h"
#include "common.h"
#include "params.h"

namespace hfb {
namespace {

// rgbToOd(device, batch, od, out: Float32Array) → Promise<void>
Napi::Value RgbToOd(const Napi::CallbackInfo& info) {
  Device device = DeviceArg(info, 0);
  PinnedBatch batch = BatchArg(info, 1);
  hf::OdParams od = OdArg(ObjectArg(info, 2, "od"));
  auto out = TypedArg<float>(info[3], napi_float32_array, "Float32Array", "out", batch.view.bytes(), Access::Output);
  Pins pins;
  pins.push_back(std::move(batch.pin));
  pins.push_back(std::move(out.pin));
  return PromiseWorker::Start(info.Env(), "rgbToOd", std::move(pins), [device, v = batch.view, od, o = out.data] {
    device == Device::Cuda ? hf::rgb_to_od_cuda(v, od, o) : hf::rgb_to_od_cpu(v, od, o);
  }, nullptr);
}

// odToRgb(device, od: Float32Array, pixels, odParams, out: Uint8Array) → Promise<void>
Napi::Value OdToRgb(const Napi::CallbackInfo& info) {
  Device device = DeviceArg(info, 0);
  int64_t pixels = PixelsArg(info, 2);
  int64_t values = CheckedProduct(info.Env(), {pixels, 3}, "pixels (pixels·3)");
  auto od = TypedArg<float>(info[1], napi_float32_array, "Float32Array", "od", values, Access::Input);
  hf::OdParams p = OdArg(ObjectArg(info, 3, "odParams"));
  auto out = TypedArg<uint8_t>(info[4], napi_uint8_array, "Uint8Array", "out", values, Access::Output);
  Pins pins;
  pins.push_back(std::move(od.pin));
  pins.push_back(std::move(out.pin));
  return PromiseWorker::Start(info.Env(), "odToRgb", std::move(pins), [device, in = od.data, pixels, p, o = out.data] {
    device == Device::Cuda ? hf::od_to_rgb_cuda(in, pixels, p, o) : hf::od_to_rgb_cpu(in, pixels, p, o);
  }, nullptr);
}

// deconvolve(device, batch, stainFromRgb: number[9], out: Float32Array) → Promise<void>
Napi::Value Deconvolve(const Napi::CallbackInfo& info) {
  Device device = DeviceArg(info, 0);
  PinnedBatch batch = BatchArg(info, 1);
  Matrix<9> m = MatrixArg<9>(info, 2, "stainFromRgb");
  auto out = TypedArg<float>(info[3], napi_float32_array, "Float32Array", "out", batch.view.bytes(), Access::Output);
  Pins pins;
  pins.push_back(std::move(batch.pin));
  pins.push_back(std::move(out.pin));
  return PromiseWorker::Start(info.Env(), "deconvolve", std::move(pins), [device, v = batch.view, m, o = out.data] {
    device == Device::Cuda ? hf::deconvolve_cuda(v, m.v, o) : hf::deconvolve_cpu(v, m.v, o);
  }, nullptr);
}

// reconvolve(device, stains: Float32Array, pixels, rgbFromStain: number[9], out: Uint8Array) → Promise<void>
Napi::Value Reconvolve(const Napi::CallbackInfo& info) {
  Device device = DeviceArg(info, 0);
  int64_t pixels = PixelsArg(info, 2);
  int64_t values = CheckedProduct(info.Env(), {pixels, 3}, "pixels (pixels·3)");
  auto stains = TypedArg<float>(info[1], napi_float32_array, "Float32Array", "stains", values, Access::Input);
  Matrix<9> m = MatrixArg<9>(info, 3, "rgbFromStain");
  auto out = TypedArg<uint8_t>(info[4], napi_uint8_array, "Uint8Array", "out", values, Access::Output);
  Pins pins;
  pins.push_back(std::move(stains.pin));
  pins.push_back(std::move(out.pin));
  return PromiseWorker::Start(info.Env(), "reconvolve", std::move(pins), [device, in = stains.data, pixels, m, o = out.data] {
    device == Device::Cuda ? hf::reconvolve_cuda(in, pixels, m.v, o) : hf::reconvolve_cpu(in, pixels, m.v, o);
  }, nullptr);
}

}  // namespace

void InitColor(Napi::Env env, Napi::Object exports) {
  exports.Set("rgbToOd", Napi::Function::New(env, RgbToOd, "rgbToOd"));
  exports.Set("odToRgb", Napi::Function::New(env, OdToRgb, "odToRgb"));
  exports.Set("deconvolve", Napi::Function::New(env, Deconvolve, "deconvolve"));
  exports.Set("reconvolve", Napi::Function::New(env, Reconvolve, "reconvolve"));
}

}  // namespace hfb
