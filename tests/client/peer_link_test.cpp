// Routing across two stores: a cluster_router with a table that gives half
// the partitions to a local store and half to a remote one reached over a
// peer_link (real binary server, real socket on 127.0.0.1).
#include "client/peer_link.hpp"

#include <gtest/gtest.h>

#include <future>

#include "actors/cluster_router.hpp"
#include "engine/partitioning.hpp"
#include "tests/net/binary_fixture.hpp"
#include "tests/support/await_reply.hpp"
#include "tests/support/event_factory.hpp"

namespace annal::testing {
namespace {

using engine::errc;

// A stream id of partition p (of 4), distinct for each n.
std::string stream_in(std::uint32_t p, int n) { return stream_in_partition(p, 4, n); }

class peer_link_test : public ::testing::Test {
 protected:
  peer_link_test() : work_(asio::make_work_guard(io_)) {
    thread_ = std::thread([this] { io_.run(); });
    client::peer_link_options options;
    options.node_id = "remote";
    options.connection.port = remote_.port();
    options.connection.connect_timeout = std::chrono::seconds(5);
    options.connection.request_timeout = std::chrono::seconds(20);
    link_ = client::peer_link::make(io_, options);

    auto table = std::make_shared<actors::routing_table>();
    table->epoch = 7;
    table->partition_count = 4;
    // Partitions 0 and 2 local, 1 and 3 remote.
    auto local = std::shared_ptr<actors::request_handler>(&local_, [](auto*) {});
    table->owners = {local, link_, local, link_};
    table->owner_ids = {"local", "remote", "local", "remote"};
    router_ = std::make_unique<actors::cluster_router>(table);
  }
  ~peer_link_test() override {
    link_->close();
    work_.reset();
    thread_.join();
  }

  engine::result<actors::append_reply> append(const std::string& stream,
                                              engine::expected_version expected, int n) {
    return await_reply<actors::append_reply>([&](auto reply) {
      router_->append({stream, expected, {make_event(static_cast<std::uint64_t>(n))}}, reply);
    });
  }

  temp_dir local_dir_;
  store_handler local_{local_dir_.path()};
  binary_test_server remote_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::shared_ptr<client::peer_link> link_;
  std::unique_ptr<actors::cluster_router> router_;
};

TEST_F(peer_link_test, requests_reach_the_owner_and_replies_come_back_unchanged) {
  for (std::uint32_t p = 0; p < 4; ++p) {
    const auto stream = stream_in(p, 1);
    auto first = append(stream, engine::expected_version::no_stream(), 1);
    ASSERT_TRUE(first) << "partition " << p << ": " << first.err().message;
    EXPECT_EQ(first->first_version, stream_version{0});
    EXPECT_EQ(first->partition, partition_id{p});

    // Every expected-version case crosses the link with its typed error.
    auto wrong = append(stream, engine::expected_version::exact(5), 2);
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.err().code, errc::wrong_expected_version);
    ASSERT_TRUE(wrong.err().current_version);
    EXPECT_EQ(*wrong.err().current_version, stream_version{0});
    auto exists = append(stream, engine::expected_version::no_stream(), 3);
    ASSERT_FALSE(exists);
    EXPECT_EQ(exists.err().code, errc::wrong_expected_version);
    auto second = append(stream, engine::expected_version::exact(0), 4);
    ASSERT_TRUE(second) << second.err().message;
    EXPECT_EQ(second->first_version, stream_version{1});
    auto retry = append(stream, engine::expected_version::exact(0), 4);
    ASSERT_TRUE(retry) << retry.err().message;
    EXPECT_TRUE(retry->duplicate);

    auto page = await_reply<engine::read_page>([&](auto reply) {
      router_->read({stream, stream_version{0}, false, 10}, reply);
    });
    ASSERT_TRUE(page) << page.err().message;
    ASSERT_EQ(page->events.size(), 2u);
    EXPECT_EQ(page->events[1].version, stream_version{1});
  }
  // The remote store holds exactly the remote partitions' streams.
  for (std::uint32_t p = 0; p < 4; ++p) {
    bool found = false;
    remote_.store().read(
        {stream_in(p, 1), stream_version{0}, false, 10},
        [&](engine::result<engine::read_page> r) { found = r && !r->events.empty(); });
    EXPECT_EQ(found, p % 2 == 1) << "partition " << p;
  }
}

TEST_F(peer_link_test, an_unreachable_owner_gives_node_unavailable_and_the_others_keep_serving) {
  const auto remote_stream = stream_in(1, 2);
  const auto local_stream = stream_in(0, 2);
  ASSERT_TRUE(append(remote_stream, engine::expected_version::any(), 1));
  remote_.shutdown();

  // The request in flight when the link notices may be connection_lost; once
  // the link knows, requests fail fast with node_unavailable.
  ASSERT_TRUE(eventually(
      [&] {
        auto r = append(remote_stream, engine::expected_version::any(), 2);
        return !r && r.err().code == errc::node_unavailable;
      },
      std::chrono::seconds(30)));
  auto r = append(remote_stream, engine::expected_version::any(), 3);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::node_unavailable);
  EXPECT_NE(r.err().message.find("remote"), std::string::npos) << r.err().message;

  auto local = append(local_stream, engine::expected_version::any(), 4);
  ASSERT_TRUE(local) << local.err().message;
}

TEST_F(peer_link_test, a_bad_stream_id_is_refused_before_routing) {
  auto r = append("", engine::expected_version::any(), 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_stream_id);
}

TEST_F(peer_link_test, a_partition_without_owner_is_unavailable) {
  auto table = std::make_shared<actors::routing_table>(*router_->table());
  table->owners[3] = nullptr;
  router_->set(table);
  auto r = append(stream_in(3, 3), engine::expected_version::any(), 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::partition_unavailable);
}

}  // namespace
}  // namespace annal::testing
