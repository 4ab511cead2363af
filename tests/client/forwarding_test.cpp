// Two nodes on 127.0.0.1, each a store behind a cluster_router served by a
// binary_server, linked both ways by peer links: forwarding, not_owner at a
// stale map, refresh and the single retry.
#include <gtest/gtest.h>

#include <future>
#include <set>

#include "actors/cluster_router.hpp"
#include "client/peer_link.hpp"
#include "engine/partitioning.hpp"
#include "net/binary_server.hpp"
#include "tests/net/binary_fixture.hpp"
#include "tests/support/await_reply.hpp"
#include "tests/support/event_factory.hpp"

namespace annal::testing {
namespace {

using engine::errc;

// A stream id of partition p (of 4), distinct for each n.
std::string stream_in(std::uint32_t p, int n) { return stream_in_partition(p, 4, n); }

// One node: its store, its router, its server, its link to the other node.
struct test_node {
  explicit test_node(std::string id, asio::io_context& io) : id(std::move(id)), io(io) {
    router = std::make_unique<actors::cluster_router>(std::make_shared<actors::routing_table>(),
                                                      [this](std::function<void()> done) {
                                                        ++refreshes;
                                                        if (on_refresh) on_refresh();
                                                        done();
                                                      });
    net::binary_server_options options;
    options.node_id = this->id;
    options.partition_count = 4;
    server = std::make_unique<net::binary_server>(io, *router, metrics, options);
    auto bound = server->listen("127.0.0.1", 0);
    if (!bound) throw std::runtime_error(bound.err().message);
    port = bound->port();
  }

  // A table at `epoch` giving each partition to the node named in `owners`.
  std::shared_ptr<actors::routing_table> table(std::uint64_t epoch,
                                               std::vector<std::string> owners) {
    auto t = std::make_shared<actors::routing_table>();
    t->epoch = epoch;
    t->partition_count = 4;
    t->self_id = id;
    auto local = std::shared_ptr<actors::request_handler>(&store, [](auto*) {});
    for (auto& o : owners) {
      t->owners.push_back(o == id ? local : std::shared_ptr<actors::request_handler>(link));
    }
    t->owner_ids = std::move(owners);
    link->set_epoch(epoch);
    return t;
  }

  bool has(const std::string& stream) {
    bool found = false;
    store.read({stream, stream_version{0}, false, 10},
               [&](engine::result<engine::read_page> r) { found = r && !r->events.empty(); });
    return found;
  }

  std::string id;
  asio::io_context& io;
  temp_dir dir;
  store_handler store{dir.path()};
  actors::node_metrics metrics;
  std::unique_ptr<actors::cluster_router> router;
  std::unique_ptr<net::binary_server> server;
  std::uint16_t port = 0;
  std::shared_ptr<client::peer_link> link;  // to the other node
  std::atomic<int> refreshes{0};
  std::function<void()> on_refresh;
};

class forwarding_test : public ::testing::Test {
 protected:
  forwarding_test() : work_(asio::make_work_guard(io_)) {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
    link(x_, y_);
    link(y_, x_);
    x_.router->set(x_.table(1, {"x", "x", "y", "y"}));
    y_.router->set(y_.table(1, {"x", "x", "y", "y"}));
  }
  ~forwarding_test() override {
    x_.link->close();
    y_.link->close();
    x_.server->stop();
    y_.server->stop();
    work_.reset();
    for (auto& t : threads_) t.join();
  }

  void link(test_node& from, test_node& to) {
    client::peer_link_options options;
    options.node_id = to.id;
    options.connection.port = to.port;
    from.link = client::peer_link::make(io_, options);
  }

