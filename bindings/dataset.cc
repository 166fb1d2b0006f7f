// Memory-mapped files for src/dataset/packed.ts: mapFile(path, offset,
// length) returns an ArrayBuffer over those bytes of the file (no copy; the
// finalizer unmaps it when the buffer is collected) and a handle for
// releaseMapping, which detaches the buffer (every view becomes empty) and
// gives the file back at once.
//
// One mapping holds at most kMaxMapping bytes: Node implements external
// ArrayBuffers with Buffer, whose limit is 4 GiB on Node 20 (2^32), and past
// it Node frees the finalizer data itself before node-addon-api does (a
// double free). Larger files are mapped in segments (packed.ts).
#include <napi.h>

#include <memory>
#include <string>

#include "common.h"
#include "dataset/mapped_file.h"

namespace hfb {
namespace {

using MappedPtr = std::shared_ptr<hf::MappedFile>;

constexpr uint64_t kMaxMapping = uint64_t{1} << 32;

uint64_t ByteCount(const Napi::CallbackInfo& info, size_t i, const char* name, uint64_t absent) {
  if (info.Length() <= i || info[i].IsUndefined()) return absent;
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string("Expected a number for ") + name);
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw Napi::RangeError::New(info.Env(), std::string("Expected an integer ≥ 0 for ") + name);
  }
  return static_cast<uint64_t>(d);
}

// mapFile(path, offset = 0, length = to the end) → { buffer, handle }
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = String(info.Length() > 0 ? info[0] : env.Undefined(), "path");
  uint64_t offset = ByteCount(info, 1, "offset", 0);
  uint64_t length = ByteCount(info, 2, "length", hf::MappedFile::kToEnd);
  if (length != hf::MappedFile::kToEnd && length > kMaxMapping) {
    throw Napi::RangeError::New(env, "Expected a length ≤ 4294967296 bytes for one mapping (map larger files in segments)");
  }
  MappedPtr file;
  try {
    file = hf::MappedFile::open(path, offset, length);
  } catch (const hf::UnavailableError& e) {
    Napi::Error err = Napi::Error::New(env, e.what());
    err.Set("code", Napi::String::New(env, "HISTOFLOW_UNAVAILABLE"));
    throw err;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  if (file->size() > kMaxMapping) {
    throw Napi::RangeError::New(env, "cannot map " + path + " in one piece: " + std::to_string(file->size()) +
                                         " bytes is over 4294967296 (map it in segments)");
  }
  Napi::Object out = Napi::Object::New(env);
  if (file->size() == 0) {
    out.Set("buffer", Napi::ArrayBuffer::New(env, 0));
  } else {
    // Each JS owner (buffer, handle) holds its own shared_ptr: the range is
    // unmapped when both are collected, whichever goes first.
    auto* for_buffer = new MappedPtr(file);
    Napi::ArrayBuffer buffer;
    try {
      buffer = Napi::ArrayBuffer::New(
          env, const_cast<uint8_t*>(file->data()), file->size(),
          [](Napi::Env, void*, MappedPtr* hint) { delete hint; }, for_buffer);
    } catch (const Napi::Error& e) {
      // Runtimes that refuse external buffers (V8 sandbox): unavailable, so src/ falls back to reading.
      delete for_buffer;
      Napi::Error err = Napi::Error::New(env, "this runtime refuses external buffers: " + e.Message());
      err.Set("code", Napi::String::New(env, "HISTOFLOW_UNAVAILABLE"));
      throw err;
    } catch (...) {
      delete for_buffer;
      throw;
    }
    out.Set("buffer", buffer);
  }
  out.Set("handle", Napi::External<MappedPtr>::New(env, new MappedPtr(file),
                                                    [](Napi::Env, MappedPtr* p) { delete p; }));
  return out;
}

// releaseMapping(handle, buffer): detach first, so that no JS view can read
// the zero pages that replace the file.
Napi::Value ReleaseMapping(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsExternal() || !info[1].IsArrayBuffer()) {
    throw Napi::TypeError::New(env, "Expected (handle, buffer) from mapFile");
  }
  MappedPtr file = *info[0].As<Napi::External<MappedPtr>>().Data();
  Napi::ArrayBuffer buffer = info[1].As<Napi::ArrayBuffer>();
  if (buffer.ByteLength() > 0 && buffer.Data() != file->data()) {
    throw Napi::RangeError::New(env, "releaseMapping: the buffer is not this handle's mapping");
  }
  if (!buffer.IsDetached() && buffer.ByteLength() > 0) buffer.Detach();
  file->release();
  return env.Undefined();
}

}  // namespace

void InitDataset(Napi::Env env, Napi::Object exports) {
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
  exports.Set("releaseMapping", Napi::Function::New(env, ReleaseMapping, "releaseMapping"));
}

}  // namespace hfb
