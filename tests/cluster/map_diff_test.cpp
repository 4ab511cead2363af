#include "cluster/map_diff.hpp"

#include <gtest/gtest.h>

#include "cluster/placement.hpp"

namespace annal::cluster {
namespace {

cluster_map nodes_map(int count) {
  cluster_map map;
  for (int i = 1; i <= count; ++i) {
    const std::string id = "node-" + std::to_string(i);
    map.nodes.push_back({id, id + ":7400", "", node_state::active});
  }
  return map;
}

TEST(map_diff_test, same_placement_has_no_moves) {
  const auto map = nodes_map(5);
  EXPECT_TRUE(diff(map, map).empty());
  cluster_map bumped = map;
  bumped.epoch = 9;
  bumped.require_approval = true;
  EXPECT_TRUE(diff(map, bumped).empty());
}

TEST(map_diff_test, moves_are_exactly_the_changed_partitions_in_order) {
  const auto before = nodes_map(4);
  const auto after = nodes_map(5);
  const auto from = placement(before);
  const auto to = placement(after);
  const auto moves = diff(before, after);
  std::size_t next = 0;
  for (std::uint32_t p = 0; p < before.partition_count; ++p) {
    if (from[p] == to[p]) continue;
    ASSERT_LT(next, moves.size());
    EXPECT_EQ(moves[next], (partition_move{partition_id{p}, from[p], to[p]}));
    ++next;
  }
  EXPECT_EQ(next, moves.size());
  EXPECT_FALSE(moves.empty());
}

TEST(map_diff_test, removed_node_loses_all_its_partitions) {
  auto before = nodes_map(6);
  auto after = before;
  after.nodes[2].state = node_state::draining;
  const auto from = placement(before);
  std::size_t held = replica_counts(from)["node-3"];
  std::size_t moved_away = 0;
  for (const auto& move : diff(before, after)) {
    if (move.from.front() == "node-3") ++moved_away;
    for (const auto& id : move.to) EXPECT_NE(id, "node-3");
  }
  EXPECT_EQ(moved_away, held);
}

TEST(map_diff_test, override_shows_as_one_move_and_clearing_it_moves_back) {
  const auto before = nodes_map(3);
  auto pinned = before;
  const auto current = placement(before)[5];
  const node_id other = current.front() == "node-1" ? "node-2" : "node-1";
  pinned.overrides[partition_id{5}] = {other};
  const auto moves = diff(before, pinned);
  ASSERT_EQ(moves.size(), 1u);
  EXPECT_EQ(moves[0], (partition_move{partition_id{5}, current, {other}}));
  const auto back = diff(pinned, before);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].to, current);
}

TEST(map_diff_test, primary_change_counts_as_a_move) {
  const std::vector<replica_set> from{{"a", "b"}, {"c"}};
  const std::vector<replica_set> to{{"b", "a"}, {"c"}};
  const auto moves = diff(from, to);
  ASSERT_EQ(moves.size(), 1u);
  EXPECT_EQ(moves[0].partition, partition_id{0});
}

TEST(map_diff_test, missing_partitions_count_as_empty) {
  const std::vector<replica_set> from{{"a"}};
  const std::vector<replica_set> to{{"a"}, {"b"}};
  const auto moves = diff(from, to);
  ASSERT_EQ(moves.size(), 1u);
  EXPECT_EQ(moves[0], (partition_move{partition_id{1}, {}, {"b"}}));
}

TEST(map_diff_test, first_node_activated_receives_everything) {
  auto before = nodes_map(1);
  before.nodes[0].state = node_state::joining;
  auto after = nodes_map(1);
  const auto moves = diff(before, after);
  ASSERT_EQ(moves.size(), after.partition_count);
  for (const auto& move : moves) {
    EXPECT_TRUE(move.from.empty());
    EXPECT_EQ(move.to, replica_set{"node-1"});
  }
}

}  // namespace
}  // namespace annal::cluster
