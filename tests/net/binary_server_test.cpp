#include "net/binary_server.hpp"

#include <atomic>
#include <thread>

#include <capnp/any.h>
#include <gtest/gtest.h>

#include "client/client.hpp"
#include "tests/net/binary_fixture.hpp"
#include "tests/support/event_factory.hpp"

namespace annal::testing {
namespace {

using engine::errc;

client::client_options options_for(std::uint16_t port) {
  client::client_options options;
  options.port = port;
  options.client_name = "binary_server_test";
  return options;
}

class binary_server_test : public ::testing::Test {
 protected:
  void start(net::binary_server_options options = {}) {
    server_ = std::make_unique<binary_test_server>(options);
    auto c = client::client::connect(options_for(server_->port()));
    ASSERT_TRUE(c) << c.err().message;
    auto acked = (*c)->append({"acked-1", engine::expected_version::any(), {make_event(1)}});
    ASSERT_TRUE(acked) << acked.err().message;
  }

  // `count` streams "big-<i>" of one event of `bytes` bytes of data each
  // (event ids from `first_id`), appended over a client of the server's.
  // The client, for more requests.
  std::unique_ptr<client::client> append_big(std::uint64_t count, std::size_t bytes,
                                             std::uint64_t first_id) {
    auto c = client::client::connect(options_for(server_->port()));
    EXPECT_TRUE(c) << c.err().message;
    if (!c) return nullptr;
    for (std::uint64_t i = 0; i < count; ++i) {
      auto r = (*c)->append({"big-" + std::to_string(i),
                             engine::expected_version::any(),
                             {make_event(first_id + i, "big", std::string(bytes, 'x'))}});
      EXPECT_TRUE(r) << r.err().message;
    }
    return std::move(c).value();
  }

  // After damage on another connection: a new connection works and the
  // append acknowledged before is still readable.
  void expect_node_healthy() {
    auto c = client::client::connect(options_for(server_->port()));
    ASSERT_TRUE(c) << c.err().message;
    auto page = (*c)->read({"acked-1", stream_version{0}, false, 10});
    ASSERT_TRUE(page) << page.err().message;
    ASSERT_EQ(page->events.size(), 1u);
    EXPECT_EQ(page->events[0].id, make_event_id(1));
    EXPECT_TRUE((*c)->ping().ok());
  }

  // Sends `bytes` after a handshake (or instead of it) and expects Error{code}
  // and a clean close.
  void expect_fatal(std::span<const std::byte> bytes, const char* code, bool handshake = true) {
    raw_peer peer(server_->port());
    if (handshake) peer.handshake();
    peer.send(bytes);
    auto reply = peer.receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->error_code(), code);
    EXPECT_TRUE(peer.closed_cleanly());
    expect_node_healthy();
  }

  std::unique_ptr<binary_test_server> server_;
};

std::vector<std::byte> request_frame(const std::function<void(wire::Request::Builder)>& fill,
                                     std::uint64_t id = 5) {
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<wire::Request>();
  request.setId(id);
  fill(request);
  return net::make_frame(message);
}

TEST_F(binary_server_test, hello_reply_reports_node_and_limits) {
  net::binary_server_options options;
  options.node_id = "node-7";
  options.max_batch_events = 123;
  options.max_frame_bytes = 1 << 20;
  start(options);
  raw_peer peer(server_->port());
  peer.send_hello(wire::PROTOCOL_VERSION, 42);
  auto reply = peer.receive();
  ASSERT_TRUE(reply.has_value());
  auto response = reply->get();
  EXPECT_EQ(response.getId(), 42u);
  ASSERT_EQ(response.which(), wire::Response::HELLO);
  auto hello = response.getHello();
  EXPECT_EQ(hello.getProtocolVersion(), 1u);
  EXPECT_EQ(std::string(hello.getNodeId().cStr()), "node-7");
  EXPECT_EQ(hello.getPartitionCount(), 4u);
  EXPECT_EQ(hello.getMaxFrameBytes(), 1u << 20);
  EXPECT_EQ(hello.getMaxBatchEvents(), 123u);
  EXPECT_GE(server_->metrics().connections_accepted.load(), 2u);
}

TEST_F(binary_server_test, request_before_hello_is_malformed_and_closes) {
  start();
  auto ping = request_frame([](auto r) { r.setPing(); });
  expect_fatal(ping, "malformed_request", false);
}

TEST_F(binary_server_test, unsupported_protocol_version_is_refused_and_closes) {
  start();
  raw_peer peer(server_->port());
  peer.send_hello(2);
  auto reply = peer.receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->error_code(), "unsupported_version");
  EXPECT_TRUE(peer.closed_cleanly());
  expect_node_healthy();
}

