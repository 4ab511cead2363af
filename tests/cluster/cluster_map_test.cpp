#include "cluster/cluster_map.hpp"

#include <gtest/gtest.h>

#include "cluster/placement.hpp"

namespace annal::cluster {
namespace {

using engine::errc;

cluster_map three_nodes() {
  cluster_map map;
  map.epoch = 4;
  for (const char* id : {"node-1", "node-2", "node-3"}) {
    map.nodes.push_back({id, std::string(id) + ":7400", "", node_state::active});
  }
  return map;
}

TEST(cluster_map_test, valid_map_passes) { EXPECT_TRUE(validate(three_nodes()).ok()); }

TEST(cluster_map_test, zero_partitions_is_invalid) {
  auto map = three_nodes();
  map.partition_count = 0;
  EXPECT_EQ(validate(map).err().code, errc::invalid_argument);
}

TEST(cluster_map_test, zero_replication_factor_is_invalid) {
  auto map = three_nodes();
  map.replication_factor = 0;
  EXPECT_EQ(validate(map).err().code, errc::invalid_argument);
}

TEST(cluster_map_test, duplicate_node_id_is_invalid) {
  auto map = three_nodes();
  map.nodes.push_back(map.nodes[1]);
  const auto st = validate(map);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.err().code, errc::invalid_argument);
  EXPECT_NE(st.err().message.find("node-2"), std::string::npos);
}

TEST(cluster_map_test, node_ids_are_checked) {
  EXPECT_TRUE(valid_node_id("node-1"));
  EXPECT_TRUE(valid_node_id("a.b_c-D9"));
  EXPECT_TRUE(valid_node_id(std::string(k_max_node_id_bytes, 'x')));
  EXPECT_FALSE(valid_node_id(""));
  EXPECT_FALSE(valid_node_id(std::string(k_max_node_id_bytes + 1, 'x')));
  EXPECT_FALSE(valid_node_id("node#1"));
  EXPECT_FALSE(valid_node_id("node/1"));
  EXPECT_FALSE(valid_node_id("host:7400"));
  EXPECT_FALSE(valid_node_id("n\xc3\xa9"));
  auto map = three_nodes();
  map.nodes[0].id = "bad id";
  EXPECT_EQ(validate(map).err().code, errc::invalid_argument);
}

TEST(cluster_map_test, node_without_address_is_invalid) {
  auto map = three_nodes();
  map.nodes[2].address.clear();
  EXPECT_EQ(validate(map).err().code, errc::invalid_argument);
}

TEST(cluster_map_test, override_of_partition_out_of_range_is_invalid) {
  auto map = three_nodes();
  map.overrides[partition_id{map.partition_count}] = {"node-1"};
  EXPECT_EQ(validate(map).err().code, errc::invalid_argument);
}

TEST(cluster_map_test, override_naming_unknown_node_is_invalid) {
  auto map = three_nodes();
  map.overrides[partition_id{0}] = {"node-9"};
  const auto st = validate(map);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.err().message.find("node-9"), std::string::npos);
}

TEST(cluster_map_test, empty_or_repeating_override_is_invalid) {
  auto map = three_nodes();
  map.overrides[partition_id{0}] = {};
  EXPECT_EQ(validate(map).err().code, errc::invalid_argument);
  map.overrides[partition_id{0}] = {"node-1", "node-1"};
  EXPECT_EQ(validate(map).err().code, errc::invalid_argument);
}

TEST(cluster_map_test, node_state_names_round_trip) {
  for (auto s : {node_state::joining, node_state::active, node_state::draining}) {
    EXPECT_EQ(node_state_from_name(node_state_name(s)), s);
  }
  EXPECT_EQ(node_state_from_name("removed"), std::nullopt);
}

TEST(cluster_map_test, initial_state_follows_require_approval) {
  auto map = three_nodes();
  EXPECT_EQ(initial_state(map), node_state::active);
  map.require_approval = true;
  EXPECT_EQ(initial_state(map), node_state::joining);
}

