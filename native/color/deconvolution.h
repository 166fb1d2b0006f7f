// Colour deconvolution (Ruifrok & Johnston, Anal Quant Cytol Histol 2001) in
// scikit-image's convention (skimage.color.separate_stains / combine_stains):
//   stains = max( ln(max(I/255, 1e-6)) / ln(1e-6) · stain_from_rgb , 0 )
//   rgb    = clip( exp( -(stains · -ln(1e-6)) · rgb_from_stain ), 0, 1 )
// Matrices are row-major 3x3 for row vectors (pixel · M), as in scikit-image:
// rgb_from_stain's row i is stain i's RGB optical-density vector and
// stain_from_rgb is its inverse (computed on the host).
#pragma once
#include <cstdint>

#include "core/image.h"

namespace hf {

// in: N*H*W*3 uint8 → out: N*H*W*3 float32 stain concentrations.
void deconvolve_cpu(const RgbBatch& in, const float stain_from_rgb[9], float* out);
void deconvolve_cuda(const RgbBatch& in, const float stain_from_rgb[9], float* out);

// stains: pixels*3 float32 → out: pixels*3 uint8 (round(rgb * 255)).
void reconvolve_cpu(const float* stains, int64_t pixels, const float rgb_from_stain[9], uint8_t* out);
void reconvolve_cuda(const float* stains, int64_t pixels, const float rgb_from_stain[9], uint8_t* out);

}  // namespace hf
