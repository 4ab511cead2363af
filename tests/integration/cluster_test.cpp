// A cluster of real `annal start` processes on loopback with a real etcd:
// any node serves any stream, errors cross the proxy unchanged, and a node
// killed with kill -9 costs only its own partitions until it restarts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "client/client.hpp"
#include "cluster/map_codec.hpp"
#include "cluster/placement.hpp"
#include "engine/partitioning.hpp"
#include "tests/integration/node_fixture.hpp"
#include "tests/support/etcd_process.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/node_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace annal::testing {
namespace {

using engine::errc;
using namespace std::chrono_literals;

constexpr std::uint32_t k_partitions = 16;


class cluster_test : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* id : {"a", "b", "c"}) start(id);
    // Every node serves once the map (formed when all three registered) is
    // applied everywhere.
    for (const char* id : {"a", "b", "c"}) {
      ASSERT_TRUE(eventually([&] { return serves_every_partition(id); }))
          << id << " never served every partition; output:\n"
          << nodes_[id]->output();
    }
  }

  void start(const std::string& id) {
    clients_.erase(id);
    nodes_[id] =
        start_cluster_node(dir_.path() + "/" + id, id, etcd_.client_url(), 3, k_partitions);
  }

  client::client& via(const std::string& id) {
    auto& c = clients_[id];
    if (!c) {
      client::client_options options;
      options.port = nodes_.at(id)->binary_port();
      options.client_name = "cluster-test";
      auto connected = client::client::connect(options);
      if (!connected) throw std::runtime_error("connect " + id + ": " + connected.err().message);
      c = std::move(connected).value();
    }
    return *c;
  }

  // A stream of partition p, distinct per `n`.
  static std::string stream_in(std::uint32_t p, int n) {
    for (int i = 0;; ++i) {
      auto s = "c-" + std::to_string(n) + "-" + std::to_string(i);
      if (engine::partition_for(s, k_partitions).value() == p) return s;
    }
  }

  bool serves_every_partition(const std::string& id) {
    for (std::uint32_t p = 0; p < k_partitions; ++p) {
      auto info = via(id).get_stream_info(stream_in(p, 0));
      if (!info) return false;
    }
    return true;
  }

  // The owner of each partition, from the map node `id` persisted.
  std::vector<std::string> owners(const std::string& id) {
    std::ifstream in(dir_.path() + "/" + id + "/cluster-map.json");
    std::stringstream text;
    text << in.rdbuf();
    auto map = cluster::map_from_json(text.str());
    if (!map) throw std::runtime_error("map of " + id + ": " + map.err().message);
    std::vector<std::string> result;
    for (const auto& set : cluster::placement(*map)) result.push_back(set.empty() ? "" : set[0]);
    return result;
  }

  temp_dir dir_;
  etcd_process etcd_;
  std::map<std::string, std::unique_ptr<node_process>> nodes_;
  std::map<std::string, std::unique_ptr<client::client>> clients_;
};

TEST_F(cluster_test, any_node_serves_any_stream_with_errors_unchanged) {
  const auto owner = owners("a");
  std::map<std::string, int> per_node;
  for (const auto& o : owner) ++per_node[o];
  EXPECT_EQ(per_node.size(), 3u) << "every node owns partitions";

  // Appends through a to every partition, reads through c.
  for (std::uint32_t p = 0; p < k_partitions; ++p) {
    const auto stream = stream_in(p, 1);
    auto first =
        via("a").append(append_of(stream, engine::expected_version::no_stream(),
                                  {event("Opened", R"({"p":)" + std::to_string(p) + "}")}));
    ASSERT_TRUE(first) << stream << " (owner " << owner[p] << "): " << first.err().message;
    EXPECT_EQ(first->partition, partition_id{p});

    auto wrong = via("b").append(
        append_of(stream, engine::expected_version::exact(3), {event("Late", "{}")}));
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.err().code, errc::wrong_expected_version);
    ASSERT_TRUE(wrong.err().current_version);
    EXPECT_EQ(*wrong.err().current_version, stream_version{0});

    auto exists = via("c").append(
        append_of(stream, engine::expected_version::no_stream(), {event("Again", "{}")}));
    ASSERT_FALSE(exists);
    EXPECT_EQ(exists.err().code, errc::wrong_expected_version);

    const auto second_event = event("Closed", "{}");
    auto second = via("b").append(
        append_of(stream, engine::expected_version::stream_exists(), {second_event}));
    ASSERT_TRUE(second) << second.err().message;
    EXPECT_EQ(second->first_version, stream_version{1});
    auto retry =
        via("c").append(append_of(stream, engine::expected_version::exact(0), {second_event}));
    ASSERT_TRUE(retry) << retry.err().message;
    EXPECT_TRUE(retry->duplicate);

    auto page = via("c").read({stream, stream_version{0}, false, 10});
    ASSERT_TRUE(page) << page.err().message;
    ASSERT_EQ(page->events.size(), 2u);
    EXPECT_EQ(page->events[0].type, "Opened");
    EXPECT_EQ(page->events[1].type, "Closed");
  }
  auto missing = via("c").read({"never-written", stream_version{0}, false, 10});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.err().code, errc::stream_not_found);
  auto bad = via("a").append(append_of("", engine::expected_version::any(), {event("X", "{}")}));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err().code, errc::invalid_stream_id);
}

