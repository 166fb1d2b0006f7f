// A file mapped into memory for reading: the storage under PackedDataset
// (src/dataset/packed.ts), whose typed-array views are then views of the page
// cache, with no copy and no read() per batch.
//
// Lifetime: the mapping lives as long as the last shared_ptr to it (the addon
// hands one to the ArrayBuffer's finalizer). `release()` gives the file back
// early: it replaces the file pages with anonymous zero pages at the same
// addresses (mmap MAP_FIXED), so the file is no longer mapped (it can be
// deleted or rewritten, its page cache dropped) while any reader still holding
// a raw pointer (a native worker in flight) reads zeros instead of faulting.
// The address range itself is unmapped in the destructor.
//
// The mapping is private (MAP_PRIVATE, copy-on-write): the file is never
// written through it, and a stray write through a view touches only a private
// copy of that page.
//
// Not guarded: another process truncating the file while it is mapped makes
// reads past the new end raise SIGBUS (as with any mmap); histoflow's writers
// never rewrite a finished file in place (they write FILE.partial and rename).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace hf {

class MappedFile {
 public:
  // Whole file: the length to pass to map all of it from `offset`.
  static constexpr uint64_t kToEnd = ~uint64_t{0};

  // Maps bytes [offset, offset + length) of the file (kToEnd: to its end).
  // Any offset: the mapping starts on the page below it and data() points at
  // `offset`, so the caller's alignment is the file offset's modulo the page.
  // Throws std::runtime_error naming the path and the system's reason
  // (missing, a directory, permission, …) or a range past the end. A range
  // of 0 bytes gives size() == 0 and data() == nullptr (mmap cannot map 0).
  static std::shared_ptr<MappedFile> open(const std::string& path, uint64_t offset = 0, uint64_t length = kToEnd);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // True until release().
  bool mapped() const { return !released_; }
  // Unmaps the file now (see above). Idempotent.
  void release();

 private:
  MappedFile(uint8_t* base, size_t map_size, size_t delta, size_t size)
      : base_(base), map_size_(map_size), data_(base ? base + delta : nullptr), size_(size) {}
  uint8_t* base_;     // page-aligned start of the mapping
  size_t map_size_;   // bytes mapped from base_
  uint8_t* data_;
  size_t size_;
  bool released_ = false;
};

}  // namespace hf
