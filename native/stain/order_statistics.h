// Exact order statistics in O(n) for numpy.percentile's linear method: one
// histogram pass over a known range finds the bucket holding the wanted rank,
// then only that bucket's values are gathered and nth_element'ed. Buckets are
// a monotone function of the value, so ranks never cross a bucket boundary;
// the answer is exact, not a bucket approximation.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "core/host_device.h"

namespace hf {

class RankHistogram {
 public:
  static constexpr int kMaxBuckets = 4096;

  RankHistogram() = default;
  RankHistogram(double lo, double hi, int64_t values) { reset(lo, hi, values); }

  // About 16 values per bucket, between 64 and kMaxBuckets buckets: small
  // images do not pay for clearing and scanning a large histogram.
  void reset(double lo, double hi, int64_t values) {
    buckets_ = static_cast<int>(std::min<int64_t>(kMaxBuckets, std::max<int64_t>(64, values / 16)));
    last_ = static_cast<float>(buckets_ - 1);
    lo_ = static_cast<float>(lo);
    double span = static_cast<double>(static_cast<float>(hi)) - lo_;
    scale_ = span > 0 && std::isfinite(span) ? static_cast<float>(buckets_ / span) : 0.f;
    counts_.assign(buckets_, 0u);
  }
  int buckets() const { return buckets_; }
  // Monotone in v; NaN lands in bucket 0.
  int bucket(float v) const {
    float t = (v - lo_) * scale_;
    t = t > 0.f ? t : 0.f;
    t = t < last_ ? t : last_;
    return static_cast<int>(t);
  }
  void add(float v) { ++counts_[bucket(v)]; }
  // Buckets of a run of values computed a tile at a time (a loop compilers
  // vectorize), then counted.
  void add_all(const float* v, int64_t n) {
    constexpr int64_t kTile = 256;
    int32_t index[kTile];
    uint32_t* counts = counts_.data();
    for (int64_t t0 = 0; t0 < n; t0 += kTile) {
      const int64_t count = std::min(kTile, n - t0);
      for (int64_t i = 0; i < count; ++i) index[i] = bucket(v[t0 + i]);
      for (int64_t i = 0; i < count; ++i) ++counts[index[i]];
    }
  }
  void merge(const RankHistogram& other) {
    for (int b = 0; b < buckets_; ++b) counts_[b] += other.counts_[b];
  }
  uint32_t count(int b) const { return counts_[b]; }
  float lo() const { return lo_; }
  float scale() const { return scale_; }

