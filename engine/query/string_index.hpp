#pragma once

// A flat (open-addressing, linear-probing) hash index from byte strings to
// dense numbers 0, 1, 2 ... in insertion order: the group table's key map
// and a count_distinct value set. Looking up a key that is already present
// allocates nothing, so a scan builds keys in one reused buffer and pays an
// allocation only for a new key (and none for short keys).
//
// Not thread-safe: owned by one partial result.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace annal::engine::query {

class string_index {
 public:
  // The number of `key` and whether it was inserted now (it then gets size()
  // before the call).
  std::pair<std::uint32_t, bool> insert(std::string_view key);
  // The number of `key`, or npos.
  std::uint32_t find(std::string_view key) const;

  std::size_t size() const { return keys_.size(); }
  const std::string& key(std::uint32_t number) const { return keys_[number]; }
  const std::vector<std::string>& keys() const { return keys_; }

  static constexpr std::uint32_t npos = UINT32_MAX;

 private:
  struct slot {
    std::uint64_t hash = 0;
    std::uint32_t number = npos;  // npos: empty
  };
  static std::uint64_t hash_of(std::string_view key);
  void grow();

  std::vector<slot> slots_;  // a power of two, at most half full
  std::vector<std::string> keys_;
};

}  // namespace annal::engine::query