TEST_F(binary_server_test, second_hello_is_an_error_reply_only) {
  start();
  raw_peer peer(server_->port());
  peer.handshake();
  peer.send_hello(wire::PROTOCOL_VERSION, 9);
  auto reply = peer.receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->get().getId(), 9u);
  EXPECT_EQ(reply->error_code(), "malformed_request");
  peer.send(request_frame([](auto r) { r.setPing(); }, 10));
  auto pong = peer.receive();
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->get().which(), wire::Response::PONG);
  EXPECT_EQ(pong->get().getId(), 10u);
}

TEST_F(binary_server_test, random_bytes_get_malformed_request_and_close) {
  start();
  std::vector<std::byte> garbage(1000);
  std::uint32_t x = 12345;
  for (auto& b : garbage) {
    x = x * 1103515245 + 12345;
    b = static_cast<std::byte>(x >> 16);
  }
  // A plausible small length (multiple of 8) followed by noise.
  garbage[0] = std::byte{0x40};
  garbage[1] = garbage[2] = garbage[3] = std::byte{0};
  expect_fatal(garbage, "malformed_request");
}

TEST_F(binary_server_test, oversized_length_prefix_gets_frame_too_large) {
  start();
  // 4 GiB - 16: rejected from the prefix, nothing allocated.
  const std::byte prefix[4] = {std::byte{0xf0}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff}};
  expect_fatal(prefix, "frame_too_large");
}

TEST_F(binary_server_test, frame_over_configured_limit_gets_frame_too_large) {
  net::binary_server_options options;
  options.max_frame_bytes = 4096;
  start(options);
  auto big = request_frame([](auto r) {
    auto snapshot = r.initPutSnapshot();
    snapshot.setStream("acked-1");
    snapshot.initPayload(8000);
  });
  expect_fatal(big, "frame_too_large");
}

TEST_F(binary_server_test, frame_that_is_not_capnp_gets_malformed_request) {
  start();
  // A valid segment table (one segment of 2 words) whose root pointer points
  // far outside the segment.
  std::vector<std::byte> frame(4 + 8 + 16, std::byte{0});
  frame[0] = std::byte{24};
  frame[8] = std::byte{2};                        // segment 0: 2 words
  frame[12] = std::byte{0xfc};                    // struct pointer, offset large
  frame[13] = frame[14] = frame[15] = std::byte{0x7f};
  frame[16] = std::byte{4};                       // data words
  expect_fatal(frame, "malformed_request");
}

TEST_F(binary_server_test, truncated_frame_gets_malformed_request_and_close) {
  start();
  raw_peer peer(server_->port());
  peer.handshake();
  auto frame = request_frame([](auto r) { r.setPing(); });
  peer.send(std::span(frame).first(frame.size() - 5));
  peer.shutdown_send();  // the peer ends mid-frame
  auto reply = peer.receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->error_code(), "malformed_request");
  EXPECT_TRUE(peer.closed_cleanly());
  expect_node_healthy();
}

TEST_F(binary_server_test, unknown_request_type_gets_unknown_request_and_connection_goes_on) {
  start();
  raw_peer peer(server_->port());
  peer.handshake();
  // A request from a newer schema: set the union discriminant past the last
  // member this node knows.
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<wire::Request>();
  request.setId(77);
  request.setPing();
  auto data = message.getRoot<capnp::AnyStruct>().getDataSection();
  ASSERT_GE(data.size(), 10u);
  ASSERT_EQ(data[8], static_cast<kj::byte>(wire::Request::PING));  // discriminant after id
  data[8] = 200;
  ASSERT_EQ(static_cast<unsigned>(message.getRoot<wire::Request>().which()), 200u);
  peer.send(message);
  auto reply = peer.receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->get().getId(), 77u);
  EXPECT_EQ(reply->error_code(), "unknown_request");
  peer.send(request_frame([](auto r) { r.setPing(); }, 78));
  auto pong = peer.receive();
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->get().which(), wire::Response::PONG);
  EXPECT_EQ(server_->metrics().errors[static_cast<std::size_t>(errc::unknown_request)].load(), 1u);
}

