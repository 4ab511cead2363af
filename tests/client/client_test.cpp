#include "client/client.hpp"

#include <future>
#include <map>

#include <gtest/gtest.h>

#include "engine/partitioning.hpp"
#include "tests/net/binary_fixture.hpp"
#include "tests/support/event_factory.hpp"

namespace annal::testing {
namespace {

using engine::errc;

client::client_options options_for(std::uint16_t port) {
  client::client_options options;
  options.port = port;
  options.client_name = "client_test";
  return options;
}

std::unique_ptr<client::client> connect(std::uint16_t port,
                                        client::client_options options = {}) {
  options.port = port;
  auto c = client::client::connect(options);
  if (!c) ADD_FAILURE() << c.err().message;
  return c ? std::move(c).value() : nullptr;
}

TEST(client, every_operation_round_trips_blocking) {
  binary_test_server server;
  auto c = connect(server.port());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->server().protocol_version, 1u);
  EXPECT_EQ(c->server().partition_count, 4u);
  EXPECT_TRUE(c->ping().ok());

  auto appended = c->append({"order-1", engine::expected_version::no_stream(),
                             {make_event(1, "created", R"({"n":1})", "m1"),
                              make_event(2, "paid", R"({"n":2})")}});
  ASSERT_TRUE(appended) << appended.err().message;
  EXPECT_EQ(appended->first_version, stream_version{0});
  EXPECT_EQ(appended->last_version, stream_version{1});
  EXPECT_FALSE(appended->duplicate);

  auto retry = c->append({"order-1", engine::expected_version::no_stream(),
                          {make_event(1, "created", R"({"n":1})", "m1"),
                           make_event(2, "paid", R"({"n":2})")}});
  ASSERT_TRUE(retry);
  EXPECT_TRUE(retry->duplicate);

  auto conflict = c->append({"order-1", engine::expected_version::exact(7), {make_event(3)}});
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.err().code, errc::wrong_expected_version);
  ASSERT_TRUE(conflict.err().current_version);
  EXPECT_EQ(*conflict.err().current_version, stream_version{1});

  auto forward = c->read({"order-1", stream_version{0}, false, 10});
  ASSERT_TRUE(forward) << forward.err().message;
  ASSERT_EQ(forward->events.size(), 2u);
  EXPECT_EQ(forward->events[0].id, make_event_id(1));
  EXPECT_EQ(forward->events[0].type, "created");
  EXPECT_EQ(forward->events[0].data, R"({"n":1})");
  EXPECT_EQ(forward->events[0].metadata, "m1");
  EXPECT_EQ(forward->events[1].version, stream_version{1});
  EXPECT_EQ(forward->last_version, stream_version{1});
  EXPECT_FALSE(forward->next);

  auto backward = c->read({"order-1", stream_version{0}, true, 1, engine::read_direction::backward});
  ASSERT_TRUE(backward);
  ASSERT_EQ(backward->events.size(), 1u);
  EXPECT_EQ(backward->events[0].version, stream_version{1});
  ASSERT_TRUE(backward->next);
  EXPECT_EQ(*backward->next, stream_version{0});

  auto last = c->read_last("order-1");
  ASSERT_TRUE(last);
  ASSERT_EQ(last->events.size(), 1u);
  EXPECT_EQ(last->events[0].type, "paid");

  auto missing = c->read({"nobody-1", stream_version{0}, false, 10});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.err().code, errc::stream_not_found);

  auto meta = c->set_metadata("order-1", {100, 0, 1});
  ASSERT_TRUE(meta) << meta.err().message;
  auto info = c->get_stream_info("order-1");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->metadata, (engine::stream_metadata{100, 0, 1}));
  EXPECT_EQ(info->last_version, stream_version{1});
  EXPECT_EQ(info->first_retained, 1u);

  EXPECT_FALSE(c->get_snapshot("order-1").value().has_value());
  auto put = c->put_snapshot("order-1", stream_version{1}, "state-at-1");
  ASSERT_TRUE(put) << put.err().message;
  auto snapshot = c->get_snapshot("order-1");
  ASSERT_TRUE(snapshot);
  ASSERT_TRUE(snapshot->has_value());
  EXPECT_EQ((*snapshot)->version, stream_version{1});
  EXPECT_EQ((*snapshot)->payload, "state-at-1");

  auto deleted = c->delete_stream("order-1", engine::expected_version::any(), true);
  ASSERT_TRUE(deleted) << deleted.err().message;
  auto after = c->append({"order-1", engine::expected_version::any(), {make_event(9)}});
  ASSERT_FALSE(after);
  EXPECT_EQ(after.err().code, errc::stream_deleted);

  auto bad = c->append({"bad\x01id", engine::expected_version::any(), {make_event(10)}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err().code, errc::invalid_stream_id);
}

