// The seam between JavaScript and native/: unpacking validated plain objects
// into kernel parameter structs, zero-copy views of typed arrays (ArrayPin),
// and the Promise-returning AsyncWorker that runs a kernel off the event loop.
//
// src/ validates every option before calling in (TypeError / RangeError with
// the parameter's name). Here we re-check only what would corrupt memory: the
// typed-array kind and its byte length against the stated shape.
#pragma once
#include <napi.h>
#if HISTOFLOW_V8_BACKING_STORE
#include <v8.h>
#endif

#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/image.h"

namespace hfb {

inline Napi::Object ObjectArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsObject()) {
    throw Napi::TypeError::New(info.Env(), std::string("Expected an object for ") + name);
  }
  return info[i].As<Napi::Object>();
}

inline double Number(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("Expected a number for ") + key);
  return v.As<Napi::Number>().DoubleValue();
}

inline bool Bool(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string("Expected a boolean for ") + key);
  return v.As<Napi::Boolean>().Value();
}

inline std::string String(const Napi::Value& v, const char* name) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string("Expected a string for ") + name);
  return v.As<Napi::String>().Utf8Value();
}

// Reads `count` numbers from a JS array or typed array.
template <typename T>
void Numbers(const Napi::Object& o, const char* key, T* out, size_t count) {
  Napi::Value v = o.Get(key);
  if (!v.IsObject()) throw Napi::TypeError::New(o.Env(), std::string("Expected an array of numbers for ") + key);
  Napi::Object arr = v.As<Napi::Object>();
  uint32_t length = arr.Get("length").As<Napi::Number>().Uint32Value();
  if (length != count) {
    throw Napi::RangeError::New(o.Env(), std::string("Expected ") + std::to_string(count) + " numbers for " + key +
                                             " but received " + std::to_string(length));
  }
  for (size_t i = 0; i < count; ++i) {
    Napi::Value e = arr.Get(static_cast<uint32_t>(i));
    if (!e.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("Expected numbers in ") + key);
    out[i] = static_cast<T>(e.As<Napi::Number>().DoubleValue());
  }
}

// Size products of caller-given dimensions, checked: an absurd shape must be a
// RangeError naming the parameter, never a wrapped int64 that lets a short
// array pass the length check.
inline int64_t CheckedProduct(Napi::Env env, std::initializer_list<int64_t> factors, const char* name) {
  int64_t p = 1;
  for (int64_t f : factors) {
    if (f < 0 || __builtin_mul_overflow(p, f, &p)) {
      throw Napi::RangeError::New(env, std::string("Expected the size of ") + name + " to fit in 64 bits");
    }
  }
  return p;
}

// A typed array a kernel uses, held for the whole call.
//
// A reference keeps the array from the collector, not from being detached:
// `structuredClone(a.buffer, { transfer: [a.buffer] })`, postMessage or
// ArrayBuffer.prototype.transfer take its memory away while an async kernel
// runs on a libuv thread, and once the new owner is collected the memory is
// freed under the kernel. Node-API can tell that a buffer *was* detached but
// cannot keep its memory alive; V8 can: ArrayBuffer::GetBackingStore() is a
// shared_ptr that outlives a detach. So:
//   - built with Node's own headers (HISTOFLOW_V8_BACKING_STORE, the usual
//     case; CMakeLists.txt finds them beside the Node that builds the addon),
//     the pin holds the backing store: zero-copy, and a detach mid-call
//     leaves the kernel's memory valid;
//   - without them, the pin stages a copy (in at the call, out when the
//     kernel ends): correct, one copy each way. `histoflow info` says which.
// Either way an array detached before the call is a TypeError naming it, an
// output detached during the call rejects the Promise naming it, and a
// resizable ArrayBuffer (it could shrink under the kernel) is a TypeError.
enum class Access { Input, Output };

#if HISTOFLOW_V8_BACKING_STORE
inline constexpr bool kHoldsBackingStores = true;
#else
inline constexpr bool kHoldsBackingStores = false;
#endif