TEST_F(binary_server_test, read_all_pages_fit_the_frame_limit) {
  net::binary_server_options options;
  options.max_frame_bytes = 64u << 10;
  start(options);
  ASSERT_TRUE(append_big(30, 8000, 100));
  raw_peer peer(server_->port());
  peer.handshake();
  std::vector<std::uint64_t> from;
  std::size_t events = 0;
  int pages = 0;
  for (std::uint64_t id = 10;; ++id) {
    ASSERT_LT(pages, 100);
    peer.send(request_frame(
        [&](auto r) {
          auto read_all = r.initReadAll();
          auto list = read_all.initFrom(static_cast<unsigned>(from.size()));
          for (unsigned i = 0; i < from.size(); ++i) list.set(i, from[i]);
          read_all.setLimit(1000);
        },
        id));
    auto reply = peer.receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_LE(reply->words.size() * sizeof(capnp::word), options.max_frame_bytes);
    ASSERT_EQ(reply->get().which(), wire::Response::READ_ALL) << reply->error_code();
    auto page = reply->get().getReadAll();
    events += page.getEvents().size();
    EXPECT_GE(page.getEvents().size(), 1u);
    from.clear();
    for (const auto position : page.getNext()) from.push_back(position);
    ASSERT_EQ(from.size(), 4u);
    ++pages;
    if (page.getAtEnd()) break;
  }
  EXPECT_EQ(events, 31u);  // with acked-1
  EXPECT_GT(pages, 3);
}

// A subscription's callbacks may still be queued for its connection when
// it ends and a new subscribe takes its request id. They must not reach the
// new subscription: its replies and pages are its own.
TEST_F(binary_server_test, a_reused_subscription_id_gets_only_the_new_subscriptions_replies) {
  start();                              // stream acked-1, one event
  ASSERT_TRUE(append_big(1, 10, 100));  // stream big-0, one event
  auto& handler = server_->handler();
  // Every reply the subscriptions wait for is held and released by the test
  // (the test store answers at once, under its lock).
  handler.hold(true);
  raw_peer peer(server_->port());
  peer.handshake();
  const auto subscribe = [](const char* stream) {
    return request_frame(
        [stream](auto r) {
          auto s = r.initSubscribe();
          s.getTarget().setStream(stream);
          s.getFrom().setStart();
          s.setCredits(100);
        },
        7);
  };
  std::vector<std::string> seen;  // the replies for id 7, in order
  const auto receive_for_7 = [&] {
    for (;;) {
      auto reply = peer.receive();
      if (!reply) return false;
      auto r = reply->get();
      if (r.getId() != 7) continue;
      switch (r.which()) {
        case wire::Response::SUBSCRIPTION_EVENTS:
          for (auto e : r.getSubscriptionEvents().getEvents()) {
            seen.push_back(std::string("event of ") + e.getStream().cStr());
          }
          break;
        case wire::Response::SUBSCRIBED: seen.push_back("subscribed"); break;
        case wire::Response::SUBSCRIPTION_ENDED: seen.push_back("ended"); break;
        default: seen.push_back("error " + reply->error_code());
      }
      return true;
    }
  };

  // The first subscription starts (two held reads: the ends, the stream's
  // start); the read of its first page is then held.
  peer.send(subscribe("acked-1"));
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(eventually([&] { return handler.held() == 1; }));
    handler.release();
  }
  ASSERT_TRUE(receive_for_7());
  ASSERT_EQ(seen, std::vector<std::string>{"subscribed"});
  ASSERT_TRUE(eventually([&] { return handler.held() == 1; }));

  // One write, so one pass of the frame loop handles the three requests. The
  // read (id 9) first releases the first subscription's page, whose
  // delivery is then queued for the connection behind that pass: behind the
  // unsubscribe and the new subscribe with the same id.
  handler.release_before_next_read();
  std::vector<std::byte> bytes = request_frame(
      [](auto r) {
        auto read = r.initRead();
        read.setStream("acked-1");
        read.setLimit(10);
      },
      9);
  const auto unsubscribe = request_frame([](auto r) { r.initUnsubscribe().setSubscription(7); }, 8);
  const auto again = subscribe("big-0");
  bytes.insert(bytes.end(), unsubscribe.begin(), unsubscribe.end());
  bytes.insert(bytes.end(), again.begin(), again.end());
  peer.send(bytes);
  // Handled: the page was released, and the read and the new subscription's
  // first read are held.
  ASSERT_TRUE(eventually([&] { return handler.held() == 2; }));

  std::atomic<bool> stop{false};
  std::thread releaser([&] {
    while (!stop.load()) {
      if (handler.held() > 0) {
        handler.release();
      } else {
        std::this_thread::yield();
      }
    }
  });
  while (seen.empty() || seen.back() != "event of big-0") {
    if (!receive_for_7()) break;
  }
  stop = true;
  releaser.join();
  EXPECT_EQ(seen,
            (std::vector<std::string>{"subscribed", "ended", "subscribed", "event of big-0"}));
}

