// N-API glue for native/tissue: the whole detection chain on one thumbnail,
// and its steps one at a time (for tests and callers who build their own chain).
#include <napi.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "tissue/tissue_mask.h"

namespace hfb {
namespace {

// A count read from a validated object, re-checked only so that the cast to an
// integer is defined (NaN, ±Infinity or > 2^53 would not be).
int64_t CountArg(const Napi::Object& o, const char* key, double min) {
  double d = Number(o, key);
  if (!(d >= min && d <= 9007199254740992.0)) {
    throw Napi::RangeError::New(o.Env(), std::string("Expected a number between ") + std::to_string(static_cast<int64_t>(min)) +
                                             " and 2^53 for " + key);
  }
  return static_cast<int64_t>(d);
}

hf::TissueParams TissueParamsArg(const Napi::Object& o) {
  hf::TissueParams p;
  std::string channel = String(o.Get("channel"), "channel");
  if (channel == "saturation") {
    p.channel = hf::TissueChannel::Saturation;
  } else if (channel == "od") {
    p.channel = hf::TissueChannel::OpticalDensity;
  } else if (channel == "grey") {
    p.channel = hf::TissueChannel::Grey;
  } else {
    throw Napi::RangeError::New(o.Env(), "Expected 'saturation', 'od' or 'grey' for channel but received '" + channel + "'");
  }
  p.median_size = static_cast<int32_t>(std::min<int64_t>(CountArg(o, "medianSize", 0), 1 << 20));
  p.threshold = static_cast<int32_t>(std::min<int64_t>(CountArg(o, "threshold", -1), 1 << 20));
  p.min_threshold = static_cast<int32_t>(std::min<int64_t>(CountArg(o, "minThreshold", 0), 1 << 20));
  p.exclude_pen = Bool(o, "excludePen");
  p.closing_radius = static_cast<int32_t>(std::min<int64_t>(CountArg(o, "closingRadius", 0), 1 << 20));
  p.opening_radius = static_cast<int32_t>(std::min<int64_t>(CountArg(o, "openingRadius", 0), 1 << 20));
  p.dilation_radius = static_cast<int32_t>(std::min<int64_t>(CountArg(o, "dilationRadius", 0), 1 << 20));
  p.min_object_area = CountArg(o, "minObjectArea", 0);
  p.max_hole_area = CountArg(o, "maxHoleArea", 0);
  p.min_tissue_area = CountArg(o, "minTissueArea", 0);
  // Memory safety only (src/tissue validates ranges): a huge radius or kernel
  // would allocate per pixel.
  if (p.median_size > 255 || p.closing_radius > 1024 || p.opening_radius > 1024 || p.dilation_radius > 1024 ||
      p.dilation_radius < 0 || p.median_size < 0 ||
      p.closing_radius < 0 || p.opening_radius < 0) {
    throw Napi::RangeError::New(o.Env(), "Expected medianSize ≤ 255 and radii between 0 and 1024");
  }
  return p;
}

// tissueMask(image: RgbBatch (n = 1), params, out: Uint8Array(h·w)) → Promise<{ threshold, tissuePixels }>
Napi::Value TissueMask(const Napi::CallbackInfo& info) {
  PinnedBatch image = BatchArg(info, 0);
  if (image.view.n != 1) throw Napi::RangeError::New(info.Env(), "Expected one image (n = 1) for image");
  hf::TissueParams p = TissueParamsArg(ObjectArg(info, 1, "params"));
  auto out = TypedArg<uint8_t>(info[2], napi_uint8_array, "Uint8Array", "out", image.view.pixels(), Access::Output);
  Pins pins;
  pins.push_back(std::move(image.pin));
  pins.push_back(std::move(out.pin));
  auto result = std::make_shared<hf::TissueResult>();
  return PromiseWorker::Start(
      info.Env(), "tissueMask", std::move(pins),
      [v = image.view, p, o = out.data, result] { *result = hf::tissue_mask_cpu(v.data, v.height, v.width, p, o); },
      [result](Napi::Env env) -> Napi::Value {
        Napi::Object r = Napi::Object::New(env);
        r.Set("threshold", Napi::Number::New(env, result->threshold));
        r.Set("tissuePixels", Napi::Number::New(env, static_cast<double>(result->tissue_pixels)));
        return r;
      });
}

// otsuThreshold(histogram: Float64Array(256)) → number (synchronous: 256 bins).
Napi::Value OtsuThreshold(const Napi::CallbackInfo& info) {
  auto hist = TypedArg<double>(info.Length() > 0 ? info[0] : info.Env().Undefined(), napi_float64_array,
                               "Float64Array", "histogram", 256, Access::Input);
  for (size_t i = 0; i < 256; ++i) {
    if (!(hist.data[i] >= 0)) throw Napi::RangeError::New(info.Env(), "Expected non-negative counts in histogram");
  }
  return Napi::Number::New(info.Env(), hf::otsu_threshold(hist.data));
}

// maskFilter(op, mask: Uint8Array(h·w), height, width, params, out: Uint8Array(h·w)) → Promise<void>
//   op: 'median' { size } | 'dilate' | 'erode' { radius } | 'components' { minObjectArea, maxHoleArea }
// ('components' works in place on out after copying mask into it).
Napi::Value MaskFilter(const Napi::CallbackInfo& info) {
  std::string op = String(info.Length() > 0 ? info[0] : info.Env().Undefined(), "op");
  Napi::Object dims = Napi::Object::New(info.Env());
  dims.Set("height", info.Length() > 2 ? info[2] : info.Env().Undefined());
  dims.Set("width", info.Length() > 3 ? info[3] : info.Env().Undefined());
  int64_t h = PositiveInt(dims, "height"), w = PositiveInt(dims, "width");
  int64_t pixels = CheckedProduct(info.Env(), {h, w}, "mask (height·width)");
  auto in = TypedArg<uint8_t>(info[1], napi_uint8_array, "Uint8Array", "mask", pixels, Access::Input);
  Napi::Object params = ObjectArg(info, 4, "params");
  auto out = TypedArg<uint8_t>(info[5], napi_uint8_array, "Uint8Array", "out", pixels, Access::Output);
  std::function<void()> work;
  const uint8_t* src = in.data;
  uint8_t* dst = out.data;
  if (op == "median") {
    int32_t k = static_cast<int32_t>(std::min<int64_t>(CountArg(params, "size", 0), 1 << 20));
    if (k < 1 || k > 255 || k % 2 == 0) throw Napi::RangeError::New(info.Env(), "Expected an odd size between 1 and 255");
    work = [=] { hf::median_filter_cpu(src, h, w, k, dst); };
  } else if (op == "dilate" || op == "erode") {
    int32_t r = static_cast<int32_t>(std::min<int64_t>(CountArg(params, "radius", 0), 1 << 20));
    if (r < 0 || r > 1024) throw Napi::RangeError::New(info.Env(), "Expected a radius between 0 and 1024");
    bool dilate = op == "dilate";
    work = [=] { dilate ? hf::dilate_disk_cpu(src, h, w, r, dst) : hf::erode_disk_cpu(src, h, w, r, dst); };
  } else if (op == "components") {
    int64_t min_object = CountArg(params, "minObjectArea", 0);
    int64_t max_hole = CountArg(params, "maxHoleArea", 0);
    work = [=] {
      for (int64_t i = 0; i < h * w; ++i) dst[i] = src[i] ? 255 : 0;
      hf::remove_small_components_cpu(dst, h, w, min_object, max_hole);
    };
  } else {
    throw Napi::RangeError::New(info.Env(),
                                "Expected 'median', 'dilate', 'erode' or 'components' for op but received '" + op + "'");
  }
  Pins pins;
  pins.push_back(std::move(in.pin));
  pins.push_back(std::move(out.pin));
  return PromiseWorker::Start(info.Env(), "maskFilter", std::move(pins), std::move(work), nullptr);
}

}  // namespace

void InitTissue(Napi::Env env, Napi::Object exports) {
  exports.Set("tissueMask", Napi::Function::New(env, TissueMask, "tissueMask"));
  exports.Set("otsuThreshold", Napi::Function::New(env, OtsuThreshold, "otsuThreshold"));
  exports.Set("maskFilter", Napi::Function::New(env, MaskFilter, "maskFilter"));
}

}  // namespace hfb
