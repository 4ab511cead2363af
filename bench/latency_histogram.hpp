#pragma once

#include <array>
#include <cstdint>

namespace annal::bench {

// Latencies in nanoseconds, bucketed log-linearly: 32 sub-buckets per power
// of two, so a percentile is within ~3% of the true value. Fixed memory,
// O(1) record, mergeable. Not thread-safe: one per thread, then merge().
class latency_histogram {
 public:
  void record(std::uint64_t nanos);
  void merge(const latency_histogram& other);

  std::uint64_t count() const { return count_; }
  // The value at quantile q (0..1): the upper edge of the bucket holding it.
  // 0 when empty.
  std::uint64_t percentile(double q) const;
  std::uint64_t max() const { return max_; }

 private:
  static constexpr int k_sub_bits = 5;
  static constexpr int k_sub = 1 << k_sub_bits;
  static constexpr int k_buckets = 64 * k_sub;
  static int bucket_of(std::uint64_t nanos);
  static std::uint64_t upper_edge(int bucket);

  std::array<std::uint64_t, k_buckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace annal::bench
