#include "codec/png.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <string>

#include "core/error.h"
#include "core/parallel.h"

#ifdef HISTOFLOW_WITH_LIBDEFLATE
#include <libdeflate.h>
#endif

namespace hf {

#ifdef HISTOFLOW_WITH_LIBDEFLATE

namespace {

// One compressor per thread, reused across the images of its chunk.
struct Compressor {
  libdeflate_compressor* c;
  explicit Compressor(int level) : c(libdeflate_alloc_compressor(level)) {
    if (!c) throw std::bad_alloc();
  }
  ~Compressor() { libdeflate_free_compressor(c); }
  Compressor(const Compressor&) = delete;
  Compressor& operator=(const Compressor&) = delete;
};

inline uint8_t paeth(int a, int b, int c) {
  int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return static_cast<uint8_t>(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

// Filters one row (PNG filter types 0-4, bpp 3) into dst[1..stride], type in
// dst[0]. One branch-free loop per type, so the compiler vectorizes 0-3.
void filter_row(int type, const uint8_t* row, const uint8_t* prev, int64_t stride, uint8_t* dst) {
  dst[0] = static_cast<uint8_t>(type);
  uint8_t* d = dst + 1;
  const int64_t head = std::min<int64_t>(3, stride);
  switch (prev ? type : (type == 2 ? 0 : type == 4 ? 1 : type)) {  // first row: up = none, paeth = sub
    case 0:
      std::memcpy(d, row, static_cast<size_t>(stride));
      return;
    case 1:
      for (int64_t i = 0; i < head; ++i) d[i] = row[i];
      for (int64_t i = 3; i < stride; ++i) d[i] = static_cast<uint8_t>(row[i] - row[i - 3]);
      return;
    case 2:
      for (int64_t i = 0; i < stride; ++i) d[i] = static_cast<uint8_t>(row[i] - prev[i]);
      return;
    case 3:
      if (!prev) {
        for (int64_t i = 0; i < head; ++i) d[i] = row[i];
        for (int64_t i = 3; i < stride; ++i) d[i] = static_cast<uint8_t>(row[i] - (row[i - 3] >> 1));
        return;
      }
      for (int64_t i = 0; i < head; ++i) d[i] = static_cast<uint8_t>(row[i] - (prev[i] >> 1));
      for (int64_t i = 3; i < stride; ++i) d[i] = static_cast<uint8_t>(row[i] - ((row[i - 3] + prev[i]) >> 1));
      return;
    default:
      for (int64_t i = 0; i < head; ++i) d[i] = static_cast<uint8_t>(row[i] - prev[i]);  // a = c = 0: paeth = b
      for (int64_t i = 3; i < stride; ++i) d[i] = static_cast<uint8_t>(row[i] - paeth(row[i - 3], prev[i], prev[i - 3]));
      return;
  }
}

// libpng's heuristic: the filter whose output, read as signed bytes, has the
// smallest sum of absolute values.
uint64_t cost(const uint8_t* filtered, int64_t stride) {
  uint64_t s = 0;
  for (int64_t i = 0; i < stride; ++i) {
    int v = static_cast<int8_t>(filtered[i]);
    s += static_cast<uint64_t>(v < 0 ? -v : v);
  }
  return s;
}

void put32(std::vector<uint8_t>& out, uint32_t v) {
  uint8_t b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
  out.insert(out.end(), b, b + 4);
}

void chunk(std::vector<uint8_t>& out, const char type[4], const uint8_t* data, size_t length) {
  put32(out, static_cast<uint32_t>(length));
  size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  if (length) out.insert(out.end(), data, data + length);
  put32(out, static_cast<uint32_t>(libdeflate_crc32(0, out.data() + start, length + 4)));
}

std::vector<uint8_t> encode(libdeflate_compressor* compressor, const uint8_t* rgb, int64_t width, int64_t height,
                            PngFilter filter) {
  const int64_t stride = width * 3;
  std::vector<uint8_t> filtered(static_cast<size_t>((stride + 1) * height));
  std::vector<uint8_t> trial(filter == PngFilter::Adaptive ? static_cast<size_t>(stride + 1) : 0);
  for (int64_t y = 0; y < height; ++y) {
    const uint8_t* row = rgb + y * stride;
    const uint8_t* prev = y ? row - stride : nullptr;
    uint8_t* dst = filtered.data() + y * (stride + 1);
    if (filter == PngFilter::None) {
      filter_row(0, row, prev, stride, dst);
    } else if (filter == PngFilter::Sub) {
      filter_row(1, row, prev, stride, dst);
    } else {
      filter_row(0, row, prev, stride, dst);
      uint64_t best = cost(dst + 1, stride);
      for (int type = 1; type <= 4; ++type) {
        filter_row(type, row, prev, stride, trial.data());
        uint64_t c = cost(trial.data() + 1, stride);
        if (c < best) {
          best = c;
          std::memcpy(dst, trial.data(), static_cast<size_t>(stride + 1));
        }
      }
    }
  }
  size_t bound = libdeflate_zlib_compress_bound(compressor, filtered.size());
  std::vector<uint8_t> idat(bound);
  size_t idat_size = libdeflate_zlib_compress(compressor, filtered.data(), filtered.size(), idat.data(), bound);
  if (idat_size == 0) throw std::runtime_error("encode_png: zlib stream did not fit its bound");

  std::vector<uint8_t> out;
  out.reserve(idat_size + 64);
  static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  out.insert(out.end(), signature, signature + 8);
  uint8_t ihdr[13] = {uint8_t(width >> 24), uint8_t(width >> 16), uint8_t(width >> 8), uint8_t(width),
                      uint8_t(height >> 24), uint8_t(height >> 16), uint8_t(height >> 8), uint8_t(height),
                      8 /* bit depth */, 2 /* RGB */, 0, 0, 0 /* deflate, adaptive filtering, no interlace */};
  chunk(out, "IHDR", ihdr, sizeof ihdr);
  chunk(out, "IDAT", idat.data(), idat_size);
  chunk(out, "IEND", nullptr, 0);
  return out;
}

void check(int64_t width, int64_t height, int level) {
  if (width <= 0 || height <= 0 || width > 0x7fffffff / 3 || height > 0x7fffffff) {
    throw ArgumentError("encode_png: width and height must be positive and fit a PNG");
  }
  if (level < 0 || level > 12) throw ArgumentError("encode_png: level must be in 0..12");
}

}  // namespace

bool png_available() { return true; }

std::vector<uint8_t> encode_png(const uint8_t* rgb, int64_t width, int64_t height, int level, PngFilter filter) {
  check(width, height, level);
  Compressor c(level);
  return encode(c.c, rgb, width, height, filter);
}

void encode_png_batch(const RgbBatch& b, int level, PngFilter filter, std::vector<std::vector<uint8_t>>& out) {
  check(b.width, b.height, level);
  out.assign(static_cast<size_t>(b.n), {});
  // An exception must not leave an OpenMP region: keep the first, rethrow after.
  std::exception_ptr failure;
  std::mutex failure_lock;
  parallel_for(b.n, 1, [&](int64_t begin, int64_t end) {
    try {
      Compressor c(level);
      for (int64_t i = begin; i < end; ++i) out[static_cast<size_t>(i)] = encode(c.c, b.image(i), b.width, b.height, filter);
    } catch (...) {
      std::lock_guard<std::mutex> hold(failure_lock);
      if (!failure) failure = std::current_exception();
    }
  });
  if (failure) std::rethrow_exception(failure);
}

namespace {

// Writes bytes to a temporary beside `path`, then renames it into place.
void write_atomically(const std::string& path, const std::vector<uint8_t>& bytes, int64_t tag) {
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string tmp = dir + "." + name + "." + std::to_string(tag) + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot create " + tmp + ": " + std::strerror(errno));
  size_t written = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
  int close_failed = std::fclose(f);
  if (written != bytes.size() || close_failed != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(err));
  }
}

}  // namespace

void write_png_files(const RgbBatch& b, int level, PngFilter filter, const std::vector<std::string>& paths,
                     std::vector<int64_t>& sizes) {
  check(b.width, b.height, level);
  if (static_cast<int64_t>(paths.size()) != b.n) throw ArgumentError("write_png_files: one path per image");
  sizes.assign(static_cast<size_t>(b.n), 0);
  // Unique per call and image, so concurrent calls never share a temporary.
  static std::atomic<int64_t> calls{0};
  const int64_t call = calls.fetch_add(1);
  std::exception_ptr failure;
  std::mutex failure_lock;
  parallel_for(b.n, 1, [&](int64_t begin, int64_t end) {
    try {
      Compressor c(level);
      for (int64_t i = begin; i < end; ++i) {
        std::vector<uint8_t> png = encode(c.c, b.image(i), b.width, b.height, filter);
        write_atomically(paths[static_cast<size_t>(i)], png, call * 1000003 + i);
        sizes[static_cast<size_t>(i)] = static_cast<int64_t>(png.size());
      }
    } catch (...) {
      std::lock_guard<std::mutex> hold(failure_lock);
      if (!failure) failure = std::current_exception();
    }
  });
  if (failure) std::rethrow_exception(failure);
}

#else

bool png_available() { return false; }

[[noreturn]] static void unavailable() {
  throw UnavailableError("encode_png: histoflow was built without libdeflate (apt install libdeflate-dev, then rebuild)");
}
std::vector<uint8_t> encode_png(const uint8_t*, int64_t, int64_t, int, PngFilter) { unavailable(); }
void encode_png_batch(const RgbBatch&, int, PngFilter, std::vector<std::vector<uint8_t>>&) { unavailable(); }
void write_png_files(const RgbBatch&, int, PngFilter, const std::vector<std::string>&, std::vector<int64_t>&) { unavailable(); }

#endif

}  // namespace hf
