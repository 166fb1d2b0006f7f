// Views over batches of images as they cross from the host into a kernel.
// The kernels never own memory: the caller (the N-API binding, the test binary)
// keeps the buffers alive for the duration of the call.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hf {

// A batch of interleaved RGB uint8 images, NHWC, contiguous, 3 channels.
struct RgbBatch {
  const uint8_t* data = nullptr;
  int64_t n = 0, height = 0, width = 0;
  int64_t pixels_per_image() const { return height * width; }
  int64_t pixels() const { return n * height * width; }
  int64_t bytes() const { return pixels() * 3; }
  const uint8_t* image(int64_t i) const { return data + i * pixels_per_image() * 3; }
};

// The writable twin of RgbBatch, for outputs of the same shape.
struct RgbBatchOut {
  uint8_t* data = nullptr;
  int64_t n = 0, height = 0, width = 0;
  uint8_t* image(int64_t i) const { return data + i * height * width * 3; }
};

}  // namespace hf