  engine::result<actors::append_reply> append(test_node& via, const std::string& stream, int n) {
    return await_reply<actors::append_reply>([&](auto reply) {
      via.router->append(
          {stream, engine::expected_version::any(), {make_event(static_cast<std::uint64_t>(n))}},
          reply);
    });
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  test_node x_{"x", io_};
  test_node y_{"y", io_};
};

TEST_F(forwarding_test, any_node_serves_any_stream_and_the_owner_stores_it) {
  for (std::uint32_t p = 0; p < 4; ++p) {
    const auto via_x = stream_in(p, 1);
    const auto via_y = stream_in(p, 2);
    ASSERT_TRUE(append(x_, via_x, 1)) << p;
    ASSERT_TRUE(append(y_, via_y, 2)) << p;
    auto& owner = p < 2 ? x_ : y_;
    auto& other = p < 2 ? y_ : x_;
    EXPECT_TRUE(owner.has(via_x) && owner.has(via_y)) << p;
    EXPECT_FALSE(other.has(via_x) || other.has(via_y)) << p;
  }
  EXPECT_EQ(x_.refreshes.load(), 0);
  EXPECT_EQ(y_.router->newest_sender_epoch(), 1u);
}

TEST_F(forwarding_test, a_stale_sender_gets_not_owner_refreshes_and_retries_once) {
  // Partition 3 moved to x at epoch 2; y knows, x does not yet.
  y_.router->set(y_.table(2, {"x", "x", "y", "x"}));
  x_.on_refresh = [&] { x_.router->set(x_.table(2, {"x", "x", "y", "x"})); };
  const auto stream = stream_in(3, 3);
  auto r = append(x_, stream, 1);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(x_.refreshes.load(), 1);
  EXPECT_TRUE(x_.has(stream));
  EXPECT_FALSE(y_.has(stream));  // y answered not_owner: it never forwarded it back
}

TEST_F(forwarding_test, not_owner_comes_back_when_the_refreshed_map_is_still_wrong) {
  y_.router->set(y_.table(2, {"x", "x", "y", "x"}));
  const auto stream = stream_in(3, 4);
  auto r = append(x_, stream, 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::not_owner);
  EXPECT_NE(r.err().message.find("partition 3"), std::string::npos) << r.err().message;
  EXPECT_EQ(x_.refreshes.load(), 1);  // exactly one retry
  EXPECT_FALSE(x_.has(stream) || y_.has(stream));
}

// --- Read-all and stats fan out: one request per node, merged ----------

engine::result<actors::read_all_page> read_all(test_node& via,
                                               std::vector<actors::all_position> from,
                                               std::size_t limit) {
  return await_reply<actors::read_all_page>([&](auto reply) {
    via.router->read_all(actors::read_all_request{std::move(from), limit, {}}, reply);
  });
}

engine::result<std::vector<actors::partition_stats>> stats(test_node& via) {
  return await_reply<std::vector<actors::partition_stats>>(
      [&](auto reply) { via.router->stats(reply); });
}

TEST_F(forwarding_test, read_all_merges_both_nodes_and_resumes_without_gaps_or_repeats) {
  std::set<std::pair<std::string, std::uint64_t>> written;
  for (int i = 0; i < 24; ++i) {
    const auto stream = stream_in(static_cast<std::uint32_t>(i % 4), i / 4);
    auto r = append(i % 2 ? x_ : y_, stream, 100 + i);
    ASSERT_TRUE(r) << r.err().message;
    written.emplace(stream, r->first_version.value());
  }
  for (auto* via : {&x_, &y_}) {
    std::vector<actors::all_position> from;
    std::set<std::pair<std::string, std::uint64_t>> seen;
    std::set<std::uint32_t> partitions;
    timestamp_us last = 0;
    for (int pages = 0;; ++pages) {
      ASSERT_LT(pages, 100);
      auto page = read_all(*via, from, 5);
      ASSERT_TRUE(page) << page.err().message;
      ASSERT_LE(page->events.size(), 5u);
      for (const auto& e : page->events) {
        EXPECT_GE(e.event.timestamp, last);
        last = e.event.timestamp;
        EXPECT_TRUE(seen.emplace(std::string(e.stream), e.event.version.value()).second);
        partitions.insert(e.partition.value());
      }
      from = page->next;
      if (page->at_end) break;
    }
    EXPECT_EQ(seen, written) << "via " << via->id;
    EXPECT_EQ(partitions.size(), 4u);
  }
  EXPECT_EQ(x_.refreshes.load() + y_.refreshes.load(), 0);
}

TEST_F(forwarding_test, stats_list_each_partition_once_from_its_owner) {
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(append(x_, stream_in(static_cast<std::uint32_t>(i % 4), 10 + i), 200 + i));
  }
  for (auto* via : {&x_, &y_}) {
    auto all = stats(*via);
    ASSERT_TRUE(all) << all.err().message;
    ASSERT_EQ(all->size(), 4u);
    std::uint64_t events = 0;
    for (std::uint32_t p = 0; p < 4; ++p) {
      EXPECT_EQ((*all)[p].partition, partition_id{p});
      EXPECT_EQ((*all)[p].node, p < 2 ? "x" : "y");
      EXPECT_EQ((*all)[p].events, 2u) << "partition " << p;
      events += (*all)[p].events;
    }
    EXPECT_EQ(events, 8u);
  }
}

TEST_F(forwarding_test, read_all_and_stats_at_a_stale_map_refresh_and_retry_once) {
  // Partition 3 moved to x at epoch 2; y knows, x does not yet.
  ASSERT_TRUE(append(x_, stream_in(2, 20), 300));
  y_.router->set(y_.table(2, {"x", "x", "y", "x"}));
  x_.on_refresh = [&] { x_.router->set(x_.table(2, {"x", "x", "y", "x"})); };
  auto page = read_all(x_, {}, 100);
  ASSERT_TRUE(page) << page.err().message;
  EXPECT_EQ(x_.refreshes.load(), 1);
  EXPECT_EQ(page->events.size(), 1u);

  // And a map that stays wrong: the second not_owner comes back.
  x_.on_refresh = nullptr;
  x_.router->set(x_.table(1, {"x", "x", "y", "y"}));
  auto all = stats(x_);
  ASSERT_FALSE(all);
  EXPECT_EQ(all.err().code, errc::not_owner);
  EXPECT_EQ(x_.refreshes.load(), 2);
  auto again = read_all(x_, {}, 100);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.err().code, errc::not_owner);
}

TEST_F(forwarding_test, an_unreachable_node_fails_read_all_and_stats_with_its_error) {
  ASSERT_TRUE(append(x_, stream_in(3, 30), 400));
  y_.server->stop();
  // The request in flight when the link notices may be connection_lost;
  // then the link knows and answers node_unavailable at once.
  engine::result<actors::read_all_page> page = engine::error{errc::timeout, "not tried"};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    page = read_all(x_, {}, 10);
  } while (!page && page.err().code != errc::node_unavailable &&
           std::chrono::steady_clock::now() < deadline);
  ASSERT_FALSE(page);
  EXPECT_EQ(page.err().code, errc::node_unavailable) << page.err().message;
  EXPECT_NE(page.err().message.find("node y"), std::string::npos) << page.err().message;
  auto all = stats(x_);
  ASSERT_FALSE(all);
  EXPECT_EQ(all.err().code, errc::node_unavailable);
}

}  // namespace
}  // namespace annal::testing
