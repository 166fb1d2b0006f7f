// OpenSlideReader for builds without OpenSlide: every entry point exists and
// says how to get the real one.
#ifndef HISTOFLOW_WITH_OPENSLIDE
#include "core/error.h"
#include "slide/openslide_reader.h"

namespace hf {

struct OpenSlideHandle {};

namespace {
[[noreturn]] void throw_built_without_openslide() {
  throw UnavailableError(
      "histoflow was built without OpenSlide (install libopenslide-dev, e.g. apt install libopenslide-dev, and rebuild with "
      "`npm run build`)");
}
}  // namespace

bool OpenSlideReader::available() { return false; }
std::string OpenSlideReader::version() { return ""; }
std::string OpenSlideReader::detect_vendor(const std::string&) { return ""; }
OpenSlideReader::OpenSlideReader(const std::string&) { throw_built_without_openslide(); }
OpenSlideReader::~OpenSlideReader() = default;
void OpenSlideReader::close() { handle_.reset(); }
void OpenSlideReader::read_region(int, int64_t, int64_t, int64_t, int64_t, uint8_t*) const {
  throw_built_without_openslide();
}
std::pair<int64_t, int64_t> OpenSlideReader::associated_size(const std::string&) const {
  throw_built_without_openslide();
}
void OpenSlideReader::read_associated(const std::string&, uint8_t*) const { throw_built_without_openslide(); }

}  // namespace hf
#endif  // !HISTOFLOW_WITH_OPENSLIDE
