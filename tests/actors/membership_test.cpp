// Membership over the in-process metadata store: forming, joining with
// pinned partitions, admin changes and their races, the persisted map, and
// answers owed at stop. Peers are recording stand-ins (below the unit).
#include "actors/membership.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <thread>

#include "cluster/map_codec.hpp"
#include "cluster/memory_meta_store.hpp"
#include "tests/support/eventually.hpp"
#include "engine/partitioning.hpp"
#include "tests/support/await_reply.hpp"
#include "tests/support/store_handler.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/unreachable_peer.hpp"

namespace annal::testing {
namespace {

using engine::errc;
using namespace std::chrono_literals;

struct member {
  member(std::string id, cluster::meta_store& store, std::uint32_t bootstrap_expect = 1)
      : local(dir.path() + "/store", 8) {
    actors::membership_options options;
    options.node_id = id;
    options.data_dir = dir.path();
    options.partition_count = 8;
    options.bootstrap_expect = bootstrap_expect;
    options.lease_ttl = 2s;
    m = std::make_unique<actors::membership>(options, store, local,
                                             [this](const cluster::node_entry& node) {
                                               auto p = std::make_shared<unreachable_peer>();
                                               peers[node.id] = p;
                                               return p;
                                             });
    m->set_addresses("127.0.0.1:1" + std::to_string(id.size()), "127.0.0.1:2");
  }

