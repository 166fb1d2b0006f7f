#include "nn/engine.h"

#include <atomic>

#include "core/error.h"

namespace hf::nn {
namespace {
#ifdef HISTOFLOW_WITH_ONEDNN
std::atomic<Engine> current{Engine::OneDnn};
#else
std::atomic<Engine> current{Engine::Builtin};
#endif
std::atomic<bool> winograd{true};
}  // namespace

bool onednn_available() {
#ifdef HISTOFLOW_WITH_ONEDNN
  return true;
#else
  return false;
#endif
}

Engine engine() { return current.load(); }

void set_engine(Engine e) {
  if (e == Engine::OneDnn && !onednn_available()) {
    throw UnavailableError("nn engine 'onednn': histoflow was built without oneDNN (apt install libdnnl-dev, then rebuild)");
  }
  current.store(e);
}

bool winograd_enabled() { return winograd.load(); }

void set_winograd(bool on) { winograd.store(on); }

const char* engine_name(Engine e) { return e == Engine::OneDnn ? "onednn" : "builtin"; }

}  // namespace hf::nn
