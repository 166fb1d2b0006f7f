// histoflow.node: one module, one registration call per family.
#include <napi.h>

#include "common.h"

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  hfb::InitInfo(env, exports);
  hfb::InitColor(env, exports);
  hfb::InitStain(env, exports);
  hfb::InitAugment(env, exports);
  hfb::InitCodec(env, exports);
  hfb::InitDataset(env, exports);
  hfb::InitTissue(env, exports);
  hfb::InitSlide(env, exports);
  hfb::InitNn(env, exports);
  return exports;
}
}  // namespace

NODE_API_MODULE(histoflow, Init)
