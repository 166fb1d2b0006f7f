// histoflow_native_bench: every native kernel on every native backend (cpu,
// and cuda where a device is present), without Node — for GPU machines that
// have only CMake and nvcc. Warm-up, repeats, median; the first run reported
// apart. CUDA timings include the host↔device copies, because the `_cuda`
// entry points take host memory (as the addon calls them).
//
// Usage: histoflow_native_bench [--json] [--quick]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "../tests/test_support.h"
#include "color/deconvolution.h"
#include "color/optical_density.h"
#include "core/runtime.h"
#include "stain/macenko.h"
#include "stain/reinhard.h"
#include "stain/stain_fit.h"
#include "stain/vahadane.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Timing {
  double first_s = 0, median_s = 0;
  int repeats = 0;
};

Timing measure(const std::function<void()>& fn, bool quick) {
  Timing t;
  auto seconds = [](Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); };
  auto start = Clock::now();
  fn();
  t.first_s = seconds(start);
  if (!quick) fn();  // warm-up
  std::vector<double> runs;
  const int max_runs = quick ? 1 : 30;
  auto budget = Clock::now();
  while (static_cast<int>(runs.size()) < max_runs && (runs.size() < 3 || seconds(budget) < 1.0)) {
    auto s = Clock::now();
    fn();
    runs.push_back(seconds(s));
  }
  std::sort(runs.begin(), runs.end());
  t.median_s = runs[runs.size() / 2];
  t.repeats = static_cast<int>(runs.size());
  return t;
}

struct Row {
  std::string op, input, backend;
  double megapixels;
  Timing t;
};

}  // namespace

