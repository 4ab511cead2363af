#include "bench/latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace annal::bench {

// Values below k_sub are exact (bucket = value). Above, the bucket is the
// power of two (exponent) and the next k_sub_bits bits below the top bit.
int latency_histogram::bucket_of(std::uint64_t nanos) {
  if (nanos < k_sub) return static_cast<int>(nanos);
  const int top = 63 - std::countl_zero(nanos);  // >= k_sub_bits
  const int shift = top - k_sub_bits;
  const auto sub = static_cast<int>((nanos >> shift) & (k_sub - 1));
  return (shift + 1) * k_sub + sub;
}

std::uint64_t latency_histogram::upper_edge(int bucket) {
  if (bucket < k_sub) return static_cast<std::uint64_t>(bucket);
  const int shift = bucket / k_sub - 1;
  const auto sub = static_cast<std::uint64_t>(bucket % k_sub);
  return ((k_sub + sub + 1) << shift) - 1;
}

void latency_histogram::record(std::uint64_t nanos) {
  ++counts_[static_cast<std::size_t>(bucket_of(nanos))];
  ++count_;
  max_ = std::max(max_, nanos);
}

void latency_histogram::merge(const latency_histogram& other) {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

std::uint64_t latency_histogram::percentile(double q) const {
  if (count_ == 0) return 0;
  const auto rank = static_cast<std::uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * count_));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= std::max<std::uint64_t>(rank, 1)) {
      return std::min(upper_edge(static_cast<int>(i)), max_);
    }
  }
  return max_;
}

}  // namespace annal::bench
