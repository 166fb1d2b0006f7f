// What every stain-matrix method (Macenko, Vahadane, fixed Ruifrok) produces,
// and the transform they share: concentrations by least squares against the
// image's own stain matrix, scaled so their 99th percentiles match the target's,
// re-rendered with the target stain matrix (Macenko et al. 2009, eq. 5-6).
#pragma once
#include <cstdint>

#include "color/optical_density.h"
#include "core/image.h"

namespace hf {

// Which pixels count as tissue when fitting.
enum class TissueRule : int32_t {
  // Every channel's OD ≥ beta (Macenko 2009; HEnorm_python).
  OdThreshold = 0,
  // tiatoolbox: 2–98 % contrast stretch over all channel values, then
  // OpenCV 8-bit LAB L/255 < luminosity_threshold.
  Luminosity = 1,
};

struct TissueParams {
  TissueRule rule = TissueRule::OdThreshold;
  float beta = 0.15f;                  // OdThreshold
  float luminosity_threshold = 0.8f;   // Luminosity
};

// Fitted stains of one image. Rows: 0 = hematoxylin, 1 = eosin; columns RGB OD.
struct StainFit {
  float he[6] = {0, 0, 0, 0, 0, 0};
  float max_c[2] = {0, 0};        // 99th percentile of each concentration over all pixels
  int64_t tissue_pixels = 0;      // pixels that passed the tissue rule
  // 0 = fitted; otherwise why the fit was refused and the image left unchanged:
  int32_t status = 0;
};
enum StainFitStatus : int32_t {
  kFitOk = 0,
  kFitTooFewTissuePixels = 1,   // fewer than 2 tissue pixels (all white, 1x1, …)
  kFitDegenerate = 2,           // stain vectors collinear or concentrations ~0 (all black, one colour)
};

struct StainTransformParams {
  OdParams od;
  float target_he[6] = {0, 0, 0, 0, 0, 0};
  float target_max_c[2] = {1, 1};
  // Rendered values above 255 become this (HEnorm_python: 254; tiatoolbox: 255);
  // the result is then truncated to uint8 as numpy's astype(uint8) does.
  float overflow_value = 255.f;
};

// Normalizes every image of `in` with its own fit. Images whose fit status is
// not kFitOk are copied unchanged. h_only / e_only (may be null) receive the
// single-stain renderings (target stain alone, HEnorm_python's H and E images).
void stain_transform_cpu(const RgbBatch& in, const StainFit* fits, const StainTransformParams& p,
                         uint8_t* out, uint8_t* h_only, uint8_t* e_only);
void stain_transform_cuda(const RgbBatch& in, const StainFit* fits, const StainTransformParams& p,
                          uint8_t* out, uint8_t* h_only, uint8_t* e_only);

// Concentrations of each pixel (pixels*2 float32, H then E) for a known stain
// matrix: least squares, as np.linalg.lstsq(HE, OD).
void stain_concentrations_cpu(const RgbBatch& in, const StainFit* fits, const OdParams& od, float* out);
void stain_concentrations_cuda(const RgbBatch& in, const StainFit* fits, const OdParams& od, float* out);

// A fixed stain matrix (Ruifrok & Johnston's H and E rows, or one fitted once
// on a slide and reused for all its tiles): copies `he` into every fit and
// computes each image's max_c. Status is kFitDegenerate when max_c ≤ 0.
void stain_fit_fixed_cpu(const RgbBatch& in, const float he[6], const OdParams& od, StainFit* fits);
void stain_fit_fixed_cuda(const RgbBatch& in, const float he[6], const OdParams& od, StainFit* fits);

}  // namespace hf
