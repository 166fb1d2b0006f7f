// Every CUDA twin against its CPU kernel on fresh random inputs each run (the
// seed is printed; HISTOFLOW_PARITY_SEED=<seed> replays a run). Outputs are
// poisoned first and every element is checked written; each twin runs twice,
// under two poisons, and the two results must be bit-identical (a race or a
// read of unwritten memory shows as a difference). Tolerances: ≤ 1 grey level
// on images, ≤ 1e-4 relative (|gpu − cpu| ≤ 1e-4·max(1, |cpu|)) on floats.
// Shapes: 1x1, odd sizes, batch 1, batch 257 and, unless
// HISTOFLOW_PARITY_SIZE=small (the sanitizer runs), a batch that fills the
// chip (4,096 patches of 96²) and one large odd image.
//
// Twins covered (12, every *_cuda entry point): rgb_to_od, od_to_rgb,
// deconvolve, reconvolve, stain_fit_fixed (and its chunked max_c), stain_transform (all three
// outputs), stain_concentrations, macenko_fit, vahadane_fit, reinhard_fit,
// reinhard_transform, augment.
//
// One line per (twin, shape) starts with "PARITY " and holds a JSON object
// (twin, shape, metric, worst, tol, unwritten, nondeterministic) for
// scripts/gpu-check.sh to collect.
#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "augment/augment.h"
#include "augment_params.h"
#include "color/deconvolution.h"
#include "color/optical_density.h"
#include "harness.h"
#include "stain/macenko.h"
#include "stain/reinhard.h"
#include "stain/stain_fit.h"
#include "stain/vahadane.h"
#include "test_support.h"

using namespace hf;
using namespace hf_test;