TEST_F(cluster_test, a_killed_node_costs_only_its_partitions_until_it_restarts) {
  const auto owner = owners("a");
  for (std::uint32_t p = 0; p < k_partitions; ++p) {
    ASSERT_TRUE(via("a").append(
        append_of(stream_in(p, 2), engine::expected_version::any(), {event("Before", "{}")})));
  }
  clients_.erase("b");
  nodes_["b"]->kill();

  for (std::uint32_t p = 0; p < k_partitions; ++p) {
    const auto stream = stream_in(p, 2);
    if (owner[p] == "b") {
      // The request in flight when the link breaks may be connection_lost;
      // then the link knows, and answers node_unavailable.
      ASSERT_TRUE(eventually([&] {
        auto r = via("a").read({stream, stream_version{0}, false, 10});
        return !r && r.err().code == errc::node_unavailable;
      })) << "partition "
          << p;
    } else {
      auto r = via("a").append(
          append_of(stream, engine::expected_version::exact(0), {event("During", "{}")}));
      EXPECT_TRUE(r) << "partition " << p << " (owner " << owner[p] << "): " << r.err().message;
    }
  }

  start("b");  // new ports: it updates its address in the map, peers follow
  for (std::uint32_t p = 0; p < k_partitions; ++p) {
    const auto stream = stream_in(p, 2);
    engine::result<engine::read_page> page = engine::error{errc::timeout, "not tried"};
    ASSERT_TRUE(eventually([&] {
      page = via("c").read({stream, stream_version{0}, false, 10});
      return static_cast<bool>(page);
    })) << "partition "
        << p << ": " << page.err().message;
    ASSERT_FALSE(page->events.empty());
    EXPECT_EQ(page->events[0].type, "Before");
    EXPECT_EQ(page->events.size(), owner[p] == "b" ? 1u : 2u) << "partition " << p;
  }
}