  temp_dir dir;
  store_handler local;
  std::map<std::string, std::shared_ptr<unreachable_peer>> peers;
  std::unique_ptr<actors::membership> m;
};


TEST(membership, a_single_node_forms_the_map_and_serves_every_partition) {
  cluster::memory_meta_store store;
  member a("a", store);
  a.m->start();
  ASSERT_TRUE(a.m->wait_until_serving(30s));
  auto map = a.m->current_map();
  ASSERT_TRUE(map);
  EXPECT_EQ(map->epoch, 1u);
  ASSERT_EQ(map->nodes.size(), 1u);
  EXPECT_EQ(map->nodes[0].address, "127.0.0.1:11");
  const auto table = a.m->router().table();
  EXPECT_EQ(table->epoch, 1u);
  for (const auto& owner : table->owner_ids) EXPECT_EQ(owner, "a");

  // Persisted: the same map, readable by a restart.
  std::ifstream in(a.dir.path() + "/cluster-map.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto persisted = cluster::map_from_json(text);
  ASSERT_TRUE(persisted) << persisted.err().message;
  EXPECT_EQ(*persisted, *map);

  auto appended = await_reply<actors::append_reply>([&](auto reply) {
    a.m->router().append({"s-1", engine::expected_version::any(), {engine::event_input{{}, "A", "{}", ""}}}, reply);
  });
  EXPECT_TRUE(appended) << appended.err().message;
}

TEST(membership, a_joining_node_moves_nothing_until_a_handoff) {
  cluster::memory_meta_store store;
  member a("a", store);
  a.m->start();
  ASSERT_TRUE(a.m->wait_until_serving(30s));
  member b("b", store);
  b.m->start();
  ASSERT_TRUE(b.m->wait_until_serving(30s));
  ASSERT_TRUE(eventually([&] { return a.m->router().table()->epoch == 2; }));

  auto map = *b.m->current_map();
  EXPECT_EQ(map.epoch, 2u);
  EXPECT_NE(map.find("b"), nullptr);
  EXPECT_FALSE(map.overrides.empty()) << "b's share of the partitions is pinned to a";
  for (const auto& owner : a.m->router().table()->owner_ids) EXPECT_EQ(owner, "a");
  for (const auto& owner : b.m->router().table()->owner_ids) EXPECT_EQ(owner, "a");
  EXPECT_EQ(b.peers.at("a")->epoch_.load(), 2u);

  auto status = await_reply<actors::cluster_status>([&](auto reply) { a.m->status(reply); });
  ASSERT_TRUE(status);
  EXPECT_EQ(status->nodes.size(), 2u);
  EXPECT_EQ(status->pending_moves.size(), map.overrides.size());
  for (const auto& move : status->pending_moves) {
    EXPECT_EQ(move.pinned, cluster::replica_set{"a"});
    EXPECT_EQ(move.target, cluster::replica_set{"b"});
  }
}

TEST(membership, racing_changes_at_one_epoch_one_wins_the_other_conflicts) {
  cluster::memory_meta_store store;
  member a("a", store);
  member b("b", store, 2);
  a.m->start();
  b.m->start();
  ASSERT_TRUE(a.m->wait_until_serving(30s));
  ASSERT_TRUE(b.m->wait_until_serving(30s));
  // Settled: both applied the map that holds both (formed together, or b joined).
  ASSERT_TRUE(eventually([&] {
    auto ma = a.m->current_map();
    auto mb = b.m->current_map();
    return ma && mb && ma->nodes.size() == 2 && *ma == *mb;
  }));
  const auto epoch = a.m->current_map()->epoch;

  for (int round = 0; round < 5; ++round) {
    const auto at = a.m->current_map()->epoch;
    std::promise<engine::result<cluster::cluster_map>> first, second;
    a.m->add_node({"x" + std::to_string(round), "127.0.0.1:9", "", cluster::node_state::active},
                  at, [&](auto r) { first.set_value(std::move(r)); });
    b.m->add_node({"y" + std::to_string(round), "127.0.0.1:9", "", cluster::node_state::active},
                  at, [&](auto r) { second.set_value(std::move(r)); });
    auto r1 = first.get_future().get();
    auto r2 = second.get_future().get();
    ASSERT_EQ(static_cast<bool>(r1) + static_cast<bool>(r2), 1)
        << round << ": " << (r1 ? "ok" : r1.err().message) << " | " << (r2 ? "ok" : r2.err().message);
    EXPECT_EQ((r1 ? r2 : r1).err().code, errc::conflict);
    EXPECT_EQ((r1 ? r1 : r2)->epoch, at + 1);
    ASSERT_TRUE(eventually([&] {
      return a.m->current_map()->epoch == at + 1 && b.m->current_map()->epoch == at + 1;
    }));
    EXPECT_EQ(*a.m->current_map(), *b.m->current_map());
  }
  EXPECT_EQ(a.m->current_map()->epoch, epoch + 5);

  auto unknown = await_reply<cluster::cluster_map>(
      [&](auto reply) { a.m->remove_node("nobody", std::nullopt, reply); });
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.err().code, errc::not_found);
  auto holding = await_reply<cluster::cluster_map>(
      [&](auto reply) { a.m->remove_node("a", std::nullopt, reply); });
  ASSERT_FALSE(holding);
  EXPECT_EQ(holding.err().code, errc::invalid_argument);
}

TEST(membership, with_approval_required_a_new_node_waits_until_approved) {
  cluster::memory_meta_store store;
  member a("a", store);
  a.m->start();
  ASSERT_TRUE(a.m->wait_until_serving(30s));
  auto required = await_reply<cluster::cluster_map>(
      [&](auto reply) { a.m->set_require_approval(true, std::nullopt, reply); });
  ASSERT_TRUE(required) << required.err().message;
  EXPECT_TRUE(required->require_approval);

  member b("b", store);
  b.m->start();
  ASSERT_TRUE(b.m->wait_until_serving(30s));
  auto joined = *b.m->current_map();
  ASSERT_NE(joined.find("b"), nullptr);
  EXPECT_EQ(joined.find("b")->state, cluster::node_state::joining);
  EXPECT_TRUE(joined.overrides.empty()) << "a joining node changes no placement";

  auto again = await_reply<cluster::cluster_map>(
      [&](auto reply) { a.m->approve_node("a", std::nullopt, reply); });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.err().code, errc::invalid_argument);
  auto approved = await_reply<cluster::cluster_map>(
      [&](auto reply) { a.m->approve_node("b", joined.epoch, reply); });
  ASSERT_TRUE(approved) << approved.err().message;
  EXPECT_EQ(approved->find("b")->state, cluster::node_state::active);
  EXPECT_FALSE(approved->overrides.empty()) << "b's share stays pinned to a until a handoff";
  ASSERT_TRUE(eventually([&] { return b.m->router().table()->epoch == approved->epoch; }));
  for (const auto& owner : b.m->router().table()->owner_ids) EXPECT_EQ(owner, "a");
}

TEST(membership, after_stop_every_call_still_gets_an_answer) {
  cluster::memory_meta_store store;
  member a("a", store);
  a.m->start();
  ASSERT_TRUE(a.m->wait_until_serving(30s));
  a.m->stop();
  auto status = await_reply<actors::cluster_status>([&](auto reply) { a.m->status(reply); });
  ASSERT_FALSE(status);
  EXPECT_EQ(status.err().code, errc::shutting_down);
  auto change = await_reply<cluster::cluster_map>(
      [&](auto reply) { a.m->drain_node("a", std::nullopt, reply); });
  ASSERT_FALSE(change);
  EXPECT_EQ(change.err().code, errc::shutting_down);
  // The lease is revoked: the node no longer shows as registered.
  auto nodes = store.range(actors::k_nodes_prefix, true);
  ASSERT_TRUE(nodes);
  EXPECT_TRUE(nodes->kvs.empty());
}

TEST(membership, a_restarted_node_serves_its_persisted_map_before_the_store_answers) {
  temp_dir shared;
  std::string persisted_path;
  {
    cluster::memory_meta_store store;
    member a("a", store);
    a.m->start();
    ASSERT_TRUE(a.m->wait_until_serving(30s));
    persisted_path = a.dir.path() + "/cluster-map.json";
    std::ifstream in(persisted_path);
    std::ofstream out(shared.path() + "/cluster-map.json");
    out << in.rdbuf();
  }
  // A fresh store that knows nothing, and bootstrap waiting for 3 nodes:
  // the node serves the map it persisted.
  cluster::memory_meta_store empty_store;
  member again("a", empty_store, 3);
  {
    std::ifstream in(shared.path() + "/cluster-map.json");
    std::ofstream out(again.dir.path() + "/cluster-map.json");
    out << in.rdbuf();
  }
  again.m->start();
  EXPECT_TRUE(again.m->wait_until_serving(1s));
  EXPECT_EQ(again.m->router().table()->epoch, 1u);
  EXPECT_EQ(again.m->router().table()->owner_ids[0], "a");
}

}  // namespace
}  // namespace annal::testing