namespace {

struct Shape {
  int64_t n, h, w;
  int64_t pixels() const { return n * h * w; }
  std::string name() const { return std::to_string(n) + "x" + std::to_string(h) + "x" + std::to_string(w); }
};

// The run's seed: HISTOFLOW_PARITY_SEED, else drawn from the OS; printed once.
uint64_t run_seed() {
  static const uint64_t seed = [] {
    uint64_t s = 0;
    const char* env = std::getenv("HISTOFLOW_PARITY_SEED");
    if (env != nullptr && *env != '\0') {
      s = std::strtoull(env, nullptr, 10);
    } else {
      std::random_device rd;
      s = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
          static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
    std::printf("cuda parity: seed %" PRIu64 " (HISTOFLOW_PARITY_SEED=%" PRIu64 " replays it)\n", s, s);
    return s;
  }();
  return seed;
}

bool full_size() {
  const char* env = std::getenv("HISTOFLOW_PARITY_SIZE");
  return env == nullptr || std::strcmp(env, "small") != 0;
}

// 1x1, odd sizes, batch 1 and 257; full size adds the chip-filling batch and a
// large odd image.
std::vector<Shape> shapes() {
  std::vector<Shape> s = {{1, 1, 1}, {1, 37, 53}, {3, 211, 173}, {257, 13, 11}};
  if (full_size()) s.push_back({4096, 96, 96}), s.push_back({1, 1531, 2039});
  return s;
}

// A seed of its own for every (twin, shape), derived from the run's.
uint64_t case_seed(const char* twin, const Shape& s) {
  uint64_t h = run_seed() ^ 0x9e3779b97f4a7c15ull;
  auto mix = [&](uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xbf58476d1ce4e5b9ull;
  };
  for (const char* c = twin; *c; ++c) mix(static_cast<unsigned char>(*c));
  mix(static_cast<uint64_t>(s.n)), mix(static_cast<uint64_t>(s.h)), mix(static_cast<uint64_t>(s.w));
  return h;
}

// Every byte value, uniformly.
std::vector<uint8_t> random_bytes(size_t count, uint64_t seed) {
  std::vector<uint8_t> v(count);
  Lcg rng(seed);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng.uniform() * 256);
  return v;
}

// H&E-like images (random background share), about one in twelve replaced by
// a flat colour or by uniform noise, so fit statuses other than ok are hit.
std::vector<uint8_t> random_tissue(const Shape& s, uint64_t seed) {
  Lcg rng(seed);
  auto rgb = synthetic_he(s.n, s.h, s.w, seed, 0.1 + 0.4 * rng.uniform());
  const size_t per = static_cast<size_t>(s.h * s.w * 3);
  for (int64_t i = 0; i < s.n && s.n > 1; ++i) {
    const double u = rng.uniform();
    uint8_t* img = &rgb[i * per];
    if (u < 1.0 / 24) {
      const uint8_t c[3] = {static_cast<uint8_t>(rng.uniform() * 256), static_cast<uint8_t>(rng.uniform() * 256),
                            static_cast<uint8_t>(rng.uniform() * 256)};
      for (size_t k = 0; k < per; ++k) img[k] = c[k % 3];
    } else if (u < 1.0 / 12) {
      for (size_t k = 0; k < per; ++k) img[k] = static_cast<uint8_t>(rng.uniform() * 256);
    }
  }
  return rgb;
}

struct Outcome {
  double worst = 0;          // largest error under the metric
  int64_t unwritten = 0;     // elements that kept the poison
  int64_t nondeterministic = 0;  // elements that differ between the two runs
};

void report(const char* twin, const Shape& s, const char* metric, const Outcome& o, double tol) {
  char worst[32] = "null";  // JSON has no infinity
  if (std::isfinite(o.worst)) std::snprintf(worst, sizeof worst, "%.9g", o.worst);
  std::printf("PARITY {\"twin\":\"%s\",\"shape\":\"%s\",\"metric\":\"%s\",\"worst\":%s,\"tol\":%g,"
              "\"unwritten\":%" PRId64 ",\"nondeterministic\":%" PRId64 ",\"seed\":\"%" PRIu64 "\"}\n",
              twin, s.name().c_str(), metric, worst, tol, o.unwritten, o.nondeterministic, run_seed());
  std::fflush(stdout);
  if (!(o.worst <= tol)) {
    std::ostringstream os;
    os << twin << " " << s.name() << ": worst " << metric << " error " << o.worst << " > " << tol;
    record_failure(__FILE__, __LINE__, os.str());
  }
  if (o.unwritten != 0)
    record_failure(__FILE__, __LINE__, std::string(twin) + " " + s.name() + ": " + std::to_string(o.unwritten) +
                                           " output elements never written");
  if (o.nondeterministic != 0)
    record_failure(__FILE__, __LINE__, std::string(twin) + " " + s.name() + ": " +
                                           std::to_string(o.nondeterministic) + " elements differ between two runs");
}

// A quiet NaN with a payload no arithmetic produces.
constexpr uint32_t kPoisonBits = 0x7fa5a5a5u;

// Runs `twin(out)` twice on NaN-poisoned outputs of `count` floats: the first
// result, with unwritten and run-to-run differences counted into `o`.
template <typename Twin>
std::vector<float> run_f32(size_t count, Twin twin, Outcome& o) {
  std::vector<uint32_t> a(count, kPoisonBits), b(count, kPoisonBits);
  twin(reinterpret_cast<float*>(a.data()));
  twin(reinterpret_cast<float*>(b.data()));
  for (size_t i = 0; i < count; ++i) {
    if (a[i] == kPoisonBits || b[i] == kPoisonBits) ++o.unwritten;
    else if (a[i] != b[i]) ++o.nondeterministic;
  }
  std::vector<float> out(count);
  std::memcpy(out.data(), a.data(), count * sizeof(float));
  return out;
}

// The same for bytes: two poisons (0xA5, 0x5A); a byte that holds each run's
// poison was never written.
template <typename Twin>
std::vector<uint8_t> run_u8(size_t count, Twin twin, Outcome& o) {
  std::vector<uint8_t> a(count, 0xA5), b(count, 0x5A);
  twin(a.data());
  twin(b.data());
  for (size_t i = 0; i < count; ++i) {
    if (a[i] == 0xA5 && b[i] == 0x5A) ++o.unwritten;
    else if (a[i] != b[i]) ++o.nondeterministic;
  }
  return a;
}

// Largest |gpu − cpu| / max(1, |cpu|); a NaN on one side only counts as infinite.
double worst_relative(const float* gpu, const float* cpu, size_t count) {
  double worst = 0;
  for (size_t i = 0; i < count; ++i) {
    if (std::isnan(gpu[i]) && std::isnan(cpu[i])) continue;
    const double d = std::fabs(double(gpu[i]) - double(cpu[i])) / std::max(1.0, std::fabs(double(cpu[i])));
    worst = std::max(worst, std::isnan(d) ? INFINITY : d);
  }
  return worst;
}

double worst_levels(const uint8_t* gpu, const uint8_t* cpu, size_t count) {
  return byte_diff(gpu, cpu, count).max;
}

// Fits, twice under two poisons; a status out of range was never written.
template <typename Twin>
std::vector<StainFit> run_fits(int64_t n, Twin twin, Outcome& o) {
  std::vector<StainFit> a(n), b(n);
  std::memset(static_cast<void*>(a.data()), 0xA5, n * sizeof(StainFit));
  std::memset(static_cast<void*>(b.data()), 0x5A, n * sizeof(StainFit));
  twin(a.data());
  twin(b.data());
  for (int64_t i = 0; i < n; ++i) {
    const bool same = a[i].status == b[i].status && a[i].tissue_pixels == b[i].tissue_pixels &&
                      std::memcmp(a[i].he, b[i].he, sizeof(a[i].he)) == 0 &&
                      std::memcmp(a[i].max_c, b[i].max_c, sizeof(a[i].max_c)) == 0;
    if (!same) ++o.nondeterministic;
    if (a[i].status < kFitOk || a[i].status > kFitDegenerate) ++o.unwritten;
  }
  return a;
}

// Statuses and tissue counts must match the CPU's exactly; he and max_c are
// floats (compared where both fitted).
void compare_fits(const char* twin, const Shape& s, const std::vector<StainFit>& gpu, const std::vector<StainFit>& cpu,
                  Outcome o, bool compare_tissue) {
  int64_t status_mismatch = 0, tissue_mismatch = 0;
  for (int64_t i = 0; i < s.n; ++i) {
    if (gpu[i].status != cpu[i].status) ++status_mismatch;
    if (compare_tissue && gpu[i].tissue_pixels != cpu[i].tissue_pixels) ++tissue_mismatch;
    if (gpu[i].status != kFitOk || cpu[i].status != kFitOk) continue;
    o.worst = std::max(o.worst, worst_relative(gpu[i].he, cpu[i].he, 6));
    o.worst = std::max(o.worst, worst_relative(gpu[i].max_c, cpu[i].max_c, 2));
  }
  report(twin, s, "relative", o, 1e-4);
  if (status_mismatch != 0)
    record_failure(__FILE__, __LINE__, std::string(twin) + " " + s.name() + ": " + std::to_string(status_mismatch) +
                                           " fit statuses differ from the CPU's");
  if (tissue_mismatch != 0)
    record_failure(__FILE__, __LINE__, std::string(twin) + " " + s.name() + ": " + std::to_string(tissue_mismatch) +
                                           " tissue pixel counts differ from the CPU's");
}

const OdParams kCanonicalOd{240.f, 1.f, -INFINITY};
const OdParams kTiatoolboxOd{255.f, 0.f, 1e-6f};
const float kRuifrokHe[6] = {0.65f, 0.70f, 0.29f, 0.07f, 0.99f, 0.11f};

StainTransformParams transform_params(const OdParams& od) {
  StainTransformParams p;
  p.od = od;
  const float target[6] = {0.5626f, 0.7201f, 0.4062f, 0.2159f, 0.8012f, 0.5581f};
  std::copy(target, target + 6, p.target_he);
  p.target_max_c[0] = 1.9705f, p.target_max_c[1] = 1.0308f;
  p.overflow_value = 254.f;
  return p;
}

}  // namespace

