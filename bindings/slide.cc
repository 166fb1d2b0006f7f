// N-API glue for native/slide: a slide opened through OpenSlide is a handle
// (an External owning a shared_ptr to the reader). Every read runs in a
// PromiseWorker that holds its own reference to the reader, so close() (or the
// handle being collected) while reads are in flight frees the OpenSlide handle
// only when they end; a read queued after close() rejects with an Error.
// Regions are written into the caller's Uint8Array (pinned, no copy).
#include <napi.h>

#include <memory>
#include <string>

#include "common.h"
#include "core/error.h"
#include "slide/openslide_reader.h"

namespace hfb {
namespace {

using ReaderRef = std::shared_ptr<hf::OpenSlideReader>;

struct ReaderHolder {
  ReaderRef reader;
};

// The reader behind a handle, or an Error when the slide was closed.
ReaderRef ReaderArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "Expected a slide handle");
  auto* holder = info[0].As<Napi::External<ReaderHolder>>().Data();
  if (!holder->reader) throw Napi::Error::New(info.Env(), "the slide is closed");
  return holder->reader;
}

int64_t IntArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string("Expected a number for ") + name);
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(min)) || d > 9.0e15 || d != static_cast<double>(static_cast<int64_t>(d))) {
    throw Napi::RangeError::New(info.Env(), std::string("Expected an integer ≥ ") + std::to_string(min) + " for " + name);
  }
  return static_cast<int64_t>(d);
}

Napi::Value LevelsToJs(Napi::Env env, const std::vector<hf::SlideLevelInfo>& levels) {
  Napi::Array arr = Napi::Array::New(env, levels.size());
  for (size_t i = 0; i < levels.size(); ++i) {
    Napi::Object l = Napi::Object::New(env);
    l.Set("width", static_cast<double>(levels[i].width));
    l.Set("height", static_cast<double>(levels[i].height));
    l.Set("downsample", levels[i].downsample);
    l.Set("tileWidth", static_cast<double>(levels[i].tile_width));
    l.Set("tileHeight", static_cast<double>(levels[i].tile_height));
    arr.Set(static_cast<uint32_t>(i), l);
  }
  return arr;
}

// openslideVersion() → string ('' without OpenSlide)
Napi::Value Version(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), hf::OpenSlideReader::version());
}

// openslideDetect(path) → Promise<string> (the vendor, '' when not recognised)
Napi::Value Detect(const Napi::CallbackInfo& info) {
  std::string path = String(info.Length() > 0 ? info[0] : info.Env().Undefined(), "path");
  auto vendor = std::make_shared<std::string>();
  return PromiseWorker::Start(info.Env(), "openslideDetect", {},
      [path, vendor] { *vendor = hf::OpenSlideReader::detect_vendor(path); },
      [vendor](Napi::Env env) { return Napi::String::New(env, *vendor); });
}

// openslideOpen(path) → Promise<{ handle, vendor, levels, properties, associated }>
Napi::Value Open(const Napi::CallbackInfo& info) {
  std::string path = String(info.Length() > 0 ? info[0] : info.Env().Undefined(), "path");
  auto reader = std::make_shared<ReaderRef>();
  return PromiseWorker::Start(info.Env(), "openslideOpen", {},
      [path, reader] { *reader = std::make_shared<hf::OpenSlideReader>(path); },
      [reader](Napi::Env env) {
        const hf::OpenSlideReader& r = **reader;
        Napi::Object o = Napi::Object::New(env);
        auto* holder = new ReaderHolder{*reader};
        o.Set("handle", Napi::External<ReaderHolder>::New(env, holder, [](Napi::Env, ReaderHolder* h) { delete h; }));
        o.Set("levels", LevelsToJs(env, r.levels()));
        Napi::Object props = Napi::Object::New(env);
        for (const auto& [k, v] : r.properties()) props.Set(k, v);
        o.Set("properties", props);
        Napi::Array names = Napi::Array::New(env, r.associated_names().size());
        for (size_t i = 0; i < r.associated_names().size(); ++i) names.Set(static_cast<uint32_t>(i), r.associated_names()[i]);
        o.Set("associated", names);
        return o;
      });
}

// openslideReadRegion(handle, level, x, y, w, h, out: Uint8Array of w·h·3) → Promise<void>
Napi::Value ReadRegion(const Napi::CallbackInfo& info) {
  ReaderRef reader = ReaderArg(info);
  int64_t level = IntArg(info, 1, "level", 0);
  int64_t x = IntArg(info, 2, "x", INT32_MIN), y = IntArg(info, 3, "y", INT32_MIN);
  int64_t w = IntArg(info, 4, "width", 1), h = IntArg(info, 5, "height", 1);
  if (level >= static_cast<int64_t>(reader->levels().size())) throw Napi::RangeError::New(info.Env(), "Expected a level of the slide");
  auto out = TypedArg<uint8_t>(info[6], napi_uint8_array, "Uint8Array", "out",
                                 CheckedProduct(info.Env(), {w, h, 3}, "out (width·height·3)"), Access::Output);
  Pins pins;
  pins.push_back(std::move(out.pin));
  return PromiseWorker::Start(info.Env(), "openslideReadRegion", std::move(pins),
      [reader, level, x, y, w, h, o = out.data] { reader->read_region(static_cast<int>(level), x, y, w, h, o); },
      nullptr);
}

// openslideReadAssociated(handle, name) → Promise<{ data: Uint8Array, width, height }>
Napi::Value ReadAssociated(const Napi::CallbackInfo& info) {
  ReaderRef reader = ReaderArg(info);
  std::string name = String(info.Length() > 1 ? info[1] : info.Env().Undefined(), "name");
  struct Result {
    std::vector<uint8_t> rgb;
    int64_t width = 0, height = 0;
  };
  auto result = std::make_shared<Result>();
  return PromiseWorker::Start(info.Env(), "openslideReadAssociated", {},
      [reader, name, result] {
        auto [w, h] = reader->associated_size(name);
        result->rgb.resize(static_cast<size_t>(w * h * 3));
        result->width = w;
        result->height = h;
        reader->read_associated(name, result->rgb.data());
      },
      [result](Napi::Env env) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("data", Napi::Buffer<uint8_t>::Copy(env, result->rgb.data(), result->rgb.size()));
        o.Set("width", static_cast<double>(result->width));
        o.Set("height", static_cast<double>(result->height));
        return o;
      });
}

// openslideClose(handle): drops the handle's reference; idempotent.
Napi::Value Close(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "Expected a slide handle");
  info[0].As<Napi::External<ReaderHolder>>().Data()->reader.reset();
  return info.Env().Undefined();
}

}  // namespace

void InitSlide(Napi::Env env, Napi::Object exports) {
  exports.Set("openslideVersion", Napi::Function::New(env, Version, "openslideVersion"));
  exports.Set("openslideDetect", Napi::Function::New(env, Detect, "openslideDetect"));
  exports.Set("openslideOpen", Napi::Function::New(env, Open, "openslideOpen"));
  exports.Set("openslideReadRegion", Napi::Function::New(env, ReadRegion, "openslideReadRegion"));
  exports.Set("openslideReadAssociated", Napi::Function::New(env, ReadAssociated, "openslideReadAssociated"));
  exports.Set("openslideClose", Napi::Function::New(env, Close, "openslideClose"));
}

}  // namespace hfb
