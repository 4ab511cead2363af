// Partition handoff, source side, on a real node (real files in a temp dir)
// in a one-node cluster over the in-process metadata store: the partition
// actor's seal (client requests parked, unapplied, then served in order or
// failed with not_owner), the hold deadline that fences a handoff off in the
// store, a handoff that committed elsewhere (the fence, the old copy
// deleted), and the node-level shipping calls between two nodes.
//
// Nothing here decides pass or fail by sleeping: "not replied yet" is
// checked at a moment where the request is known to have reached its
// partition actor (a later message to the same actor has been answered), and
// everything else is waited for with a generous deadline.

#include "actors/handoff.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "actors/membership.hpp"
#include "actors/node.hpp"
#include "actors/peer.hpp"
#include "cluster/cluster_map.hpp"
#include "cluster/map_codec.hpp"
#include "cluster/memory_meta_store.hpp"
#include "cluster/placement.hpp"
#include "engine/partitioning.hpp"
#include "tests/actors/node_harness.hpp"
#include "tests/support/event_factory.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/unreachable_peer.hpp"

namespace annal::testing {
namespace {

using actors::append_reply;
using engine::errc;
using engine::expected_version;
using namespace std::chrono_literals;

constexpr std::uint32_t k_partitions = 8;
constexpr auto k_deadline = 30s;
// A hold no test outlives: the explicit unseal, not the deadline, ends it.
constexpr auto k_long_hold = std::chrono::milliseconds(120'000);

// A reply that is waited for later (or checked for not having come yet).
template <class T>
class pending {
 public:
  pending() : future_(promise_->get_future()) {}

  actors::reply_fn<T> fn() {
    return [p = promise_](engine::result<T> r) { p->set_value(std::move(r)); };
  }
  bool arrived() const { return future_.wait_for(0s) == std::future_status::ready; }
  // The reply; throws (a test failure) if none comes within the deadline.
  engine::result<T> get() {
    if (future_.wait_for(k_deadline) != std::future_status::ready) {
      throw std::runtime_error("no reply within the deadline");
    }
    return future_.get();
  }

 private:
  std::shared_ptr<std::promise<engine::result<T>>> promise_ =
      std::make_shared<std::promise<engine::result<T>>>();
  std::future<engine::result<T>> future_;
};

// Polls `condition` until it holds or the deadline passes.
bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + k_deadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return condition();
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// A stream id in partition `p`, distinct for each `n`.
std::string stream_in(partition_id p, int n) {
  for (int i = 0;; ++i) {
    auto s = "h-" + std::to_string(n) + "-" + std::to_string(i);
    if (engine::partition_for(s, k_partitions) == p) return s;
  }
}

// A node wired as cli/server_command.cpp wires it: membership over `store`
// (ownership listener -> node::set_owned, applied listener ->
// handoff_manager::on_map_applied) and a started handoff manager.
class cluster_node {
 public:
  cluster_node(std::string id, cluster::meta_store& store) : id_(std::move(id)) {
    auto o = small_node_options(dir_, engine::fsync_mode::always);
    o.node_id = id_;
    o.partition_count = k_partitions;
    node_ = start_node(std::move(o));

    actors::membership_options m;
    m.node_id = id_;
    m.data_dir = dir_.path();
    m.partition_count = k_partitions;
    m.bootstrap_expect = 1;
    members_ = std::make_unique<actors::membership>(
        m, store, node_->handler(),
        [](const cluster::node_entry&) { return std::make_shared<unreachable_peer>(); });
    members_->set_addresses("127.0.0.1:1", "127.0.0.1:2");

    actors::handoff_options h;
    h.node_id = id_;
    handoff_ = std::make_unique<actors::handoff_manager>(h, store, *node_, *members_);
    members_->set_ownership_listener(
        [n = node_.get()](partition_id p, bool owned) { n->set_owned(p, owned); });
    members_->set_applied_listener(
        [h = handoff_.get()](const cluster::cluster_map& map) { h->on_map_applied(map); });
    members_->start();
    handoff_->start();
  }
  ~cluster_node() {
    handoff_->stop();
    members_->stop();
    node_->stop();
  }

  const std::string& id() const { return id_; }
  actors::node& node() { return *node_; }
  actors::membership& members() { return *members_; }
  actors::handoff_manager& handoff() { return *handoff_; }
  // Client requests as a client's server would send them: routed by the map.
  actors::request_handler& router() { return members_->router(); }

  engine::result<lsn> end_of(partition_id p) {
    return await_reply<lsn>([&](auto reply) { node_->partition_end(p, std::move(reply)); });
  }

 private:
  std::string id_;
  temp_dir dir_;
  std::unique_ptr<actors::node> node_;
  std::unique_ptr<actors::membership> members_;
  std::unique_ptr<actors::handoff_manager> handoff_;
};

engine::result<append_reply> append(actors::request_handler& h, const std::string& stream,
                                    expected_version expected,
                                    std::vector<engine::event_input> events) {
  return await_reply<append_reply>([&](auto reply) {
    h.append(append_of(stream, expected, std::move(events)), std::move(reply));
  });
}

engine::result<engine::read_page> read(actors::request_handler& h, const std::string& stream) {
  return await_reply<engine::read_page>([&](auto reply) {
    h.read(actors::read_request{stream, stream_version{0}, false, 100,
                                engine::read_direction::forward},
           std::move(reply));
  });
}

std::vector<std::uint64_t> versions(const engine::read_page& page) {
  std::vector<std::uint64_t> out;
  for (const auto& e : page.events) out.push_back(e.version.value());
  return out;
}

std::string record_key(partition_id p) {
  return actors::k_partition_prefix + std::to_string(p.value());
}

// The partition record's JSON, or a null json when there is none.
nlohmann::json record_of(cluster::meta_store& store, partition_id p) {
  auto found = store.range(record_key(p));
  if (!found) throw std::runtime_error("range: " + found.err().message);
  if (found->kvs.empty()) return nullptr;
  return nlohmann::json::parse(found->kvs.front().value);
}

class handoff_source : public ::testing::Test {
 protected:
  handoff_source() : a_("a", store_) {}

  void SetUp() override {
    ASSERT_TRUE(a_.members().wait_until_serving(k_deadline));
    ASSERT_EQ(a_.members().current_map()->epoch, 1u);
  }

  cluster::memory_meta_store store_;
  cluster_node a_;
  const partition_id p_{3};
  const partition_id q_{5};  // another partition, served all along
};

// Seal parks every client request to the partition, unapplied, answers with
// the partition's end once the writes accepted before are durable, and
// unseal serves the parked requests in arrival order.
TEST_F(handoff_source, a_seal_parks_client_requests_until_unseal_serves_them_in_order) {
  const auto s = stream_in(p_, 1);
  const auto other = stream_in(q_, 2);
  auto first = append(a_.router(), s, expected_version::no_stream(), make_events(1, 1));
  ASSERT_TRUE(first) << first.err().message;
  EXPECT_EQ(first->partition, p_);
  EXPECT_EQ(first->first_version.value(), 0u);

  // An append still waiting for its fsync when the seal arrives: the seal
  // answers only after it, with the end that includes it.
  pending<append_reply> in_flight;
  pending<lsn> sealed;
  std::atomic<bool> in_flight_before_seal{false};
  a_.router().append(append_of(s, expected_version::exact(0), make_events(2, 1)), in_flight.fn());
  a_.handoff().seal(p_, k_long_hold, [&, reply = sealed.fn()](engine::result<lsn> r) mutable {
    in_flight_before_seal = in_flight.arrived();
    reply(std::move(r));
  });
  auto end = sealed.get();
  ASSERT_TRUE(end) << end.err().message;
  EXPECT_TRUE(in_flight_before_seal.load()) << "the seal answered before an accepted write";
  auto second = in_flight.get();
  ASSERT_TRUE(second) << second.err().message;
  EXPECT_EQ(second->first_version.value(), 1u);
  EXPECT_GT(end->value(), second->position.value());
  auto now_end = a_.end_of(p_);
  ASSERT_TRUE(now_end);
  EXPECT_EQ(*now_end, *end);
  // Everything up to the sealed end is durable: shipping (served while
  // sealed) sees it all.
  auto shipped = await_reply<engine::shipped_batch>(
      [&](auto reply) { a_.handoff().ship_log(p_, lsn{0}, 1u << 20, std::move(reply)); });
  ASSERT_TRUE(shipped) << shipped.err().message;
  EXPECT_EQ(shipped->source_end, *end);
  EXPECT_EQ(shipped->next, *end);

  // A second seal of a sealed partition is refused.
  auto again =
      await_reply<lsn>([&](auto reply) { a_.handoff().seal(p_, k_long_hold, std::move(reply)); });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.err().code, errc::invalid_argument);

  // Client requests to p through the router: parked in arrival order.
  pending<engine::read_page> parked_read;
  pending<append_reply> parked_1, parked_2;
  a_.router().read(
      actors::read_request{s, stream_version{0}, false, 100, engine::read_direction::forward},
      parked_read.fn());
  a_.router().append(append_of(s, expected_version::exact(1), make_events(3, 1)), parked_1.fn());
  a_.router().append(append_of(s, expected_version::exact(2), make_events(4, 2)), parked_2.fn());
  // A message sent to p's actor after them has been answered: they reached it.
  auto still = a_.end_of(p_);
  ASSERT_TRUE(still);
  EXPECT_EQ(*still, *end) << "a parked append was applied";
  EXPECT_FALSE(parked_read.arrived());
  EXPECT_FALSE(parked_1.arrived());
  EXPECT_FALSE(parked_2.arrived());

  // Other partitions are served meanwhile.
  auto elsewhere = append(a_.router(), other, expected_version::any(), make_events(10, 2));
  ASSERT_TRUE(elsewhere) << elsewhere.err().message;
  EXPECT_EQ(elsewhere->partition, q_);
  auto elsewhere_read = read(a_.router(), other);
  ASSERT_TRUE(elsewhere_read) << elsewhere_read.err().message;
  EXPECT_EQ(versions(*elsewhere_read), (std::vector<std::uint64_t>{0, 1}));

  // Right before the unseal, nothing parked has been answered.
  ASSERT_FALSE(parked_read.arrived());
  ASSERT_FALSE(parked_1.arrived());
  ASSERT_FALSE(parked_2.arrived());
  auto unsealed = await_reply<lsn>([&](auto reply) { a_.handoff().unseal(p_, std::move(reply)); });
  ASSERT_TRUE(unsealed) << unsealed.err().message;
  EXPECT_GT(unsealed->value(), end->value()) << "the parked appends are applied by the unseal";

  auto page = parked_read.get();
  ASSERT_TRUE(page) << page.err().message;
  EXPECT_EQ(versions(*page), (std::vector<std::uint64_t>{0, 1})) << "served before the appends";
  auto r1 = parked_1.get();
  ASSERT_TRUE(r1) << r1.err().message;
  EXPECT_EQ(r1->first_version.value(), 2u);
  EXPECT_EQ(r1->last_version.value(), 2u);
  EXPECT_FALSE(r1->duplicate);
  auto r2 = parked_2.get();
  ASSERT_TRUE(r2) << r2.err().message;
  EXPECT_EQ(r2->first_version.value(), 3u);
  EXPECT_EQ(r2->last_version.value(), 4u);
  EXPECT_GT(r2->position.value(), r1->position.value());
  auto after = a_.end_of(p_);
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, *unsealed);