HF_TEST("cuda parity: rgb_to_od equals the CPU on random bytes") {
  SKIP_WITHOUT_CUDA();
  for (const Shape& s : shapes()) {
    const auto rgb = random_bytes(s.pixels() * 3, case_seed("rgb_to_od", s));
    const RgbBatch in = batch_of(rgb, s.n, s.h, s.w);
    Outcome o;
    for (const OdParams& p : {kCanonicalOd, kTiatoolboxOd}) {
      std::vector<float> cpu(rgb.size());
      rgb_to_od_cpu(in, p, cpu.data());
      const auto gpu = run_f32(rgb.size(), [&](float* out) { rgb_to_od_cuda(in, p, out); }, o);
      o.worst = std::max(o.worst, worst_relative(gpu.data(), cpu.data(), cpu.size()));
    }
    report("rgb_to_od", s, "relative", o, 1e-4);
  }
}

HF_TEST("cuda parity: od_to_rgb equals the CPU within one level") {
  SKIP_WITHOUT_CUDA();
  for (const Shape& s : shapes()) {
    const uint64_t seed = case_seed("od_to_rgb", s);
    const auto rgb = random_bytes(s.pixels() * 3, seed);
    std::vector<float> od(rgb.size());
    rgb_to_od_cpu(batch_of(rgb, s.n, s.h, s.w), kCanonicalOd, od.data());
    Lcg rng(seed + 1);
    for (float& v : od) v += static_cast<float>(rng.uniform() - 0.5);  // between levels, and below 0
    std::vector<uint8_t> cpu(rgb.size());
    od_to_rgb_cpu(od.data(), s.pixels(), kCanonicalOd, cpu.data());
    Outcome o;
    const auto gpu =
        run_u8(rgb.size(), [&](uint8_t* out) { od_to_rgb_cuda(od.data(), s.pixels(), kCanonicalOd, out); }, o);
    o.worst = worst_levels(gpu.data(), cpu.data(), cpu.size());
    report("od_to_rgb", s, "levels", o, 1);
  }
}