TEST(cluster_map_test, add_node_bumps_epoch_and_leaves_input_alone) {
  const auto map = three_nodes();
  auto next = add_node(map, {"node-4", "h4:7400", "h4:8080", node_state::joining});
  ASSERT_TRUE(next.ok()) << next.err().message;
  EXPECT_EQ(next->epoch, 5u);
  ASSERT_NE(next->find("node-4"), nullptr);
  EXPECT_EQ(next->find("node-4")->http_address, "h4:8080");
  EXPECT_EQ(map.nodes.size(), 3u);
  EXPECT_TRUE(validate(*next).ok());
}

TEST(cluster_map_test, add_duplicate_node_is_a_conflict) {
  auto next = add_node(three_nodes(), {"node-2", "other:7400", "", node_state::joining});
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.err().code, errc::conflict);
}

TEST(cluster_map_test, add_invalid_node_is_rejected) {
  EXPECT_EQ(add_node(three_nodes(), {"", "h:1", "", node_state::active}).err().code,
            errc::invalid_argument);
  EXPECT_EQ(add_node(three_nodes(), {"node-4", "", "", node_state::active}).err().code,
            errc::invalid_argument);
}

TEST(cluster_map_test, set_state_changes_only_that_node) {
  auto next = set_node_state(three_nodes(), "node-2", node_state::draining);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->epoch, 5u);
  EXPECT_EQ(next->find("node-2")->state, node_state::draining);
  EXPECT_EQ(next->find("node-1")->state, node_state::active);
}

TEST(cluster_map_test, set_state_of_unknown_node_is_not_found) {
  EXPECT_EQ(set_node_state(three_nodes(), "node-9", node_state::active).err().code, errc::not_found);
}

TEST(cluster_map_test, removing_an_active_node_is_refused_with_a_clear_message) {
  auto next = remove_node(three_nodes(), "node-1");
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.err().code, errc::invalid_argument);
  EXPECT_NE(next.err().message.find("drain"), std::string::npos) << next.err().message;
}

TEST(cluster_map_test, removing_a_node_pinned_by_an_override_is_refused) {
  auto map = three_nodes();
  map.nodes[0].state = node_state::draining;
  map.overrides[partition_id{3}] = {"node-1"};
  auto next = remove_node(map, "node-1");
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.err().code, errc::invalid_argument);
  EXPECT_NE(next.err().message.find("partition 3"), std::string::npos) << next.err().message;
}

TEST(cluster_map_test, drain_then_remove_succeeds) {
  auto drained = set_node_state(three_nodes(), "node-1", node_state::draining);
  ASSERT_TRUE(drained.ok());
  auto removed = remove_node(*drained, "node-1");
  ASSERT_TRUE(removed.ok()) << removed.err().message;
  EXPECT_EQ(removed->epoch, 6u);
  EXPECT_EQ(removed->find("node-1"), nullptr);
  EXPECT_EQ(placement(*removed), placement(*drained));
}

TEST(cluster_map_test, removing_a_joining_node_succeeds) {
  auto map = three_nodes();
  map.nodes[2].state = node_state::joining;
  EXPECT_TRUE(remove_node(map, "node-3").ok());
}

TEST(cluster_map_test, remove_unknown_node_is_not_found) {
  EXPECT_EQ(remove_node(three_nodes(), "node-9").err().code, errc::not_found);
}

TEST(cluster_map_test, set_and_clear_override) {
  auto pinned = set_override(three_nodes(), partition_id{7}, {"node-3"});
  ASSERT_TRUE(pinned.ok());
  EXPECT_EQ(pinned->epoch, 5u);
  EXPECT_EQ(owner(*pinned, partition_id{7}), "node-3");
  auto cleared = clear_override(*pinned, partition_id{7});
  ASSERT_TRUE(cleared.ok());
  EXPECT_TRUE(cleared->overrides.empty());
  EXPECT_EQ(clear_override(*cleared, partition_id{7}).err().code, errc::not_found);
  EXPECT_EQ(set_override(three_nodes(), partition_id{64}, {"node-3"}).err().code, errc::invalid_argument);
  EXPECT_EQ(set_override(three_nodes(), partition_id{1}, {"node-7"}).err().code, errc::invalid_argument);
}

}  // namespace
}  // namespace annal::cluster