  auto all = read(a_.router(), s);
  ASSERT_TRUE(all) << all.err().message;
  ASSERT_EQ(versions(*all), (std::vector<std::uint64_t>{0, 1, 2, 3, 4}));
  for (std::size_t i = 0; i < all->events.size(); ++i) {
    EXPECT_EQ(all->events[i].id, make_event_id(1 + i));
  }
  // Served normally after the unseal; a second unseal changes nothing.
  auto later = append(a_.router(), s, expected_version::exact(4), make_events(5, 1));
  ASSERT_TRUE(later) << later.err().message;
  EXPECT_EQ(later->first_version.value(), 5u);
  auto unsealed_again =
      await_reply<lsn>([&](auto reply) { a_.handoff().unseal(p_, std::move(reply)); });
  ASSERT_TRUE(unsealed_again) << unsealed_again.err().message;
  // An explicit unseal ends the hold: the handoff was never fenced off.
  EXPECT_TRUE(record_of(store_, p_).is_null());
}

// A seal nobody ends: the hold deadline ends it. The node fences the handoff
// off in the store (the partition record names it with ownerEpoch + 1) and
// serves the parked requests.
TEST_F(handoff_source, a_seal_not_ended_in_time_is_fenced_off_and_the_parked_append_completes) {
  const auto s = stream_in(p_, 3);
  auto first = append(a_.router(), s, expected_version::no_stream(), make_events(1, 1));
  ASSERT_TRUE(first) << first.err().message;
  ASSERT_TRUE(record_of(store_, p_).is_null()) << "a partition never moved has no record";

  for (std::uint64_t round = 1; round <= 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const auto before = store_.range(record_key(p_));
    ASSERT_TRUE(before);
    auto sealed =
        await_reply<lsn>([&](auto reply) { a_.handoff().seal(p_, 200ms, std::move(reply)); });
    ASSERT_TRUE(sealed) << sealed.err().message;
    pending<append_reply> parked;
    a_.router().append(append_of(s, expected_version::exact(round - 1), make_events(1 + round, 1)),
                       parked.fn());
    // Never unsealed: only the hold deadline can release it.
    auto r = parked.get();
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ(r->first_version.value(), round);
    EXPECT_FALSE(r->duplicate);
    EXPECT_GE(r->position.value(), sealed->value()) << "applied after the seal";

    // Fenced before the unseal: the record is there by now.
    const auto record = record_of(store_, p_);
    ASSERT_TRUE(record.is_object()) << record.dump();
    EXPECT_EQ(record.at("owner"), "a");
    EXPECT_EQ(record.at("ownerEpoch"), round);
    EXPECT_EQ(record.at("state"), "serving");
    if (!before->kvs.empty()) {
      EXPECT_GT(store_.range(record_key(p_))->kvs.front().mod_revision,
                before->kvs.front().mod_revision);
    }
  }
  // Still the owner, at the same map epoch, and serving.
  EXPECT_EQ(a_.members().current_map()->epoch, 1u);
  auto later = append(a_.router(), s, expected_version::exact(2), make_events(9, 1));
  ASSERT_TRUE(later) << later.err().message;
  EXPECT_EQ(later->first_version.value(), 3u);
}

// A seal refused because the partition is sealed already (a target retrying
// after its seal's reply was lost, say) must leave the hold as it is.
// A seal refused because one is running (a target retrying after a lost
// reply) must not move the running hold's deadline: the source still ends
// the hold after the first seal's hold_for.
TEST_F(handoff_source, a_refused_second_seal_leaves_the_hold_deadline_as_it_was) {
  const auto s = stream_in(p_, 6);
  auto first = append(a_.router(), s, expected_version::no_stream(), make_events(1, 1));
  ASSERT_TRUE(first) << first.err().message;
  auto sealed = await_reply<lsn>([&](auto reply) { a_.handoff().seal(p_, 1s, std::move(reply)); });
  ASSERT_TRUE(sealed) << sealed.err().message;
  pending<append_reply> parked;
  a_.router().append(append_of(s, expected_version::exact(0), make_events(2, 1)), parked.fn());
  auto again =
      await_reply<lsn>([&](auto reply) { a_.handoff().seal(p_, k_long_hold, std::move(reply)); });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.err().code, errc::invalid_argument);