HF_TEST("cuda parity: deconvolve and reconvolve equal the CPU") {
  SKIP_WITHOUT_CUDA();
  double inv[9];
  invert3(kRgbFromHed, inv);
  float stain_from_rgb[9], rgb_from_stain[9];
  for (int k = 0; k < 9; ++k) {
    stain_from_rgb[k] = static_cast<float>(inv[k]);
    rgb_from_stain[k] = static_cast<float>(kRgbFromHed[k]);
  }
  for (const Shape& s : shapes()) {
    const auto rgb = random_bytes(s.pixels() * 3, case_seed("deconvolve", s));
    const RgbBatch in = batch_of(rgb, s.n, s.h, s.w);
    std::vector<float> cpu(rgb.size());
    deconvolve_cpu(in, stain_from_rgb, cpu.data());
    Outcome o;
    const auto gpu = run_f32(rgb.size(), [&](float* out) { deconvolve_cuda(in, stain_from_rgb, out); }, o);
    o.worst = worst_relative(gpu.data(), cpu.data(), cpu.size());
    report("deconvolve", s, "relative", o, 1e-4);

    std::vector<uint8_t> back_cpu(rgb.size());
    reconvolve_cpu(cpu.data(), s.pixels(), rgb_from_stain, back_cpu.data());
    Outcome ob;
    const auto back_gpu =
        run_u8(rgb.size(), [&](uint8_t* out) { reconvolve_cuda(cpu.data(), s.pixels(), rgb_from_stain, out); }, ob);
    ob.worst = worst_levels(back_gpu.data(), back_cpu.data(), rgb.size());
    report("reconvolve", s, "levels", ob, 1);
  }
}

