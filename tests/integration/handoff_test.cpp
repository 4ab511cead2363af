// Membership under load, with real `annal start` processes and a real etcd:
// while a writer appends continuously, a fourth node joins (partitions move
// to it by handoff), then a node is drained (its partitions move away) and
// removed. Afterwards every acknowledged event is readable through every
// node, versions are dense, nothing is duplicated, and the writer saw no
// error other than retryable ones.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "client/client.hpp"
#include "cluster/map_codec.hpp"
#include "cluster/placement.hpp"
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
constexpr int k_streams = 32;

// Errors a writer may see while partitions move: nothing was applied, or
// the retry (same event ids) is recognised as one.
bool retryable(errc code) {
  return code == errc::not_owner || code == errc::node_unavailable || code == errc::timeout ||
         code == errc::connection_lost || code == errc::partition_unavailable;
}

std::unique_ptr<client::client> connect_to(const node_process& node) {
  client::client_options options;
  options.port = node.binary_port();
  options.client_name = "handoff-test";
  auto connected = client::client::connect(options);
  if (!connected) throw std::runtime_error("connect: " + connected.err().message);
  return std::move(connected).value();
}

// Appends one event at a time to k_streams streams with exact expected
// versions, through one node, retrying retryable errors with the same events.
class writer {
 public:
  explicit writer(const node_process& via) : via_(via) {
    thread_ = std::thread([this] { run(); });
  }
  ~writer() { stop(); }

  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t acknowledged() const { return acknowledged_.load(); }

  // After stop(): per stream, the ids of its acknowledged events in order.
  std::map<std::string, std::vector<event_id>> acked;
  std::vector<std::string> failures;  // non-retryable errors
  std::map<errc, int> retried;
  std::chrono::milliseconds longest_wait{0};  // first attempt to acknowledgement

 private:
  void run() {
    auto c = connect_to(via_);
    for (int n = 0; !stopping_; ++n) {
      const auto stream = "load-" + std::to_string(n % k_streams);
      auto& ids = acked[stream];
      const auto e = event("Tick", R"({"n":)" + std::to_string(n) + "}");
      const auto expected = ids.empty() ? engine::expected_version::no_stream()
                                        : engine::expected_version::exact(ids.size() - 1);
      const auto started = std::chrono::steady_clock::now();
      for (;;) {
        auto r = c->append(append_of(stream, expected, {e}));
        if (r) {
          if (r->first_version != stream_version{static_cast<std::uint64_t>(ids.size())}) {
            failures.push_back(stream + ": acknowledged at version " +
                               std::to_string(r->first_version.value()) + ", expected " +
                               std::to_string(ids.size()));
          }
          ids.push_back(e.id);
          ++acknowledged_;
          break;
        }
        if (!retryable(r.err().code) ||
            std::chrono::steady_clock::now() - started > std::chrono::seconds(60)) {
          failures.push_back(stream + ": " + r.err().message);
          return;
        }
        ++retried[r.err().code];
        if (r.err().code == errc::connection_lost) c = connect_to(via_);
        std::this_thread::sleep_for(5ms);
      }
      longest_wait = std::max(longest_wait, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::steady_clock::now() - started));
    }
  }

  const node_process& via_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> acknowledged_{0};
  std::thread thread_;
};

// Partition segment files under a node's data directory.
int segment_files(const std::string& data_dir) {
  int files = 0;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(data_dir + "/partitions", ec)) {
    if (entry.path().extension() == ".seg") ++files;
  }
  return files;
}

class handoff_test : public ::testing::Test {
 protected:
  void start(const std::string& id) {
    nodes_[id] =
        start_cluster_node(dir_.path() + "/" + id, id, etcd_.client_url(), 3, k_partitions);
  }

  std::optional<cluster::cluster_map> map_of(const std::string& id) {
    std::ifstream in(dir_.path() + "/" + id + "/cluster-map.json");
    std::stringstream text;
    text << in.rdbuf();
    auto map = cluster::map_from_json(text.str());
    if (!map) return std::nullopt;
    return std::move(*map);
  }

  // Partitions the map of `id` places on `node` (pins included).
  std::uint32_t held_by(const cluster::cluster_map& map, const std::string& node) {
    std::uint32_t held = 0;
    for (const auto& set : cluster::placement(map)) held += !set.empty() && set[0] == node;
    return held;
  }