  // The first seal's hold ends after 1 s: fenced, then served.
  auto r = parked.get();
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), 1u);
  const auto record = record_of(store_, p_);
  ASSERT_TRUE(record.is_object());
  EXPECT_EQ(record.at("ownerEpoch"), 1);
}

// The map a handoff target commits: `to` added and given partition `p` (its
// own placement does so); every other partition stays pinned to `from`.
// Returns the map and the partition moved.
std::pair<cluster::cluster_map, partition_id> map_moving_one_partition(
    const cluster::cluster_map& current, const std::string& from, const std::string& to,
    partition_id avoid) {
  auto added = cluster::add_node(
      current, cluster::node_entry{to, "127.0.0.1:9", "", cluster::node_state::active});
  if (!added) throw std::runtime_error(added.err().message);
  auto map = std::move(added).value();
  const auto placed = cluster::placement(map);
  std::optional<partition_id> moved;
  for (std::uint32_t i = 0; i < map.partition_count; ++i) {
    if (!moved && i != avoid.value() && placed[i].front() == to) {
      moved = partition_id{i};
    } else {
      map.overrides[partition_id{i}] = cluster::replica_set{from};
    }
  }
  if (!moved) throw std::runtime_error("the placement gives the new node nothing");
  map.epoch = current.epoch + 1;
  if (auto v = cluster::validate(map); !v) throw std::runtime_error(v.err().message);
  return {map, *moved};
}

