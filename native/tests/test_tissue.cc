// tissue/tissue_mask.h: each step against a brute-force reference written
// differently (direct sums, per-offset disk scans, label propagation), and the
// chain on synthetic slides. CPU only (no CUDA twin: see the header).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "harness.h"
#include "tissue/tissue_mask.h"

using namespace hf;
using namespace hf_test;

namespace {

int32_t otsu_brute(const double hist[256]) {
  int lo = 0, hi = 255;
  while (lo < 256 && hist[lo] == 0) ++lo;
  while (hi >= 0 && hist[hi] == 0) --hi;
  if (lo > hi) return 0;
  if (lo == hi) return lo;
  double best = -1;
  int32_t best_t = lo;
  for (int t = lo; t < hi; ++t) {
    double w0 = 0, s0 = 0, w1 = 0, s1 = 0;
    for (int v = 0; v <= t; ++v) w0 += hist[v], s0 += v * hist[v];
    for (int v = t + 1; v < 256; ++v) w1 += hist[v], s1 += v * hist[v];
    double d = s0 / w0 - s1 / w1, var = w0 * w1 * d * d;
    if (var > best) best = var, best_t = t;
  }
  return best_t;
}

std::vector<uint8_t> morph_brute(const std::vector<uint8_t>& m, int h, int w, int r, bool dilate) {
  std::vector<uint8_t> out(m.size());
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      bool any = false, all = true;
      for (int dy = -r; dy <= r; ++dy)
        for (int dx = -r; dx <= r; ++dx) {
          if (dx * dx + dy * dy > r * r) continue;
          int yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          bool set = m[yy * w + xx] != 0;
          any |= set;
          all &= set;
        }
      out[y * w + x] = (dilate ? any : all) ? 255 : 0;
    }
  return out;
}

// 8-connected labels by repeated min-propagation until nothing changes.
std::vector<int> labels_brute(const std::vector<uint8_t>& m, int h, int w, bool value) {
  std::vector<int> label(m.size(), -1);
  for (size_t i = 0; i < m.size(); ++i)
    if ((m[i] != 0) == value) label[i] = static_cast<int>(i);
  for (bool changed = true; changed;) {
    changed = false;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        int i = y * w + x;
        if (label[i] < 0) continue;
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) {
            int yy = y + dy, xx = x + dx;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w || label[yy * w + xx] < 0) continue;
            if (label[yy * w + xx] < label[i]) label[i] = label[yy * w + xx], changed = true;
          }
      }
  }
  return label;
}

std::vector<uint8_t> random_mask(std::mt19937& rng, int h, int w, double density) {
  std::bernoulli_distribution on(density);
  std::vector<uint8_t> m(static_cast<size_t>(h) * w);
  for (auto& v : m) v = on(rng) ? 255 : 0;
  return m;
}

}  // namespace

HF_TEST("otsu_threshold equals the direct between-class variance maximiser on random histograms") {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    double hist[256] = {0};
    int lo = rng() % 200, span = 1 + rng() % (256 - lo), samples = 1 + rng() % 3000;
    for (int i = 0; i < samples; ++i) hist[lo + (rng() % span) * (rng() % span) / span] += 1;
    CHECK(otsu_threshold(hist) == otsu_brute(hist));
  }
  double empty[256] = {0};
  CHECK(otsu_threshold(empty) == 0);
}

HF_TEST("dilation and erosion with disk(r) equal a per-offset scan, odd sizes and 1x1") {
  std::mt19937 rng(9);
  for (auto [h, w] : {std::pair{1, 1}, {1, 9}, {7, 1}, {17, 23}, {40, 33}}) {
    auto m = random_mask(rng, h, w, 0.4);
    std::vector<uint8_t> out(m.size());
    for (int r : {1, 2, 3, 6}) {
      dilate_disk_cpu(m.data(), h, w, r, out.data());
      CHECK(out == morph_brute(m, h, w, r, true));
      erode_disk_cpu(m.data(), h, w, r, out.data());
      CHECK(out == morph_brute(m, h, w, r, false));
    }
  }
}

HF_TEST("remove_small_components drops small objects and fills small holes as label propagation says") {
  std::mt19937 rng(13);
  for (auto [h, w] : {std::pair{1, 1}, {9, 14}, {31, 27}}) {
    auto m = random_mask(rng, h, w, 0.45);
    for (auto [min_object, max_hole] : {std::pair<int64_t, int64_t>{4, 0}, {0, 5}, {7, 7}}) {
      std::vector<uint8_t> expected = m;
      if (min_object > 1) {
        auto label = labels_brute(expected, h, w, true);
        for (size_t i = 0; i < m.size(); ++i)
          if (label[i] >= 0 && std::count(label.begin(), label.end(), label[i]) < min_object) expected[i] = 0;
      }
      if (max_hole > 0) {
        auto label = labels_brute(expected, h, w, false);
        std::vector<bool> border(m.size(), false);
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x)
            if ((y == 0 || x == 0 || y == h - 1 || x == w - 1) && label[y * w + x] >= 0) border[label[y * w + x]] = true;
        for (size_t i = 0; i < m.size(); ++i)
          if (label[i] >= 0 && !border[label[i]] && std::count(label.begin(), label.end(), label[i]) <= max_hole) expected[i] = 255;
      }
      std::vector<uint8_t> got = m;
      remove_small_components_cpu(got.data(), h, w, min_object, max_hole);
      CHECK(got == expected);
    }
  }
}

HF_TEST("the chain finds a stained disk on glass and nothing on blank glass") {
  const int h = 120, w = 150;
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0, 3);
  std::vector<uint8_t> rgb(h * w * 3), blank(h * w * 3);
  auto clamp8 = [](double v) { return static_cast<uint8_t>(std::min(255.0, std::max(0.0, std::round(v)))); };
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      bool disk = (x - 70) * (x - 70) + (y - 60) * (y - 60) <= 35 * 35;
      const double base[3] = {disk ? 200.0 : 236.0, disk ? 120.0 : 234.0, disk ? 180.0 : 238.0};
      for (int c = 0; c < 3; ++c) {
        rgb[(y * w + x) * 3 + c] = clamp8(base[c] + noise(rng));
        blank[(y * w + x) * 3 + c] = clamp8(236.0 + noise(rng));
      }
    }
  TissueParams p;
  p.dilation_radius = 0;
  p.min_object_area = 16;
  std::vector<uint8_t> mask(h * w);
  TissueResult r = tissue_mask_cpu(rgb.data(), h, w, p, mask.data());
  int64_t inter = 0, uni = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      bool disk = (x - 70) * (x - 70) + (y - 60) * (y - 60) <= 35 * 35, got = mask[y * w + x] != 0;
      inter += disk && got;
      uni += disk || got;
    }
  CHECK(static_cast<double>(inter) / uni >= 0.97);
  CHECK(r.tissue_pixels == static_cast<int64_t>(std::count(mask.begin(), mask.end(), uint8_t{255})));
  p.min_threshold = 20;
  TissueResult b = tissue_mask_cpu(blank.data(), h, w, p, mask.data());
  CHECK(b.tissue_pixels == 0);
  CHECK(b.threshold >= 20);
}
