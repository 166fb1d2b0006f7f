// Tissue detection chain (tissue/tissue_mask.h). Thumbnail-sized images: rows
// in parallel where a step is per-pixel, plain loops where it is global
// (histogram, components).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "tissue/tissue_mask.h"

namespace hf {

namespace {

constexpr int64_t kMinRows = 16;

// deephistopath filter_red_pen / filter_green_pen / filter_blue_pen: a pixel is
// ink when it passes any one rule. Red: r > R, g < G, b < B. Green: r < R, g > G,
// b > B. Blue: r < R, g < G, b > B.
struct InkRule {
  uint8_t r, g, b;
};
constexpr InkRule kRedPen[] = {{150, 80, 90},  {110, 20, 30},   {185, 65, 105}, {195, 85, 125}, {220, 115, 145},
                               {125, 40, 70},  {200, 120, 150}, {100, 50, 65},  {85, 25, 45},
                               // histoflow's addition: dark maroon ink (e.g. 72,22,37 on histolab's
                               // no-tissue-red-pen tile), darker than deephistopath's rules reach.
                               {60, 35, 60}};
constexpr InkRule kGreenPen[] = {{150, 160, 140}, {70, 110, 110},  {45, 115, 100}, {30, 75, 60},   {195, 220, 210},
                                 {225, 230, 225}, {170, 210, 200}, {20, 30, 20},   {50, 60, 40},   {30, 50, 35},
                                 {65, 70, 60},    {100, 110, 105}, {165, 180, 180}, {140, 140, 150}, {185, 195, 195}};
constexpr InkRule kBluePen[] = {{60, 120, 190},  {120, 170, 200}, {175, 210, 230}, {145, 180, 210},
                                {37, 95, 160},   {30, 65, 130},   {130, 155, 180}, {40, 35, 85},
                                {30, 20, 65},    {90, 90, 140},   {60, 60, 120},   {110, 110, 175}};

// Half-widths of disk(radius) per row offset dy ∈ [−r, r]: x² + y² ≤ r².
std::vector<int32_t> disk_half_widths(int32_t radius) {
  std::vector<int32_t> hw(2 * radius + 1);
  for (int32_t dy = -radius; dy <= radius; ++dy) {
    int32_t w = 0;
    while ((w + 1) * (w + 1) + dy * dy <= radius * radius) ++w;
    hw[dy + radius] = w;
  }
  return hw;
}

// Row prefix sums of "set" pixels: prefix[y*(W+1) + x] = set pixels in row y before x.
std::vector<int32_t> row_prefix(const uint8_t* in, int64_t height, int64_t width) {
  std::vector<int32_t> prefix(height * (width + 1));
  for (int64_t y = 0; y < height; ++y) {
    int32_t* p = &prefix[y * (width + 1)];
    const uint8_t* row = in + y * width;
    p[0] = 0;
    for (int64_t x = 0; x < width; ++x) p[x + 1] = p[x] + (row[x] != 0);
  }
  return prefix;
}

// dilate: set if any disk neighbour inside the image is set.
// erode: set if every disk neighbour inside the image is set (outside counts as set).
void morph_disk(const uint8_t* in, int64_t height, int64_t width, int32_t radius, bool dilate, uint8_t* out) {
  if (radius <= 0) {
    for (int64_t i = 0; i < height * width; ++i) out[i] = in[i] ? 255 : 0;
    return;
  }
  const std::vector<int32_t> hw = disk_half_widths(radius);
  const std::vector<int32_t> prefix = row_prefix(in, height, width);
  parallel_for(height, kMinRows, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t x = 0; x < width; ++x) {
        bool hit = !dilate;
        for (int32_t dy = -radius; dy <= radius; ++dy) {
          int64_t yy = y + dy;
          if (yy < 0 || yy >= height) continue;
          int64_t a = std::max<int64_t>(0, x - hw[dy + radius]), b = std::min<int64_t>(width, x + hw[dy + radius] + 1);
          const int32_t* p = &prefix[yy * (width + 1)];
          int32_t count = p[b] - p[a];
          if (dilate && count > 0) {
            hit = true;
            break;
          }
          if (!dilate && count < b - a) {
            hit = false;
            break;
          }
        }
        out[y * width + x] = hit ? 255 : 0;
      }
    }
  });
}

