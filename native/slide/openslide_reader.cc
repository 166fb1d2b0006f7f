// OpenSlideReader over libopenslide (built when CMake finds it: HISTOFLOW_WITH_OPENSLIDE).
#ifdef HISTOFLOW_WITH_OPENSLIDE
#include "slide/openslide_reader.h"

#include <openslide.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "core/error.h"

namespace hf {

struct OpenSlideHandle {
  openslide_t* osr = nullptr;
  ~OpenSlideHandle() {
    if (osr) openslide_close(osr);
  }
};

namespace {

// OpenSlide's error state is sticky: once set, every later call on the handle fails.
void throw_if_error(openslide_t* osr, const char* what) {
  const char* err = openslide_get_error(osr);
  if (err) throw std::runtime_error(std::string(what) + ": " + err);
}

int64_t property_int(openslide_t* osr, const std::string& key) {
  const char* v = openslide_get_property_value(osr, key.c_str());
  return v ? std::strtoll(v, nullptr, 10) : 0;
}

// Rows per OpenSlide call, so that the ARGB scratch stays near 16 MiB however big the region.
int64_t rows_per_chunk(int64_t w) { return std::max<int64_t>(1, (int64_t{4} << 20) / std::max<int64_t>(w, 1)); }

}  // namespace

bool OpenSlideReader::available() { return true; }

std::string OpenSlideReader::version() {
  const char* v = openslide_get_version();
  return v ? v : "";
}

std::string OpenSlideReader::detect_vendor(const std::string& path) {
  const char* v = openslide_detect_vendor(path.c_str());
  return v ? v : "";
}

OpenSlideReader::OpenSlideReader(const std::string& path) {
  openslide_t* osr = openslide_open(path.c_str());
  if (!osr) throw std::runtime_error("OpenSlide does not recognise " + path);
  handle_ = std::make_shared<OpenSlideHandle>();
  handle_->osr = osr;
  throw_if_error(osr, "OpenSlide cannot open the slide");

  const int32_t count = openslide_get_level_count(osr);
  throw_if_error(osr, "OpenSlide cannot read the levels");
  for (int32_t l = 0; l < count; ++l) {
    SlideLevelInfo level;
    openslide_get_level_dimensions(osr, l, &level.width, &level.height);
    level.downsample = openslide_get_level_downsample(osr, l);
    const std::string prefix = "openslide.level[" + std::to_string(l) + "].";
    level.tile_width = property_int(osr, prefix + "tile-width");
    level.tile_height = property_int(osr, prefix + "tile-height");
    levels_.push_back(level);
  }
  throw_if_error(osr, "OpenSlide cannot read the levels");
  for (const char* const* name = openslide_get_property_names(osr); name && *name; ++name) {
    const char* value = openslide_get_property_value(osr, *name);
    properties_.emplace_back(*name, value ? value : "");
  }
  for (const char* const* name = openslide_get_associated_image_names(osr); name && *name; ++name) {
    associated_.emplace_back(*name);
  }
}

OpenSlideReader::~OpenSlideReader() = default;

void OpenSlideReader::close() { handle_.reset(); }

void OpenSlideReader::read_region(int level, int64_t x, int64_t y, int64_t w, int64_t h, uint8_t* out) const {
  std::shared_ptr<OpenSlideHandle> handle = handle_;  // keeps the handle open until this read ends
  if (!handle) throw std::runtime_error("the slide is closed");
  if (level < 0 || level >= static_cast<int>(levels_.size())) throw ArgumentError("level out of range");
  if (w < 1 || h < 1) throw ArgumentError("region width and height must be positive");
  const double ds = levels_[static_cast<size_t>(level)].downsample;
  const int64_t x0 = std::llround(static_cast<double>(x) * ds);
  const int64_t chunk = std::min(h, rows_per_chunk(w));
  std::vector<uint32_t> argb(static_cast<size_t>(w * chunk));
  for (int64_t row = 0; row < h; row += chunk) {
    const int64_t rows = std::min(chunk, h - row);
    const int64_t y0 = std::llround(static_cast<double>(y + row) * ds);
    openslide_read_region(handle->osr, argb.data(), x0, y0, level, w, rows);
    throw_if_error(handle->osr, "OpenSlide cannot read the region");
    argb_premultiplied_to_rgb_over_white(argb.data(), w * rows, out + row * w * 3);
  }
}

std::pair<int64_t, int64_t> OpenSlideReader::associated_size(const std::string& name) const {
  std::shared_ptr<OpenSlideHandle> handle = handle_;
  if (!handle) throw std::runtime_error("the slide is closed");
  if (std::find(associated_.begin(), associated_.end(), name) == associated_.end()) {
    throw ArgumentError("no associated image named '" + name + "'");
  }
  int64_t w = 0, h = 0;
  openslide_get_associated_image_dimensions(handle->osr, name.c_str(), &w, &h);
  throw_if_error(handle->osr, "OpenSlide cannot read the associated image");
  return {w, h};
}

void OpenSlideReader::read_associated(const std::string& name, uint8_t* out) const {
  std::shared_ptr<OpenSlideHandle> handle = handle_;
  auto [w, h] = associated_size(name);
  std::vector<uint32_t> argb(static_cast<size_t>(w * h));
  openslide_read_associated_image(handle->osr, name.c_str(), argb.data());
  throw_if_error(handle->osr, "OpenSlide cannot read the associated image");
  argb_premultiplied_to_rgb_over_white(argb.data(), w * h, out);
}

}  // namespace hf
#endif  // HISTOFLOW_WITH_OPENSLIDE
