// The stain transform, concentrations and fixed-stain fit on the device, and
// the pieces every CUDA stain method shares (stain_cuda.cuh): OD upload, tissue
// masks, segmented order statistics and max_c. Formulas in stain_fit.h; the
// per-level tables (OD, tissue rule) and the transform's matrix are the CPU
// reference's own (stain_fit_internal.h), and so is the rendering of a value
// (render_value), one thread per pixel. The CPU's faster table path
// (render_tables: products of per-level exp factors, taken when every exponent
// is within ±40) has no twin here.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>

#include <cub/device/device_radix_sort.cuh>

#include "color/od_table.cuh"
#include "core/runtime.h"
#include "stain/stain_cuda.cuh"
#include "stain/stain_math.h"
// nvcc's host pass has no -fopenmp, so parallel.h's OpenMP pragmas (reached
// through stain_fit_internal.h) would only draw warnings; nothing here runs a
// parallel_for.
#undef HISTOFLOW_WITH_OPENMP
#include "stain/stain_fit_internal.h"

namespace hf {
namespace stain_cuda {

namespace {

__global__ void od_kernel(const uint8_t* __restrict__ rgb, int64_t values, const float* __restrict__ table,
                          float* __restrict__ od) {
  __shared__ float od_of[256];
  load_byte_table(table, od_of);
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < values; k += int64_t{gridDim.x} * blockDim.x)
    od[k] = od_of[rgb[k]];
}

// The CPU reference's tissue rule (stain_cpu::TissueTable: a sum of three
// per-level scores below a bound), one table per image (table_stride 1) or one
// for all (0). The block-uniform loop lets __syncthreads_count tally each
// block's tissue pixels.
__global__ void tissue_kernel(const uint8_t* __restrict__ rgb, int64_t n, int64_t ppi,
                              const stain_cpu::TissueTable* __restrict__ tables, int table_stride,
                              uint8_t* __restrict__ mask, unsigned long long* __restrict__ counts) {
  using stain_cpu::TissueTable;
  static_assert(sizeof(TissueTable) % sizeof(float) == 0, "TissueTable is copied as floats");
  constexpr int kTableFloats = sizeof(TissueTable) / sizeof(float);
  constexpr int kScore = offsetof(TissueTable, score) / sizeof(float);
  constexpr int kBelow = offsetof(TissueTable, below) / sizeof(float);
  __shared__ float table[kTableFloats];  // raw floats: a __shared__ TissueTable would need its initializers run
  for (int64_t img = blockIdx.y; img < n; img += gridDim.y) {
    const float* src = reinterpret_cast<const float*>(tables + img * table_stride);
    __syncthreads();  // the previous image's table is no longer read
    for (int i = threadIdx.x; i < kTableFloats; i += blockDim.x) table[i] = src[i];
    __syncthreads();
    const float* score = table + kScore;
    const float below = table[kBelow];
    for (int64_t base = blockIdx.x * int64_t{blockDim.x}; base < ppi; base += int64_t{gridDim.x} * blockDim.x) {
      const int64_t k = base + threadIdx.x;
      bool tissue = false;
      if (k < ppi) {
        const uint8_t* px = rgb + (img * ppi + k) * 3;
        tissue = score[px[0]] + score[256 + px[1]] + score[512 + px[2]] < below;
        mask[img * ppi + k] = tissue;
      }
      const int block_count = __syncthreads_count(tissue);
      if (threadIdx.x == 0 && block_count > 0) atomicAdd(&counts[img], static_cast<unsigned long long>(block_count));
    }
  }
}

// Radix-sortable bits of a float: their unsigned order is the numeric order.
__device__ inline uint32_t float_order_bits(float f) {
  uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ inline float float_from_order_bits(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

__global__ void segment_keys_kernel(const float* __restrict__ values, const uint32_t* __restrict__ segments,
                                    int64_t count, uint32_t segment_count, unsigned long long* __restrict__ keys) {
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < count; k += int64_t{gridDim.x} * blockDim.x) {
    const uint32_t s = segments[k] < segment_count ? segments[k] : segment_count;
    keys[k] = (static_cast<unsigned long long>(s) << 32) | float_order_bits(values[k]);
  }
}

// Each segment's order pairs from the sorted keys; its bounds by binary search.
// pairs: (lo, hi, frac) per segment and percent.
__global__ void segment_order_pairs_kernel(const unsigned long long* __restrict__ sorted, int64_t count,
                                           uint32_t segment_count, const double* __restrict__ percents,
                                           int percent_count, double* __restrict__ pairs) {
  auto lower_bound = [&](unsigned long long key) {
    int64_t lo = 0, hi = count;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (sorted[mid] < key) lo = mid + 1; else hi = mid;
    }
    return lo;
  };
  for (int64_t s = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; s < segment_count;
       s += int64_t{gridDim.x} * blockDim.x) {
    const int64_t begin = lower_bound(static_cast<unsigned long long>(s) << 32);
    const int64_t size = lower_bound(static_cast<unsigned long long>(s + 1) << 32) - begin;
    for (int j = 0; j < percent_count; ++j) {
      double* out = pairs + (s * percent_count + j) * 3;
      if (size == 0) {
        out[0] = out[1] = out[2] = nan("");
        continue;
      }
      const OrderRank rank = percentile_rank(percents[j], size);
      out[0] = float_from_order_bits(static_cast<uint32_t>(sorted[begin + rank.k]));
      out[1] = rank.has_next ? float_from_order_bits(static_cast<uint32_t>(sorted[begin + rank.k + 1])) : out[0];
      out[2] = rank.frac;
    }
  }
}

struct PinvImage {
  float pinv[6];  // float, as the CPU reference multiplies
  int32_t active;
};

// Least-squares concentrations of every pixel of the active images, laid out
// for segmented_order_pairs: segment 2·image + stain.
__global__ void concentration_segments_kernel(const float* __restrict__ od, int64_t n, int64_t ppi,
                                              const PinvImage* __restrict__ images, float* __restrict__ values,
                                              uint32_t* __restrict__ segments) {
  for (int64_t img = blockIdx.y; img < n; img += gridDim.y) {
    const PinvImage im = images[img];
    for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < ppi; k += int64_t{gridDim.x} * blockDim.x) {
      const int64_t px = img * ppi + k;
      const float r = od[3 * px], g = od[3 * px + 1], b = od[3 * px + 2];
      values[2 * px] = im.pinv[0] * r + im.pinv[1] * g + im.pinv[2] * b;
      values[2 * px + 1] = im.pinv[3] * r + im.pinv[4] * g + im.pinv[5] * b;
      const uint32_t none = static_cast<uint32_t>(2 * n);
      segments[2 * px] = im.active ? static_cast<uint32_t>(2 * img) : none;
      segments[2 * px + 1] = im.active ? static_cast<uint32_t>(2 * img + 1) : none;
    }
  }
}

}  // namespace

