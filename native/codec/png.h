// PNG encoding of RGB tiles, batched and threaded, for the tiler's hot path.
//
// Why here and not sharp: a 96x96 tile is ~27 KB of pixels; sharp/libvips
// spends more on building a pipeline per image than zlib spends compressing
// it, so tiling at PCam sizes was bound by per-call overhead (~900 tiles/s on
// this 2-core machine under sharp). One native call encodes a whole batch on
// the core's threads with libpng.
//
// Output: 8-bit RGB, non-interlaced, compression level `level` (libdeflate's
// 0..12; 6 is zlib's, PIL's and sharp's default) and a row filter:
//   Adaptive  libpng's heuristic: per row, of the five PNG filters the one
//             whose output has the smallest sum of |signed bytes|: smallest files
//   Sub       each byte minus the one 3 to its left: most of Adaptive's gain
//             on H&E at a fraction of its cost
//   None      raw rows (sharp's default, adaptiveFiltering: false)
//
// CPU only: PNG's DEFLATE stream is serial per image; batch parallelism across
// the host's cores is what pays. The writer is ours (signature, IHDR, one
// IDAT, IEND); DEFLATE and CRC-32 are libdeflate's (apt libdeflate-dev, a
// libtiff dependency, so present wherever libvips-dev is): one-shot
// compression of a whole tile is 2-3x faster than zlib at the same level and
// ratio. Without libdeflate every entry point throws UnavailableError.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/image.h"

namespace hf {

enum class PngFilter { Adaptive, Sub, None };

bool png_available();

// Encodes one RGB image (width*height*3 bytes, rows contiguous).
std::vector<uint8_t> encode_png(const uint8_t* rgb, int64_t width, int64_t height, int level, PngFilter filter);

// Encodes every image of the batch, in parallel over images. out.size() == b.n.
void encode_png_batch(const RgbBatch& b, int level, PngFilter filter, std::vector<std::vector<uint8_t>>& out);

// Encodes image i of the batch and writes it to paths[i], atomically: the
// bytes go to "<dir>/.<name>.<tag>.tmp" first, then a rename, so a crash
// never leaves a half-written PNG under its final name. Encodes and writes run
// in parallel over images; sizes[i] receives each file's size. The first
// failure (with its path) is rethrown after every worker stopped, and no
// temporary file is left behind. The directories must exist.
void write_png_files(const RgbBatch& b, int level, PngFilter filter, const std::vector<std::string>& paths,
                     std::vector<int64_t>& sizes);

}  // namespace hf
