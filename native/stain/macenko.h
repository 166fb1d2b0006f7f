// Macenko et al., "A method for normalizing histology slides for quantitative
// analysis", ISBI 2009. Tissue OD → plane of the two largest eigenvectors of
// its covariance → extreme angles at the alpha / 100-alpha percentiles (numpy
// linear interpolation) → the two stain vectors; hematoxylin is the one with
// the larger red OD. max_c = 99th percentile of the least-squares
// concentrations over all pixels of the image.
#pragma once
#include "stain/stain_fit.h"

namespace hf {

struct MacenkoParams {
  OdParams od;                // canonical: io 240, offset 1
  TissueParams tissue;        // canonical: OdThreshold beta 0.15
  float alpha = 1.f;          // angle percentile, in percent
  bool unit_rows = false;     // tiatoolbox: stain vectors scaled to unit length
};

// One fit per image of the batch (fits has n entries).
void macenko_fit_cpu(const RgbBatch& in, const MacenkoParams& p, StainFit* fits);
void macenko_fit_cuda(const RgbBatch& in, const MacenkoParams& p, StainFit* fits);

}  // namespace hf