dim3 batch_grid(int64_t n, int64_t items_per_image) {
  const unsigned x = grid_blocks(items_per_image, kThreads, 4096);
  const unsigned y = static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(n, 1), 65535));
  return dim3(x, y);
}

DeviceBatch upload_batch(const RgbBatch& in, const OdParams& od, const char* op) {
  DeviceBatch batch;
  batch.n = in.n;
  batch.pixels_per_image = in.pixels_per_image();
  const int64_t values = in.bytes();
  batch.rgb = DeviceBuffer<uint8_t>(values, op);
  batch.od = DeviceBuffer<float>(values, op);
  if (values == 0) return batch;
  batch.rgb.upload(in.data, values, op);
  const stain_cpu::OdTable table = stain_cpu::make_od_table(od);
  DeviceBuffer<float> d_table(256, op);
  d_table.upload(table.od, 256, op);
  HF_CUDA_LAUNCH(op, od_kernel<<<grid_blocks(values, kThreads), kThreads>>>(batch.rgb.data(), values, d_table.data(),
                                                                            batch.od.data()));
  return batch;
}

DeviceBuffer<uint8_t> tissue_mask(const RgbBatch& in, const DeviceBatch& batch, const TissueParams& tissue,
                                  const OdParams& od, std::vector<int64_t>& counts, const char* op) {
  const int64_t n = batch.n, ppi = batch.pixels_per_image;
  DeviceBuffer<uint8_t> mask(batch.pixels(), op);
  counts.assign(n, 0);
  if (batch.pixels() == 0) return mask;
  // The rule's tables come from the CPU reference itself (stain_tables_cpu.cc),
  // so both backends always apply the same rule; the luminosity rule's table
  // depends on the image (one pass over its values on the host).
  std::vector<stain_cpu::TissueTable> tables(tissue.rule == TissueRule::Luminosity ? n : 1);
  for (size_t i = 0; i < tables.size(); ++i)
    stain_cpu::make_tissue_table(in.image(static_cast<int64_t>(i)), ppi, tissue, od, cpu_threads(), &tables[i]);
  DeviceBuffer<stain_cpu::TissueTable> d_tables(tables.size(), op);
  d_tables.upload(tables.data(), tables.size(), op);
  DeviceBuffer<unsigned long long> d_counts(n, op);
  d_counts.zero(op);
  const int table_stride = tables.size() > 1 ? 1 : 0;
  HF_CUDA_LAUNCH(op, tissue_kernel<<<batch_grid(n, ppi), kThreads>>>(batch.rgb.data(), n, ppi, d_tables.data(),
                                                                     table_stride, mask.data(), d_counts.data()));
  std::vector<unsigned long long> host_counts(n);
  d_counts.download(host_counts.data(), n, op);
  for (int64_t i = 0; i < n; ++i) counts[i] = static_cast<int64_t>(host_counts[i]);
  return mask;
}