 private:
  float lo_ = 0.f, scale_ = 0.f, last_ = 0.f;
  int buckets_ = 1;
  std::vector<uint32_t> counts_ = std::vector<uint32_t>(1, 0u);
};

// numpy's linear percentile: virtual index p/100·(n−1) between ranks k and k+1.
// On the host and the device (stain_fit_cuda.cu's segmented order statistics).
struct OrderRank {
  int64_t k = 0;
  double frac = 0;
  bool has_next = false;
};
HF_HOST_DEVICE inline OrderRank percentile_rank(double p, int64_t n) {
  double pos = p / 100.0 * static_cast<double>(n - 1);
  OrderRank r;
  r.k = std::min<int64_t>(std::max<int64_t>(static_cast<int64_t>(floor(pos)), 0), n - 1);
  r.frac = std::min(std::max(pos - static_cast<double>(r.k), 0.0), 1.0);
  r.has_next = r.k + 1 < n;
  return r;
}

// The k-th and (k+1)-th smallest values and the interpolation weight between them.
struct OrderPair {
  double lo = 0, hi = 0, frac = 0;
  // numpy's _lerp: a + (b−a)·t, or b − (b−a)·(1−t) when t ≥ 0.5.
  static double lerp(double a, double b, double t) {
    double diff = b - a;
    return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
  }
  double interpolate() const { return lerp(lo, hi, frac); }
};

// Values live in disjoint runs of one array (one run per block of pixels).
struct Segment {
  int64_t begin = 0, count = 0;
};

namespace order_statistics_detail {

// Floats in the order of their values, as integers (for bisection).
inline int32_t ordered_bits(float v) {
  int32_t i;
  std::memcpy(&i, &v, sizeof i);
  return i < 0 ? -(i & 0x7fffffff) : i;  // negative floats: minus their magnitude bits
}
inline float from_ordered_bits(int32_t o) {
  uint32_t u = o < 0 ? (static_cast<uint32_t>(-o) | 0x80000000u) : static_cast<uint32_t>(o);
  float v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}
// Smallest finite float whose bucket is ≥ b (the bucket function is monotone).
inline float first_value_of_bucket(const RankHistogram& hist, int b) {
  int64_t lo = ordered_bits(-std::numeric_limits<float>::max()), hi = ordered_bits(std::numeric_limits<float>::max());
  if (hist.bucket(from_ordered_bits(static_cast<int32_t>(lo))) >= b) return -std::numeric_limits<float>::infinity();
  while (hi - lo > 1) {  // invariant: bucket(lo) < b ≤ bucket(hi)
    int64_t mid = lo + (hi - lo) / 2;
    (hist.bucket(from_ordered_bits(static_cast<int32_t>(mid))) >= b ? hi : lo) = mid;
  }
  return from_ordered_bits(static_cast<int32_t>(hi));
}

}  // namespace order_statistics_detail

// Where the k-th value lies: buckets [first, last] (last > first when the
// (k+1)-th value sits in a later bucket), and how many values lie below.
struct BucketWindow {
  int first = 0, last = 0;
  int64_t below = 0, count = 0;
  float value_lo = 0, value_hi = 0;  // exactly the floats whose bucket is in [first, last]
};
inline BucketWindow bucket_window(const RankHistogram& hist, const OrderRank& rank) {
  using namespace order_statistics_detail;
  BucketWindow w;
  const int kLast = hist.buckets() - 1;
  while (w.first < kLast && w.below + hist.count(w.first) <= rank.k) w.below += hist.count(w.first++);
  w.last = w.first;
  if (rank.has_next && rank.k + 1 >= w.below + hist.count(w.first)) {
    w.last = w.first + 1;
    while (w.last < kLast && hist.count(w.last) == 0) ++w.last;
  }
  for (int b = w.first; b <= w.last; ++b) w.count += hist.count(b);
  w.value_lo = w.first == 0 ? -std::numeric_limits<float>::infinity() : first_value_of_bucket(hist, w.first);
  w.value_hi = w.last == kLast ? std::numeric_limits<float>::infinity()
                               : std::nextafter(first_value_of_bucket(hist, w.last + 1), -std::numeric_limits<float>::infinity());
  return w;
}

namespace order_statistics_detail {

// Appends the values within [lo, hi] to out[found...]; out has room for the
// expected count plus one vector. Returns the new count (not capped: a count
// above the expected one means the histogram and the values disagree).
inline int64_t gather_window(const float* v, int64_t n, float lo, float hi, float* out, int64_t capacity, int64_t found) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  for (; i + 16 <= n && found + 16 <= capacity; i += 16) {
    const __m512 x = _mm512_loadu_ps(v + i);
    const __mmask16 in = _mm512_cmp_ps_mask(x, vlo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(x, vhi, _CMP_LE_OQ);
    _mm512_mask_compressstoreu_ps(out + found, in, x);
    found += __builtin_popcount(in);
  }
#endif
  for (; i < n; ++i) {
    out[std::min(found, capacity - 1)] = v[i];
    found += (v[i] >= lo) & (v[i] <= hi);
  }
  return found;
}
inline int64_t gather_window(const double* v, int64_t n, float lo, float hi, double* out, int64_t capacity,
                             int64_t found) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = static_cast<float>(v[i]);
    out[std::min(found, capacity - 1)] = v[i];
    found += (x >= lo) & (x <= hi);
  }
  return found;
}

}  // namespace order_statistics_detail

// The k-th and (k+1)-th smallest of the values in `segments`, given their
// histogram. Gathering is a branch-free compare (a compress-store with
// AVX-512) per value; only the window's values are then ordered.
template <typename T>
OrderPair select_order_pair(const T* values, const Segment* segments, int nsegments, const RankHistogram& hist,
                            const OrderRank& rank) {
  const BucketWindow w = bucket_window(hist, rank);
  const int64_t capacity = w.count + 17;
  std::unique_ptr<T[]> buffer(new T[capacity]);
  int64_t found = 0;
  for (int s = 0; s < nsegments; ++s)
    found = order_statistics_detail::gather_window(values + segments[s].begin, segments[s].count, w.value_lo,
                                                   w.value_hi, buffer.get(), capacity, found);
  std::vector<T> gathered(buffer.get(), buffer.get() + std::min(found, w.count));
  int64_t local = rank.k - w.below;
  if (found != w.count) {
    // Histogram and values disagree (NaN among the values): select over everything.
    gathered.clear();
    for (int s = 0; s < nsegments; ++s)
      gathered.insert(gathered.end(), values + segments[s].begin, values + segments[s].begin + segments[s].count);
    local = rank.k;
  }
  OrderPair out;
  out.frac = rank.frac;
  auto kth = gathered.begin() + local;
  std::nth_element(gathered.begin(), kth, gathered.end());
  out.lo = out.hi = static_cast<double>(*kth);
  if (rank.has_next && kth + 1 != gathered.end()) out.hi = static_cast<double>(*std::min_element(kth + 1, gathered.end()));
  return out;
}

}  // namespace hf
