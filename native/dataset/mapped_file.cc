// POSIX implementation of MappedFile (Linux, macOS). Elsewhere open() throws
// UnavailableError and src/dataset reads the file into memory instead.
#include "dataset/mapped_file.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/error.h"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define HF_HAVE_MMAP 1
#endif

namespace hf {

#ifdef HF_HAVE_MMAP

namespace {
std::runtime_error SystemError(const std::string& what, const std::string& path) {
  return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}
}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path, uint64_t offset, uint64_t length) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw SystemError("cannot open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    auto err = SystemError("cannot stat", path);
    ::close(fd);
    throw err;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error("cannot map " + path + ": not a regular file");
  }
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (length == kToEnd) length = offset <= file_size ? file_size - offset : 0;
  if (offset > file_size || length > file_size - offset) {
    ::close(fd);
    throw std::runtime_error("cannot map bytes " + std::to_string(offset) + "+" + std::to_string(length) + " of " + path +
                             ": the file holds " + std::to_string(file_size));
  }
  uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  uint64_t start = offset / page * page;
  size_t delta = static_cast<size_t>(offset - start);
  size_t map_size = static_cast<size_t>(length + delta);
  void* p = nullptr;
  if (length > 0) {
    // Private and writable: a write through a JS view (allowed by the
    // ArrayBuffer, which cannot be made read-only) lands on a private
    // copy-on-write page, never in the file and never a protection fault.
    p = ::mmap(nullptr, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, static_cast<off_t>(start));
    if (p == MAP_FAILED) {
      auto err = SystemError("cannot map", path);
      ::close(fd);
      throw err;
    }
  }
  ::close(fd);  // the mapping keeps its own reference to the file
  return std::shared_ptr<MappedFile>(
      new MappedFile(static_cast<uint8_t*>(p), p ? map_size : 0, delta, static_cast<size_t>(length)));
}

void MappedFile::release() {
  if (released_) return;
  released_ = true;
  if (map_size_ == 0) return;
  // Same addresses, now private zero pages: in-flight readers stay safe.
  void* p = ::mmap(base_, map_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (p == MAP_FAILED) {
    // Keep the file mapping rather than leave a hole; the destructor unmaps.
    released_ = false;
  }
}

MappedFile::~MappedFile() {
  if (map_size_ > 0) ::munmap(base_, map_size_);
}

#else

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path, uint64_t, uint64_t) {
  throw UnavailableError("memory-mapped files are not implemented on this platform (" + path + ")");
}
void MappedFile::release() { released_ = true; }
MappedFile::~MappedFile() = default;

#endif

}  // namespace hf
