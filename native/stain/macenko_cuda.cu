// Macenko et al., ISBI 2009, on the device, step for step as macenko_cpu.cc
// (HEnorm_python's procedure): tissue mask → covariance sums (double, per-image
// block reduction) → eigh3 on the host → pseudo-angles of the tissue pixels →
// exact alpha / 100 − alpha order statistics (one segmented radix sort for the
// whole batch) → stain vectors on the host → max_c.
#include <cmath>
#include <cstring>
#include <vector>

#include "stain/macenko.h"
#include "stain/macenko_plane.h"
#include "stain/stain_cuda.cuh"
#include "stain/stain_math.h"

namespace hf {

namespace {

using stain_cuda::kThreads;

// Σ od (3) and Σ od·odᵀ (xx xy xz yy yz zz) over each image's tissue pixels.
struct CovarianceTerm {
  const float* od;
  const uint8_t* mask;
  int64_t ppi;
  __device__ int64_t items(int64_t) const { return ppi; }
  __device__ void operator()(int64_t img, int64_t k, double* acc) const {
    const int64_t px = img * ppi + k;
    if (!mask[px]) return;
    const double r = od[3 * px], g = od[3 * px + 1], b = od[3 * px + 2];
    acc[0] += r, acc[1] += g, acc[2] += b;
    acc[3] += r * r, acc[4] += r * g, acc[5] += r * b;
    acc[6] += g * g, acc[7] += g * b, acc[8] += b * b;
  }
};

// The plane of each image's two largest eigenvectors, as floats (e1 largest).
struct AnglePlane {
  float e1[3], e2[3];
  int32_t active;
};

__global__ void pseudo_angle_kernel(const float* __restrict__ od, const uint8_t* __restrict__ mask, int64_t n,
                                    int64_t ppi, const AnglePlane* __restrict__ planes, float* __restrict__ angles,
                                    uint32_t* __restrict__ segments) {
  for (int64_t img = blockIdx.y; img < n; img += gridDim.y) {
    const AnglePlane plane = planes[img];
    for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < ppi; k += int64_t{gridDim.x} * blockDim.x) {
      const int64_t px = img * ppi + k;
      const float r = od[3 * px], g = od[3 * px + 1], b = od[3 * px + 2];
      const float x = plane.e2[0] * r + plane.e2[1] * g + plane.e2[2] * b;
      const float y = plane.e1[0] * r + plane.e1[1] * g + plane.e1[2] * b;
      angles[px] = macenko::pseudo_angle(x, y);
      segments[px] = plane.active && mask[px] ? static_cast<uint32_t>(img) : static_cast<uint32_t>(n);
    }
  }
}

}  // namespace

void macenko_fit_cuda(const RgbBatch& in, const MacenkoParams& p, StainFit* fits) {
  const char* op = "macenko_fit_cuda";
  const int64_t n = in.n, ppi = in.pixels_per_image();
  for (int64_t i = 0; i < n; ++i) fits[i] = StainFit{};
  if (n == 0) return;

  stain_cuda::DeviceBatch batch = stain_cuda::upload_batch(in, p.od, op);
  std::vector<int64_t> tissue_counts;
  DeviceBuffer<uint8_t> mask = stain_cuda::tissue_mask(in, batch, p.tissue, p.od, tissue_counts, op);
  const std::vector<double> sums =
      stain_cuda::per_image_sums<9>(n, ppi, CovarianceTerm{batch.od.data(), mask.data(), ppi}, op);

  // np.cov: (Σ od·odᵀ − n·μμᵀ) / (n − 1); eigenvectors on the host.
  std::vector<AnglePlane> planes(n);
  std::vector<double> e1s(3 * n), e2s(3 * n);
  bool any_active = false;
  for (int64_t i = 0; i < n; ++i) {
    AnglePlane& plane = planes[i];
    std::memset(&plane, 0, sizeof(plane));
    const int64_t count = tissue_counts[i];
    fits[i].tissue_pixels = count;
    if (count < 2) {
      fits[i].status = kFitTooFewTissuePixels;
      continue;
    }
    const double* s = &sums[9 * i];
    double* e1 = &e1s[3 * i];
    double* e2 = &e2s[3 * i];
    macenko::plane(count, s, s + 3, e1, e2);
    for (int k = 0; k < 3; ++k) {
      plane.e1[k] = static_cast<float>(e1[k]);
      plane.e2[k] = static_cast<float>(e2[k]);
    }
    plane.active = 1;
    any_active = true;
  }
  if (!any_active) return;

  DeviceBuffer<AnglePlane> d_planes(n, op);
  d_planes.upload(planes.data(), n, op);
  DeviceBuffer<float> angles(batch.pixels(), op);
  DeviceBuffer<uint32_t> segments(batch.pixels(), op);
  HF_CUDA_LAUNCH(op, pseudo_angle_kernel<<<stain_cuda::batch_grid(n, ppi), kThreads>>>(
                     batch.od.data(), mask.data(), n, ppi, d_planes.data(), angles.data(), segments.data()));
  const std::vector<OrderPair> pairs = stain_cuda::segmented_order_pairs(
      angles.data(), segments.data(), batch.pixels(), n, {static_cast<double>(p.alpha), 100.0 - p.alpha}, op);

  for (int64_t i = 0; i < n; ++i) {
    if (!planes[i].active) continue;
    StainFit& fit = fits[i];
    auto angle = [&](const OrderPair& pair) {
      return OrderPair::lerp(macenko::angle_of_pseudo(pair.lo), macenko::angle_of_pseudo(pair.hi), pair.frac);
    };
    const double phi_min = angle(pairs[2 * i]), phi_max = angle(pairs[2 * i + 1]);
    const double* e1 = &e1s[3 * i];
    const double* e2 = &e2s[3 * i];
    if (!macenko_stain_vectors(e1, e2, phi_min, phi_max, p.unit_rows, fit.he)) {
      fit.status = kFitDegenerate;
      continue;
    }
    fit.status = kFitOk;
  }
  stain_cuda::fit_max_c(batch, fits, op);
}

}  // namespace hf
