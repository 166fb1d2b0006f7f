// Which engine runs the nn kernels: oneDNN (when the build linked it) or the
// built-in blocked GEMM (im2col + packed panels, SIMD via -march=native, OpenMP
// threads), which exists in every build. Both compute the same functions; the
// parity tests run both through one build by switching at run time.
//
// There is no CUDA twin in nn/: TF.js training on a GPU is the `tensorflow`
// backend's job (tfjs-node-gpu); these kernels serve TF.js's CPU backend, whose
// tensors live in host memory.
#pragma once

namespace hf::nn {

enum class Engine { Builtin, OneDnn };

bool onednn_available();
Engine engine();
// Throws UnavailableError for OneDnn when the build did not link oneDNN.
void set_engine(Engine e);
const char* engine_name(Engine e);

// Whether 3×3 stride-1 forwards run as Winograd F(4×4, 3×3) (conv2d.h); on
// unless turned off (the native backend: HISTOFLOW_NN_WINOGRAD=0).
bool winograd_enabled();
void set_winograd(bool on);

}  // namespace hf::nn