// A handoff that committed at the target while the partition was sealed
// here: the node applies the map, the parked request fails with not_owner
// (the sender retries at the new owner), later requests are fenced, and the
// old copy is deleted since the record names the new owner.
TEST_F(handoff_source,
       a_handoff_committed_elsewhere_fails_the_parked_requests_and_deletes_the_copy) {
  auto current = store_.range(actors::k_map_key);
  ASSERT_TRUE(current);
  ASSERT_EQ(current->kvs.size(), 1u);
  auto map1 = cluster::map_from_json(current->kvs.front().value);
  ASSERT_TRUE(map1) << map1.err().message;
  const auto moving = map_moving_one_partition(*map1, "a", "b", q_);
  const auto& map2 = moving.first;
  const partition_id moved = moving.second;
  const auto s = stream_in(moved, 4);
  const auto other = stream_in(q_, 5);

  auto first = append(a_.router(), s, expected_version::no_stream(), make_events(1, 3));
  ASSERT_TRUE(first) << first.err().message;
  auto kept = append(a_.router(), other, expected_version::no_stream(), make_events(20, 2));
  ASSERT_TRUE(kept) << kept.err().message;
  auto end_before = a_.end_of(moved);
  ASSERT_TRUE(end_before);
  ASSERT_GT(end_before->value(), 0u);

  auto sealed = await_reply<lsn>(
      [&](auto reply) { a_.handoff().seal(moved, k_long_hold, std::move(reply)); });
  ASSERT_TRUE(sealed) << sealed.err().message;
  EXPECT_EQ(*sealed, *end_before);
  // Sent to the node's own handler: no router retries the not_owner.
  pending<append_reply> parked;
  pending<engine::read_page> parked_read;
  a_.node().handler().append(append_of(s, expected_version::exact(2), make_events(4, 1)),
                             parked.fn());
  a_.node().handler().read(
      actors::read_request{s, stream_version{0}, false, 100, engine::read_direction::forward},
      parked_read.fn());
  auto still = a_.end_of(moved);
  ASSERT_TRUE(still);
  EXPECT_EQ(*still, *sealed);
  ASSERT_FALSE(parked.arrived());
  ASSERT_FALSE(parked_read.arrived());

  // The target's commit: the map without the pin and the record naming it.
  auto committed = store_.txn(
      {cluster::compare::mod_revision_is(actors::k_map_key, cluster::compare::op::equal,
                                         current->kvs.front().mod_revision),
       cluster::compare::missing(record_key(moved))},
      {cluster::op::put(actors::k_map_key, cluster::to_json(map2)),
       cluster::op::put(
           record_key(moved),
           nlohmann::json{{"owner", "b"}, {"ownerEpoch", 1}, {"state", "serving"}}.dump())},
      {});
  ASSERT_TRUE(committed) << committed.err().message;
  ASSERT_TRUE(committed->succeeded);

  auto failed = parked.get();
  ASSERT_FALSE(failed) << "the parked append was applied at the old owner";
  EXPECT_EQ(failed.err().code, errc::not_owner) << failed.err().message;
  auto failed_read = parked_read.get();
  ASSERT_FALSE(failed_read);
  EXPECT_EQ(failed_read.err().code, errc::not_owner) << failed_read.err().message;
  ASSERT_TRUE(eventually([&] { return a_.members().current_map()->epoch == map2.epoch; }));
  EXPECT_EQ(a_.members().router().table()->owner_ids[moved.value()], "b");

  // Later client requests to the partition are fenced at the node...
  auto fenced = append(a_.node().handler(), s, expected_version::any(), make_events(5, 1));
  ASSERT_FALSE(fenced);
  EXPECT_EQ(fenced.err().code, errc::not_owner) << fenced.err().message;
  auto fenced_read = read(a_.node().handler(), s);
  ASSERT_FALSE(fenced_read);
  EXPECT_EQ(fenced_read.err().code, errc::not_owner) << fenced_read.err().message;
  // ...and no longer its to seal.
  auto reseal = await_reply<lsn>(
      [&](auto reply) { a_.handoff().seal(moved, k_long_hold, std::move(reply)); });
  ASSERT_FALSE(reseal);
  EXPECT_EQ(reseal.err().code, errc::not_owner);
  // The router sends them to the new owner (here a stand-in that is down).
  auto routed = append(a_.router(), s, expected_version::any(), make_events(6, 1));
  ASSERT_FALSE(routed);
  EXPECT_EQ(routed.err().code, errc::node_unavailable) << routed.err().message;

  // The record names b: the old copy is deleted.
  ASSERT_TRUE(eventually([&] {
    auto e = a_.end_of(moved);
    return e && e->value() == 0;
  }));
  // Nothing else was touched.
  auto other_page = read(a_.router(), other);
  ASSERT_TRUE(other_page) << other_page.err().message;
  EXPECT_EQ(versions(*other_page), (std::vector<std::uint64_t>{0, 1}));
  auto still_served = append(a_.router(), other, expected_version::exact(1), make_events(22, 1));
  ASSERT_TRUE(still_served) << still_served.err().message;
  const auto record = record_of(store_, moved);
  EXPECT_EQ(record.at("owner"), "b");
  EXPECT_EQ(record.at("ownerEpoch"), 1);
}