HF_TEST("cuda parity: fixed-stain fits, their chunked max_c, concentrations and the stain transform equal the CPU") {
  SKIP_WITHOUT_CUDA();
  for (const Shape& s : shapes()) {
    const auto rgb = random_tissue(s, case_seed("stain_transform", s));
    const RgbBatch in = batch_of(rgb, s.n, s.h, s.w);
    const StainTransformParams p = transform_params(kCanonicalOd);

    std::vector<StainFit> fits(s.n);
    stain_fit_fixed_cpu(in, kRuifrokHe, p.od, fits.data());
    Outcome of;
    const auto fits_gpu = run_fits(s.n, [&](StainFit* out) { stain_fit_fixed_cuda(in, kRuifrokHe, p.od, out); }, of);
    compare_fits("stain_fit_fixed", s, fits_gpu, fits, of, true);

    // The same fits with max_c's scratch bounded to about a fifth of the batch
    // (64 bytes a pixel, stain_cuda.cuh): chunked must equal one pass bit for bit.
    if (s.n > 1) {
      const std::string bound = std::to_string(std::max<int64_t>(1, s.n / 5) * s.h * s.w * 64);
      setenv("HISTOFLOW_CUDA_SCRATCH_BYTES", bound.c_str(), 1);
      std::vector<StainFit> chunked(s.n);
      stain_fit_fixed_cuda(in, kRuifrokHe, p.od, chunked.data());
      unsetenv("HISTOFLOW_CUDA_SCRATCH_BYTES");
      int64_t differ = 0;
      for (int64_t i = 0; i < s.n; ++i)
        differ += chunked[i].status != fits_gpu[i].status ||
                  std::memcmp(chunked[i].max_c, fits_gpu[i].max_c, sizeof(chunked[i].max_c)) != 0;
      if (differ != 0)
        record_failure(__FILE__, __LINE__,
                       s.name() + ": " + std::to_string(differ) + " chunked max_c differ from one pass");
    }

    const size_t bytes = rgb.size();
    std::vector<uint8_t> cpu(bytes), cpu_h(bytes), cpu_e(bytes);
    stain_transform_cpu(in, fits.data(), p, cpu.data(), cpu_h.data(), cpu_e.data());
    Outcome ot;
    // One call writes all three outputs; each is poisoned and checked.
    std::vector<uint8_t> h_a(bytes, 0xA5), h_b(bytes, 0x5A), e_a(bytes, 0xA5), e_b(bytes, 0x5A);
    int call = 0;
    const auto gpu = run_u8(bytes, [&](uint8_t* out) {
      const bool first = call++ == 0;
      stain_transform_cuda(in, fits.data(), p, out, first ? h_a.data() : h_b.data(), first ? e_a.data() : e_b.data());
    }, ot);
    for (const auto* pair : {&h_a, &e_a}) {
      const std::vector<uint8_t>& a = *pair;
      const std::vector<uint8_t>& b = pair == &h_a ? h_b : e_b;
      for (size_t i = 0; i < bytes; ++i) {
        if (a[i] == 0xA5 && b[i] == 0x5A) ++ot.unwritten;
        else if (a[i] != b[i]) ++ot.nondeterministic;
      }
    }
    ot.worst = std::max({worst_levels(gpu.data(), cpu.data(), bytes), worst_levels(h_a.data(), cpu_h.data(), bytes),
                         worst_levels(e_a.data(), cpu_e.data(), bytes)});
    report("stain_transform", s, "levels", ot, 1);

    std::vector<float> c_cpu(s.pixels() * 2);
    stain_concentrations_cpu(in, fits.data(), p.od, c_cpu.data());
    Outcome oc;
    const auto c_gpu =
        run_f32(c_cpu.size(), [&](float* out) { stain_concentrations_cuda(in, fits.data(), p.od, out); }, oc);
    oc.worst = worst_relative(c_gpu.data(), c_cpu.data(), c_cpu.size());
    report("stain_concentrations", s, "relative", oc, 1e-4);
  }
}

HF_TEST("cuda parity: macenko fits equal the CPU (canonical and tiatoolbox settings)") {
  SKIP_WITHOUT_CUDA();
  for (const Shape& s : shapes()) {
    const auto rgb = random_tissue(s, case_seed("macenko_fit", s));
    const RgbBatch in = batch_of(rgb, s.n, s.h, s.w);
    for (bool tia : {false, true}) {
      MacenkoParams p;
      p.od = kCanonicalOd;
      if (tia) p.od = kTiatoolboxOd, p.tissue.rule = TissueRule::Luminosity, p.unit_rows = true;
      std::vector<StainFit> cpu(s.n);
      macenko_fit_cpu(in, p, cpu.data());
      Outcome o;
      const auto gpu = run_fits(s.n, [&](StainFit* out) { macenko_fit_cuda(in, p, out); }, o);
      compare_fits(tia ? "macenko_fit(tiatoolbox)" : "macenko_fit", s, gpu, cpu, o, true);
    }
  }
}

HF_TEST("cuda parity: vahadane fits equal the CPU") {
  SKIP_WITHOUT_CUDA();
  for (const Shape& s : shapes()) {
    const auto rgb = random_tissue(s, case_seed("vahadane_fit", s));
    const RgbBatch in = batch_of(rgb, s.n, s.h, s.w);
    VahadaneParams p;
    p.od = kTiatoolboxOd;
    p.tissue.rule = TissueRule::Luminosity;
    p.seed = case_seed("vahadane_seed", s);
    std::vector<StainFit> cpu(s.n);
    vahadane_fit_cpu(in, p, cpu.data());
    Outcome o;
    const auto gpu = run_fits(s.n, [&](StainFit* out) { vahadane_fit_cuda(in, p, out); }, o);
    compare_fits("vahadane_fit", s, gpu, cpu, o, true);
  }
}