// Labels the 8-connected components of pixels equal to `value`; calls
// visit(pixels, touches_border) for each, with their indices.
template <typename Visit>
void for_each_component(const uint8_t* mask, int64_t height, int64_t width, uint8_t value, Visit&& visit) {
  std::vector<uint8_t> seen(height * width, 0);
  std::vector<int64_t> component, stack;
  for (int64_t start = 0; start < height * width; ++start) {
    if (seen[start] || mask[start] != value) continue;
    component.clear();
    stack.assign(1, start);
    seen[start] = 1;
    bool border = false;
    while (!stack.empty()) {
      int64_t i = stack.back();
      stack.pop_back();
      component.push_back(i);
      int64_t y = i / width, x = i % width;
      if (y == 0 || x == 0 || y == height - 1 || x == width - 1) border = true;
      for (int64_t dy = -1; dy <= 1; ++dy) {
        for (int64_t dx = -1; dx <= 1; ++dx) {
          int64_t yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= height || xx < 0 || xx >= width) continue;
          int64_t j = yy * width + xx;
          if (!seen[j] && mask[j] == value) {
            seen[j] = 1;
            stack.push_back(j);
          }
        }
      }
    }
    visit(component, border);
  }
}

}  // namespace

bool is_pen_ink(uint8_t r, uint8_t g, uint8_t b) {
  for (const InkRule& t : kRedPen) {
    if (r > t.r && g < t.g && b < t.b) return true;
  }
  for (const InkRule& t : kGreenPen) {
    if (r < t.r && g > t.g && b > t.b) return true;
  }
  for (const InkRule& t : kBluePen) {
    if (r < t.r && g < t.g && b > t.b) return true;
  }
  return false;
}

void tissue_channel_cpu(const uint8_t* rgb, int64_t pixels, TissueChannel channel, uint8_t* out) {
  float od_table[256];
  for (int v = 0; v < 256; ++v) od_table[v] = static_cast<float>(-std::log((v + 1) / 256.0));
  parallel_for(pixels, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const uint8_t r = rgb[3 * i], g = rgb[3 * i + 1], bl = rgb[3 * i + 2];
      int v = 0;
      if (channel == TissueChannel::Saturation) {
        int mx = std::max({r, g, bl}), mn = std::min({r, g, bl});
        v = mx == 0 ? 0 : static_cast<int>(std::lround(255.0 * (mx - mn) / mx));
      } else if (channel == TissueChannel::OpticalDensity) {
        float od = od_table[r] + od_table[g] + od_table[bl];
        v = static_cast<int>(std::min(255L, std::lround(od * (255.f / 3.f))));
      } else {
        v = 255 - (r * 299 + g * 587 + bl * 114) / 1000;
      }
      out[i] = static_cast<uint8_t>(v);
    }
  });
}

int32_t otsu_threshold(const double hist[256]) {
  double total = 0, sum = 0;
  int lo = -1, hi = -1;
  for (int v = 0; v < 256; ++v) {
    total += hist[v];
    sum += v * hist[v];
    if (hist[v] > 0) {
      if (lo < 0) lo = v;
      hi = v;
    }
  }
  if (lo < 0) return 0;
  if (lo == hi) return lo;
  // Between-class variance of classes {≤ t} and {> t}: w0·w1·(μ0 − μ1)².
  double w0 = 0, s0 = 0, best = -1;
  int32_t best_t = lo;
  for (int t = lo; t < hi; ++t) {
    w0 += hist[t];
    s0 += t * hist[t];
    double w1 = total - w0;
    double d = s0 / w0 - (sum - s0) / w1;
    double var = w0 * w1 * d * d;
    if (var > best) {
      best = var;
      best_t = t;
    }
  }
  return best_t;
}

void median_filter_cpu(const uint8_t* in, int64_t height, int64_t width, int32_t k, uint8_t* out) {
  const int32_t r = k / 2;
  parallel_for(height, kMinRows, [&](int64_t y0, int64_t y1) {
    std::vector<uint8_t> window(static_cast<size_t>(k) * k);
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t x = 0; x < width; ++x) {
        size_t n = 0;
        for (int32_t dy = -r; dy <= r; ++dy) {
          int64_t yy = std::min(std::max<int64_t>(y + dy, 0), height - 1);
          for (int32_t dx = -r; dx <= r; ++dx) {
            int64_t xx = std::min(std::max<int64_t>(x + dx, 0), width - 1);
            window[n++] = in[yy * width + xx];
          }
        }
        std::nth_element(window.begin(), window.begin() + n / 2, window.begin() + n);
        out[y * width + x] = window[n / 2];
      }
    }
  });
}