// --- node level: shipping between two nodes ---

class node_shipping : public ::testing::Test {
 protected:
  node_shipping() : source_(start(source_dir_, "src")), copy_(start(copy_dir_, "copy")) {}

  static std::unique_ptr<actors::node> start(const temp_dir& dir, std::string id) {
    auto o = small_node_options(dir, engine::fsync_mode::always);
    o.node_id = std::move(id);
    o.partition_count = k_partitions;
    return start_node(std::move(o));
  }

  static engine::result<engine::shipped_batch> ship(actors::node& n, partition_id p, lsn from,
                                                    std::size_t max_bytes) {
    return await_reply<engine::shipped_batch>(
        [&](auto reply) { n.ship_log(p, from, max_bytes, std::move(reply)); });
  }
  static engine::result<engine::shipped_write> apply(actors::node& n, partition_id p,
                                                     engine::shipped_batch batch) {
    return await_reply<engine::shipped_write>(
        [&](auto reply) { n.apply_shipped(p, std::move(batch), std::move(reply)); });
  }
  static engine::result<lsn> end_of(actors::node& n, partition_id p) {
    return await_reply<lsn>([&](auto reply) { n.partition_end(p, std::move(reply)); });
  }
  static engine::result<lsn> clear(actors::node& n, partition_id p) {
    return await_reply<lsn>([&](auto reply) { n.clear_partition(p, std::move(reply)); });
  }