TEST_F(binary_server_test, a_reply_over_the_frame_limit_is_frame_too_large) {
  net::binary_server_options options;
  options.max_frame_bytes = 64u << 10;
  start(options);
  auto c = append_big(4, 30000, 200);
  ASSERT_TRUE(c);
  // Four events of 30 KB: about 120 KB of answer, over the 64 KiB frame.
  auto over = c->query("from $all where type = 'big' | last 4");
  ASSERT_FALSE(over);
  EXPECT_EQ(over.err().code, errc::frame_too_large);
  EXPECT_NE(over.err().message.find("over the frame limit of 65536 bytes"), std::string::npos)
      << over.err().message;
  EXPECT_EQ(server_->metrics().errors[static_cast<std::size_t>(errc::frame_too_large)].load(), 1u);
  // The connection goes on; an answer that fits arrives whole.
  auto fits = c->query("from $all where type = 'big' | last 1");
  ASSERT_TRUE(fits) << fits.err().message;
  const auto& listed = std::get<std::vector<engine::query::listed_event>>(fits->body);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed.front().data.size(), 30000u);
  EXPECT_EQ(listed.front().stream, "big-3");
}

TEST_F(binary_server_test, invalid_stream_ids_get_invalid_stream_id) {
  start();
  raw_peer peer(server_->port());
  peer.handshake();
  const std::vector<std::string> bad = {std::string("\xc3\x28", 2), std::string(300, 's'),
                                        std::string(), std::string("tab\there")};
  std::uint64_t id = 100;
  for (const auto& stream : bad) {
    peer.send(request_frame(
        [&](auto r) {
          auto append = r.initAppend();
          append.setStream(capnp::Text::Reader(stream.data(), stream.size()));
          auto events = append.initEvents(1);
          events[0].setType("t");
        },
        id));
    auto reply = peer.receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->get().getId(), id);
    EXPECT_EQ(reply->error_code(), "invalid_stream_id");
    ++id;
    peer.send(request_frame(
        [&](auto r) { r.initReadLast().setStream(capnp::Text::Reader(stream.data(), stream.size())); },
        id));
    reply = peer.receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->error_code(), "invalid_stream_id");
    ++id;
  }
  expect_node_healthy();
}

TEST_F(binary_server_test, batch_over_the_limit_gets_batch_too_large) {
  net::binary_server_options options;
  options.max_batch_events = 5;
  start(options);
  raw_peer peer(server_->port());
  peer.handshake();
  peer.send(request_frame([](auto r) {
    auto append = r.initAppend();
    append.setStream("big-1");
    auto events = append.initEvents(6);
    for (unsigned i = 0; i < 6; ++i) {
      events[i].setType("t");
      events[i].setId0(i + 1);
    }
  }));
  auto reply = peer.receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->error_code(), "batch_too_large");
  peer.send(request_frame([](auto r) { r.setPing(); }, 6));
  auto pong = peer.receive();
  ASSERT_TRUE(pong.has_value());
  EXPECT_EQ(pong->get().which(), wire::Response::PONG);
  expect_node_healthy();
}

TEST_F(binary_server_test, connections_over_the_limit_get_too_many_connections) {
  net::binary_server_options options;
  options.max_connections = 2;
  start(options);
  ASSERT_TRUE(eventually([&] { return server_->server().connection_count() == 0; }));
  raw_peer first(server_->port());
  first.handshake();
  raw_peer second(server_->port());
  second.handshake();
  raw_peer third(server_->port());
  auto reply = third.receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->error_code(), "too_many_connections");
  EXPECT_TRUE(third.closed_cleanly());
  EXPECT_EQ(server_->server().connection_count(), 2u);
  first.shutdown_send();
  EXPECT_TRUE(first.closed_cleanly());
  ASSERT_TRUE(eventually([&] { return server_->server().connection_count() == 1; }));
  raw_peer fourth(server_->port());
  fourth.handshake();
  EXPECT_EQ(server_->metrics().connections_open.load(), 2u);
}