TEST_F(cluster_test, read_all_and_stats_merge_every_node) {
  const auto owner = owners("a");
  // 48 streams over all 16 partitions (so over all three nodes), appended
  // through a and b, some in batches.
  std::set<std::pair<std::string, std::uint64_t>> acknowledged;
  std::uint64_t appended = 0;
  for (int i = 0; i < 48; ++i) {
    const auto stream = stream_in(static_cast<std::uint32_t>(i % k_partitions), 100 + i / 16);
    for (int round = 0; round < 2; ++round) {
      std::vector<engine::event_input> events;
      for (int e = 0; e <= (i + round) % 3; ++e) {
        events.push_back(
            event("All" + std::to_string(round), R"({"i":)" + std::to_string(i) + "}"));
      }
      auto r = via(round == 0 ? "a" : "b")
                   .append(append_of(stream, engine::expected_version::any(), std::move(events)));
      ASSERT_TRUE(r) << stream << ": " << r.err().message;
      for (auto v = r->first_version.value(); v <= r->last_version.value(); ++v) {
        acknowledged.emplace(stream, v);
        ++appended;
      }
    }
  }

  // Through c, page by page with a small limit, following the token.
  std::set<std::pair<std::string, std::uint64_t>> seen;
  std::map<std::string, std::uint64_t> next_version;
  std::set<std::string> owners_seen;
  timestamp_us last = 0;
  actors::read_all_request request;
  request.limit = 7;
  int pages = 0;
  for (;; ++pages) {
    ASSERT_LT(pages, 1000);
    auto page = via("c").read_all(request);
    ASSERT_TRUE(page) << page.err().message;
    ASSERT_LE(page->events.size(), 7u);
    ASSERT_EQ(page->next.size(), k_partitions);
    for (const auto& e : page->events) {
      const std::string stream(e.stream);
      EXPECT_GE(e.event.timestamp, last) << stream;
      last = e.event.timestamp;
      EXPECT_EQ(e.partition, engine::partition_for(stream, k_partitions));
      EXPECT_TRUE(seen.emplace(stream, e.event.version.value()).second)
          << "duplicate " << stream << "@" << e.event.version.value();
      EXPECT_EQ(e.event.version.value(), next_version[stream]) << stream;
      next_version[stream] = e.event.version.value() + 1;
      owners_seen.insert(owner[e.partition.value()]);
    }
    request.from = page->next;
    if (page->at_end) break;
  }
  EXPECT_EQ(seen, acknowledged);
  EXPECT_EQ(owners_seen.size(), 3u) << "events of every node";
  EXPECT_GE(pages, static_cast<int>(appended / 7));

  // Stats through each node: every partition once, with its owner, summing
  // to what was appended; the CLI's per-node totals agree.
  for (const char* id : {"a", "b", "c"}) {
    auto stats = via(id).stats();
    ASSERT_TRUE(stats) << id << ": " << stats.err().message;
    ASSERT_EQ(stats->size(), k_partitions) << id;
    std::uint64_t events = 0;
    for (std::uint32_t p = 0; p < k_partitions; ++p) {
      const auto& s = (*stats)[p];
      EXPECT_EQ(s.partition, partition_id{p}) << id;
      EXPECT_EQ(s.node, owner[p]) << id << ": partition " << p;
      EXPECT_GT(s.end_lsn.value(), 0u);
      events += s.events;
    }
    EXPECT_EQ(events, appended) << id;

    auto cli = run_annal(
        {"stats", "--json", "--server", "127.0.0.1:" + std::to_string(nodes_[id]->binary_port())});
    ASSERT_EQ(cli.exit_code, 0) << cli.err;
    auto json = nlohmann::json::parse(cli.out);
    EXPECT_EQ(json["events"].get<std::uint64_t>(), appended);
    ASSERT_EQ(json["nodes"].size(), 3u) << cli.out;
    std::uint64_t partitions = 0;
    for (const auto& n : json["nodes"]) partitions += n["partitions"].get<std::uint64_t>();
    EXPECT_EQ(partitions, k_partitions);
  }
}

// The admin API of node `id` through the CLI.
command_result admin(const std::string& via_node, std::vector<std::string> args,
                     const std::map<std::string, std::unique_ptr<node_process>>& nodes) {
  args.push_back("--admin");
  args.push_back("127.0.0.1:" + std::to_string(nodes.at(via_node)->http_port()));
  return run_annal(args);
}