std::vector<OrderPair> segmented_order_pairs(const float* values, const uint32_t* segments, int64_t count,
                                             int64_t segment_count, const std::vector<double>& percents,
                                             const char* op) {
  const int percent_count = static_cast<int>(percents.size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<OrderPair> result(segment_count * percent_count, OrderPair{nan, nan, nan});
  if (count == 0 || segment_count == 0 || percent_count == 0) return result;
  int segment_bits = 0;  // enough for the ids 0..segment_count (the last one: no segment)
  while ((int64_t{1} << segment_bits) <= segment_count) ++segment_bits;

  DeviceBuffer<unsigned long long> keys(count, op), sorted(count, op);
  HF_CUDA_LAUNCH(op, segment_keys_kernel<<<grid_blocks(count, kThreads), kThreads>>>(
                     values, segments, count, static_cast<uint32_t>(segment_count), keys.data()));
  size_t temp_bytes = 0;
  cuda_check(cub::DeviceRadixSort::SortKeys(nullptr, temp_bytes, keys.data(), sorted.data(), count, 0,
                                            32 + segment_bits),
             op, "cub::DeviceRadixSort::SortKeys");
  DeviceBuffer<unsigned char> temp(temp_bytes, op);
  HF_CUDA_LAUNCH(op, cuda_check(cub::DeviceRadixSort::SortKeys(temp.data(), temp_bytes, keys.data(), sorted.data(),
                                                               count, 0, 32 + segment_bits),
                                op, "cub::DeviceRadixSort::SortKeys"));

  DeviceBuffer<double> d_percents(percent_count, op), d_pairs(result.size() * 3, op);
  d_percents.upload(percents.data(), percent_count, op);
  HF_CUDA_LAUNCH(op, segment_order_pairs_kernel<<<grid_blocks(segment_count, kThreads), kThreads>>>(
                     sorted.data(), count, static_cast<uint32_t>(segment_count), d_percents.data(), percent_count,
                     d_pairs.data()));
  std::vector<double> pairs(result.size() * 3);
  d_pairs.download(pairs.data(), pairs.size(), op);
  for (size_t i = 0; i < result.size(); ++i) {
    result[i].lo = pairs[3 * i];
    result[i].hi = pairs[3 * i + 1];
    result[i].frac = pairs[3 * i + 2];
  }
  return result;
}

size_t fit_scratch_bytes() {
  const char* v = std::getenv("HISTOFLOW_CUDA_SCRATCH_BYTES");
  if (v != nullptr && *v != '\0') {
    char* end = nullptr;
    const unsigned long long bytes = std::strtoull(v, &end, 10);
    if (end != v && *end == '\0' && bytes > 0) return static_cast<size_t>(bytes);
  }
  return kFitScratchBytes;
}

void fit_max_c(const DeviceBatch& batch, StainFit* fits, const char* op) {
  const int64_t n = batch.n, ppi = batch.pixels_per_image;
  std::vector<PinvImage> images(n);
  bool any_active = false;
  for (int64_t i = 0; i < n; ++i) {
    PinvImage& im = images[i];
    std::memset(&im, 0, sizeof(im));
    if (fits[i].status != kFitOk) continue;
    double pinv[6];
    if (ppi < 1 || !stain_pinv(fits[i].he, pinv)) {
      fits[i].status = kFitDegenerate;
      fits[i].max_c[0] = fits[i].max_c[1] = 0.f;
      continue;
    }
    for (int k = 0; k < 6; ++k) im.pinv[k] = static_cast<float>(pinv[k]);
    im.active = 1;
    any_active = true;
  }
  if (!any_active) return;
  DeviceBuffer<PinvImage> d_images(n, op);
  d_images.upload(images.data(), n, op);
  // Images are independent segments, so the batch goes through in chunks of
  // whole images whose scratch fits the bound (at least one image a chunk);
  // the order statistics, hence the results, are those of one pass.
  const int64_t chunk = std::max<int64_t>(
      1, std::min<int64_t>(n, static_cast<int64_t>(fit_scratch_bytes() / (kFitScratchPerPixel * ppi))));
  DeviceBuffer<float> values(2 * chunk * ppi, op);
  DeviceBuffer<uint32_t> segments(2 * chunk * ppi, op);
  for (int64_t first = 0; first < n; first += chunk) {
    const int64_t count = std::min(chunk, n - first), pixels = count * ppi;
    bool chunk_active = false;
    for (int64_t i = first; i < first + count; ++i) chunk_active = chunk_active || images[i].active;
    if (!chunk_active) continue;
    HF_CUDA_LAUNCH(op, concentration_segments_kernel<<<batch_grid(count, ppi), kThreads>>>(
                       batch.od.data() + 3 * first * ppi, count, ppi, d_images.data() + first, values.data(),
                       segments.data()));
    const std::vector<OrderPair> pairs =
        segmented_order_pairs(values.data(), segments.data(), 2 * pixels, 2 * count, {99.0}, op);
    for (int64_t i = first; i < first + count; ++i) {
      if (!images[i].active) continue;
      StainFit& fit = fits[i];
      fit.max_c[0] = static_cast<float>(pairs[2 * (i - first)].interpolate());
      fit.max_c[1] = static_cast<float>(pairs[2 * (i - first) + 1].interpolate());
      if (!(fit.max_c[0] > 0.f) || !(fit.max_c[1] > 0.f) || !std::isfinite(fit.max_c[0]) ||
          !std::isfinite(fit.max_c[1]))
        fit.status = kFitDegenerate;
    }
  }
}

}  // namespace stain_cuda