  temp_dir source_dir_, copy_dir_;
  std::unique_ptr<actors::node> source_, copy_;
  const partition_id p_{2};
};

TEST_F(node_shipping, shipped_records_reproduce_the_partition_on_a_node_that_does_not_own_it) {
  // Several streams of p, in small batches so that shipping takes several.
  std::vector<std::string> streams;
  for (int n = 0; n < 3; ++n) streams.push_back(stream_in(p_, 100 + n));
  std::uint64_t id = 1;
  for (int round = 0; round < 10; ++round) {
    for (const auto& s : streams) {
      auto r = append(source_->handler(), s, expected_version::any(), make_events(id, 2));
      ASSERT_TRUE(r) << r.err().message;
      id += 2;
    }
  }
  auto meta = await_reply<actors::write_reply>([&](auto reply) {
    source_->handler().set_metadata(streams[0], engine::stream_metadata{100, 0, 0},
                                    std::move(reply));
  });
  ASSERT_TRUE(meta) << meta.err().message;
  auto source_end = end_of(*source_, p_);
  ASSERT_TRUE(source_end);

  copy_->set_owned(p_, false);
  lsn at{0};
  int batches = 0;
  while (true) {
    auto batch = ship(*source_, p_, at, 512);
    ASSERT_TRUE(batch) << batch.err().message;
    EXPECT_EQ(batch->from, at);
    EXPECT_EQ(batch->source_end, *source_end);
    if (batch->bytes.empty()) {
      EXPECT_EQ(batch->next, *source_end) << "an empty batch means caught up";
      break;
    }
    const auto next = batch->next;
    auto written = apply(*copy_, p_, std::move(batch).value());
    ASSERT_TRUE(written) << written.err().message;
    EXPECT_EQ(written->next, next);
    at = written->next;
    ++batches;
    ASSERT_LT(batches, 10'000);
  }
  EXPECT_GT(batches, 1);
  auto copy_end = end_of(*copy_, p_);
  ASSERT_TRUE(copy_end);
  EXPECT_EQ(*copy_end, *source_end);

  // A duplicate delivery changes nothing.
  auto again = ship(*source_, p_, lsn{0}, 512);
  ASSERT_TRUE(again);
  auto duplicate = apply(*copy_, p_, std::move(again).value());
  ASSERT_FALSE(duplicate);
  EXPECT_EQ(duplicate.err().code, errc::lsn_gap) << duplicate.err().message;

  // Not served while not owned...
  auto refused = read(copy_->handler(), streams[0]);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.err().code, errc::not_owner);

  // ...and the same events once it is.
  copy_->set_owned(p_, true);
  for (const auto& s : streams) {
    auto want = read(source_->handler(), s);
    auto got = read(copy_->handler(), s);
    ASSERT_TRUE(want) << want.err().message;
    ASSERT_TRUE(got) << got.err().message;
    ASSERT_EQ(got->events.size(), want->events.size());
    ASSERT_EQ(got->events.size(), 20u);
    for (std::size_t i = 0; i < got->events.size(); ++i) {
      const auto& g = got->events[i];
      const auto& w = want->events[i];
      EXPECT_EQ(g.id, w.id);
      EXPECT_EQ(g.type, w.type);
      EXPECT_EQ(g.data, w.data);
      EXPECT_EQ(g.metadata, w.metadata);
      EXPECT_EQ(g.version, w.version);
      EXPECT_EQ(g.timestamp, w.timestamp);
      EXPECT_EQ(g.position, w.position);
    }
    EXPECT_EQ(got->last_version, want->last_version);
  }
  auto info = await_reply<engine::stream_info>(
      [&](auto reply) { copy_->handler().get_stream_info(streams[0], std::move(reply)); });
  ASSERT_TRUE(info) << info.err().message;
  EXPECT_EQ(info->metadata.max_count, 100u);
  // The event-id window came along: a client's retry is a duplicate.
  auto retry = append(copy_->handler(), streams[1], expected_version::any(), make_events(3, 2));
  ASSERT_TRUE(retry) << retry.err().message;
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->first_version.value(), 0u);
  // And it continues the streams.
  auto more =
      append(copy_->handler(), streams[2], expected_version::exact(19), make_events(500, 1));
  ASSERT_TRUE(more) << more.err().message;
  EXPECT_EQ(more->first_version.value(), 20u);
}