class ArrayPin {
 public:
  ArrayPin() = default;
  ArrayPin(Napi::TypedArray array, const char* name, Access access, void* js_data, size_t bytes)
      : ref_(Napi::Persistent(static_cast<Napi::Value>(array))), name_(name), access_(access), js_data_(js_data),
        bytes_(bytes) {
    napi_value buffer = array.ArrayBuffer();
    bool plain = false;  // an ArrayBuffer (detachable), not a SharedArrayBuffer
    napi_is_arraybuffer(array.Env(), buffer, &plain);
    data_ = js_data;
    if (!plain || bytes == 0) return;
#if HISTOFLOW_V8_BACKING_STORE
    v8::Local<v8::Value> value;
    static_assert(sizeof(value) == sizeof(buffer), "napi_value is a v8::Local in Node");
    std::memcpy(static_cast<void*>(&value), &buffer, sizeof(buffer));
    store_ = value.As<v8::ArrayBuffer>()->GetBackingStore();
    if (store_->IsResizableByUserJavaScript()) Resizable(array.Env());
#else
    Napi::Value resizable = Napi::Value(array.Env(), buffer).As<Napi::Object>().Get("resizable");
    if (resizable.IsBoolean() && resizable.As<Napi::Boolean>().Value()) Resizable(array.Env());
    staged_.reset(new uint8_t[bytes]);
    std::memcpy(staged_.get(), js_data, bytes);
    data_ = staged_.get();
#endif
  }

  // The memory the kernel reads and writes (the array's own, or the stage).
  void* data() const { return data_; }

  // Main thread, after the kernel: an error message naming an output that
  // was detached or shrunk meanwhile (its result is lost), else "" (and a
  // staged output is copied back).
  std::string Finish(Napi::Env env) {
    if (access_ != Access::Output || ref_.IsEmpty()) return "";
    napi_value v = ref_.Value();
    napi_typedarray_type type;
    size_t length = 0, offset = 0;
    void* data = nullptr;
    napi_value buffer;
    bool detached = false;
    if (napi_get_typedarray_info(env, v, &type, &length, &data, &buffer, &offset) != napi_ok ||
        napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok || detached || data != js_data_ ||
        Napi::TypedArray(env, v).ByteLength() != bytes_) {
      return name_ + " was detached (or shrunk) while the kernel ran; its result is lost";
    }
    if (staged_) std::memcpy(js_data_, staged_.get(), bytes_);
    return "";
  }

 private:
  [[noreturn]] void Resizable(Napi::Env env) const {
    throw Napi::TypeError::New(env, "Expected a fixed-length ArrayBuffer under " + name_ +
                                        " (a resizable one could shrink while the kernel runs)");
  }

  Napi::Reference<Napi::Value> ref_;
  std::string name_;
  Access access_ = Access::Input;
  void* js_data_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  std::unique_ptr<uint8_t[]> staged_;
#if HISTOFLOW_V8_BACKING_STORE
  std::shared_ptr<v8::BackingStore> store_;
#endif
};

using Pins = std::vector<ArrayPin>;

// A typed array checked for kind and exact length, viewed without a copy
// (byteOffset respected; see ArrayPin for the staged build) and held while
// `pin` lives.
template <typename T>
struct PinnedArray {
  T* data = nullptr;
  size_t length = 0;
  ArrayPin pin;
};

template <typename T>
PinnedArray<T> TypedArg(Napi::Value v, napi_typedarray_type kind, const char* kind_name, const char* name,
                        int64_t expected_length, Access access) {
  Napi::Env env = v.Env();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kind) {
    throw Napi::TypeError::New(env, std::string("Expected a ") + kind_name + " for " + name);
  }
  auto ta = v.As<Napi::TypedArrayOf<T>>();
  bool detached = false;
  if (napi_is_detached_arraybuffer(env, ta.ArrayBuffer(), &detached) == napi_ok && detached) {
    throw Napi::TypeError::New(env, std::string("Expected a ") + kind_name + " for " + name +
                                        " but its ArrayBuffer was detached");
  }
  if (expected_length < 0 || ta.ElementLength() != static_cast<size_t>(expected_length)) {
    throw Napi::RangeError::New(env, std::string("Expected ") + name + " to hold " + std::to_string(expected_length) +
                                         " elements but it holds " + std::to_string(ta.ElementLength()));
  }
  PinnedArray<T> p;
  p.length = ta.ElementLength();
  p.pin = ArrayPin(ta, name, access, ta.Data(), ta.ByteLength());
  p.data = static_cast<T*>(p.pin.data());
  return p;
}

