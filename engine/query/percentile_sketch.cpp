#include "engine/query/percentile_sketch.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace annal::engine::query {
namespace {

constexpr double k_gamma =
    (1 + percentile_sketch::k_relative_accuracy) / (1 - percentile_sketch::k_relative_accuracy);
const double k_inv_log_gamma = 1.0 / std::log(k_gamma);

// The rank (1-based) of the nearest-rank percentile p of n values. The
// epsilon keeps p * n / 100 that is an integer up to rounding from moving up.
std::uint64_t rank_of(double p, std::uint64_t n) {
  const double r = std::ceil(p * static_cast<double>(n) / 100 - 1e-9);
  if (!(r >= 1)) return 1;
  if (r >= static_cast<double>(n)) return n;
  return static_cast<std::uint64_t>(r);
}

}  // namespace

std::int32_t percentile_sketch::index_of(double m) {
  return static_cast<std::int32_t>(std::ceil(std::log(m) * k_inv_log_gamma));
}

double percentile_sketch::value_of(std::int32_t index) {
  // In logs: gamma^index alone overflows for the top buckets.
  static const double log_gamma = std::log(k_gamma);
  static const double log_factor = std::log(2 / (k_gamma + 1));
  return std::min(std::exp(index * log_gamma + log_factor), std::numeric_limits<double>::max());
}

void percentile_sketch::add_to(store& s, std::int32_t index, std::uint64_t n) {
  if (s.counts.empty()) {
    s.offset = index;
    s.counts.assign(1, 0);
  } else if (index < s.offset) {
    // Grow downwards with slack, so values arriving in descending magnitude
    // cost amortized O(1).
    const auto need = static_cast<std::size_t>(s.offset - index);
    const std::size_t grow = std::max(need, s.counts.size() / 2);
    const auto new_offset = static_cast<std::int32_t>(std::max<std::int64_t>(
        std::int64_t{s.offset} - static_cast<std::int64_t>(grow), -k_max_index));
    s.counts.insert(s.counts.begin(), static_cast<std::size_t>(s.offset - new_offset), 0);
    s.offset = new_offset;
  } else if (static_cast<std::size_t>(index - s.offset) >= s.counts.size()) {
    s.counts.resize(static_cast<std::size_t>(index - s.offset) + 1, 0);
  }
  s.counts[static_cast<std::size_t>(index - s.offset)] += n;
}

void percentile_sketch::add(double v) {
  ++count_;
  const double m = std::fabs(v);
  if (m < k_min_indexable) {
    ++zero_;
    return;
  }
  add_to(v > 0 ? positive_ : negative_, index_of(m), 1);
}

void percentile_sketch::merge(const percentile_sketch& other) {
  for (auto [mine, theirs] :
       {std::pair{&positive_, &other.positive_}, std::pair{&negative_, &other.negative_}}) {
    if (theirs->counts.empty()) continue;
    // Make room for the whole range once, then add.
    const std::int32_t last = theirs->offset + static_cast<std::int32_t>(theirs->counts.size()) - 1;
    add_to(*mine, theirs->offset, 0);
    add_to(*mine, last, 0);
    for (std::size_t j = 0; j < theirs->counts.size(); ++j) {
      if (theirs->counts[j] == 0) continue;
      mine->counts[static_cast<std::size_t>(theirs->offset + static_cast<std::int32_t>(j) -
                                            mine->offset)] += theirs->counts[j];
    }
  }
  zero_ += other.zero_;
  count_ += other.count_;
}

std::optional<double> percentile_sketch::percentile(double p) const {
  if (count_ == 0) return std::nullopt;
  const std::uint64_t rank = rank_of(p, count_);
  std::uint64_t seen = 0;
  // Ascending values: negatives from the largest magnitude, zeros, positives.
  for (std::size_t j = negative_.counts.size(); j-- > 0;) {
    seen += negative_.counts[j];
    if (seen >= rank) return -value_of(negative_.offset + static_cast<std::int32_t>(j));
  }
  seen += zero_;
  if (seen >= rank) return 0.0;
  for (std::size_t j = 0; j < positive_.counts.size(); ++j) {
    seen += positive_.counts[j];
    if (seen >= rank) return value_of(positive_.offset + static_cast<std::int32_t>(j));
  }
  // Unreachable while count_ is the sum of the buckets.
  return positive_.counts.empty()
             ? 0.0
             : value_of(positive_.offset + static_cast<std::int32_t>(positive_.counts.size()) - 1);
}

result<percentile_sketch> percentile_sketch::from_parts(store positive, store negative,
                                                        std::uint64_t zero) {
  percentile_sketch s;
  std::uint64_t total = zero;
  for (const store* st : {&positive, &negative}) {
    if (st->counts.empty()) continue;
    const std::int64_t first = st->offset;
    const std::int64_t last = first + static_cast<std::int64_t>(st->counts.size()) - 1;
    if (first <= -k_max_index || last >= k_max_index) {
      return error{errc::malformed_request,
                   fmt::format("sketch buckets {}..{} are out of range", first, last)};
    }
    for (const auto c : st->counts) {
      if (total + c < total) return error{errc::malformed_request, "sketch counts overflow"};
      total += c;
    }
  }
  s.positive_ = std::move(positive);
  s.negative_ = std::move(negative);
  s.zero_ = zero;
  s.count_ = total;
  return s;
}

}  // namespace annal::engine::query