void dilate_disk_cpu(const uint8_t* in, int64_t height, int64_t width, int32_t radius, uint8_t* out) {
  morph_disk(in, height, width, radius, true, out);
}

void erode_disk_cpu(const uint8_t* in, int64_t height, int64_t width, int32_t radius, uint8_t* out) {
  morph_disk(in, height, width, radius, false, out);
}

void remove_small_components_cpu(uint8_t* mask, int64_t height, int64_t width, int64_t min_object_area,
                                 int64_t max_hole_area) {
  if (min_object_area > 1) {
    for_each_component(mask, height, width, 255, [&](const std::vector<int64_t>& c, bool) {
      if (static_cast<int64_t>(c.size()) < min_object_area) {
        for (int64_t i : c) mask[i] = 0;
      }
    });
  }
  if (max_hole_area > 0) {
    for_each_component(mask, height, width, 0, [&](const std::vector<int64_t>& c, bool border) {
      if (!border && static_cast<int64_t>(c.size()) <= max_hole_area) {
        for (int64_t i : c) mask[i] = 255;
      }
    });
  }
}

TissueResult tissue_mask_cpu(const uint8_t* rgb, int64_t height, int64_t width, const TissueParams& p, uint8_t* mask) {
  const int64_t pixels = height * width;
  std::vector<uint8_t> channel(pixels), scratch(pixels);
  tissue_channel_cpu(rgb, pixels, p.channel, channel.data());
  if (p.median_size > 1) {
    median_filter_cpu(channel.data(), height, width, p.median_size, scratch.data());
    channel.swap(scratch);
  }

  TissueResult result;
  if (p.threshold >= 0) {
    result.threshold = p.threshold;
  } else {
    double hist[256] = {0};
    for (int64_t i = 0; i < pixels; ++i) hist[channel[i]] += 1;
    result.threshold = std::max(otsu_threshold(hist), p.min_threshold);
  }
  const int32_t t = result.threshold;
  parallel_for(pixels, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      mask[i] = channel[i] > t ? 255 : 0;
    }
  });

  if (p.closing_radius > 0) {
    dilate_disk_cpu(mask, height, width, p.closing_radius, scratch.data());
    erode_disk_cpu(scratch.data(), height, width, p.closing_radius, mask);
  }
  if (p.opening_radius > 0) {
    erode_disk_cpu(mask, height, width, p.opening_radius, scratch.data());
    dilate_disk_cpu(scratch.data(), height, width, p.opening_radius, mask);
  }
  if (p.dilation_radius > 0) {
    dilate_disk_cpu(mask, height, width, p.dilation_radius, scratch.data());
    std::copy(scratch.begin(), scratch.end(), mask);
  }
  if (p.exclude_pen) {
    // Closing and dilation grow tissue back over the ink and its blurred halo.
    // A component that is mostly ink is a pen stroke: it goes whole. In the
    // others (ink drawn over tissue), only ink areas are cleared.
    std::vector<uint8_t> ink(pixels);
    for (int64_t i = 0; i < pixels; ++i) ink[i] = is_pen_ink(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]) ? 255 : 0;
    for_each_component(mask, height, width, 255, [&](const std::vector<int64_t>& c, bool) {
      int64_t inked = 0;
      for (int64_t i : c) inked += ink[i] != 0;
      if (2 * inked >= static_cast<int64_t>(c.size())) {
        for (int64_t i : c) mask[i] = 0;
      }
    });
    // Opening by disk(1) spares isolated ink-coloured pixels of dense stain.
    erode_disk_cpu(ink.data(), height, width, 1, scratch.data());
    dilate_disk_cpu(scratch.data(), height, width, 1, ink.data());
    for (int64_t i = 0; i < pixels; ++i) {
      if (ink[i]) mask[i] = 0;
    }
  }
  remove_small_components_cpu(mask, height, width, p.min_object_area, p.max_hole_area);

  int64_t count = 0;
  for (int64_t i = 0; i < pixels; ++i) count += mask[i] != 0;
  if (count < p.min_tissue_area) {
    std::fill(mask, mask + pixels, uint8_t{0});
    count = 0;
  }
  result.tissue_pixels = count;
  return result;
}

}  // namespace hf