  // Waits until every listed node applied a map with no pin left (every
  // handoff done) that satisfies `done`.
  void await_settled(const std::vector<std::string>& on,
                     const std::function<bool(const cluster::cluster_map&)>& done,
                     const char* what) {
    for (const auto& id : on) {
      ASSERT_TRUE(eventually(
          [&] {
            auto map = map_of(id);
            return map && map->overrides.empty() && done(*map);
          },
          120s))
          << what << ": node " << id << " never settled; its output:\n"
          << nodes_[id]->output();
    }
  }

  command_result admin(const std::string& via_node, std::vector<std::string> args) {
    args.push_back("--admin");
    args.push_back("127.0.0.1:" + std::to_string(nodes_.at(via_node)->http_port()));
    return run_annal(args);
  }

  temp_dir dir_;
  etcd_process etcd_;
  std::map<std::string, std::unique_ptr<node_process>> nodes_;
};

TEST_F(handoff_test, join_drain_and_remove_under_load_lose_and_duplicate_nothing) {
  for (const char* id : {"a", "b", "c"}) start(id);
  await_settled(
      {"a", "b", "c"}, [&](const auto& map) { return map.nodes.size() == 3; }, "forming");

  writer load(*nodes_["a"]);
  ASSERT_TRUE(eventually([&] { return load.acknowledged() >= 200; }, 120s));

  // A fourth node joins: partitions move to it while the writer writes.
  start("d");
  await_settled(
      {"a", "b", "c", "d"},
      [&](const auto& map) { return map.nodes.size() == 4 && held_by(map, "d") > 0; }, "joining d");
  const auto after_join = load.acknowledged();
  ASSERT_TRUE(eventually([&] { return load.acknowledged() >= after_join + 200; }, 120s));

  // Drain c: its partitions move to the others; then remove it.
  auto drained = admin("b", {"node", "drain", "c"});
  ASSERT_EQ(drained.exit_code, 0) << drained.err;
  await_settled(
      {"a", "b", "d"}, [&](const auto& map) { return held_by(map, "c") == 0; }, "draining c");
  // The drained node deleted its copies once their new owners served them:
  // no partition segment file is left.
  ASSERT_GT(segment_files(dir_.path() + "/a"), 0);
  EXPECT_TRUE(eventually([&] { return segment_files(dir_.path() + "/c") == 0; }, 60s))
      << segment_files(dir_.path() + "/c") << " segment files left on c; its output:\n"
      << nodes_["c"]->output();
  auto removed = admin("a", {"node", "remove", "c"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  const auto after_drain = load.acknowledged();
  ASSERT_TRUE(eventually([&] { return load.acknowledged() >= after_drain + 200; }, 120s));
  load.stop();
  EXPECT_EQ(nodes_["c"]->terminate(30s), 0);

  EXPECT_TRUE(load.failures.empty()) << load.failures.front();
  std::string retried;
  for (const auto& [code, n] : load.retried) {
    retried += std::string(engine::errc_name(code)) + " x" + std::to_string(n) + " ";
  }
  std::printf("writer: %llu events acknowledged; retried: %s; longest wait %lld ms\n",
              static_cast<unsigned long long>(load.acknowledged()), retried.c_str(),
              static_cast<long long>(load.longest_wait.count()));

  // Every acknowledged event, through every remaining node: dense versions,
  // the acknowledged ids in order, nothing more.
  for (const char* via : {"a", "b", "d"}) {
    auto c = connect_to(*nodes_[via]);
    for (const auto& [stream, ids] : load.acked) {
      actors::read_request request;
      request.stream = stream;
      request.limit = ids.size() + 10;
      auto page = c->read(request);
      ASSERT_TRUE(page) << via << " " << stream << ": " << page.err().message;
      ASSERT_EQ(page->events.size(), ids.size()) << via << " " << stream;
      for (std::size_t v = 0; v < ids.size(); ++v) {
        EXPECT_EQ(page->events[v].version, stream_version{static_cast<std::uint64_t>(v)})
            << via << " " << stream;
        EXPECT_EQ(page->events[v].id, ids[v]) << via << " " << stream << " version " << v;
      }
    }
  }

  auto map = map_of("a");
  ASSERT_TRUE(map);
  EXPECT_EQ(map->find("c"), nullptr);
  EXPECT_EQ(held_by(*map, "a") + held_by(*map, "b") + held_by(*map, "d"), k_partitions);
}

}  // namespace
}  // namespace annal::testing