TEST_F(binary_server_test, idle_connection_is_closed_but_one_with_a_request_in_flight_is_not) {
  net::binary_server_options options;
  options.idle_timeout = std::chrono::milliseconds(300);
  options.linger = std::chrono::milliseconds(300);
  start(options);
  raw_peer busy(server_->port());
  busy.handshake();
  server_->handler().hold(true);
  busy.send(request_frame([](auto r) {
    auto append = r.initAppend();
    append.setStream("busy-1");
    auto events = append.initEvents(1);
    events[0].setType("t");
    events[0].setId0(1);
  }));
  ASSERT_TRUE(eventually([&] { return server_->handler().held() == 1; }));
  raw_peer idle(server_->port());
  idle.handshake();
  auto reply = idle.receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->get().getId(), 0u);
  EXPECT_EQ(reply->error_code(), "timeout");
  EXPECT_TRUE(idle.closed_cleanly());
  // The busy connection outlives the idle one, which was opened after it.
  EXPECT_TRUE(eventually([&] { return server_->server().connection_count() == 1; }));
  server_->handler().hold(false);
  server_->handler().release();
  auto appended = busy.receive();
  ASSERT_TRUE(appended.has_value());
  EXPECT_EQ(appended->get().which(), wire::Response::APPEND) << appended->error_code();
}

TEST_F(binary_server_test, a_connection_that_closes_cancels_its_queries_in_flight) {
  start();
  auto query = request_frame([](auto r) { r.initQuery().setText("from $all | count()"); }, 7);

  // Answered while the client waits: not cancelled, also not by a later close.
  raw_peer answered(server_->port());
  answered.handshake();
  answered.send(query);
  auto reply = answered.receive();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->get().which(), wire::Response::QUERY) << reply->error_code();
  const auto done = server_->handler().last_query_cancel();
  ASSERT_TRUE(done);
  answered.close();

  // Still scanning (its reply held) when the client goes away: cancelled.
  raw_peer gone(server_->port());
  gone.handshake();
  server_->handler().hold(true);
  gone.send(query);
  ASSERT_TRUE(eventually([&] { return server_->handler().held() == 1; }));
  const auto running = server_->handler().last_query_cancel();
  ASSERT_TRUE(running);
  ASSERT_NE(running, done);
  EXPECT_FALSE(running->load()) << "cancelled while its client waits";
  gone.close();
  EXPECT_TRUE(eventually([&] { return running->load(); }));
  EXPECT_FALSE(done->load());
  // The connection ends once the (cancelled) query answers.
  server_->handler().hold(false);
  server_->handler().release();
  EXPECT_TRUE(eventually([&] { return server_->server().connection_count() == 0; }));
  expect_node_healthy();
}

TEST_F(binary_server_test, reading_pauses_at_the_in_flight_limit) {
  net::binary_server_options options;
  options.max_inflight_per_connection = 4;
  start(options);
  raw_peer peer(server_->port());
  peer.handshake();
  server_->handler().hold(true);
  for (std::uint64_t id = 1; id <= 10; ++id) {
    peer.send(request_frame(
        [&](auto r) {
          auto append = r.initAppend();
          append.setStream("pressure-1");
          auto events = append.initEvents(1);
          events[0].setType("t");
          events[0].setId0(id);
        },
        id));
  }
  std::size_t replies = 0;
  while (replies < 10) {
    ASSERT_TRUE(eventually([&] {
      return server_->handler().held() == std::min<std::size_t>(4, 10 - replies);
    })) << "held " << server_->handler().held() << " after " << replies << " replies";
    const std::size_t batch = server_->handler().held();
    EXPECT_LE(batch, 4u);
    server_->handler().release();
    for (std::size_t i = 0; i < batch; ++i) {
      auto reply = peer.receive();
      ASSERT_TRUE(reply.has_value());
      EXPECT_EQ(reply->get().which(), wire::Response::APPEND);
    }
    replies += batch;
  }
  EXPECT_EQ(replies, 10u);
}

TEST_F(binary_server_test, stop_closes_connections_and_refuses_new_ones) {
  start();
  raw_peer peer(server_->port());
  peer.handshake();
  server_->server().stop();
  EXPECT_TRUE(peer.closed_cleanly());
  server_->server().stop();  // idempotent
  auto again = server_->server().listen("127.0.0.1", 0);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.err().code, errc::shutting_down);
}

TEST(binary_server, listen_on_a_bad_address_is_an_io_error) {
  temp_dir dir;
  store_handler store(dir.path());
  actors::node_metrics metrics;
  asio::io_context io;
  net::binary_server server(io, store, metrics, {});
  auto bound = server.listen("203.0.113.1", 0);  // TEST-NET-3: not a local address
  ASSERT_FALSE(bound);
  EXPECT_EQ(bound.err().code, errc::io_error);
}

}  // namespace
}  // namespace annal::testing
