#pragma once

#include <cstdint>
#include <string>

// A small deterministic random generator for randomized tests (splitmix64):
// fully specified, so a seed means the same run with every standard library
// (unlike std::uniform_int_distribution). Header-only.
//
// Not thread-safe: one per test thread.
namespace annal::testing {

class test_rng {
 public:
  explicit test_rng(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) (modulo bias is irrelevant here). Requires: n > 0.
  std::uint64_t below(std::uint64_t n) { return next() % n; }
  // Uniform in [lo, hi]. Requires: lo <= hi.
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) { return lo + below(hi - lo + 1); }
  // True with probability p percent.
  bool percent(std::uint64_t p) { return below(100) < p; }
  // `n` random lowercase letters.
  std::string letters(std::size_t n) {
    std::string s(n, 'a');
    for (auto& c : s) c = static_cast<char>('a' + below(26));
    return s;
  }

 private:
  std::uint64_t state_;
};

}  // namespace annal::testing
