// histoflow_cuda_bench: every CUDA twin timed with CUDA events at sizes that
// fill the chip (4,096 patches of 96², 16 images of 2048²), each twice: the
// whole call (host↔device copies and allocations included, as the addon calls
// it) and its kernels alone (core/cuda_check.cuh's kernel_clock: the summed
// spans of its launches). The device-to-device copy bandwidth is measured in
// the same run, and each per-pixel kernel's bytes (input read once, output
// written once) over its kernel time are given as a fraction of it. The cpu
// backend of this machine runs the same calls for the speed-ups (every op on
// the first input, the fits on both).
// Warm-up first, then repeats (median; first run reported apart); inputs are
// random, never zeros. Kernels from the same inputs each repeat: the inputs are
// far larger than the L2.
//
// Usage: histoflow_cuda_bench [--json FILE] [--quick]
//   --quick: one size (256 patches of 96²), few repeats: a check of the bench
//   itself (sanitizer runs, CI machines with a GPU).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "../tests/test_support.h"
#include "augment/augment.h"
#include "color/deconvolution.h"
#include "color/optical_density.h"
#include "core/cuda_check.cuh"
#include "core/runtime.h"
#include "stain/macenko.h"
#include "stain/reinhard.h"
#include "stain/stain_fit.h"
#include "stain/vahadane.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  double first_ms = 0, median_ms = 0, min_ms = 0;
  int repeats = 0;
};

