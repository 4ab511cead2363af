#include "cluster/map_codec.hpp"

#include <gtest/gtest.h>

namespace annal::cluster {
namespace {

using engine::errc;

cluster_map sample_map() {
  cluster_map map;
  map.epoch = 12;
  map.partition_count = 16;
  map.replication_factor = 2;
  map.require_approval = true;
  map.nodes = {{"node-1", "10.0.0.1:7400", "10.0.0.1:8080", node_state::active},
               {"node-2", "10.0.0.2:7400", "", node_state::draining},
               {"node-3", "10.0.0.3:7400", "10.0.0.3:8080", node_state::joining}};
  map.overrides[partition_id{3}] = {"node-2", "node-1"};
  map.overrides[partition_id{15}] = {"node-1"};
  return map;
}

// Decodes `json` and expects invalid_argument with `needle` in the message.
void expect_rejected(const std::string& json, const std::string& needle) {
  auto map = map_from_json(json);
  ASSERT_FALSE(map.ok()) << json;
  EXPECT_EQ(map.err().code, errc::invalid_argument) << json;
  EXPECT_NE(map.err().message.find(needle), std::string::npos)
      << "message '" << map.err().message << "' lacks '" << needle << "'";
}

const std::string k_minimal =
    R"({"epoch":1,"partitionCount":4,"replicationFactor":1,"nodes":[{"id":"a","address":"a:1","state":"active"}]})";

TEST(map_codec_test, round_trip_keeps_every_field) {
  const auto map = sample_map();
  auto decoded = map_from_json(to_json(map));
  ASSERT_TRUE(decoded.ok()) << decoded.err().message;
  EXPECT_EQ(*decoded, map);
}

TEST(map_codec_test, encoding_uses_camel_case_and_is_stable) {
  EXPECT_EQ(to_json(sample_map()),
            R"({"epoch":12,"formatVersion":2,"nodes":[)"
            R"({"address":"10.0.0.1:7400","httpAddress":"10.0.0.1:8080","id":"node-1","state":"active"},)"
            R"({"address":"10.0.0.2:7400","httpAddress":"","id":"node-2","state":"draining"},)"
            R"({"address":"10.0.0.3:7400","httpAddress":"10.0.0.3:8080","id":"node-3","state":"joining"}],)"
            R"("overrides":[{"partition":3,"replicas":["node-2","node-1"]},{"partition":15,"replicas":["node-1"]}],)"
            R"("partitionCount":16,"replicationFactor":2,"requireApproval":true})");
}

TEST(map_codec_test, optional_fields_take_defaults_and_unknown_fields_are_ignored) {
  auto map = map_from_json(k_minimal.substr(0, k_minimal.size() - 1) + R"(,"future":{"x":1}})");
  ASSERT_TRUE(map.ok()) << map.err().message;
  EXPECT_FALSE(map->require_approval);
  EXPECT_TRUE(map->overrides.empty());
  EXPECT_EQ(map->nodes[0].http_address, "");
}

TEST(map_codec_test, bad_json_is_rejected) {
  expect_rejected("", "not valid JSON");
  expect_rejected("{", "not valid JSON");
  expect_rejected(R"({"epoch":1,})", "not valid JSON");
  expect_rejected("[1,2]", "object");
}

TEST(map_codec_test, missing_fields_are_named) {
  expect_rejected(R"({"partitionCount":4,"replicationFactor":1,"nodes":[]})", "'epoch'");
  expect_rejected(R"({"epoch":1,"replicationFactor":1,"nodes":[]})", "'partitionCount'");
  expect_rejected(R"({"epoch":1,"partitionCount":4,"nodes":[]})", "'replicationFactor'");
  expect_rejected(R"({"epoch":1,"partitionCount":4,"replicationFactor":1})", "'nodes'");
  expect_rejected(R"({"epoch":1,"partitionCount":4,"replicationFactor":1,"nodes":[{"address":"a:1","state":"active"}]})",
                  "nodes[0]: missing field 'id'");
  expect_rejected(R"({"epoch":1,"partitionCount":4,"replicationFactor":1,"nodes":[{"id":"a","state":"active"}]})",
                  "'address'");
  expect_rejected(R"({"epoch":1,"partitionCount":4,"replicationFactor":1,"nodes":[{"id":"a","address":"a:1"}]})",
                  "'state'");
  expect_rejected(k_minimal.substr(0, k_minimal.size() - 1) + R"(,"overrides":[{"partition":1}]})",
                  "'replicas'");
}

TEST(map_codec_test, mistyped_fields_are_rejected) {
  expect_rejected(R"({"epoch":-1,"partitionCount":4,"replicationFactor":1,"nodes":[]})", "'epoch'");
  expect_rejected(R"({"epoch":"1","partitionCount":4,"replicationFactor":1,"nodes":[]})", "'epoch'");
  expect_rejected(R"({"epoch":1.5,"partitionCount":4,"replicationFactor":1,"nodes":[]})", "'epoch'");
  expect_rejected(R"({"epoch":1,"partitionCount":4294967296,"replicationFactor":1,"nodes":[]})",
                  "'partitionCount'");
  expect_rejected(R"({"epoch":1,"partitionCount":4,"replicationFactor":1,"nodes":{}})", "'nodes'");
  expect_rejected(R"({"epoch":1,"partitionCount":4,"replicationFactor":1,"nodes":[7]})", "nodes[0]");
  expect_rejected(R"({"epoch":1,"partitionCount":4,"replicationFactor":1,"requireApproval":1,"nodes":[]})",
                  "'requireApproval'");
  expect_rejected(R"({"epoch":1,"partitionCount":4,"replicationFactor":1,"nodes":[{"id":5,"address":"a:1","state":"active"}]})",
                  "'id'");
  expect_rejected(k_minimal.substr(0, k_minimal.size() - 1) + R"(,"overrides":[{"partition":1,"replicas":[1]}]})",
                  "replicas");
}

TEST(map_codec_test, unknown_state_and_version_are_rejected) {
  expect_rejected(R"({"epoch":1,"partitionCount":4,"replicationFactor":1,"nodes":[{"id":"a","address":"a:1","state":"gone"}]})",
                  "unknown state 'gone'");
  expect_rejected(k_minimal.substr(0, k_minimal.size() - 1) + R"(,"formatVersion":3})", "formatVersion 3");
  expect_rejected(k_minimal.substr(0, k_minimal.size() - 1) + R"(,"formatVersion":0})", "formatVersion 0");
}

TEST(map_codec_test, layout_round_trips_and_is_written_after_the_overrides) {
  auto map = sample_map();
  map.layout.assign(16, replica_set{"node-1"});
  map.layout[5] = {"node-1"};
  const auto json = to_json(map);
  EXPECT_NE(json.find(R"("layout":[["node-1"],["node-1"],)"), std::string::npos) << json;
  auto decoded = map_from_json(json);
  ASSERT_TRUE(decoded.ok()) << decoded.err().message;
  EXPECT_EQ(*decoded, map);
}

TEST(map_codec_test, version_1_maps_are_read_without_a_layout) {
  auto map = map_from_json(k_minimal.substr(0, k_minimal.size() - 1) + R"(,"formatVersion":1})");
  ASSERT_TRUE(map.ok()) << map.err().message;
  EXPECT_TRUE(map->layout.empty());
  expect_rejected(k_minimal.substr(0, k_minimal.size() - 1) +
                      R"(,"formatVersion":1,"layout":[["a"],["a"],["a"],["a"]]})",
                  "needs formatVersion 2");
}

TEST(map_codec_test, bad_layouts_are_rejected) {
  const std::string head = k_minimal.substr(0, k_minimal.size() - 1);
  expect_rejected(head + R"(,"layout":[["a"],["a"],["a"]]})", "layout has 3 sets for 4 partitions");
  expect_rejected(head + R"(,"layout":[["a"],["a"],["a"],["b"]]})", "unknown node 'b'");
  expect_rejected(head + R"(,"layout":[["a"],["a"],["a"],[]]})", "0 replicas, expected 1");
  expect_rejected(head + R"(,"layout":[["a"],["a"],["a"],"a"]})", "layout[3]: must be an array");
  expect_rejected(head + R"(,"layout":{"0":["a"]}})", "'layout' must be an array");
  expect_rejected(R"({"epoch":1,"partitionCount":2,"replicationFactor":1,"nodes":[)"
                  R"({"id":"a","address":"a:1","state":"active"},{"id":"b","address":"b:1","state":"draining"}],)"
                  R"("layout":[["a"],["b"]]})",
                  "node 'b' is not active");
}

TEST(map_codec_test, zero_partitions_or_replicas_are_rejected) {
  expect_rejected(R"({"epoch":1,"partitionCount":0,"replicationFactor":1,"nodes":[]})", "partition count");
  expect_rejected(R"({"epoch":1,"partitionCount":4,"replicationFactor":0,"nodes":[]})", "replication factor");
}

TEST(map_codec_test, duplicate_node_ids_are_rejected) {
  expect_rejected(R"({"epoch":1,"partitionCount":4,"replicationFactor":1,"nodes":[)"
                  R"({"id":"a","address":"a:1","state":"active"},{"id":"a","address":"b:1","state":"joining"}]})",
                  "duplicate node id 'a'");
}

TEST(map_codec_test, bad_overrides_are_rejected) {
  const std::string head = k_minimal.substr(0, k_minimal.size() - 1);
  expect_rejected(head + R"(,"overrides":[{"partition":4,"replicas":["a"]}]})", "out of range");
  expect_rejected(head + R"(,"overrides":[{"partition":0,"replicas":["b"]}]})", "unknown node 'b'");
  expect_rejected(head + R"(,"overrides":[{"partition":0,"replicas":[]}]})", "empty replica set");
  expect_rejected(head + R"(,"overrides":[{"partition":0,"replicas":["a"]},{"partition":0,"replicas":["a"]}]})",
                  "overridden twice");
  expect_rejected(head + R"(,"overrides":{"0":["a"]}})", "'overrides'");
}

TEST(map_codec_test, invalid_node_ids_are_rejected) {
  expect_rejected(R"({"epoch":1,"partitionCount":4,"replicationFactor":1,"nodes":[{"id":"a b","address":"a:1","state":"active"}]})",
                  "invalid node id");
}

TEST(map_codec_test, largest_epoch_survives) {
  auto map = sample_map();
  map.epoch = 0xffffffffffffffffULL;
  auto decoded = map_from_json(to_json(map));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->epoch, map.epoch);
}

}  // namespace
}  // namespace annal::cluster
