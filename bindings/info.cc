// What was compiled in and what the machine offers: `histoflow info`.
#include <napi.h>

#include "common.h"
#if HISTOFLOW_V8_BACKING_STORE
#include <node_version.h>
#endif
#include "core/cpu_level.h"
#include "core/runtime.h"

namespace hfb {
namespace {

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  hf::BuildInfo b = hf::build_info();
  Napi::Object o = Napi::Object::New(env);
#ifdef HISTOFLOW_VERSION
  o.Set("version", HISTOFLOW_VERSION);
#endif
  o.Set("cuda", b.cuda);
  o.Set("cudaVersion", b.cuda_version);
  o.Set("openmp", b.openmp);
  o.Set("simd", b.simd);
  o.Set("compiler", b.compiler);
  o.Set("cpuLevel", hf::compiled_cpu_level());
#ifdef HISTOFLOW_WITH_OPENSLIDE
  o.Set("openslide", true);
#else
  o.Set("openslide", false);
#endif
#ifdef HISTOFLOW_WITH_LIBDEFLATE
  o.Set("png", true);
#else
  o.Set("png", false);
#endif
#ifdef HISTOFLOW_WITH_ONEDNN
  o.Set("onednn", true);
#else
  o.Set("onednn", false);
#endif
  o.Set("napiVersion", NAPI_VERSION);
  // Whether async kernels hold V8 backing stores (zero-copy) or stage copies
  // (common.h, ArrayPin); a build that holds them uses V8's ABI, so it also
  // says which Node ABI it was built for and the loader refuses another.
  o.Set("v8BackingStores", kHoldsBackingStores);
#if HISTOFLOW_V8_BACKING_STORE
  o.Set("nodeModuleVersion", NODE_MODULE_VERSION);
#endif
  return o;
}

Napi::Value CudaDevices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string why;
  auto devices = hf::cuda_devices(&why);
  Napi::Object o = Napi::Object::New(env);
  Napi::Array list = Napi::Array::New(env, devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("index", devices[i].index);
    d.Set("name", devices[i].name);
    d.Set("totalMemory", static_cast<double>(devices[i].total_memory));
    d.Set("computeCapability", std::to_string(devices[i].major) + "." + std::to_string(devices[i].minor));
    d.Set("multiprocessors", devices[i].multiprocessors);
    list.Set(static_cast<uint32_t>(i), d);
  }
  o.Set("devices", list);
  o.Set("reason", why);
  return o;
}

// The x86-64 levels this CPU runs, lowest first (empty off x86-64).
Napi::Value CpuLevels(const Napi::CallbackInfo& info) {
  const std::vector<std::string> levels = hf::supported_cpu_levels();
  Napi::Array a = Napi::Array::New(info.Env(), levels.size());
  for (size_t i = 0; i < levels.size(); ++i) a.Set(static_cast<uint32_t>(i), levels[i]);
  return a;
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), hf::cpu_threads()); }

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "Expected a number for threads");
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) throw Napi::RangeError::New(info.Env(), "Expected a positive integer for threads");
  hf::set_cpu_threads(n);
  return info.Env().Undefined();
}

}  // namespace

void InitInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
  exports.Set("cudaDevices", Napi::Function::New(env, CudaDevices, "cudaDevices"));
  exports.Set("cpuLevels", Napi::Function::New(env, CpuLevels, "cpuLevels"));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads, "getThreads"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
}

}  // namespace hfb