TEST_F(node_shipping, an_owned_partition_takes_no_shipped_records_and_cannot_be_cleared) {
  const auto s = stream_in(p_, 7);
  auto r = append(source_->handler(), s, expected_version::any(), make_events(1, 3));
  ASSERT_TRUE(r) << r.err().message;
  auto batch = ship(*source_, p_, lsn{0}, 1u << 20);
  ASSERT_TRUE(batch) << batch.err().message;
  ASSERT_FALSE(batch->bytes.empty());

  // The copy's partition is owned (every partition is, until told otherwise).
  auto refused = apply(*copy_, p_, *batch);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.err().code, errc::invalid_argument) << refused.err().message;
  auto copy_end = end_of(*copy_, p_);
  ASSERT_TRUE(copy_end);
  EXPECT_EQ(copy_end->value(), 0u) << "nothing applied";

  auto not_cleared = clear(*source_, p_);
  ASSERT_FALSE(not_cleared);
  EXPECT_EQ(not_cleared.err().code, errc::invalid_argument) << not_cleared.err().message;
  auto source_end = end_of(*source_, p_);
  ASSERT_TRUE(source_end);
  EXPECT_EQ(*source_end, batch->next);
  auto page = read(source_->handler(), s);
  ASSERT_TRUE(page) << page.err().message;
  EXPECT_EQ(versions(*page), (std::vector<std::uint64_t>{0, 1, 2}));

  // Not owned, the same calls succeed: the copy takes the batch, the source
  // deletes its copy (back to lsn 0).
  copy_->set_owned(p_, false);
  auto written = apply(*copy_, p_, *batch);
  ASSERT_TRUE(written) << written.err().message;
  EXPECT_EQ(written->next, batch->next);
  source_->set_owned(p_, false);
  auto cleared = clear(*source_, p_);
  ASSERT_TRUE(cleared) << cleared.err().message;
  EXPECT_EQ(cleared->value(), 0u);
  source_->set_owned(p_, true);
  auto gone = await_reply<engine::stream_info>(
      [&](auto reply) { source_->handler().get_stream_info(s, std::move(reply)); });
  ASSERT_TRUE(gone) << gone.err().message;
  EXPECT_FALSE(gone->last_version.has_value());
}

}  // namespace
}  // namespace annal::testing
