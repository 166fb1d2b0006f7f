// sRGB (D65) ↔ CIE L*a*b*, with OpenCV's conventions for 8-bit images
// (cv2.COLOR_RGB2LAB): L in [0, 100], a and b in about [-128, 127], sRGB gamma.
// Shared by Reinhard normalization and the luminosity tissue mask.
#pragma once
#include <cmath>
#include <cstdint>

namespace hf {

// One pixel; exact float formula (OpenCV's 8-bit path uses fixed-point tables
// that agree to within one 8-bit step).
void srgb_to_lab(uint8_t r, uint8_t g, uint8_t b, float lab[3]);
void lab_to_srgb(const float lab[3], uint8_t rgb[3]);

}  // namespace hf
