// Batched, seeded augmentation: uint8 RGB images in, the normalized float32
// training batch out (N x out_h x out_w x 3, NHWC), in one pass per image.
//
// Every random choice is drawn on the host, per image, from a counter-based
// generator keyed by (seed, epoch, image index) (src/augment/params.ts), and
// arrives here as AugmentImageParams: results do not depend on the backend,
// the thread count or how a dataset is split into batches. The only per-pixel
// randomness (gaussian noise, the elastic field) is itself counter-based:
// noise_value(seed, i), splitmix64(elastic_seed, k).
//
// Order of operations for output pixel (y, x) of image n:
//  1. geometry: (y, x) in the output grid → the crop window (crop_y, crop_x,
//     crop_h, crop_w) of the source, resized to out_h x out_w by bilinear
//     sampling at pixel centres (align_corners = false: sy = (y + 0.5)·crop_h/
//     out_h − 0.5, clamped to the window's edge pixels), after the dihedral
//     transform d4 (0..7: k = d4 & 3 quarter turns counter-clockwise, then a
//     horizontal flip when d4 & 4) applied to output coordinates. When crop
//     and output sizes are equal and no resize happens, sampling is exact
//     (integer copies), so D4 and crops are bit-exact permutations.
//  1b. elastic deformation (skipped when elastic_alpha is 0): the step-1
//     image G (out_h x out_w, after d4, values in [0, 1]) resampled at displaced
//     positions, E(y, x) = G(y + dy, x + dx) bilinearly. With σ =
//     elastic_sigma (≥ 1) and α = elastic_alpha:
//     - a control grid of gh = floor((out_h − 1)/σ) + 4 by gw = floor((out_w
//       − 1)/σ) + 4 points (in double), spacing σ output pixels; point (j, i)
//       holds the displacement (cy, cx), each α·(2u − 1) computed in double
//       and rounded to float, u = (splitmix64(elastic_seed, 2k + d) >> 11)·
//       2⁻⁵³ with k = j·gw + i, d = 0 for cy and 1 for cx;
//     - along each axis, pixel p has t = p/σ (double), j = floor(t), f = t −
//       j and the uniform cubic B-spline weights w = ((1−f)³, 3f³ − 6f² + 4,
//       −3f³ + 3f² + 3f + 1, f³)/6 (double, then float) of controls j..j+3;
//       dy(y, x) = Σ_b wx[b]·(Σ_a wy[a]·cy[jy + a][jx + b]) in float, dx
//       likewise; |dy|, |dx| ≤ α (the weights are positive and sum to 1);
//     - bilinear sampling: rows y + floor(dy) and the next, weight dy −
//       floor(dy) (columns likewise), each index reflected into the image as
//       OpenCV's BORDER_REFLECT (…cba|abc…xyz|zyx…); top = G00 + fx·(G01 −
//       G00), bottom likewise, E = top + fy·(bottom − top).
//     native/augment/elastic_field.h holds these formulas.
//  2. HED jitter (Tellez et al. 2018): rgb → HED concentrations with the
//     scikit-image rgb2hed convention (color/deconvolution.h), each stain
//     s' = s·alpha[k] + beta[k], back to RGB with combine_stains (clip 0..1).
//     beta is in rgb2hed units here; src/augment/params.ts draws it in OD
//     units (Tellez's) by default and divides by ln(10⁶) = 13.8155.
//     Skipped when hed_enabled is 0.
//  3. colour: brightness (x·b), contrast ((x − mean_gray)·c + mean_gray, with
//     mean_gray the mean of 0.299R+0.587G+0.114B over the image after steps
//     1–2, 1b included), saturation (gray + (x − gray)·s per pixel), hue (rotation of the
//     hue by `hue` turns in HSV), each clipped to [0, 1]; identity values
//     (1, 1, 1, 0) skip the step. Values are in [0, 1] from here on.
//  4. gaussian blur with std blur_sigma (0 = none): separable kernel of
//     radius ceil(3σ), weights normalized, edges clamped (replicate).
//  5. noise: + noise_sigma · noise_value(noise_seed, (y·out_w + x)·3 + c),
//     clipped to [0, 1]. noise_value(seed, i) = sqrt(−2·ln(1 − u₁))·cos(2π·u₂)
//     with u₁ = (splitmix64(seed, 2i) >> 11)·2⁻⁵³ and u₂ likewise from 2i + 1
//     (core/random.h's splitmix64; augment/noise.h).
//  6. normalize: (v − mean[c]) / std[c] per channel.
#pragma once
#include <cstdint>

#include "augment/noise.h"  // noise_value, the standard normal of step 5
#include "core/image.h"

namespace hf {

// What was drawn for one image.
struct AugmentImageParams {
  int32_t d4 = 0;                        // 0..7
  int32_t crop_y = 0, crop_x = 0;        // top-left of the crop window in the source
  int32_t hed_enabled = 0;
  float hed_alpha[3] = {1, 1, 1};
  float hed_beta[3] = {0, 0, 0};
  float brightness = 1, contrast = 1, saturation = 1, hue = 0;
  float blur_sigma = 0;
  float noise_sigma = 0;
  uint64_t noise_seed = 0;
  float elastic_alpha = 0;               // 0 (none) or (0, 65536]: the largest displacement per axis
  float elastic_sigma = 1;               // control-grid spacing, in [1, 65536] when alpha > 0
  uint64_t elastic_seed = 0;
};

// What is the same for the whole batch.
struct AugmentBatchParams {
  int32_t crop_h = 0, crop_w = 0;        // crop window size (≤ source size)
  int32_t out_h = 0, out_w = 0;          // output size (resize from the crop window)
  float mean[3] = {0, 0, 0};
  float std[3] = {1, 1, 1};
};

// in: N x H x W x 3 uint8; params: N entries; out: N x out_h x out_w x 3 float32.
void augment_cpu(const RgbBatch& in, const AugmentImageParams* params, const AugmentBatchParams& batch, float* out);
void augment_cuda(const RgbBatch& in, const AugmentImageParams* params, const AugmentBatchParams& batch, float* out);

}  // namespace hf
