// Vahadane et al., IEEE TMI 2016: sparse non-negative factorization of the
// tissue OD, exactly the procedure written out in stain/vahadane.h (seeded
// subsample, Ruifrok start, closed-form lasso per pixel, Mairal et al. 2010
// block-coordinate dictionary update), in double precision so every backend
// agrees.
#include <algorithm>
#include <cmath>
#include <vector>

#include "stain/stain_fit_internal.h"
#include "stain/stain_math.h"
#include "stain/vahadane.h"

namespace hf {

namespace {

using namespace stain_cpu;

bool normalize_row(double w[3]) {
  double norm = std::sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
  if (!(norm > 0) || !std::isfinite(norm)) return false;
  for (int k = 0; k < 3; ++k) w[k] /= norm;
  return true;
}

// Step 4a: argmin_c≥0 ½‖od − c·W‖² + λ(c₀ + c₁), given G = W·Wᵀ, its inverse
// and b = W·od. The objective without the constant ½‖od‖² ranks candidates.
void sparse_code(const double g[3], const double g_inv[3], double lambda, const double b[2], double c[2]) {
  double u0 = b[0] - lambda, u1 = b[1] - lambda;
  double c0 = g_inv[0] * u0 + g_inv[1] * u1, c1 = g_inv[1] * u0 + g_inv[2] * u1;
  if (c0 >= 0 && c1 >= 0) {
    c[0] = c0, c[1] = c1;
    return;
  }
  auto objective = [&](double x0, double x1) {
    return -(x0 * b[0] + x1 * b[1]) + 0.5 * (g[0] * x0 * x0 + 2 * g[1] * x0 * x1 + g[2] * x1 * x1) +
           lambda * (x0 + x1);
  };
  double only_h = std::max(0.0, u0 / g[0]), only_e = std::max(0.0, u1 / g[2]);
  if (objective(only_h, 0) <= objective(0, only_e)) {
    c[0] = only_h, c[1] = 0;
  } else {
    c[0] = 0, c[1] = only_e;
  }
}

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
    const double u = static_cast<double>(splitmix64(p.seed, 0) >> 11) * 0x1.0p-53;
    const double step = static_cast<double>(count) / static_cast<double>(m);
    sample.resize(m * 3);
    for (int64_t k = 0; k < m; ++k) {
      int64_t src = std::min<int64_t>(static_cast<int64_t>(std::floor((k + u) * step)), count - 1);
      for (int c = 0; c < 3; ++c) sample[3 * k + c] = tissue_od[3 * src + c];
    }
  } else {
    sample.assign(tissue_od.begin(), tissue_od.begin() + count * 3);
  }

  // 3. Start from Ruifrok & Johnston's H and E.
  double w[2][3] = {{0.65, 0.70, 0.29}, {0.07, 0.99, 0.11}};
  normalize_row(w[0]);
  normalize_row(w[1]);
  std::vector<double> codes(m * 2);
  const double lambda = p.lambda;
  for (int it = 0; it < p.iterations; ++it) {
    // 4a. Concentrations for the current W.
    double g[3] = {w[0][0] * w[0][0] + w[0][1] * w[0][1] + w[0][2] * w[0][2],
                   w[0][0] * w[1][0] + w[0][1] * w[1][1] + w[0][2] * w[1][2],
                   w[1][0] * w[1][0] + w[1][1] * w[1][1] + w[1][2] * w[1][2]};
    double det_g = g[0] * g[2] - g[1] * g[1];
    if (!(det_g > 1e-12 * (g[0] + g[2]) * (g[0] + g[2]))) {
      fit.status = kFitDegenerate;
      return;
    }
    const double g_inv[3] = {g[2] / det_g, -g[1] / det_g, g[0] / det_g};
    double a[3] = {0, 0, 0}, bsum[2][3] = {{0, 0, 0}, {0, 0, 0}};  // CᵀC (00, 01, 11), CᵀOD
    for (int64_t k = 0; k < m; ++k) {
      const double* x = &sample[3 * k];
      double b[2] = {w[0][0] * x[0] + w[0][1] * x[1] + w[0][2] * x[2], w[1][0] * x[0] + w[1][1] * x[1] + w[1][2] * x[2]};
      double c[2];
      sparse_code(g, g_inv, lambda, b, c);
      a[0] += c[0] * c[0], a[1] += c[0] * c[1], a[2] += c[1] * c[1];
      for (int j = 0; j < 3; ++j) {
        bsum[0][j] += c[0] * x[j];
        bsum[1][j] += c[1] * x[j];
      }
    }
    // 4b. Dictionary update of Mairal et al. 2010 (SPAMS, scikit-learn) with
    // A = CᵀC, B = CᵀOD: each row in turn, using the rows already updated,
    // clipped at 0 and scaled into the unit ball; a row with A_jj ≤ 1e-12 is
    // left as is.
    const double am[2][2] = {{a[0], a[1]}, {a[1], a[2]}};
    for (int j = 0; j < 2; ++j) {
      if (!(am[j][j] > 1e-12)) continue;
      for (int k = 0; k < 3; ++k)
        w[j][k] = std::max(0.0, w[j][k] + (bsum[j][k] - (am[j][0] * w[0][k] + am[j][1] * w[1][k])) / am[j][j]);
      const double norm = std::sqrt(w[j][0] * w[j][0] + w[j][1] * w[j][1] + w[j][2] * w[j][2]);
      const double scale = std::max(norm, 1.0);
      for (int k = 0; k < 3; ++k) w[j][k] /= scale;
    }
  }
  // Unit rows; a zero row or collinear rows (|cos| > 1 − 1e-6) are degenerate.
  if (!normalize_row(w[0]) || !normalize_row(w[1]) ||
      std::fabs(w[0][0] * w[1][0] + w[0][1] * w[1][1] + w[0][2] * w[1][2]) > 1 - 1e-6) {
    fit.status = kFitDegenerate;
    return;
  }
  // 5. Hematoxylin has the larger red OD.
  const int h = w[0][0] >= w[1][0] ? 0 : 1;
  for (int k = 0; k < 3; ++k) {
    fit.he[k] = static_cast<float>(w[h][k]);
    fit.he[3 + k] = static_cast<float>(w[1 - h][k]);
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