HF_TEST("cuda parity: reinhard statistics and transfer equal the CPU") {
  SKIP_WITHOUT_CUDA();
  for (const Shape& s : shapes()) {
    const auto rgb = random_tissue(s, case_seed("reinhard", s));
    const RgbBatch in = batch_of(rgb, s.n, s.h, s.w);
    std::vector<LabStats> cpu(s.n), a(s.n), b(s.n);
    reinhard_fit_cpu(in, cpu.data());
    for (int64_t i = 0; i < s.n; ++i)
      for (int c = 0; c < 3; ++c) a[i].mean[c] = b[i].mean[c] = NAN, a[i].std[c] = b[i].std[c] = NAN;
    reinhard_fit_cuda(in, a.data());
    reinhard_fit_cuda(in, b.data());
    Outcome o;
    for (int64_t i = 0; i < s.n; ++i) {
      for (int c = 0; c < 3; ++c) {
        if (std::isnan(a[i].mean[c]) || std::isnan(a[i].std[c])) ++o.unwritten;
        if (a[i].mean[c] != b[i].mean[c] || a[i].std[c] != b[i].std[c]) ++o.nondeterministic;
        for (auto [g, r] : {std::pair<double, double>{a[i].mean[c], cpu[i].mean[c]}, {a[i].std[c], cpu[i].std[c]}})
          o.worst = std::max(o.worst, std::fabs(g - r) / std::max(1.0, std::fabs(r)));
      }
      if (a[i].pixels != cpu[i].pixels)
        record_failure(__FILE__, __LINE__, s.name() + ": image " + std::to_string(i) + " counts " +
                                               std::to_string(a[i].pixels) + " pixels, the CPU " +
                                               std::to_string(cpu[i].pixels));
    }
    report("reinhard_fit", s, "relative", o, 1e-4);

    LabStats target;
    target.mean[0] = 70, target.mean[1] = 20, target.mean[2] = -10;
    target.std[0] = 12, target.std[1] = 8, target.std[2] = 6;
    std::vector<uint8_t> out_cpu(rgb.size());
    reinhard_transform_cpu(in, target, out_cpu.data());
    Outcome ot;
    const auto out_gpu = run_u8(rgb.size(), [&](uint8_t* out) { reinhard_transform_cuda(in, target, out); }, ot);
    ot.worst = worst_levels(out_gpu.data(), out_cpu.data(), rgb.size());
    report("reinhard_transform", s, "levels", ot, 1);
  }
}

namespace {

// Every augmentation step drawn at random per image (each on about half the
// time), as src/augment/params.ts would draw them.
std::vector<AugmentImageParams> random_augment(uint64_t seed, const Shape& s, const AugmentBatchParams& b) {
  Lcg rng(seed);
  std::vector<AugmentImageParams> params(s.n);
  for (AugmentImageParams& p : params) {
    p = random_params(rng, s.h, s.w, b);
    // A quarter turn of a non-square output would change its shape: flips and half turns only.
    if (b.out_h != b.out_w) p.d4 &= 6;
  }
  return params;
}

}  // namespace

HF_TEST("cuda parity: the augmentation pipeline equals the CPU (crops, resizes, every step at random)") {
  SKIP_WITHOUT_CUDA();
  for (const Shape& s : shapes()) {
    const uint64_t seed = case_seed("augment", s);
    const auto rgb = random_tissue(s, seed);
    const RgbBatch in = batch_of(rgb, s.n, s.h, s.w);
    Lcg rng(seed + 1);
    // Crop a random window of the image, and resize it (or not) to a random size.
    AugmentBatchParams b;
    b.crop_h = 1 + static_cast<int>(rng.uniform() * s.h);
    b.crop_w = 1 + static_cast<int>(rng.uniform() * s.w);
    if (rng.uniform() < 0.5 || s.h * s.w > 4'000'000) {
      b.out_h = b.crop_h, b.out_w = b.crop_w;
    } else {
      b.out_h = 1 + static_cast<int>(rng.uniform() * 2 * s.h);
      b.out_w = 1 + static_cast<int>(rng.uniform() * 2 * s.w);
    }
    if (s.n == 4096) b.crop_h = b.crop_w = b.out_h = b.out_w = 96;  // the training batch: whole patches
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std_[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 3; ++c) b.mean[c] = mean[c], b.std[c] = std_[c];
    const auto params = random_augment(seed + 2, s, b);
    const size_t count = static_cast<size_t>(s.n) * b.out_h * b.out_w * 3;
    std::vector<float> cpu(count);
    augment_cpu(in, params.data(), b, cpu.data());
    Outcome o;
    const auto gpu = run_f32(count, [&](float* out) { augment_cuda(in, params.data(), b, out); }, o);
    o.worst = worst_relative(gpu.data(), cpu.data(), count);
    const Shape out_shape{s.n, b.out_h, b.out_w};
    report("augment", out_shape, "relative", o, 1e-4);
  }
}
