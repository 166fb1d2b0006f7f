// Vahadane et al., IEEE TMI 2016: sparse non-negative factorization of the
// tissue OD, exactly the procedure written out in stain/vahadane.h (seeded
// subsample, Ruifrok start, closed-form lasso per pixel, Mairal et al. 2010
// block-coordinate dictionary update), in double precision so every backend
// agrees.
#include <algorithm>
#include <cmath>
#include <vector>

#include "stain/stain_fit_internal.h"
#include "stain/vahadane.h"
#include "stain/vahadane_steps.h"

namespace hf {

namespace {

using namespace stain_cpu;

void fit_image(const uint8_t* rgb, int64_t pixels, const VahadaneParams& p, const OdTable& od, int slots,
               StainScratch& scratch, StainFit& fit) {
  fit = StainFit{};
  TissueTable tissue;
  make_tissue_table(rgb, pixels, p.tissue, p.od, slots, &tissue);

  // 1. Tissue OD in raster order (values_a holds r, g, b per tissue pixel).
  std::vector<float>& tissue_od = scratch.values_a;
  if (static_cast<int64_t>(tissue_od.size()) < pixels * 3) tissue_od.resize(pixels * 3);
  int64_t count = 0;
  for (int64_t i = 0; i < pixels; ++i) {
    const uint8_t* px = rgb + 3 * i;
    if (!tissue.is_tissue(px)) continue;
    for (int k = 0; k < 3; ++k) tissue_od[3 * count + k] = od.od[px[k]];
    ++count;
  }
  fit.tissue_pixels = count;
  if (count < 2) {
    fit.status = kFitTooFewTissuePixels;
    return;
  }
  // 2. Seeded, evenly strided subsample.
  std::vector<double> sample;
  int64_t m = count;
  if (p.max_pixels > 0 && count > p.max_pixels) {
    m = p.max_pixels;
    const double u = vahadane::subsample_offset(p.seed);
    const double step = static_cast<double>(count) / static_cast<double>(m);
    sample.resize(m * 3);
    for (int64_t k = 0; k < m; ++k) {
      const int64_t src = vahadane::subsample_index(k, u, step, count);
      for (int c = 0; c < 3; ++c) sample[3 * k + c] = tissue_od[3 * src + c];
    }
  } else {
    sample.assign(tissue_od.begin(), tissue_od.begin() + count * 3);
  }

  // 3. Start from Ruifrok & Johnston's H and E.
  double w[2][3];
  vahadane::ruifrok_start(w);
  const double lambda = p.lambda;
  for (int it = 0; it < p.iterations; ++it) {
    // 4a. Concentrations for the current W, summed into CᵀC and CᵀOD.
    double g[3], g_inv[3];
    if (!vahadane::gram(w, g, g_inv)) {
      fit.status = kFitDegenerate;
      return;
    }
    double sums[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t k = 0; k < m; ++k) vahadane::lasso_term(w, g, g_inv, lambda, &sample[3 * k], sums);
    // 4b. Dictionary update.
    vahadane::update_dictionary(w, sums);
  }
  // 5. Unit rows, hematoxylin first.
  if (!vahadane::stain_rows(w, fit.he)) {
    fit.status = kFitDegenerate;
    return;
  }
  fit.status = kFitOk;
  // 6. max_c over all pixels.
  fit_max_c(rgb, pixels, od, slots, scratch, fit);
}

}  // namespace

void vahadane_fit_cpu(const RgbBatch& in, const VahadaneParams& p, StainFit* fits) {
  const OdTable od = make_od_table(p.od);
  for_each_image(in, [&](int64_t i, int slots, StainScratch& scratch) {
    fit_image(in.image(i), in.pixels_per_image(), p, od, slots, scratch, fits[i]);
  });
}

}  // namespace hf