TEST_F(cluster_test, status_and_membership_changes_through_the_admin_api) {
  auto status = admin("c", {"cluster", "status", "--json"}, nodes_);
  ASSERT_EQ(status.exit_code, 0) << status.err;
  auto json = nlohmann::json::parse(status.out);
  const auto epoch = json["epoch"].get<std::uint64_t>();
  EXPECT_EQ(json["partitionCount"], k_partitions);
  ASSERT_EQ(json["nodes"].size(), 3u);
  std::uint32_t held = 0;
  for (const auto& node : json["nodes"]) {
    EXPECT_TRUE(node["up"].get<bool>()) << node.dump();
    EXPECT_EQ(node["state"], "active");
    held += node["partitions"].get<std::uint32_t>();
  }
  EXPECT_EQ(held, k_partitions);
  EXPECT_TRUE(json["handoffs"].empty());

  // Two changes at the same moment through two nodes, both made against the
  // same epoch: exactly one wins, the other gets a typed conflict.
  const auto at = std::to_string(epoch);
  command_result first, second;
  std::thread t1([&] {
    first = admin("a", {"node", "add", "d", "127.0.0.1:1", "--expected-epoch", at}, nodes_);
  });
  std::thread t2([&] {
    second = admin("b", {"node", "add", "e", "127.0.0.1:2", "--expected-epoch", at}, nodes_);
  });
  t1.join();
  t2.join();
  ASSERT_EQ((first.exit_code == 0) + (second.exit_code == 0), 1)
      << first.out << first.err << second.out << second.err;
  const auto& loser = first.exit_code == 0 ? second : first;
  EXPECT_NE(loser.err.find("annal: conflict:"), std::string::npos) << loser.err;
  const std::string added = first.exit_code == 0 ? "d" : "e";

  // Every node applies the winner's map (or a later one: partitions that
  // the join shifted between a, b and c move by handoff, each a new epoch);
  // no two nodes hold different maps at the same epoch.
  auto map_text = [&](const std::string& id) {
    std::ifstream in(dir_.path() + "/" + id + "/cluster-map.json");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_TRUE(eventually([&] {
      auto map = cluster::map_from_json(map_text(id));
      return map && map->epoch > epoch && map->find(added) != nullptr;
    })) << id << " (expected an epoch after " << epoch << " with " << added
        << "); its map: " << map_text(id);
  }
  ASSERT_TRUE(eventually([&] {
    const auto a = map_text("a");
    return a == map_text("b") && a == map_text("c");
  })) << map_text("a") << "\n" << map_text("b") << "\n" << map_text("c");

  // The new node is not running: no partition moved to it (a move needs a
  // handoff), so every stream stays readable.
  ASSERT_TRUE(via("a").append(
      append_of(stream_in(0, 5), engine::expected_version::any(), {event("After", "{}")})));
  auto removed_early = admin("a", {"node", "remove", added}, nodes_);
  EXPECT_EQ(removed_early.exit_code, 1);
  EXPECT_NE(removed_early.err.find("annal: invalid_argument:"), std::string::npos)
      << removed_early.err;
  auto drained = admin("b", {"node", "drain", added}, nodes_);
  ASSERT_EQ(drained.exit_code, 0) << drained.err;
  auto removed = admin("c", {"node", "remove", added}, nodes_);
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  auto unknown = admin("c", {"node", "remove", "nobody"}, nodes_);
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("annal: not_found:"), std::string::npos) << unknown.err;

  auto listed = admin("a", {"node", "ls", "--json"}, nodes_);
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(nlohmann::json::parse(listed.out)["nodes"].size(), 3u) << listed.out;
}

TEST_F(cluster_test, without_etcd_nodes_serve_and_membership_changes_fail_typed) {
  etcd_.stop();
  // Reads and writes of every partition keep working, proxied or local.
  for (std::uint32_t p = 0; p < k_partitions; ++p) {
    const auto stream = stream_in(p, 6);
    auto r = via("b").append(
        append_of(stream, engine::expected_version::any(), {event("Offline", "{}")}));
    ASSERT_TRUE(r) << "partition " << p << ": " << r.err().message;
    auto page = via("c").read({stream, stream_version{0}, false, 10});
    ASSERT_TRUE(page) << page.err().message;
    EXPECT_EQ(page->events.size(), 1u);
  }
  auto change = admin("a", {"node", "add", "f", "127.0.0.1:3"}, nodes_);
  EXPECT_EQ(change.exit_code, 1);
  EXPECT_NE(change.err.find("annal: metadata_unavailable:"), std::string::npos) << change.err;
  auto status = admin("a", {"cluster", "status", "--json"}, nodes_);
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_FALSE(nlohmann::json::parse(status.out)["metadataAvailable"].get<bool>());

  etcd_.restart();
  command_result resumed;
  ASSERT_TRUE(eventually([&] {
    resumed = admin("a", {"node", "add", "f", "127.0.0.1:3"}, nodes_);
    return resumed.exit_code == 0;
  })) << resumed.err;
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_TRUE(eventually([&] {
      auto s = admin(id, {"node", "ls", "--json"}, nodes_);
      return s.exit_code == 0 && nlohmann::json::parse(s.out)["nodes"].size() == 4u;
    })) << id;
  }
}

// CPU seconds (user + system) process `pid` has used.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

TEST_F(cluster_test, idle_nodes_do_not_burn_cpu) {
  // A measurement over an interval, not a wait: a node that spins uses about
  // a core (2 s here); an idle one, lease keep-alives and timers only.
  std::map<std::string, double> before;
  for (const auto& [id, node] : nodes_) before[id] = cpu_seconds(node->pid());
  std::this_thread::sleep_for(2s);
  for (const auto& [id, node] : nodes_) {
    EXPECT_LT(cpu_seconds(node->pid()) - before[id], 0.5) << id;
  }
}

}  // namespace
}  // namespace annal::testing
