#include "cluster/placement.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>

#include "cluster/map_codec.hpp"
#include "cluster/ring.hpp"
#include "tests/cluster/node_id_sets.hpp"

namespace annal::cluster {
namespace {

using testing::active_node;
using testing::id_sets;
using testing::k_max_nodes;
using testing::k_partitions;
using testing::map_of;

std::uint32_t busiest(const std::vector<replica_set>& sets) {
  std::uint32_t max = 0;
  for (const auto& [id, count] : replica_counts(sets)) max = std::max(max, count);
  return max;
}

TEST(placement_test, same_map_gives_same_placement_for_any_node_order) {
  auto map = map_of(id_sets()[2], 11, 2);
  map.nodes[3].state = node_state::draining;
  map.nodes[5].state = node_state::joining;
  const auto expected = placement(map);
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    cluster_map shuffled = map;
    std::shuffle(shuffled.nodes.begin(), shuffled.nodes.end(), rng);
    EXPECT_EQ(placement(shuffled), expected);
    // A map rebuilt from its stored form, as another process would.
    auto rebuilt = map_from_json(to_json(shuffled));
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.err().message;
    EXPECT_EQ(placement(*rebuilt), expected);
  }
}

// Golden placement: part of the persistent format, like the tokens.
TEST(placement_test, golden_placement_never_changes) {
  const auto sets = placement(map_of(id_sets()[0], 3, 1));
  std::string owners;
  for (const auto& set : sets) owners += set.front().back();
  EXPECT_EQ(owners, "1223111333121122222112312231233232322311322333123121322112212311");
}

TEST(placement_test, replica_sets_are_distinct_active_nodes_primary_first) {
  for (std::uint32_t r = 1; r <= 3; ++r) {
    auto map = map_of(id_sets()[0], 6, r);
    map.nodes[0].state = node_state::draining;
    map.nodes[1].state = node_state::joining;
    const auto sets = placement(map);
    ASSERT_EQ(sets.size(), k_partitions);
    for (const auto& set : sets) {
      ASSERT_EQ(set.size(), r);
      EXPECT_EQ(std::set<node_id>(set.begin(), set.end()).size(), r);
      for (const auto& id : set) {
        EXPECT_NE(id, "node-1");
        EXPECT_NE(id, "node-2");
      }
    }
  }
}

TEST(placement_test, replicas_follow_the_clockwise_order_of_the_partition_point) {
  const auto map = map_of(id_sets()[3], 9, 3);
  const ring nodes_ring([&] {
    std::vector<node_id> ids;
    for (const auto& n : map.nodes) ids.push_back(n.id);
    return ids;
  }());
  const auto sets = placement(map);
  for (std::uint32_t p = 0; p < k_partitions; ++p) {
    std::vector<node_id> clockwise;
    for (const auto& hit : nodes_ring.walk(partition_point(partition_id{p}, k_partitions))) {
      clockwise.push_back(nodes_ring.nodes()[hit.node]);
    }
    // The set is a subsequence of the clockwise order (full nodes skipped).
    auto from = clockwise.begin();
    for (const auto& id : sets[p]) {
      from = std::find(from, clockwise.end(), id);
      ASSERT_NE(from, clockwise.end()) << "partition " << p;
    }
  }
}

TEST(placement_test, fewer_active_nodes_than_replication_factor_gives_smaller_sets) {
  const auto sets = placement(map_of(id_sets()[0], 2, 3));
  for (const auto& set : sets) EXPECT_EQ(set.size(), 2u);
}

TEST(placement_test, no_active_node_gives_empty_sets) {
  auto map = map_of(id_sets()[0], 3, 1);
  for (auto& node : map.nodes) node.state = node_state::joining;
  for (const auto& set : placement(map)) EXPECT_TRUE(set.empty());
  EXPECT_EQ(owner(map, partition_id{0}), std::nullopt);
}

TEST(placement_test, single_node_owns_everything) {
  const auto map = map_of(id_sets()[0], 1, 1);
  for (std::uint32_t p = 0; p < k_partitions; ++p) EXPECT_EQ(owner(map, partition_id{p}), "node-1");
}

TEST(placement_test, owner_is_the_primary) {
  const auto map = map_of(id_sets()[4], 7, 2);
  const auto sets = placement(map);
  for (std::uint32_t p = 0; p < k_partitions; ++p) EXPECT_EQ(owner(map, partition_id{p}), sets[p].front());
}

TEST(placement_test, override_replaces_only_its_partition) {
  auto map = map_of(id_sets()[0], 5, 1);
  const auto before = placement(map);
  map.overrides[partition_id{9}] = {"node-5", "node-1"};
  const auto after = placement(map);
  EXPECT_EQ(after[9], (replica_set{"node-5", "node-1"}));
  for (std::uint32_t p = 0; p < k_partitions; ++p) {
    if (p != 9) {
      EXPECT_EQ(after[p], before[p]) << "partition " << p;
    }
  }
}

TEST(placement_test, a_layout_gives_the_targets_and_overrides_still_replace_their_partition) {
  auto map = map_of(id_sets()[0], 3, 1);
  map.layout.assign(k_partitions, replica_set{"node-2"});
  map.layout[7] = {"node-3"};
  map.overrides[partition_id{9}] = {"node-1"};
  ASSERT_TRUE(validate(map).ok()) << validate(map).err().message;
  const auto wanted = targets(map);
  const auto served = placement(map);
  for (std::uint32_t p = 0; p < k_partitions; ++p) {
    EXPECT_EQ(wanted[p], map.layout[p]) << p;
    const replica_set expected = p == 9 ? replica_set{"node-1"} : map.layout[p];
    EXPECT_EQ(served[p], expected) << p;
  }
}

TEST(placement_test, override_may_name_a_draining_node) {
  auto map = map_of(id_sets()[0], 4, 1);
  map.nodes[0].state = node_state::draining;
  map.overrides[partition_id{0}] = {"node-1"};
  EXPECT_EQ(owner(map, partition_id{0}), "node-1");
}

TEST(placement_test, draining_a_node_places_like_removing_it) {
  for (std::size_t skip = 0; skip < 6; ++skip) {
    auto drained = map_of(id_sets()[5], 6, 2);
    drained.nodes[skip].state = node_state::draining;
    EXPECT_EQ(placement(drained), placement(map_of(id_sets()[5], 6, 2, skip)));
  }
}

TEST(placement_test, capacity_is_a_quarter_above_the_mean_but_never_below_it) {
  EXPECT_EQ(node_capacity(64, 1, 1), 80u);
  EXPECT_EQ(node_capacity(64, 1, 16), 5u);
  EXPECT_EQ(node_capacity(64, 1, 14), 5u);  // floor(5.71)
  EXPECT_EQ(node_capacity(64, 1, 13), 6u);  // floor(6.15)
  EXPECT_EQ(node_capacity(64, 1, 64), 1u);
  EXPECT_EQ(node_capacity(64, 1, 100), 1u);  // ceil(0.64): never below the mean
  EXPECT_EQ(node_capacity(64, 2, 3), 53u);
  EXPECT_EQ(node_capacity(4294967295u, 3, 2), 8053063678u);  // no 32-bit overflow
}

TEST(placement_test, more_nodes_than_partitions_places_one_replica_per_node_at_most) {
  const auto map = map_of(id_sets()[2], 16, 1);
  cluster_map small = map;
  small.partition_count = 5;
  const auto sets = placement(small);
  ASSERT_EQ(sets.size(), 5u);
  EXPECT_EQ(busiest(sets), 1u);
}

// Acceptance: the busiest node holds at most 1.3 x the mean P * R / N, for
// N = 2..16, R = 1, 2, 3 and every id set.
TEST(placement_test, busiest_node_holds_at_most_1_3_times_the_mean) {
  for (const auto& ids : id_sets()) {
    for (std::uint32_t r = 1; r <= 3; ++r) {
      for (std::size_t n = std::max<std::size_t>(2, r); n <= k_max_nodes; ++n) {
        const auto sets = placement(map_of(ids, n, r));
        const double mean = double(k_partitions) * r / double(n);
        EXPECT_LE(busiest(sets), 1.3 * mean) << ids[0] << " N=" << n << " R=" << r;
        EXPECT_LE(busiest(sets), node_capacity(k_partitions, r, n));
        EXPECT_EQ(replica_counts(sets).size(), n) << "every node holds something";
      }
    }
  }
}

TEST(placement_test, added_node_takes_a_share_without_exceeding_capacity) {
  for (const auto& ids : id_sets()) {
    for (std::size_t n = 2; n <= k_max_nodes; ++n) {
      const auto counts = replica_counts(placement(map_of(ids, n, 1)));
      const auto it = counts.find(ids[n - 1]);
      ASSERT_NE(it, counts.end()) << "N=" << n;
      EXPECT_GE(it->second, 1u);
      EXPECT_LE(it->second, node_capacity(k_partitions, 1, n));
    }
  }
}

}  // namespace
}  // namespace annal::cluster
