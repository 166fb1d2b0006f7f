// MappedFile: the bytes seen through the mapping are the file's bytes; release()
// drops the file but leaves the addresses readable (zeros); bad paths throw.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataset/mapped_file.h"
#include "harness.h"

namespace {

std::string temp_path(const char* tag) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/hf_mapped_file_" + tag + "_" + std::to_string(std::rand());
}

std::vector<unsigned char> write_pattern(const std::string& path, size_t size) {
  std::vector<unsigned char> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<unsigned char>((i * 2654435761u) >> 13);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (size) std::fwrite(bytes.data(), 1, size, f);
  std::fclose(f);
  return bytes;
}

}  // namespace

HF_TEST("mapped_file shows the file's bytes, on a size that is not a page multiple") {
  std::string path = temp_path("bytes");
  auto bytes = write_pattern(path, 3 * 4096 + 17);
  auto m = hf::MappedFile::open(path);
  CHECK(m->size() == bytes.size());
  size_t mismatches = 0;
  for (size_t i = 0; i < bytes.size(); ++i) mismatches += m->data()[i] != bytes[i];
  CHECK(mismatches == 0);
  std::remove(path.c_str());
}

HF_TEST("mapped_file release drops the file but keeps the addresses readable as zeros") {
  std::string path = temp_path("release");
  write_pattern(path, 10000);
  auto m = hf::MappedFile::open(path);
  const unsigned char* p = m->data();
  m->release();
  CHECK(!m->mapped());
  size_t nonzero = 0;
  for (size_t i = 0; i < 10000; ++i) nonzero += p[i] != 0;
  CHECK(nonzero == 0);
  m->release();  // idempotent
  std::remove(path.c_str());
}

HF_TEST("mapped_file maps an empty file as size 0") {
  std::string path = temp_path("empty");
  write_pattern(path, 0);
  auto m = hf::MappedFile::open(path);
  CHECK(m->size() == 0);
  std::remove(path.c_str());
}

HF_TEST("mapped_file throws naming the path for a missing file and for a directory") {
  bool threw = false;
  try {
    hf::MappedFile::open("/nonexistent/histoflow.pack");
  } catch (const std::runtime_error& e) {
    threw = std::string(e.what()).find("/nonexistent/histoflow.pack") != std::string::npos;
  }
  CHECK(threw);
  threw = false;
  try {
    hf::MappedFile::open("/tmp");
  } catch (const std::runtime_error& e) {
    threw = std::string(e.what()).find("not a regular file") != std::string::npos;
  }
  CHECK(threw);
}

HF_TEST("mapped_file maps a range at an offset that is not page-aligned, and refuses one past the end") {
  std::string path = temp_path("range");
  auto bytes = write_pattern(path, 3 * 4096 + 100);
  auto m = hf::MappedFile::open(path, 4096 + 77, 5000);
  CHECK(m->size() == 5000);
  size_t mismatches = 0;
  for (size_t i = 0; i < 5000; ++i) mismatches += m->data()[i] != bytes[4096 + 77 + i];
  CHECK(mismatches == 0);
  auto tail = hf::MappedFile::open(path, 3 * 4096);
  CHECK(tail->size() == 100);
  CHECK(tail->data()[99] == bytes[3 * 4096 + 99]);
  bool threw = false;
  try {
    hf::MappedFile::open(path, 3 * 4096, 101);
  } catch (const std::runtime_error& e) {
    threw = std::string(e.what()).find("the file holds") != std::string::npos;
  }
  CHECK(threw);
  std::remove(path.c_str());
}