// { data: Uint8Array, n, height, width } → RgbBatch over the same memory.
struct PinnedBatch {
  hf::RgbBatch view;
  ArrayPin pin;
};

inline int64_t PositiveInt(const Napi::Object& o, const char* key) {
  double d = Number(o, key);
  if (!(d >= 1) || d != static_cast<double>(static_cast<int64_t>(d)) || d > 9.0e15) {
    throw Napi::RangeError::New(o.Env(), std::string("Expected a positive integer for ") + key);
  }
  return static_cast<int64_t>(d);
}

inline PinnedBatch BatchArg(const Napi::CallbackInfo& info, size_t i) {
  Napi::Object b = ObjectArg(info, i, "batch");
  int64_t n = PositiveInt(b, "n"), h = PositiveInt(b, "height"), w = PositiveInt(b, "width");
  int64_t bytes = CheckedProduct(info.Env(), {n, h, w, 3}, "batch (n·height·width·3)");
  auto arr = TypedArg<uint8_t>(b.Get("data"), napi_uint8_array, "Uint8Array", "batch.data", bytes, Access::Input);
  PinnedBatch p;
  p.view.data = arr.data;
  p.view.n = n;
  p.view.height = h;
  p.view.width = w;
  p.pin = std::move(arr.pin);
  return p;
}

enum class Device { Cpu, Cuda };

inline Device DeviceArg(const Napi::CallbackInfo& info, size_t i) {
  std::string d = String(info.Length() > i ? info[i] : info.Env().Undefined(), "device");
  if (d == "cpu") return Device::Cpu;
  if (d == "cuda") return Device::Cuda;
  throw Napi::RangeError::New(info.Env(), "Expected 'cpu' or 'cuda' for device but received '" + d + "'");
}

// Runs `work` on a libuv thread, then resolves the Promise with `result(env)`.
// The typed arrays the work touches are pinned by `pins` (see ArrayPin) until
// OnOK/OnError; OnOK rejects when an output was detached meanwhile.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Result = std::function<Napi::Value(Napi::Env)>;

  static Napi::Value Start(Napi::Env env, const char* name, Pins pins, Work work,
                           Result result) {
    auto* w = new PromiseWorker(env, name, std::move(pins), std::move(work), std::move(result));
    Napi::Promise promise = w->deferred_.Promise();
    w->Queue();
    return promise;
  }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const hf::UnavailableError& e) {
      kind_ = "unavailable";
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      SetError(std::string(name_) + ": out of memory");
    } catch (const std::exception& e) {
      SetError(std::string(name_) + ": " + e.what());
    } catch (...) {
      SetError(std::string(name_) + ": unknown native error");
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    for (ArrayPin& pin : pins_) {
      std::string lost = pin.Finish(env);
      if (!lost.empty()) {
        deferred_.Reject(Napi::Error::New(env, std::string(name_) + ": " + lost).Value());
        return;
      }
    }
    try {
      deferred_.Resolve(result_ ? result_(env) : env.Undefined());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    Napi::Value err = e.Value();
    if (!kind_.empty()) err.As<Napi::Object>().Set("code", Napi::String::New(Env(), "HISTOFLOW_UNAVAILABLE"));
    deferred_.Reject(err);
  }

 private:
  PromiseWorker(Napi::Env env, const char* name, Pins pins, Work work,
                Result result)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        name_(name),
        pins_(std::move(pins)),
        work_(std::move(work)),
        result_(std::move(result)) {}

  Napi::Promise::Deferred deferred_;
  const char* name_;
  Pins pins_;
  Work work_;
  Result result_;
  std::string kind_;
};

// Registration of each family's functions on the exports object.
void InitInfo(Napi::Env env, Napi::Object exports);
void InitColor(Napi::Env env, Napi::Object exports);
void InitStain(Napi::Env env, Napi::Object exports);
void InitAugment(Napi::Env env, Napi::Object exports);
void InitCodec(Napi::Env env, Napi::Object exports);
void InitDataset(Napi::Env env, Napi::Object exports);
void InitTissue(Napi::Env env, Napi::Object exports);
void InitSlide(Napi::Env env, Napi::Object exports);
void InitNn(Napi::Env env, Napi::Object exports);

}  // namespace hfb
