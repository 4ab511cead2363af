// Subscriptions on a 3-node cluster of real processes with a real etcd: a
// subscription to all streams or to a category merges the partitions of
// every node, and a node killed and restarted while events are appended
// costs a pause, never an event lost or repeated: subscriptions through the
// other nodes continue where they were, and a client whose node died
// resubscribes from its last position.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/client.hpp"
#include "client/subscription.hpp"
#include "engine/partitioning.hpp"
#include "tests/integration/node_fixture.hpp"
#include "tests/support/etcd_process.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/node_process.hpp"
#include "tests/support/sse_client.hpp"
#include "tests/support/temp_dir.hpp"

namespace annal::testing {
namespace {

using engine::errc;
using namespace std::chrono_literals;

constexpr std::uint32_t k_partitions = 16;

// Per stream, the versions seen, in order of arrival. Thread-safe.
class seen_log {
 public:
  // False on a gap or a duplicate (which the test then reports).
  void add(const std::string& stream, std::uint64_t version) {
    std::lock_guard lock(mu_);
    auto& next = next_[stream];
    if (version != next) {
      errors_.push_back(stream + ": got version " + std::to_string(version) + ", expected " +
                        std::to_string(next));
    }
    next = std::max(next, version + 1);
    ++count_;
    last_arrival_ = std::chrono::steady_clock::now();
  }
  std::chrono::steady_clock::time_point last_arrival() const {
    std::lock_guard lock(mu_);
    return last_arrival_;
  }
  std::uint64_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }
  std::map<std::string, std::uint64_t> next() const {
    std::lock_guard lock(mu_);
    return next_;
  }
  std::vector<std::string> errors() const {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::uint64_t> next_;
  std::vector<std::string> errors_;
  std::uint64_t count_ = 0;
  std::chrono::steady_clock::time_point last_arrival_;
};

class subscription_cluster_test : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* id : {"a", "b", "c"}) start(id);
    for (const char* id : {"a", "b", "c"}) {
      ASSERT_TRUE(eventually([&] { return serves_every_partition(id); }))
          << id << " never served every partition; output:\n"
          << nodes_[id]->output();
    }
  }

  void start(const std::string& id) {
    {
      std::lock_guard lock(clients_mu_);
      clients_.erase(id);
    }
    std::lock_guard lock(mu_);
    nodes_[id] =
        start_cluster_node(dir_.path() + "/" + id, id, etcd_.client_url(), 3, k_partitions);
  }

  std::unique_ptr<client::client> connect(const std::string& id) {
    client::client_options options;
    {
      std::lock_guard lock(mu_);
      options.port = nodes_.at(id)->binary_port();
    }
    options.client_name = "subscription-cluster-test";
    options.request_timeout = 10s;
    auto c = client::client::connect(options);
    if (!c) throw std::runtime_error("connect " + id + ": " + c.err().message);
    return std::move(c).value();
  }

  client::client& via(const std::string& id) {
    std::lock_guard lock(clients_mu_);
    auto& c = clients_[id];
    if (!c) c = connect(id);
    return *c;
  }

  static std::string stream_in(std::uint32_t p, int n) {
    for (int i = 0;; ++i) {
      auto s = "sub" + std::to_string(n) + "-" + std::to_string(p) + "x" + std::to_string(i);
      if (engine::partition_for(s, k_partitions).value() == p) return s;
    }
  }

  bool serves_every_partition(const std::string& id) {
    for (std::uint32_t p = 0; p < k_partitions; ++p) {
      if (!via(id).get_stream_info(stream_in(p, 0))) return false;
    }
    return true;
  }

  // Reads `s` into `log` until it fails (returns that error) or `stop`.
  static engine::error consume(client::subscription& s, seen_log& log, std::atomic<bool>& stop,
                               std::vector<actors::all_position>& position) {
    while (!stop) {
      auto e = s.next(200ms);
      if (!e) return e.err();
      if (!*e) continue;
      log.add((*e)->stream, (*e)->version.value());
      position = (*e)->after;
    }
    return engine::error{errc::ok, "stopped"};
  }

  temp_dir dir_;
  etcd_process etcd_;
  std::mutex mu_;  // nodes_
  std::map<std::string, std::unique_ptr<node_process>> nodes_;
  std::mutex clients_mu_;
  std::map<std::string, std::unique_ptr<client::client>> clients_;
};

