// Plain JS objects (already validated and defaulted in src/) → native structs.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "common.h"
#include "stain/macenko.h"
#include "stain/reinhard.h"
#include "stain/stain_fit.h"
#include "stain/vahadane.h"

namespace hfb {

template <size_t N>
struct Matrix {
  float v[N];
};

template <size_t N>
Matrix<N> MatrixArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Object holder = Napi::Object::New(info.Env());
  holder.Set(name, info.Length() > i ? info[i] : info.Env().Undefined());
  Matrix<N> m;
  Numbers<float>(holder, name, m.v, N);
  return m;
}

inline int64_t PixelsArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "Expected a number for pixels");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 1) || d != static_cast<double>(static_cast<int64_t>(d))) {
    throw Napi::RangeError::New(info.Env(), "Expected a positive integer for pixels");
  }
  return static_cast<int64_t>(d);
}

// A nested plain object (e.g. params.od), type-checked.
inline Napi::Object SubObject(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsObject()) throw Napi::TypeError::New(o.Env(), std::string("Expected an object for ") + key);
  return v.As<Napi::Object>();
}

inline hf::OdParams OdArg(const Napi::Object& o) {
  hf::OdParams p;
  p.io = static_cast<float>(Number(o, "io"));
  p.offset = static_cast<float>(Number(o, "offset"));
  p.min_od = static_cast<float>(Number(o, "minOd"));
  if (!(p.io > 0)) throw Napi::RangeError::New(o.Env(), "Expected a positive number for od.io");
  return p;
}

inline hf::TissueParams TissueArg(const Napi::Object& o) {
  hf::TissueParams t;
  std::string rule = String(o.Get("rule"), "tissue.rule");
  if (rule == "od") {
    t.rule = hf::TissueRule::OdThreshold;
  } else if (rule == "luminosity") {
    t.rule = hf::TissueRule::Luminosity;
  } else {
    throw Napi::RangeError::New(o.Env(), "Expected 'od' or 'luminosity' for tissue.rule but received '" + rule + "'");
  }
  t.beta = static_cast<float>(Number(o, "beta"));
  t.luminosity_threshold = static_cast<float>(Number(o, "luminosityThreshold"));
  return t;
}

inline hf::StainFit FitArg(const Napi::Object& o) {
  hf::StainFit f;
  Numbers<float>(o, "he", f.he, 6);
  Numbers<float>(o, "maxC", f.max_c, 2);
  f.tissue_pixels = static_cast<int64_t>(Number(o, "tissuePixels"));
  f.status = static_cast<int32_t>(Number(o, "status"));
  return f;
}

inline std::vector<hf::StainFit> FitsArg(const Napi::CallbackInfo& info, size_t i, int64_t n) {
  if (info.Length() <= i || !info[i].IsArray()) throw Napi::TypeError::New(info.Env(), "Expected an array for fits");
  Napi::Array arr = info[i].As<Napi::Array>();
  if (static_cast<int64_t>(arr.Length()) != n) {
    throw Napi::RangeError::New(info.Env(), "Expected one fit per image (" + std::to_string(n) + ") but received " +
                                                std::to_string(arr.Length()));
  }
  std::vector<hf::StainFit> fits(static_cast<size_t>(n));
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
    if (!v.IsObject()) throw Napi::TypeError::New(info.Env(), "Expected objects in fits");
    fits[k] = FitArg(v.As<Napi::Object>());
  }
  return fits;
}

inline Napi::Value FitsToJs(Napi::Env env, const std::vector<hf::StainFit>& fits) {
  Napi::Array arr = Napi::Array::New(env, fits.size());
  for (size_t k = 0; k < fits.size(); ++k) {
    const hf::StainFit& f = fits[k];
    Napi::Object o = Napi::Object::New(env);
    Napi::Array he = Napi::Array::New(env, 6);
    for (uint32_t j = 0; j < 6; ++j) he.Set(j, static_cast<double>(f.he[j]));
    Napi::Array mc = Napi::Array::New(env, 2);
    for (uint32_t j = 0; j < 2; ++j) mc.Set(j, static_cast<double>(f.max_c[j]));
    o.Set("he", he);
    o.Set("maxC", mc);
    o.Set("tissuePixels", static_cast<double>(f.tissue_pixels));
    o.Set("status", f.status);
    arr.Set(static_cast<uint32_t>(k), o);
  }
  return arr;
}

inline hf::LabStats LabStatsArg(const Napi::Object& o) {
  hf::LabStats s;
  Numbers<double>(o, "mean", s.mean, 3);
  Numbers<double>(o, "std", s.std, 3);
  s.pixels = static_cast<int64_t>(Number(o, "pixels"));
  return s;
}

inline Napi::Value LabStatsToJs(Napi::Env env, const std::vector<hf::LabStats>& stats) {
  Napi::Array arr = Napi::Array::New(env, stats.size());
  for (size_t k = 0; k < stats.size(); ++k) {
    Napi::Object o = Napi::Object::New(env);
    Napi::Array mean = Napi::Array::New(env, 3), sd = Napi::Array::New(env, 3);
    for (uint32_t j = 0; j < 3; ++j) {
      mean.Set(j, stats[k].mean[j]);
      sd.Set(j, stats[k].std[j]);
    }
    o.Set("mean", mean);
    o.Set("std", sd);
    o.Set("pixels", static_cast<double>(stats[k].pixels));
    arr.Set(static_cast<uint32_t>(k), o);
  }
  return arr;
}

}  // namespace hfb
