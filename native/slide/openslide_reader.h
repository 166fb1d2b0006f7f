// A whole-slide image opened through OpenSlide (https://openslide.org): vendor
// formats (Aperio SVS incl. JPEG 2000, Hamamatsu NDPI/VMS, MIRAX, Leica SCN,
// Ventana, Philips TIFF, generic tiled TIFF, …).
//
// Spec:
//   - Levels: level 0 is full resolution; downsample[l] is OpenSlide's
//     (w0/wl + h0/hl)/2. tile_width/height come from the
//     openslide.level[l].tile-width/height properties, 0 when not given.
//   - read_region(level, x, y, w, h, out): x, y, w, h are in LEVEL l's pixel
//     coordinates (OpenSlide itself takes x, y at level 0: we pass
//     round(x·downsample)). `out` receives w·h·3 bytes of RGB: OpenSlide's
//     premultiplied ARGB composited over white, c = c_premul + (255 − a), so
//     pixels outside the slide (a = 0) are white (255).
//   - Associated images ("thumbnail", "label", "macro", …) likewise as RGB.
//   - Thread safety: OpenSlide's read calls are thread-safe, so any number of
//     reads may run at once on one reader. close() frees the handle only after
//     the reads still holding a reference (shared_ptr) have finished.
//   - Errors (unreadable file, failed decode): std::runtime_error with
//     OpenSlide's message. Builds without OpenSlide link a stub whose calls
//     throw hf::UnavailableError ("built without OpenSlide").
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hf {

struct SlideLevelInfo {
  int64_t width = 0;
  int64_t height = 0;
  double downsample = 1;
  int64_t tile_width = 0;
  int64_t tile_height = 0;
};

struct OpenSlideHandle;  // owns the openslide_t*, closes it when the last reference goes

class OpenSlideReader {
 public:
  // True when this build links OpenSlide.
  static bool available();
  // OpenSlide's version string ("3.4.1"), empty without OpenSlide.
  static std::string version();
  // The vendor OpenSlide recognises the file as ("aperio", "generic-tiff", …),
  // or "" when it does not recognise it (or this build has no OpenSlide).
  static std::string detect_vendor(const std::string& path);

  // Opens the slide; throws std::runtime_error when OpenSlide cannot.
  explicit OpenSlideReader(const std::string& path);
  ~OpenSlideReader();
  OpenSlideReader(const OpenSlideReader&) = delete;
  OpenSlideReader& operator=(const OpenSlideReader&) = delete;

  const std::vector<SlideLevelInfo>& levels() const { return levels_; }
  const std::vector<std::pair<std::string, std::string>>& properties() const { return properties_; }
  const std::vector<std::string>& associated_names() const { return associated_; }

  // See the spec above; `out` holds w·h·3 bytes. Throws std::runtime_error on a
  // decode error, hf::ArgumentError for a level out of range or w, h < 1.
  void read_region(int level, int64_t x, int64_t y, int64_t w, int64_t h, uint8_t* out) const;
  // Size of an associated image; throws hf::ArgumentError for an unknown name.
  std::pair<int64_t, int64_t> associated_size(const std::string& name) const;
  // `out` holds width·height·3 bytes (associated_size).
  void read_associated(const std::string& name, uint8_t* out) const;

  // Releases this reader's reference to the handle; later reads throw.
  void close();
  bool closed() const { return !handle_; }

 private:
  std::shared_ptr<OpenSlideHandle> handle_;
  std::vector<SlideLevelInfo> levels_;
  std::vector<std::pair<std::string, std::string>> properties_;
  std::vector<std::string> associated_;
};

// Premultiplied ARGB (OpenSlide's uint32 pixels) → RGB over white, for `count` pixels.
void argb_premultiplied_to_rgb_over_white(const uint32_t* argb, int64_t count, uint8_t* rgb);

}  // namespace hf