TEST(client, read_all_and_stats_round_trip) {
  binary_test_server server;
  auto c = connect(server.port());
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->append({"all-1",
                         engine::expected_version::any(),
                         {make_event(1, "a", R"({"n":1})", "m"), make_event(2, "b", "\x01")}}));
  ASSERT_TRUE(c->append({"all-2", engine::expected_version::any(), {make_event(3, "c")}}));
  ASSERT_TRUE(c->append({"all-1", engine::expected_version::any(), {make_event(4, "d")}}));

  std::vector<actors::all_event> events;
  std::vector<actors::read_all_page> pages;  // keep the bytes of every page
  actors::read_all_request request;
  request.limit = 1;
  for (int n = 0;; ++n) {
    ASSERT_LT(n, 10);
    auto page = c->read_all(request);
    ASSERT_TRUE(page) << page.err().message;
    ASSERT_EQ(page->next.size(), 4u);
    request.from = page->next;
    for (const auto& e : page->events) events.push_back(e);
    const bool end = page->at_end;
    pages.push_back(std::move(page).value());
    if (end) break;
  }
  ASSERT_EQ(events.size(), 4u);
  std::map<event_id, const actors::all_event*> by_id;
  for (const auto& e : events) by_id[e.event.id] = &e;
  ASSERT_EQ(by_id.size(), 4u);
  const auto& first = *by_id.at(make_event_id(1));
  EXPECT_EQ(first.stream, "all-1");
  EXPECT_EQ(first.event.type, "a");
  EXPECT_EQ(first.event.data, R"({"n":1})");
  EXPECT_EQ(first.event.metadata, "m");
  EXPECT_EQ(first.event.version, stream_version{0});
  EXPECT_EQ(first.index, 0u);
  const auto& second = *by_id.at(make_event_id(2));
  EXPECT_EQ(second.index, 1u);
  EXPECT_EQ(second.event.position, first.event.position);
  EXPECT_EQ(second.event.data, "\x01");
  EXPECT_EQ(by_id.at(make_event_id(4))->event.version, stream_version{2});
  EXPECT_EQ(first.partition, engine::partition_for("all-1", 4));

  auto wrong = c->read_all({std::vector<actors::all_position>(3), 10, {}});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.err().code, errc::invalid_argument);

  auto stats = c->stats();
  ASSERT_TRUE(stats) << stats.err().message;
  ASSERT_EQ(stats->size(), 4u);
  std::uint64_t total = 0;
  for (const auto& s : *stats) total += s.events;
  EXPECT_EQ(total, 4u);
  EXPECT_EQ((*stats)[0].node, "store");
}

TEST(client, async_calls_complete_with_values) {
  binary_test_server server;
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  std::promise<engine::result<std::shared_ptr<client::connection>>> connected;
  client::connection::connect(io, options_for(server.port()),
                              [&](auto r) { connected.set_value(std::move(r)); });
  auto conn = connected.get_future().get();
  ASSERT_TRUE(conn) << conn.err().message;
  std::promise<engine::result<engine::read_page>> read_done;
  (*conn)->append({"async-1", engine::expected_version::any(), {make_event(1, "t", "payload")}},
                  [&](engine::result<actors::append_reply> r) {
                    ASSERT_TRUE(r);
                    // A callback may submit the next request.
                    (*conn)->read({"async-1", stream_version{0}, false, 5},
                                  [&](auto page) { read_done.set_value(std::move(page)); });
                  });
  auto page = read_done.get_future().get();
  (*conn)->close();
  work.reset();
  runner.join();
  ASSERT_TRUE(page);
  ASSERT_EQ(page->events.size(), 1u);
  // The page keeps the received message alive after the connection is gone.
  EXPECT_EQ(page->events[0].data, "payload");
}