TEST_F(subscription_cluster_test, a_node_restart_during_subscriptions_loses_and_repeats_nothing) {
  // Streams in every partition, so on every node; some history first.
  std::vector<std::string> streams;
  for (std::uint32_t p = 0; p < k_partitions; ++p) {
    streams.push_back(stream_in(p, 1));
    streams.push_back(stream_in(p, 2));
  }
  std::mutex acked_mu;
  std::map<std::string, std::uint64_t> acked;  // stream -> versions acknowledged
  // One append of `e` to `stream` through `node`; true once acknowledged.
  // A failed one is retried later with the same event (the same id: an
  // idempotent retry, so an append whose outcome was unknown is not
  // written twice).
  auto try_append = [&](const std::string& node, const std::string& stream,
                        const engine::event_input& e) {
    try {
      auto r = via(node).append(append_of(stream, engine::expected_version::any(), {e}));
      if (!r) return false;
      std::lock_guard lock(acked_mu);
      acked[stream] = std::max(acked[stream], r->last_version.value() + 1);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  };
  for (const auto& s : streams) {
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(try_append("a", s, event("E", "{}")));
  }

  // Subscriptions: all streams through a, one category through c, all
  // streams through b (whose node will die), and server-sent events
  // through c.
  auto sub_client_a = connect("a");
  auto sub_client_b = connect("b");
  auto sub_client_c = connect("c");
  net::wire_codec::subscribe_params all;
  auto category = all;
  category.target = {actors::subscription_target::kind::category, "sub1"};
  auto on_a = client::subscription::open(*sub_client_a, all, 64);
  ASSERT_TRUE(on_a) << on_a.err().message;
  auto on_c = client::subscription::open(*sub_client_c, category, 64);
  ASSERT_TRUE(on_c) << on_c.err().message;
  auto on_b = client::subscription::open(*sub_client_b, all, 64);
  ASSERT_TRUE(on_b) << on_b.err().message;
  std::uint16_t c_http;
  {
    std::lock_guard lock(mu_);
    c_http = nodes_["c"]->http_port();
  }
  sse_client sse({asio::ip::make_address("127.0.0.1"), c_http}, "/subscribe");
  ASSERT_EQ(sse.status(), 200);

  seen_log log_a, log_c, log_b, log_sse;
  std::atomic<bool> stop{false};
  std::vector<actors::all_position> pos_a, pos_c, pos_b;
  std::thread reader_a([&] { consume(**on_a, log_a, stop, pos_a); });
  std::thread reader_c([&] { consume(**on_c, log_c, stop, pos_c); });
  engine::error b_failed{errc::ok, ""};
  std::thread reader_b([&] { b_failed = consume(**on_b, log_b, stop, pos_b); });
  std::thread reader_sse([&] {
    while (!stop) {
      auto e = sse.next(200ms);
      if (!e) continue;
      auto json = nlohmann::json::parse(e->data);
      log_sse.add(json["stream"].get<std::string>(), json["version"].get<std::uint64_t>());
    }
  });

  // Appends through a and c while b dies and comes back.
  std::atomic<bool> writing{true};
  std::atomic<std::uint64_t> written{0};
  std::atomic<bool> append_failed{false};
  std::thread writer([&] {
    // Streams of b's partitions fail while b is down; the others go on.
    std::map<std::string, std::optional<engine::event_input>> pending;
    const auto deadline = std::chrono::steady_clock::now() + 180s;
    std::size_t in_flight = 0;
    for (std::size_t i = 0; writing || in_flight > 0; ++i) {
      if (std::chrono::steady_clock::now() > deadline) {
        append_failed = true;
        return;
      }
      const auto& s = streams[i % streams.size()];
      auto& e = pending[s];
      if (!e) {
        if (!writing) continue;
        e = event("E", R"({"i":)" + std::to_string(i) + "}");
        ++in_flight;
      }
      if (try_append(i % 2 ? "a" : "c", s, *e)) {
        e.reset();
        --in_flight;
        ++written;
      } else {
        std::this_thread::sleep_for(5ms);  // pacing retries, not a synchronization
      }
    }
  });
  ASSERT_TRUE(eventually([&] { return written >= 100; }));
  {
    std::lock_guard lock(clients_mu_);
    clients_.erase("b");
  }
  nodes_["b"]->kill();
  const auto at_kill = written.load();
  // b's subscriber notices; the others keep getting the events of a and c.
  reader_b.join();
  EXPECT_NE(b_failed.code, errc::ok);
  ASSERT_TRUE(eventually([&] { return written >= at_kill + 20 || append_failed; }));
  start("b");
  ASSERT_TRUE(eventually([&] { return serves_every_partition("b"); })) << nodes_["b"]->output();
  const auto at_restart = written.load();
  ASSERT_TRUE(eventually([&] { return written >= at_restart + 100 || append_failed; }));
  writing = false;
  writer.join();
  ASSERT_FALSE(append_failed) << "an append never succeeded";

  // b's client resubscribes to the restarted b from its last position.
  on_b->reset();  // it used the connection that died
  sub_client_b = connect("b");
  auto p = all;
  p.from.what = actors::subscription_start::kind::position;
  p.from.positions = pos_b;
  auto again = client::subscription::open(*sub_client_b, p, 64);
  ASSERT_TRUE(again) << again.err().message;
  std::thread reader_b2([&] { consume(**again, log_b, stop, pos_b); });

  std::map<std::string, std::uint64_t> want_all, want_category;
  std::uint64_t total = 0, total_category = 0;
  {
    std::lock_guard lock(acked_mu);
    want_all = acked;
  }
  for (const auto& [s, n] : want_all) {
    total += n;
    if (s.starts_with("sub1-")) {
      want_category[s] = n;
      total_category += n;
    }
  }
  EXPECT_TRUE(eventually([&] { return log_a.count() >= total; }, 90s))
      << log_a.count() << " of " << total;
  EXPECT_TRUE(eventually([&] { return log_c.count() >= total_category; }, 90s));
  EXPECT_TRUE(eventually([&] { return log_b.count() >= total; }, 90s))
      << log_b.count() << " of " << total;
  EXPECT_TRUE(eventually([&] { return log_sse.count() >= total; }, 90s))
      << log_sse.count() << " of " << total;
  // Live latency across nodes: appended through c to a partition of b,
  // delivered to the subscriber on a (append sent -> event received).
  std::vector<double> ms, ack_ms;
  std::string on_b_stream;
  {
    auto stats = via("b").stats();
    ASSERT_TRUE(stats) << stats.err().message;
    for (const auto& s : *stats) {
      if (s.node == "b" && on_b_stream.empty()) on_b_stream = stream_in(s.partition.value(), 3);
    }
  }
  ASSERT_FALSE(on_b_stream.empty());
  for (int i = 0; i < 100; ++i) {
    const auto before = log_a.count();
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(try_append("c", on_b_stream, event("L", "{}")));
    ack_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_TRUE(eventually([&] { return log_a.count() > before; }, 10s));
    ms.push_back(std::chrono::duration<double, std::milli>(log_a.last_arrival() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::sort(ack_ms.begin(), ack_ms.end());
  std::printf(
      "live, 3 nodes, fsync=always: append sent via c to a partition of b -> delivered via a: "
      "p50 %.2f ms, p99 %.2f ms (the append's own reply: p50 %.2f ms, p99 %.2f ms)\n",
      ms[50], ms[99], ack_ms[50], ack_ms[99]);
  {
    std::lock_guard lock(acked_mu);
    want_all = acked;
  }

  stop = true;
  reader_a.join();
  reader_c.join();
  reader_b2.join();
  reader_sse.join();

  std::printf(
      "%llu events in %zu streams; b killed after %llu appends, back after %llu; b's "
      "subscriber ended with %s\n",
      static_cast<unsigned long long>(total), want_all.size(),
      static_cast<unsigned long long>(at_kill), static_cast<unsigned long long>(at_restart),
      engine::errc_name(b_failed.code));
  EXPECT_EQ(log_a.errors(), std::vector<std::string>{});
  EXPECT_EQ(log_a.next(), want_all);
  want_all.erase(on_b_stream);  // the latency events went only to a's subscriber for sure
  for (auto* log : {&log_b, &log_sse}) {
    EXPECT_EQ(log->errors(), std::vector<std::string>{});
    auto next = log->next();
    next.erase(on_b_stream);
    EXPECT_EQ(next, want_all);
  }
  EXPECT_EQ(log_c.errors(), std::vector<std::string>{});
  EXPECT_EQ(log_c.next(), want_category);
}

}  // namespace
}  // namespace annal::testing