// ---- stain_fit.h entry points ------------------------------------------------------

namespace {

using stain_cuda::kThreads;

// Per image: M = HE_targetᵀ·diag(max_c_target / max_c)·pinv for both stains,
// hematoxylin alone and eosin alone (3x3 each, float as the CPU reference).
struct TransformImage {
  float m[3][9];
  int32_t fitted;
};


// Macenko 2009 eq. 5-6: out = io·exp(−M·od), values above 255 become
// overflow_value, then truncate to uint8. Unfitted images are copied unchanged.
__global__ void stain_transform_kernel(const uint8_t* __restrict__ rgb, const float* __restrict__ od, int64_t n,
                                       int64_t ppi, const TransformImage* __restrict__ images, float io,
                                       float overflow_value, uint8_t* __restrict__ out, uint8_t* __restrict__ h_only,
                                       uint8_t* __restrict__ e_only) {
  uint8_t* const outputs[3] = {out, h_only, e_only};
  for (int64_t img = blockIdx.y; img < n; img += gridDim.y) {
    const bool fitted = images[img].fitted != 0;
    for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < ppi; k += int64_t{gridDim.x} * blockDim.x) {
      const int64_t base = (img * ppi + k) * 3;
      if (!fitted) {
        for (uint8_t* dst : outputs)
          if (dst)
            for (int j = 0; j < 3; ++j) dst[base + j] = rgb[base + j];
        continue;
      }
      const float r = od[base], g = od[base + 1], b = od[base + 2];
      for (int v = 0; v < 3; ++v) {
        if (!outputs[v]) continue;
        const float* m = images[img].m[v];
        for (int j = 0; j < 3; ++j)
          outputs[v][base + j] =
              stain_cpu::render_value(io, -(m[3 * j] * r + m[3 * j + 1] * g + m[3 * j + 2] * b), overflow_value);
      }
    }
  }
}

struct ConcentrationImage {
  float pinv[6];  // zeros when the stain matrix is singular
};