TEST(client, pipelined_replies_complete_out_of_order) {
  binary_test_server server;
  auto c = connect(server.port());
  ASSERT_TRUE(c);
  server.handler().hold(true);
  constexpr int k_requests = 10;
  std::mutex mu;
  std::vector<int> order;
  std::atomic<int> done{0};
  for (int i = 0; i < k_requests; ++i) {
    c->async().append({"pipe-" + std::to_string(i), engine::expected_version::any(),
                       {make_event(static_cast<std::uint64_t>(i + 1))}},
                      [&, i](engine::result<actors::append_reply> r) {
                        EXPECT_TRUE(r);
                        std::lock_guard lock(mu);
                        order.push_back(i);
                        ++done;
                      });
  }
  ASSERT_TRUE(eventually([&] { return server.handler().held() == k_requests; }));
  EXPECT_EQ(done.load(), 0);
  server.handler().hold(false);
  server.handler().release(/*reverse=*/true);
  ASSERT_TRUE(eventually([&] { return done.load() == k_requests; }));
  std::lock_guard lock(mu);
  for (int i = 0; i < k_requests; ++i) EXPECT_EQ(order[i], k_requests - 1 - i);
}

TEST(client, many_threads_share_one_client_on_a_multithreaded_server) {
  binary_test_server server({}, 2);
  auto c = connect(server.port());
  ASSERT_TRUE(c);
  constexpr int k_threads = 4;
  constexpr int k_appends = 200;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      const std::string stream = "mt-" + std::to_string(t);
      for (int i = 0; i < k_appends; ++i) {
        const auto expected = i == 0 ? engine::expected_version::no_stream()
                                     : engine::expected_version::exact(static_cast<std::uint64_t>(i - 1));
        auto r = c->append({stream, expected,
                            {make_event(static_cast<std::uint64_t>(i + 1), "t", "x",
                                        std::to_string(t))}});
        if (!r || r->last_version != stream_version{static_cast<std::uint64_t>(i)}) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < k_threads; ++t) {
    auto info = c->get_stream_info("mt-" + std::to_string(t));
    ASSERT_TRUE(info);
    EXPECT_EQ(info->last_version, stream_version{k_appends - 1});
  }
}

TEST(client, request_without_reply_times_out_and_connection_goes_on) {
  binary_test_server server;
  client::client_options options;
  options.request_timeout = std::chrono::milliseconds(200);
  auto c = connect(server.port(), options);
  ASSERT_TRUE(c);
  server.handler().hold(true);
  auto r = c->append({"slow-1", engine::expected_version::any(), {make_event(1)}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::timeout);
  server.handler().hold(false);
  server.handler().release();  // the late reply is dropped by the client
  EXPECT_TRUE(c->ping().ok());
  auto page = c->read({"slow-1", stream_version{0}, false, 10});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->events.size(), 1u);
}

TEST(client, requests_in_flight_get_connection_lost_when_the_node_closes) {
  binary_test_server server;
  auto c = connect(server.port());
  ASSERT_TRUE(c);
  server.handler().hold(true);
  std::promise<engine::result<actors::append_reply>> pending;
  c->async().append({"lost-1", engine::expected_version::any(), {make_event(1)}},
                    [&](auto r) { pending.set_value(std::move(r)); });
  ASSERT_TRUE(eventually([&] { return server.handler().held() == 1; }));
  server.server().stop();
  auto r = pending.get_future().get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::connection_lost);
  auto after = c->ping();
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.err().code, errc::connection_lost);
  EXPECT_FALSE(c->async().is_open());
}

TEST(client, connect_to_a_closed_port_fails) {
  std::uint16_t port = 0;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    port = acceptor.local_endpoint().port();
  }
  auto c = client::client::connect(options_for(port));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.err().code, errc::connection_lost);
}

TEST(client, connect_times_out_without_a_hello_reply) {
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});  // never accepts
  auto options = options_for(silent.local_endpoint().port());
  options.connect_timeout = std::chrono::milliseconds(200);
  auto c = client::client::connect(options);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.err().code, errc::timeout);
}

TEST(client, request_over_the_frame_limit_is_refused_locally) {
  net::binary_server_options options;
  options.max_frame_bytes = 4096;
  binary_test_server server(options);
  auto c = connect(server.port());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->server().max_frame_bytes, 4096u);
  auto r = c->append({"huge-1", engine::expected_version::any(),
                      {make_event(1, "t", std::string(10000, 'x'))}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::frame_too_large);
  EXPECT_TRUE(c->ping().ok());
}

}  // namespace
}  // namespace annal::testing
