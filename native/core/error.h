// Errors raised by kernels. Kernels trust their parameters (validated in src/);
// they throw only for conditions that depend on the machine (no CUDA device,
// out of memory, a lost device) or that would otherwise corrupt memory.
#pragma once
#include <stdexcept>
#include <string>

namespace hf {

// The kernel or backend is not available in this build or on this machine.
class UnavailableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The device has not the memory asked for (the message names the bytes). Not
// UnavailableError: the GPU is there, the input is too large for what is free.
class OutOfMemoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A kernel faulted and the CUDA context is gone: every later CUDA call of the
// process fails; only a new process can use the GPU again.
class DeviceLostError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A parameter that would make the kernel read or write out of bounds.
class ArgumentError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

[[noreturn]] inline void throw_built_without_cuda(const char* op) {
  throw UnavailableError(std::string(op) + ": histoflow was built without CUDA (rebuild with nvcc on PATH, or -DHISTOFLOW_CUDA=ON)");
}

}  // namespace hf
