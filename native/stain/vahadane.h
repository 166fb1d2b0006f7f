// Vahadane et al., "Structure-preserving color normalization and sparse stain
// separation for histological images", IEEE TMI 2016: sparse non-negative
// factorization OD ≈ C·W with C ≥ 0 under an L1 penalty lambda and W ≥ 0 with
// unit rows, by alternating minimization.
//
// The procedure is specified exactly so that every backend (cpu, cuda, gpujs,
// js) computes the same stain matrix for the same seed, in double precision:
//  1. OD of the tissue pixels (tissue rule of TissueParams); fewer than 2 →
//     kFitTooFewTissuePixels.
//  2. Subsample when count > max_pixels: u = (splitmix64(seed, 0) >> 11)·2⁻⁵³,
//     step = count / max_pixels, pixel k = floor((k + u)·step), k < max_pixels
//     (indices into the tissue pixels in raster order).
//  3. W₀ = Ruifrok & Johnston's H and E rows, unit length:
//     H (0.65, 0.70, 0.29), E (0.07, 0.99, 0.11).
//  4. `iterations` times:
//     a. per pixel, the exact minimizer of ½‖od − c·W‖² + λ(c₀ + c₁), c ≥ 0,
//        with G = W·Wᵀ, b = W·od: the unconstrained c = G⁻¹(b − λ) when both
//        ≥ 0; otherwise the better (lower objective) of c = (max(0,(b₀−λ)/G₀₀), 0)
//        and (0, max(0,(b₁−λ)/G₁₁));
//     b. the dictionary update of Mairal et al. 2010 (SPAMS, scikit-learn),
//        with A = CᵀC and B = CᵀOD, for each row j in order (using the rows
//        already updated): w_j ← max(0, w_j + (B_j − A_j·W) / A_jj), then
//        w_j ← w_j / max(‖w_j‖, 1); a row with A_jj ≤ 1e-12 is left as is.
//     After the iterations the rows are scaled to unit length; a zero row or
//     collinear rows (|cos| > 1 − 1e-6) → kFitDegenerate.
//  5. Hematoxylin is the row with the larger red component (swap if needed).
//  6. max_c as for Macenko: 99th percentile of the least-squares
//     concentrations (stain_pinv) over all pixels of the image.
#pragma once
#include <cstdint>

#include "stain/stain_fit.h"

namespace hf {

struct VahadaneParams {
  OdParams od;               // tiatoolbox: io 255, offset 0, min_od 1e-6
  TissueParams tissue;       // tiatoolbox: Luminosity 0.8
  float lambda = 0.1f;       // L1 weight on the concentrations (Vahadane 2016; tiatoolbox preset: 0)
  int32_t iterations = 50;   // alternating (C, W) updates
  int64_t max_pixels = 20000;// tissue pixels kept for the factorization
  uint64_t seed = 0;
};

void vahadane_fit_cpu(const RgbBatch& in, const VahadaneParams& p, StainFit* fits);
void vahadane_fit_cuda(const RgbBatch& in, const VahadaneParams& p, StainFit* fits);

}  // namespace hf
