#include "cluster/ring.hpp"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>

namespace annal::cluster {
namespace {

TEST(ring_test, token_is_xxh64_of_id_hash_index_with_seed_zero) {
  const std::string key = "node-1#7";
  EXPECT_EQ(node_token("node-1", 7), XXH64(key.data(), key.size(), 0));
}

// Golden values: tokens are part of the persistent format. If this fails,
// every cluster would reshuffle its partitions on upgrade.
TEST(ring_test, token_golden_values_never_change) {
  EXPECT_EQ(node_token("node-1", 0), 9739388931511830626ULL);
  EXPECT_EQ(node_token("node-2", 63), 6833521280737197399ULL);
}

TEST(ring_test, partition_points_are_evenly_spaced_from_zero) {
  EXPECT_EQ(partition_point(partition_id{0}, 64), 0u);
  EXPECT_EQ(partition_point(partition_id{1}, 64), std::uint64_t{1} << 58);
  EXPECT_EQ(partition_point(partition_id{32}, 64), std::uint64_t{1} << 63);
  EXPECT_EQ(partition_point(partition_id{0}, 1), 0u);
  EXPECT_EQ(partition_point(partition_id{2}, 3), 0xaaaaaaaaaaaaaaaaULL);
  EXPECT_EQ(partition_point(partition_id{4294967294u}, 4294967295u), 0xfffffffefffffffeULL);
}

TEST(ring_test, walk_visits_every_node_once_nearest_first) {
  const ring r({"c", "a", "b", "d"});
  for (std::uint64_t point : {0ULL, 1ULL << 62, 0xffffffffffffffffULL, 0x123456789abcdefULL}) {
    const auto hits = r.walk(point);
    ASSERT_EQ(hits.size(), 4u);
    std::set<std::uint32_t> seen;
    for (std::size_t i = 0; i < hits.size(); ++i) {
      seen.insert(hits[i].node);
      if (i > 0) {
        EXPECT_LE(hits[i - 1].distance, hits[i].distance);
      }
    }
    EXPECT_EQ(seen.size(), 4u);
  }
}

TEST(ring_test, walk_distance_is_to_the_first_token_at_or_after_the_point) {
  const ring r({"only"}, 4);
  std::vector<std::uint64_t> tokens;
  for (std::uint32_t i = 0; i < 4; ++i) tokens.push_back(node_token("only", i));
  std::sort(tokens.begin(), tokens.end());
  EXPECT_EQ(r.walk(tokens[1]).front().distance, 0u);
  EXPECT_EQ(r.walk(tokens[1] + 1).front().distance, tokens[2] - tokens[1] - 1);
  // Past the last token the walk wraps to the first one.
  EXPECT_EQ(r.walk(tokens[3] + 1).front().distance, tokens[0] - (tokens[3] + 1));
}

TEST(ring_test, successors_match_a_brute_force_clockwise_walk) {
  std::vector<node_id> ids;
  for (int i = 1; i <= 7; ++i) ids.push_back("node-" + std::to_string(i));
  const ring r(ids, 16);
  // All tokens in ring order, then the first distinct owners clockwise.
  std::vector<std::pair<std::uint64_t, node_id>> all;
  for (const auto& id : ids) {
    for (std::uint32_t i = 0; i < 16; ++i) all.emplace_back(node_token(id, i), id);
  }
  std::sort(all.begin(), all.end());
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 200; ++trial) {
    const std::uint64_t point = rng();
    auto start = std::lower_bound(all.begin(), all.end(), std::make_pair(point, node_id{}));
    std::vector<node_id> expected;
    for (std::size_t k = 0; k < all.size() && expected.size() < 3; ++k) {
      const auto& id = all[(static_cast<std::size_t>(start - all.begin()) + k) % all.size()].second;
      if (std::find(expected.begin(), expected.end(), id) == expected.end()) expected.push_back(id);
    }
    EXPECT_EQ(r.successors(point, 3), expected) << "point " << point;
  }
}

TEST(ring_test, node_order_and_duplicates_do_not_matter) {
  const ring a({"x", "y", "z"});
  const ring b({"z", "x", "y", "x"});
  EXPECT_EQ(a.nodes(), b.nodes());
  for (std::uint64_t point : {0ULL, 77ULL, 1ULL << 63}) EXPECT_EQ(a.walk(point), b.walk(point));
}

TEST(ring_test, empty_ring_has_no_successors) {
  const ring r({});
  EXPECT_TRUE(r.walk(5).empty());
  EXPECT_TRUE(r.successors(5, 1).empty());
}

TEST(ring_test, successors_stop_at_the_node_count) {
  const ring r({"a", "b"});
  EXPECT_EQ(r.successors(0, 5).size(), 2u);
}

}  // namespace
}  // namespace annal::cluster
