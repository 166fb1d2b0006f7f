// N-API glue for native/codec: batched PNG encoding for the tiler.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "codec/png.h"
#include "common.h"
#include "params.h"

namespace hfb {
namespace {

// encodePng(batch, level, filter: 'adaptive'|'sub'|'none') → Promise<Buffer[]>: one PNG file's bytes per image.
// The encoded bytes are handed to Node without a copy: each Buffer owns its
// std::vector and frees it when collected.
Napi::Value EncodePng(const Napi::CallbackInfo& info) {
  PinnedBatch batch = BatchArg(info, 0);
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(info.Env(), "Expected a number for level");
  double level = info[1].As<Napi::Number>().DoubleValue();
  if (!(level >= 0 && level <= 9) || level != static_cast<int>(level)) {
    throw Napi::RangeError::New(info.Env(), "Expected an integer between 0 and 9 for level");
  }
  std::string f = String(info.Length() > 2 ? info[2] : info.Env().Undefined(), "filter");
  hf::PngFilter filter = f == "adaptive" ? hf::PngFilter::Adaptive
                         : f == "sub"    ? hf::PngFilter::Sub
                         : f == "none"   ? hf::PngFilter::None
                                         : throw Napi::RangeError::New(info.Env(), "Expected 'adaptive', 'sub' or 'none' for filter but received '" + f + "'");
  auto files = std::make_shared<std::vector<std::vector<uint8_t>>>();
  std::vector<Napi::Reference<Napi::Value>> pins;
  pins.push_back(std::move(batch.pin));
  return PromiseWorker::Start(info.Env(), "encodePng", std::move(pins),
      [v = batch.view, lvl = static_cast<int>(level), filter, files] { hf::encode_png_batch(v, lvl, filter, *files); },
      [files](Napi::Env env) {
        Napi::Array list = Napi::Array::New(env, files->size());
        for (size_t i = 0; i < files->size(); ++i) {
          auto* owned = new std::vector<uint8_t>(std::move((*files)[i]));
          list.Set(static_cast<uint32_t>(i),
                   Napi::Buffer<uint8_t>::New(env, owned->data(), owned->size(),
                                              [](Napi::Env, uint8_t*, std::vector<uint8_t>* v) { delete v; }, owned));
        }
        return list;
      });
}

}  // namespace

void InitCodec(Napi::Env env, Napi::Object exports) {
  exports.Set("pngAvailable", Napi::Boolean::New(env, hf::png_available()));
  exports.Set("encodePng", Napi::Function::New(env, EncodePng, "encodePng"));
}

}  // namespace hfb