int main(int argc, char** argv) {
  bool json = false, quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json")) json = true;
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else {
      std::fprintf(stderr, "usage: %s [--json] [--quick]\n", argv[0]);
      return 2;
    }
  }
  std::string why;
  const auto devices = hf::cuda_devices(&why);
  std::vector<std::string> backends = {"cpu"};
  if (!devices.empty()) backends.push_back("cuda");

  struct Input {
    std::string name;
    int64_t n, h, w;
  };
  const std::vector<Input> inputs = quick ? std::vector<Input>{{"16x96^2", 16, 96, 96}, {"1x1024^2", 1, 1024, 1024}}
                                          : std::vector<Input>{{"256x96^2", 256, 96, 96}, {"2x1024^2", 2, 1024, 1024}};
  std::vector<Row> rows;
  for (const Input& in : inputs) {
    const auto rgb = hf_test::synthetic_he(in.n, in.h, in.w, 7);
    const hf::RgbBatch batch = hf_test::batch_of(rgb, in.n, in.h, in.w);
    const double mp = static_cast<double>(batch.pixels()) / 1e6;
    std::vector<float> f32(static_cast<size_t>(batch.bytes()));
    std::vector<uint8_t> u8(static_cast<size_t>(batch.bytes()));
    std::vector<hf::StainFit> fits(static_cast<size_t>(in.n));
    std::vector<hf::LabStats> stats(static_cast<size_t>(in.n));
    hf::OdParams od;  // canonical
    od.io = 240, od.offset = 1;
    hf::MacenkoParams mp_params;
    mp_params.od = od;
    hf::VahadaneParams vp;
    vp.od = od;
    hf::StainTransformParams tp;
    tp.od = od;
    const float ref_he[6] = {0.5626f, 0.7201f, 0.4062f, 0.2159f, 0.8012f, 0.5581f};
    std::copy(ref_he, ref_he + 6, tp.target_he);
    tp.target_max_c[0] = 1.9705f, tp.target_max_c[1] = 1.0308f, tp.overflow_value = 254.f;
    const float hed_inv[9] = {1.88f, -0.07f, -0.60f, -1.02f, 1.13f, -0.48f, -0.55f, -0.13f, 1.57f};
    hf::LabStats target;
    target.mean[0] = 70, target.mean[1] = 20, target.mean[2] = -10, target.std[0] = 12, target.std[1] = 8, target.std[2] = 6;

    for (const std::string& b : backends) {
      const bool cuda = b == "cuda";
      auto add = [&](const char* op, const std::function<void()>& fn) {
        rows.push_back({op, in.name, b, mp, measure(fn, quick)});
      };
      add("rgb_to_od", [&] { cuda ? hf::rgb_to_od_cuda(batch, od, f32.data()) : hf::rgb_to_od_cpu(batch, od, f32.data()); });
      add("deconvolve", [&] { cuda ? hf::deconvolve_cuda(batch, hed_inv, f32.data()) : hf::deconvolve_cpu(batch, hed_inv, f32.data()); });
      add("macenko fit+transform", [&] {
        cuda ? hf::macenko_fit_cuda(batch, mp_params, fits.data()) : hf::macenko_fit_cpu(batch, mp_params, fits.data());
        cuda ? hf::stain_transform_cuda(batch, fits.data(), tp, u8.data(), nullptr, nullptr)
             : hf::stain_transform_cpu(batch, fits.data(), tp, u8.data(), nullptr, nullptr);
      });
      add("vahadane fit+transform", [&] {
        cuda ? hf::vahadane_fit_cuda(batch, vp, fits.data()) : hf::vahadane_fit_cpu(batch, vp, fits.data());
        cuda ? hf::stain_transform_cuda(batch, fits.data(), tp, u8.data(), nullptr, nullptr)
             : hf::stain_transform_cpu(batch, fits.data(), tp, u8.data(), nullptr, nullptr);
      });
      add("reinhard fit+transform", [&] {
        cuda ? hf::reinhard_fit_cuda(batch, stats.data()) : hf::reinhard_fit_cpu(batch, stats.data());
        cuda ? hf::reinhard_transform_cuda(batch, target, u8.data()) : hf::reinhard_transform_cpu(batch, target, u8.data());
      });
    }
  }

  const hf::BuildInfo info = hf::build_info();
  if (json) {
    std::printf("{\"env\":{\"simd\":\"%s\",\"threads\":%d,\"cuda_compiled\":%s,\"devices\":[", info.simd.c_str(),
                hf::cpu_threads(), info.cuda ? "true" : "false");
    for (size_t i = 0; i < devices.size(); ++i)
      std::printf("%s{\"name\":\"%s\",\"cc\":\"%d.%d\"}", i ? "," : "", devices[i].name.c_str(), devices[i].major, devices[i].minor);
    std::printf("]},\"results\":[");
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::printf("%s{\"suite\":\"native\",\"case\":\"%s %s\",\"backend\":\"%s\",\"value\":%.3f,\"unit\":\"MP/s\",\"median_s\":%.6f,\"first_s\":%.6f,\"repeats\":%d}",
                  i ? "," : "", r.op.c_str(), r.input.c_str(), r.backend.c_str(), r.megapixels / r.t.median_s, r.t.median_s, r.t.first_s, r.t.repeats);
    }
    std::printf("]}\n");
    return 0;
  }
  std::printf("histoflow native kernels: simd %s, %d CPU threads, CUDA %s%s\n\n", info.simd.c_str(), hf::cpu_threads(),
              info.cuda ? "compiled" : "not compiled", devices.empty() ? (" (no device: " + why + ")").c_str() : "");
  for (const auto& d : devices) std::printf("  device %d: %s, compute %d.%d\n", d.index, d.name.c_str(), d.major, d.minor);
  std::printf("| op | input | backend | MP/s | median ms | first ms | runs |\n| --- | --- | --- | ---: | ---: | ---: | ---: |\n");
  for (const Row& r : rows)
    std::printf("| %s | %s | %s | %.1f | %.3f | %.3f | %d |\n", r.op.c_str(), r.input.c_str(), r.backend.c_str(),
                r.megapixels / r.t.median_s, r.t.median_s * 1e3, r.t.first_s * 1e3, r.t.repeats);
  return 0;
}