Stats summarize(double first, std::vector<double> runs) {
  Stats s;
  s.first_ms = first;
  std::sort(runs.begin(), runs.end());
  s.median_ms = runs[runs.size() / 2];
  s.min_ms = runs.front();
  s.repeats = static_cast<int>(runs.size());
  return s;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Repeats `fn` (after a first run and `warmup` more) until `max_runs` or
// `budget_s`, at least `min_runs`; `time_one` times one call in ms.
Stats repeat(const std::function<double()>& time_one, int warmup, int min_runs, int max_runs, double budget_s) {
  const double first = time_one();
  for (int i = 0; i < warmup; ++i) time_one();
  std::vector<double> runs;
  const auto start = Clock::now();
  auto more = [&] {
    const int done = static_cast<int>(runs.size());
    return done < max_runs && (done < min_runs || seconds_since(start) < budget_s);
  };
  while (more()) runs.push_back(time_one());
  return summarize(first, runs);
}

void check(cudaError_t status, const char* call) { hf::cuda_check(status, "cuda_bench", call); }

// The whole call between two events on the default stream; the entry points
// are synchronous (they end with a copy to pageable host memory).
double event_ms(const std::function<void()>& fn) {
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "cudaEventCreate");
  check(cudaEventCreate(&b), "cudaEventCreate");
  check(cudaEventRecord(a), "cudaEventRecord");
  fn();
  check(cudaEventRecord(b), "cudaEventRecord");
  check(cudaEventSynchronize(b), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms;
}

double kernel_ms(const std::function<void()>& fn) {
  hf::kernel_clock::take_ms();  // drop anything left
  hf::kernel_clock::enable(true);
  fn();
  const double ms = hf::kernel_clock::take_ms();
  hf::kernel_clock::enable(false);
  return ms;
}

double host_ms(const std::function<void()>& fn) {
  const auto t = Clock::now();
  fn();
  return seconds_since(t) * 1e3;
}

struct Copy {
  double d2d_gbps = 0, h2d_gbps = 0, d2h_gbps = 0;  // GB/s; d2d counts bytes read + written
  Stats d2d, h2d, d2h;
  size_t bytes = 0;
};

// Device-to-device copy of 1 GiB of random bytes (and pageable host copies of
// 256 MiB), median of repeats after warm-up.
Copy measure_copy(bool quick) {
  Copy c;
  c.bytes = quick ? (size_t{64} << 20) : (size_t{1} << 30);
  const size_t host_bytes = std::min(c.bytes, size_t{256} << 20);
  hf::DeviceBuffer<uint8_t> src(c.bytes, "cuda_bench"), dst(c.bytes, "cuda_bench");
  std::vector<uint8_t> host(host_bytes);
  uint64_t state = 0x243f6a8885a308d3ull;  // splitmix64: random bytes, not zeros
  for (size_t i = 0; i + 8 <= host_bytes; i += 8) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    std::memcpy(&host[i], &z, 8);
  }
  for (size_t off = 0; off < c.bytes; off += host_bytes)
    check(cudaMemcpy(src.data() + off, host.data(), std::min(host_bytes, c.bytes - off), cudaMemcpyHostToDevice),
          "cudaMemcpy");
  auto d2d = [&] { check(cudaMemcpy(dst.data(), src.data(), c.bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy"); };
  c.d2d = repeat([&] { return event_ms(d2d); }, 3, 10, 30, 1.0);
  c.h2d = repeat([&] { return event_ms([&] { src.upload(host.data(), host_bytes, "cuda_bench"); }); }, 1, 3, 10, 1.0);
  c.d2h = repeat([&] { return event_ms([&] { src.download(host.data(), host_bytes, "cuda_bench"); }); }, 1, 3, 10, 1.0);
  c.d2d_gbps = 2.0 * static_cast<double>(c.bytes) / (c.d2d.median_ms * 1e-3) / 1e9;
  c.h2d_gbps = static_cast<double>(host_bytes) / (c.h2d.median_ms * 1e-3) / 1e9;
  c.d2h_gbps = static_cast<double>(host_bytes) / (c.d2h.median_ms * 1e-3) / 1e9;
  return c;
}

struct Row {
  std::string op, input;
  bool bandwidth_bound = false;
  double megapixels = 0, bytes = 0;  // minimal bytes moved by the kernels
  Stats with_transfers, kernels, cpu;
  bool has_cpu = false;
};

// Random augmentation parameters for a training batch: every step on except
// the elastic field (its PyTorch peer would be a different algorithm); one blur
// sigma for all images, so the PyTorch peer can use one separable kernel
// (benchmarks/peers/gpu_torch.py draws the same kinds of parameters).
std::vector<hf::AugmentImageParams> bench_augment_params(int64_t n, uint64_t seed) {
  hf_test::Lcg rng(seed);
  std::vector<hf::AugmentImageParams> params(n);
  for (hf::AugmentImageParams& p : params) {
    p.d4 = static_cast<int>(rng.uniform() * 8);
    p.hed_enabled = 1;
    for (int k = 0; k < 3; ++k) {
      p.hed_alpha[k] = static_cast<float>(1 + 0.1 * (rng.uniform() - 0.5));
      p.hed_beta[k] = static_cast<float>(0.1 * (rng.uniform() - 0.5));
    }
    p.brightness = static_cast<float>(0.8 + 0.4 * rng.uniform());
    p.contrast = static_cast<float>(0.8 + 0.4 * rng.uniform());
    p.saturation = static_cast<float>(0.8 + 0.4 * rng.uniform());
    p.hue = static_cast<float>(0.1 * (rng.uniform() - 0.5));
    p.blur_sigma = 1.0f;
    p.noise_sigma = 0.02f;
    p.noise_seed = static_cast<uint64_t>(rng.uniform() * 0x1.0p53);
  }
  return params;
}

std::string json_stats(const Stats& s) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "{\"median_ms\":%.6f,\"min_ms\":%.6f,\"first_ms\":%.6f,\"repeats\":%d}", s.median_ms,
                s.min_ms, s.first_ms, s.repeats);
  return buf;
}

// The whole report as JSON (rewritten after every row, so a run cut short by
// a time limit still leaves what it measured; "complete" says whether it ended).
bool write_json(const char* path, const hf::CudaDevice& dev, int driver, int runtime, bool quick, const Copy& copy,
                const std::vector<Row>& rows, bool complete) {
  FILE* f = std::fopen(path, "w");
  if (!f) {
    std::perror(path);
    return false;
  }
  const hf::BuildInfo info = hf::build_info();
  std::fprintf(f, "{\"device\":{\"name\":\"%s\",\"compute\":\"%d.%d\",\"multiprocessors\":%d,\"memory_bytes\":%zu,"
                  "\"driver_api\":%d,\"runtime\":%d},\"cpu\":{\"simd\":\"%s\",\"threads\":%d},\"quick\":%s,"
                  "\"complete\":%s,\n",
               dev.name.c_str(), dev.major, dev.minor, dev.multiprocessors, dev.total_memory, driver, runtime,
               info.simd.c_str(), hf::cpu_threads(), quick ? "true" : "false", complete ? "true" : "false");
  std::fprintf(f, "\"copy\":{\"bytes\":%zu,\"d2d_gbps\":%.3f,\"h2d_pageable_gbps\":%.3f,\"d2h_pageable_gbps\":%.3f,"
                  "\"d2d\":%s,\"h2d\":%s,\"d2h\":%s},\n\"kernels\":[",
               copy.bytes, copy.d2d_gbps, copy.h2d_gbps, copy.d2h_gbps, json_stats(copy.d2d).c_str(),
               json_stats(copy.h2d).c_str(), json_stats(copy.d2h).c_str());
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const double gbps = r.bytes / (r.kernels.median_ms * 1e-3) / 1e9;
    std::fprintf(f, "%s\n{\"op\":\"%s\",\"input\":\"%s\",\"megapixels\":%.4f,\"bandwidth_bound\":%s,\"min_bytes\":%.0f,"
                    "\"whole_call\":%s,\"kernels\":%s,\"kernel_gbps\":%.3f,\"fraction_of_copy\":%.4f",
                 i ? "," : "", r.op.c_str(), r.input.c_str(), r.megapixels, r.bandwidth_bound ? "true" : "false",
                 r.bytes,
                 json_stats(r.with_transfers).c_str(), json_stats(r.kernels).c_str(), gbps, gbps / copy.d2d_gbps);
    if (r.has_cpu)
      std::fprintf(f, ",\"cpu\":%s,\"speedup_whole_call\":%.3f", json_stats(r.cpu).c_str(),
                   r.cpu.median_ms / r.with_transfers.median_ms);
    std::fprintf(f, "}");
  }
  std::fprintf(f, "\n]}\n");
  return std::fclose(f) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* json_path = nullptr;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else {
      std::fprintf(stderr, "usage: %s [--json FILE] [--quick]\n", argv[0]);
      return 2;
    }
  }
  std::string why;
  const auto devices = hf::cuda_devices(&why);
  if (devices.empty()) {
    std::fprintf(stderr, "histoflow_cuda_bench: no CUDA device (%s)\n", why.c_str());
    return 3;
  }
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  const hf::CudaDevice& dev = devices[0];
  std::printf("device: %s, compute %d.%d, %d SMs, %.1f GiB; driver API %d, runtime %d; %d CPU threads\n",
              dev.name.c_str(), dev.major, dev.minor, dev.multiprocessors, dev.total_memory / 1073741824.0, driver,
              runtime, hf::cpu_threads());
  std::fflush(stdout);

  const Copy copy = measure_copy(quick);
  std::printf("device-to-device copy: %.1f GB/s (read + write, %zu MiB, median of %d); host→device %.1f GB/s, "
              "device→host %.1f GB/s (pageable)\n",
              copy.d2d_gbps, copy.bytes >> 20, copy.d2d.repeats, copy.h2d_gbps, copy.d2h_gbps);
  std::fflush(stdout);

  struct Input {
    std::string name;
    int64_t n, h, w;
  };
  const std::vector<Input> inputs =
      quick ? std::vector<Input>{{"256x96^2", 256, 96, 96}}
            : std::vector<Input>{{"4096x96^2", 4096, 96, 96}, {"16x2048^2", 16, 2048, 2048}};
  const int warmup = quick ? 0 : 2, min_runs = quick ? 1 : 5, max_runs = quick ? 2 : 30;
  const double budget = quick ? 0.2 : 0.6;
  std::vector<Row> rows;
  for (const Input& in : inputs) {
    const auto rgb = hf_test::synthetic_he(in.n, in.h, in.w, 7, 0.3);
    const hf::RgbBatch batch = hf_test::batch_of(rgb, in.n, in.h, in.w);
    const double px = static_cast<double>(batch.pixels());
    std::vector<float> f32(static_cast<size_t>(batch.bytes())), od(static_cast<size_t>(batch.bytes()));
    std::vector<uint8_t> u8(static_cast<size_t>(batch.bytes()));
    std::vector<hf::StainFit> fits(static_cast<size_t>(in.n)), fixed(static_cast<size_t>(in.n));
    std::vector<hf::LabStats> stats(static_cast<size_t>(in.n));
    const hf::OdParams canonical{240.f, 1.f, -INFINITY};
    hf::MacenkoParams mp;
    mp.od = canonical;
    hf::VahadaneParams vp;
    vp.od = hf::OdParams{255.f, 0.f, 1e-6f};
    vp.tissue.rule = hf::TissueRule::Luminosity;
    hf::StainTransformParams tp;
    tp.od = canonical;
    const float ref_he[6] = {0.5626f, 0.7201f, 0.4062f, 0.2159f, 0.8012f, 0.5581f};
    std::copy(ref_he, ref_he + 6, tp.target_he);
    tp.target_max_c[0] = 1.9705f, tp.target_max_c[1] = 1.0308f, tp.overflow_value = 254.f;
    const float ruifrok[6] = {0.65f, 0.70f, 0.29f, 0.07f, 0.99f, 0.11f};
    double inv[9];
    hf_test::invert3(hf_test::kRgbFromHed, inv);
    float hed_from_rgb[9], rgb_from_hed[9];
    for (int k = 0; k < 9; ++k) {
      hed_from_rgb[k] = static_cast<float>(inv[k]);
      rgb_from_hed[k] = static_cast<float>(hf_test::kRgbFromHed[k]);
    }
    hf::LabStats target;
    target.mean[0] = 70, target.mean[1] = 20, target.mean[2] = -10;
    target.std[0] = 12, target.std[1] = 8, target.std[2] = 6;
    hf::stain_fit_fixed_cpu(batch, ruifrok, canonical, fixed.data());
    hf::rgb_to_od_cpu(batch, canonical, od.data());
    hf::AugmentBatchParams ab;
    ab.crop_h = ab.out_h = static_cast<int32_t>(in.h), ab.crop_w = ab.out_w = static_cast<int32_t>(in.w);
    const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 3; ++c) ab.mean[c] = mean[c], ab.std[c] = sd[c];
    const auto aug = bench_augment_params(in.n, 11);

    // op, bandwidth-bound, minimal bytes a pixel, cuda call, cpu call.
    auto add = [&](const char* op, bool bandwidth_bound, double bytes_per_px, const std::function<void()>& cuda,
                   const std::function<void()>& cpu) {
      Row r;
      r.op = op, r.input = in.name, r.bandwidth_bound = bandwidth_bound;
      r.megapixels = px / 1e6, r.bytes = bytes_per_px * px;
      r.with_transfers = repeat([&] { return event_ms(cuda); }, warmup, min_runs, max_runs, budget);
      r.kernels = repeat([&] { return kernel_ms(cuda); }, 0, min_runs, max_runs, budget);
      // The cpu backend on the first input for every op, on the others for the
      // fits alone (the run must stay within its minutes).
      if (cpu && (&in == &inputs.front() || !bandwidth_bound)) {
        r.cpu = repeat([&] { return host_ms(cpu); }, 0, quick ? 1 : 2, quick ? 1 : 10, budget);
        r.has_cpu = true;
      }
      std::printf("  %-24s %-10s whole call %9.3f ms, kernels %9.3f ms%s\n", op, in.name.c_str(), r.with_transfers.median_ms,
                  r.kernels.median_ms, r.has_cpu ? (", cpu " + std::to_string(r.cpu.median_ms) + " ms").c_str() : "");
      std::fflush(stdout);
      rows.push_back(r);
      if (json_path) write_json(json_path, dev, driver, runtime, quick, copy, rows, false);
    };
    add("rgb_to_od", true, 3 + 12, [&] { hf::rgb_to_od_cuda(batch, canonical, f32.data()); },
        [&] { hf::rgb_to_od_cpu(batch, canonical, f32.data()); });
    add("od_to_rgb", true, 12 + 3, [&] { hf::od_to_rgb_cuda(od.data(), batch.pixels(), canonical, u8.data()); },
        [&] { hf::od_to_rgb_cpu(od.data(), batch.pixels(), canonical, u8.data()); });
    add("deconvolve", true, 3 + 12, [&] { hf::deconvolve_cuda(batch, hed_from_rgb, f32.data()); },
        [&] { hf::deconvolve_cpu(batch, hed_from_rgb, f32.data()); });
    add("reconvolve", true, 12 + 3, [&] { hf::reconvolve_cuda(od.data(), batch.pixels(), rgb_from_hed, u8.data()); },
        [&] { hf::reconvolve_cpu(od.data(), batch.pixels(), rgb_from_hed, u8.data()); });
    add("stain_transform", true, 3 + 3,
        [&] { hf::stain_transform_cuda(batch, fixed.data(), tp, u8.data(), nullptr, nullptr); },
        [&] { hf::stain_transform_cpu(batch, fixed.data(), tp, u8.data(), nullptr, nullptr); });
    add("stain_concentrations", true, 3 + 8,
        [&] { hf::stain_concentrations_cuda(batch, fixed.data(), canonical, f32.data()); },
        [&] { hf::stain_concentrations_cpu(batch, fixed.data(), canonical, f32.data()); });
    add("augment", true, 3 + 12, [&] { hf::augment_cuda(batch, aug.data(), ab, f32.data()); },
        [&] { hf::augment_cpu(batch, aug.data(), ab, f32.data()); });
    add("reinhard_transform", true, 3 + 3, [&] { hf::reinhard_transform_cuda(batch, target, u8.data()); },
        [&] { hf::reinhard_transform_cpu(batch, target, u8.data()); });
    add("stain_fit_fixed", false, 3, [&] { hf::stain_fit_fixed_cuda(batch, ruifrok, canonical, fits.data()); },
        [&] { hf::stain_fit_fixed_cpu(batch, ruifrok, canonical, fits.data()); });
    add("reinhard fit+transform", false, 3 + 3,
        [&] {
          hf::reinhard_fit_cuda(batch, stats.data());
          hf::reinhard_transform_cuda(batch, target, u8.data());
        },
        [&] {
          hf::reinhard_fit_cpu(batch, stats.data());
          hf::reinhard_transform_cpu(batch, target, u8.data());
        });
    add("macenko fit+transform", false, 3 + 3,
        [&] {
          hf::macenko_fit_cuda(batch, mp, fits.data());
          hf::stain_transform_cuda(batch, fits.data(), tp, u8.data(), nullptr, nullptr);
        },
        [&] {
          hf::macenko_fit_cpu(batch, mp, fits.data());
          hf::stain_transform_cpu(batch, fits.data(), tp, u8.data(), nullptr, nullptr);
        });
    add("vahadane fit+transform", false, 3 + 3,
        [&] {
          hf::vahadane_fit_cuda(batch, vp, fits.data());
          hf::stain_transform_cuda(batch, fits.data(), tp, u8.data(), nullptr, nullptr);
        },
        [&] {
          hf::vahadane_fit_cpu(batch, vp, fits.data());
          hf::stain_transform_cpu(batch, fits.data(), tp, u8.data(), nullptr, nullptr);
        });
  }

  // Table: GB/s of the kernels alone over the copy bandwidth; speed-up over cpu.
  std::printf("\n| op | input | whole call ms | kernels ms | kernel GB/s | of copy | cpu ms | cuda/cpu |\n"
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const Row& r : rows) {
    const double gbps = r.bytes / (r.kernels.median_ms * 1e-3) / 1e9;
    std::printf("| %s | %s | %.3f | %.3f | %s | %s | %s | %s |\n", r.op.c_str(), r.input.c_str(), r.with_transfers.median_ms,
                r.kernels.median_ms, r.bandwidth_bound ? std::to_string(static_cast<int>(gbps)).c_str() : "",
                r.bandwidth_bound ? (std::to_string(static_cast<int>(100 * gbps / copy.d2d_gbps)) + "%").c_str() : "",
                r.has_cpu ? std::to_string(r.cpu.median_ms).c_str() : "",
                r.has_cpu ? (std::to_string(r.cpu.median_ms / r.with_transfers.median_ms) + "x").c_str() : "");
  }

  if (json_path && !write_json(json_path, dev, driver, runtime, quick, copy, rows, true)) return 1;
  return 0;
}
