// Premultiplied ARGB → RGB over white: OpenSlide's pixel format to histoflow's.
// Needs no OpenSlide, so it is built (and tested) in every build.
#include <cstdint>

#include "slide/openslide_reader.h"

namespace hf {

// Compositing premultiplied colour c·a/255 over white: c·a/255 + 255·(1 − a/255)
// = c_premul + 255 − a, exact in integers and always within 0..255.
void argb_premultiplied_to_rgb_over_white(const uint32_t* argb, int64_t count, uint8_t* rgb) {
  for (int64_t i = 0; i < count; ++i) {
    const uint32_t p = argb[i];
    const uint32_t a = p >> 24;
    const uint32_t white = 255 - a;
    uint32_t r = ((p >> 16) & 0xff) + white, g = ((p >> 8) & 0xff) + white, b = (p & 0xff) + white;
    // Premultiplied channels never exceed alpha; clamp anyway against a broken decoder.
    rgb[3 * i + 0] = static_cast<uint8_t>(r > 255 ? 255 : r);
    rgb[3 * i + 1] = static_cast<uint8_t>(g > 255 ? 255 : g);
    rgb[3 * i + 2] = static_cast<uint8_t>(b > 255 ? 255 : b);
  }
}

}  // namespace hf
