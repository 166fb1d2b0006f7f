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

int LevelArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "Expected a number for level");
  double level = info[i].As<Napi::Number>().DoubleValue();
  if (!(level >= 0 && level <= 9) || level != static_cast<int>(level)) {
    throw Napi::RangeError::New(info.Env(), "Expected an integer between 0 and 9 for level");
  }
  return static_cast<int>(level);
}

hf::PngFilter FilterArg(const Napi::CallbackInfo& info, size_t i) {
  std::string f = String(info.Length() > i ? info[i] : info.Env().Undefined(), "filter");
  if (f == "adaptive") return hf::PngFilter::Adaptive;
  if (f == "sub") return hf::PngFilter::Sub;
  if (f == "none") return hf::PngFilter::None;
  throw Napi::RangeError::New(info.Env(), "Expected 'adaptive', 'sub' or 'none' for filter but received '" + f + "'");
}

// encodePng(batch, level, filter: 'adaptive'|'sub'|'none') → Promise<Buffer[]>: one PNG file's bytes per image.
// The encoded bytes are handed to Node without a copy: each Buffer owns its
// std::vector and frees it when collected.
Napi::Value EncodePng(const Napi::CallbackInfo& info) {
  PinnedBatch batch = BatchArg(info, 0);
  int level = LevelArg(info, 1);
  hf::PngFilter filter = FilterArg(info, 2);
  auto files = std::make_shared<std::vector<std::vector<uint8_t>>>();
  Pins pins;
  pins.push_back(std::move(batch.pin));
  return PromiseWorker::Start(info.Env(), "encodePng", std::move(pins),
      [v = batch.view, level, filter, files] { hf::encode_png_batch(v, level, filter, *files); },
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

// writePngFiles(batch, level, filter, paths: string[]) → Promise<number[]>:
// encodes image i to paths[i] (atomically, temporary + rename); the sizes.
Napi::Value WritePngFiles(const Napi::CallbackInfo& info) {
  PinnedBatch batch = BatchArg(info, 0);
  int level = LevelArg(info, 1);
  hf::PngFilter filter = FilterArg(info, 2);
  if (info.Length() < 4 || !info[3].IsArray()) throw Napi::TypeError::New(info.Env(), "Expected an array of file paths for paths");
  Napi::Array list = info[3].As<Napi::Array>();
  if (list.Length() != static_cast<uint32_t>(batch.view.n)) {
    throw Napi::RangeError::New(info.Env(), "Expected one path per image for paths (" + std::to_string(batch.view.n) +
                                                ") but received " + std::to_string(list.Length()));
  }
  auto paths = std::make_shared<std::vector<std::string>>();
  for (uint32_t i = 0; i < list.Length(); ++i) paths->push_back(String(list.Get(i), "paths[i]"));
  auto sizes = std::make_shared<std::vector<int64_t>>();
  Pins pins;
  pins.push_back(std::move(batch.pin));
  return PromiseWorker::Start(info.Env(), "writePngFiles", std::move(pins),
      [v = batch.view, level, filter, paths, sizes] { hf::write_png_files(v, level, filter, *paths, *sizes); },
      [sizes](Napi::Env env) {
        Napi::Array out = Napi::Array::New(env, sizes->size());
        for (size_t i = 0; i < sizes->size(); ++i) out.Set(static_cast<uint32_t>(i), static_cast<double>((*sizes)[i]));
        return out;
      });
}

}  // namespace

void InitCodec(Napi::Env env, Napi::Object exports) {
  exports.Set("pngAvailable", Napi::Boolean::New(env, hf::png_available()));
  exports.Set("encodePng", Napi::Function::New(env, EncodePng, "encodePng"));
  exports.Set("writePngFiles", Napi::Function::New(env, WritePngFiles, "writePngFiles"));
}

}  // namespace hfb