__global__ void concentrations_kernel(const float* __restrict__ od, int64_t n, int64_t ppi,
                                      const ConcentrationImage* __restrict__ images, float* __restrict__ out) {
  for (int64_t img = blockIdx.y; img < n; img += gridDim.y) {
    const ConcentrationImage im = images[img];
    for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < ppi; k += int64_t{gridDim.x} * blockDim.x) {
      const int64_t px = img * ppi + k;
      const float r = od[3 * px], g = od[3 * px + 1], b = od[3 * px + 2];
      out[2 * px] = im.pinv[0] * r + im.pinv[1] * g + im.pinv[2] * b;
      out[2 * px + 1] = im.pinv[3] * r + im.pinv[4] * g + im.pinv[5] * b;
    }
  }
}

}  // namespace

void stain_transform_cuda(const RgbBatch& in, const StainFit* fits, const StainTransformParams& p, uint8_t* out,
                          uint8_t* h_only, uint8_t* e_only) {
  const char* op = "stain_transform_cuda";
  const int64_t n = in.n, ppi = in.pixels_per_image(), values = in.bytes();
  if (values == 0) return;
  std::vector<TransformImage> images(n);
  for (int64_t i = 0; i < n; ++i) {
    TransformImage& im = images[i];
    std::memset(&im, 0, sizeof(im));
    const StainFit& fit = fits[i];
    double pinv[6];
    if (fit.status != kFitOk || !stain_pinv(fit.he, pinv) || !(fit.max_c[0] > 0.f) || !(fit.max_c[1] > 0.f))
      continue;
    const bool use_h[3] = {true, true, false}, use_e[3] = {true, false, true};
    for (int v = 0; v < 3; ++v) {
      double m[9];
      stain_cpu::transform_matrix(p, fit, pinv, use_h[v], use_e[v], m);
      for (int k = 0; k < 9; ++k) im.m[v][k] = static_cast<float>(m[k]);
    }
    im.fitted = 1;
  }
  stain_cuda::DeviceBatch batch = stain_cuda::upload_batch(in, p.od, op);
  DeviceBuffer<TransformImage> d_images(n, op);
  d_images.upload(images.data(), n, op);
  DeviceBuffer<uint8_t> d_out(values, op), d_h(h_only ? values : 0, op), d_e(e_only ? values : 0, op);
  HF_CUDA_LAUNCH(op, stain_transform_kernel<<<stain_cuda::batch_grid(n, ppi), kThreads>>>(
                     batch.rgb.data(), batch.od.data(), n, ppi, d_images.data(), p.od.io, p.overflow_value,
                     d_out.data(), d_h.data(), d_e.data()));
  d_out.download(out, values, op);
  if (h_only) d_h.download(h_only, values, op);
  if (e_only) d_e.download(e_only, values, op);
}

void stain_concentrations_cuda(const RgbBatch& in, const StainFit* fits, const OdParams& od, float* out) {
  const char* op = "stain_concentrations_cuda";
  const int64_t n = in.n, ppi = in.pixels_per_image();
  if (in.pixels() == 0) return;
  std::vector<ConcentrationImage> images(n);
  for (int64_t i = 0; i < n; ++i) {
    double pinv[6];
    const bool solvable = stain_pinv(fits[i].he, pinv);
    for (int k = 0; k < 6; ++k) images[i].pinv[k] = solvable ? static_cast<float>(pinv[k]) : 0.f;
  }
  stain_cuda::DeviceBatch batch = stain_cuda::upload_batch(in, od, op);
  DeviceBuffer<ConcentrationImage> d_images(n, op);
  d_images.upload(images.data(), n, op);
  DeviceBuffer<float> d_out(2 * in.pixels(), op);
  HF_CUDA_LAUNCH(op, concentrations_kernel<<<stain_cuda::batch_grid(n, ppi), kThreads>>>(
                     batch.od.data(), n, ppi, d_images.data(), d_out.data()));
  d_out.download(out, 2 * in.pixels(), op);
}

void stain_fit_fixed_cuda(const RgbBatch& in, const float he[6], const OdParams& od, StainFit* fits) {
  const char* op = "stain_fit_fixed_cuda";
  for (int64_t i = 0; i < in.n; ++i) {
    fits[i] = StainFit{};
    std::copy(he, he + 6, fits[i].he);
    fits[i].tissue_pixels = in.pixels_per_image();
    fits[i].status = kFitOk;
  }
  if (in.n == 0) return;
  stain_cuda::DeviceBatch batch = stain_cuda::upload_batch(in, od, op);
  stain_cuda::fit_max_c(batch, fits, op);
}

}  // namespace hf
