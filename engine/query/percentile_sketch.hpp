#pragma once

// A mergeable quantile sketch with relative error (DDSketch, Masson et al.,
// VLDB 2019): a value x > 0 counts in bucket i = ceil(log_gamma(x)) with
// gamma = (1 + a) / (1 - a), and bucket i reports 2 gamma^i / (gamma + 1),
// which is within a relative a = k_relative_accuracy of every value in
// (gamma^(i-1), gamma^i]. Negative values count by |x| in a second set of
// buckets; zeros (and |x| below k_min_indexable) in a zero count. Merging
// adds bucket counts, so a merge of sketches equals the sketch of all values.
//
// Buckets are dense counts from an offset; their indices are bounded by the
// double range (|i| < k_max_index), so one sketch holds at most about 75,000
// buckets per sign however adversarial its values.
//
// Not thread-safe: a plain value owned by one accumulator.

#include <cstdint>
#include <optional>
#include <vector>

#include "engine/errors.hpp"

namespace annal::engine::query {

class percentile_sketch {
 public:
  static constexpr double k_relative_accuracy = 0.01;
  // Smaller magnitudes count as zero (normal doubles all index).
  static constexpr double k_min_indexable = 2.2250738585072014e-308;
  // Bucket indices of indexable doubles lie in (-k_max_index, k_max_index).
  static constexpr std::int32_t k_max_index = 40'000;

  // Dense counts: counts[j] is bucket offset + j.
  struct store {
    std::int32_t offset = 0;
    std::vector<std::uint64_t> counts;
  };

  // Requires: `v` is finite.
  void add(double v);
  void merge(const percentile_sketch& other);

  std::uint64_t count() const { return count_; }
  // The nearest-rank percentile `p` in (0, 100]: the value of rank
  // max(1, ceil(p * n / 100 - 1e-9)) in ascending order, within the relative
  // accuracy; nullopt when empty.
  std::optional<double> percentile(double p) const;

  const store& positive() const { return positive_; }
  const store& negative() const { return negative_; }
  std::uint64_t zero_count() const { return zero_; }

  // A sketch from its wire parts. Errors: malformed_request when a bucket
  // index is out of range or the counts overflow.
  static result<percentile_sketch> from_parts(store positive, store negative, std::uint64_t zero);

  // The bucket of magnitude `m` >= k_min_indexable, and a bucket's value.
  static std::int32_t index_of(double m);
  static double value_of(std::int32_t index);

 private:
  static void add_to(store& s, std::int32_t index, std::uint64_t n);

  store positive_;
  store negative_;
  std::uint64_t zero_ = 0;
  std::uint64_t count_ = 0;
};

}  // namespace annal::engine::query
