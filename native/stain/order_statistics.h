// Exact order statistics in O(n) for numpy.percentile's linear method: one
// histogram pass over a known range finds the bucket holding the wanted rank,
// then only that bucket's values are gathered and nth_element'ed. Buckets are
// a monotone function of the value, so ranks never cross a bucket boundary;
// the answer is exact, not a bucket approximation.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace hf {

class RankHistogram {
 public:
  static constexpr int kBuckets = 4096;

  RankHistogram() = default;
  RankHistogram(double lo, double hi) { reset(lo, hi); }

  void reset(double lo, double hi) {
    lo_ = static_cast<float>(lo);
    double span = static_cast<double>(static_cast<float>(hi)) - lo_;
    scale_ = span > 0 && std::isfinite(span) ? static_cast<float>(kBuckets / span) : 0.f;
    std::fill(counts_.begin(), counts_.end(), 0u);
  }
  // Monotone in v; NaN lands in bucket 0.
  int bucket(float v) const {
    float t = (v - lo_) * scale_;
    t = t > 0.f ? t : 0.f;
    t = t < float(kBuckets - 1) ? t : float(kBuckets - 1);
    return static_cast<int>(t);
  }
  void add(float v) { ++counts_[bucket(v)]; }
  void merge(const RankHistogram& other) {
    for (int b = 0; b < kBuckets; ++b) counts_[b] += other.counts_[b];
  }
  void clear() { std::fill(counts_.begin(), counts_.end(), 0u); }
  uint32_t count(int b) const { return counts_[b]; }
  float lo() const { return lo_; }
  float scale() const { return scale_; }
  void set_range_of(const RankHistogram& other) {
    lo_ = other.lo_;
    scale_ = other.scale_;
  }
  uint32_t* counts() { return counts_.data(); }

 private:
  float lo_ = 0.f, scale_ = 0.f;
  std::vector<uint32_t> counts_ = std::vector<uint32_t>(kBuckets, 0u);
};

// numpy's linear percentile: virtual index p/100·(n−1) between ranks k and k+1.
struct OrderRank {
  int64_t k = 0;
  double frac = 0;
  bool has_next = false;
};
inline OrderRank percentile_rank(double p, int64_t n) {
  double pos = p / 100.0 * static_cast<double>(n - 1);
  OrderRank r;
  r.k = std::min<int64_t>(std::max<int64_t>(static_cast<int64_t>(std::floor(pos)), 0), n - 1);
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

template <typename T>
OrderPair select_order_pair(const T* values, const Segment* segments, int nsegments, const RankHistogram& hist,
                            const OrderRank& rank) {
  int64_t below = 0;
  int first = 0;
  while (first < RankHistogram::kBuckets - 1 && below + hist.count(first) <= rank.k) below += hist.count(first++);
  int last = first;
  if (rank.has_next && rank.k + 1 >= below + hist.count(first)) {
    last = first + 1;
    while (last < RankHistogram::kBuckets - 1 && hist.count(last) == 0) ++last;
  }
  int64_t expected = 0;
  for (int b = first; b <= last; ++b) expected += hist.count(b);

  std::vector<T> gathered;
  gathered.reserve(static_cast<size_t>(expected));
  for (int s = 0; s < nsegments; ++s) {
    const T* v = values + segments[s].begin;
    for (int64_t i = 0; i < segments[s].count; ++i) {
      int b = hist.bucket(static_cast<float>(v[i]));
      if (b >= first && b <= last) gathered.push_back(v[i]);
    }
  }
  int64_t local = rank.k - below;
  if (static_cast<int64_t>(gathered.size()) != expected) {
    // Histogram and values disagree (cannot happen for identical floats);
    // fall back to a selection over everything.
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
