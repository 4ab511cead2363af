// Subscriptions over the binary protocol (docs/subscriptions.md): a real
// node (actors::node) behind a binary_server on loopback, the C++ client's
// blocking subscription, and a raw socket for what the client library
// would never do (grant a million credits and read nothing).
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "actors/node.hpp"
#include "client/client.hpp"
#include "client/subscription.hpp"
#include "net/binary_server.hpp"
#include "tests/net/binary_fixture.hpp"
#include "tests/support/event_factory.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/temp_dir.hpp"

namespace annal::testing {
namespace {

using engine::errc;
using engine::expected_version;
using namespace std::chrono_literals;

constexpr std::uint32_t k_partitions = 8;
constexpr std::size_t k_page = 128;  // the server's subscription page

// A node and a binary server over it on 127.0.0.1, two io threads.
class node_server {
 public:
  node_server() : work_(asio::make_work_guard(io_)) {
    actors::node_options o;
    o.data_dir = dir_.file("data");
    o.partition_count = k_partitions;
    o.fsync = engine::fsync_mode::none;
    auto started = actors::node::start(std::move(o));
    if (!started) throw std::runtime_error(started.err().message);
    node_ = std::move(started).value();
    net::binary_server_options options;
    options.partition_count = k_partitions;
    options.subscription.page_events = k_page;
    options.subscription.wait = 2s;
    server_ =
        std::make_unique<net::binary_server>(io_, node_->handler(), node_->metrics(), options);
    auto bound = server_->listen("127.0.0.1", 0);
    if (!bound) throw std::runtime_error(bound.err().message);
    port_ = bound->port();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~node_server() {
    node_->stop();
    server_->stop();
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
  }

  std::uint16_t port() const { return port_; }
  actors::node_metrics& metrics() { return node_->metrics(); }

  std::unique_ptr<client::client> connect() {
    client::client_options options;
    options.port = port_;
    options.client_name = "binary_subscription_test";
    auto c = client::client::connect(options);
    if (!c) throw std::runtime_error("connect: " + c.err().message);
    return std::move(c).value();
  }

 private:
  temp_dir dir_;
  std::unique_ptr<actors::node> node_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<net::binary_server> server_;
  std::uint16_t port_ = 0;
  std::vector<std::thread> threads_;
};

// What was appended, per stream: the versions acknowledged. Thread-safe.
class ledger {
 public:
  void add(const std::string& stream, const actors::append_reply& r) {
    std::lock_guard lock(mu_);
    auto& last = last_[stream];
    last = std::max(last, r.last_version.value() + 1);
    total_ += r.last_version.value() - r.first_version.value() + 1;
  }
  std::map<std::string, std::uint64_t> counts() const {
    std::lock_guard lock(mu_);
    return last_;
  }
  std::uint64_t total() const {
    std::lock_guard lock(mu_);
    return total_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::uint64_t> last_;  // versions 0..last-1 exist
  std::uint64_t total_ = 0;
};

void append(client::client& c, ledger& l, const std::string& stream, std::size_t n,
            std::uint64_t& ids, const std::string& type = "t") {
  auto r = c.append({stream, expected_version::any(), make_events(ids, n, type)});
  ids += n;
  ASSERT_TRUE(r) << r.err().message;
  l.add(stream, *r);
}

// Reads until `n` events came (or 30 s without one); every event must be
// the next version of its stream.
void read_in_order(client::subscription& s, std::size_t n,
                   std::map<std::string, std::uint64_t>& next,
                   std::vector<client::subscription_event>* out = nullptr) {
  for (std::size_t i = 0; i < n; ++i) {
    auto e = s.next(30s);
    ASSERT_TRUE(e) << e.err().message;
    ASSERT_TRUE(*e) << "no event within 30 s after " << i << " of " << n;
    const auto& event = **e;
    ASSERT_EQ(event.version.value(), next[event.stream]) << event.stream << ": gap or duplicate";
    ++next[event.stream];
    if (out) out->push_back(event);
  }
}

net::wire_codec::subscribe_params params(actors::subscription_target::kind what = {},
                                         std::string name = {}) {
  net::wire_codec::subscribe_params p;
  p.target = {what, std::move(name)};
  return p;
}

TEST(binary_subscription, catch_up_then_live_with_concurrent_appends_delivers_each_event_once) {
  node_server server;
  auto writer_client = server.connect();
  ledger appended;
  std::uint64_t ids = 1;
  std::vector<std::string> streams;
  for (int i = 0; i < 16; ++i) streams.push_back((i % 2 ? "cart-" : "user-") + std::to_string(i));
  for (const auto& s : streams) append(*writer_client, appended, s, 20, ids);

  auto reader = server.connect();
  auto all = client::subscription::open(*reader, params(), /*window=*/50);
  ASSERT_TRUE(all) << all.err().message;
  auto carts = client::subscription::open(
      *reader, params(actors::subscription_target::kind::category, "cart"), 64);
  ASSERT_TRUE(carts) << carts.err().message;
  auto one = client::subscription::open(
      *reader, params(actors::subscription_target::kind::stream, "user-2"), 7);
  ASSERT_TRUE(one) << one.err().message;

  std::thread writer([&] {
    std::uint64_t local_ids = 1'000'000;
    for (int round = 0; round < 40; ++round) {
      for (std::size_t i = round % 2; i < streams.size(); i += 2) {
        append(*writer_client, appended, streams[i], 1 + round % 3, local_ids);
      }
    }
  });
  // Reading while the writer writes: catch-up, then live.
  std::map<std::string, std::uint64_t> next_all;
  read_in_order(**all, 400, next_all);
  writer.join();
  const auto counts = appended.counts();
  ASSERT_GT(appended.total(), 400u);
  read_in_order(**all, appended.total() - 400, next_all);
  EXPECT_EQ(next_all, counts);

  std::map<std::string, std::uint64_t> next_carts, want_carts;
  std::uint64_t cart_total = 0;
  for (const auto& [s, n] : counts) {
    if (s.starts_with("cart-")) {
      want_carts[s] = n;
      cart_total += n;
    }
  }
  read_in_order(**carts, cart_total, next_carts);
  EXPECT_EQ(next_carts, want_carts);

  std::map<std::string, std::uint64_t> next_one;
  read_in_order(**one, counts.at("user-2"), next_one);
  EXPECT_EQ(next_one["user-2"], counts.at("user-2"));

  // Nothing more is pending: a live event is the next thing each gets.
  append(*writer_client, appended, "cart-1", 1, ids);
  auto live = (*all)->next(10s);
  ASSERT_TRUE(live && *live);
  EXPECT_EQ((*live)->stream, "cart-1");
  EXPECT_EQ((*live)->version.value(), counts.at("cart-1"));
  EXPECT_LE(server.metrics().subscription_held_events_max.load(), k_page);
}

TEST(binary_subscription, resubscribing_from_the_last_position_after_a_disconnect_loses_nothing) {
  node_server server;
  auto writer = server.connect();
  ledger appended;
  std::uint64_t ids = 1;
  for (int i = 0; i < 30; ++i) append(*writer, appended, "r-" + std::to_string(i % 5), 3, ids);

  std::map<std::string, std::uint64_t> next;
  std::vector<actors::all_position> position;
  {
    auto first = server.connect();
    auto sub = client::subscription::open(*first, params(), 16);
    ASSERT_TRUE(sub) << sub.err().message;
    read_in_order(**sub, 41, next);  // stops inside a batch
    position = (*sub)->position();
    // The client goes away without unsubscribing.
  }
  for (int i = 0; i < 20; ++i) append(*writer, appended, "r-" + std::to_string(i % 7), 2, ids);

  auto second = server.connect();
  auto p = params();
  p.from.what = actors::subscription_start::kind::position;
  p.from.positions = position;
  auto sub = client::subscription::open(*second, p, 16);
  ASSERT_TRUE(sub) << sub.err().message;
  read_in_order(**sub, appended.total() - 41, next);
  EXPECT_EQ(next, appended.counts());
}

TEST(binary_subscription, next_view_keeps_position_exact_after_every_event) {
  node_server server;
  auto writer = server.connect();
  ledger appended;
  std::uint64_t ids = 1;
  // Batches of 3 events: positions inside a record (index 1, 2) and at its end.
  for (int i = 0; i < 20; ++i) append(*writer, appended, "pv-" + std::to_string(i % 6), 3, ids);
  const std::size_t total = appended.total();

  // Window 16: many batches, so position() is checked inside and at the end
  // of batches. next() and next_view() alternate on one subscription.
  auto reader = server.connect();
  auto sub = client::subscription::open(*reader, params(), 16);
  ASSERT_TRUE(sub) << sub.err().message;
  std::vector<std::pair<std::string, std::uint64_t>> order;  // (stream, version)
  std::vector<std::vector<actors::all_position>> after;      // position() after each
  std::map<std::string, std::uint64_t> next;
  for (std::size_t i = 0; i < total; ++i) {
    std::string stream;
    std::uint64_t version = 0;
    if (i % 2 == 0) {
      auto e = (*sub)->next_view(30s);
      ASSERT_TRUE(e) << e.err().message;
      ASSERT_NE(*e, nullptr) << "no event within 30 s after " << i;
      stream = std::string((*e)->stream);
      version = (*e)->event.version.value();
      // The views are readable: the data names the event's id ({"n":<id>}).
      const std::string data((*e)->event.data);
      ASSERT_EQ(data.rfind("{\"n\":", 0), 0u) << data;
      EXPECT_EQ((*e)->event.id, make_event_id(std::stoull(data.substr(5)))) << data;
    } else {
      auto e = (*sub)->next(30s);
      ASSERT_TRUE(e) << e.err().message;
      ASSERT_TRUE(*e) << "no event within 30 s after " << i;
      stream = (*e)->stream;
      version = (*e)->version.value();
      EXPECT_EQ((*e)->after, (*sub)->position()) << "next()'s copy is position()";
    }
    ASSERT_EQ(version, next[stream]) << stream << ": gap or duplicate";
    ++next[stream];
    order.emplace_back(stream, version);
    after.push_back((*sub)->position());
  }
  EXPECT_EQ(next, appended.counts());

  // A subscription from the position after event i starts with event i + 1,
  // for every i (inside a batch of the subscription, at its end, inside and
  // at the end of an append record).
  auto resumer = server.connect();
  for (std::size_t i = 0; i + 1 < total; ++i) {
    auto p = params();
    p.from.what = actors::subscription_start::kind::position;
    p.from.positions = after[i];
    auto again = client::subscription::open(*resumer, p, 4);
    ASSERT_TRUE(again) << again.err().message;
    EXPECT_EQ((*again)->position(), after[i]);
    auto e = (*again)->next_view(30s);
    ASSERT_TRUE(e) << e.err().message;
    ASSERT_NE(*e, nullptr) << "nothing after event " << i;
    EXPECT_EQ(std::string((*e)->stream), order[i + 1].first) << "after event " << i;
    EXPECT_EQ((*e)->event.version.value(), order[i + 1].second) << "after event " << i;
  }
  // After the last event: nothing more.
  auto p = params();
  p.from.what = actors::subscription_start::kind::position;
  p.from.positions = after.back();
  auto at_end = client::subscription::open(*resumer, p, 4);
  ASSERT_TRUE(at_end) << at_end.err().message;
  auto none = (*at_end)->next_view(200ms);
  ASSERT_TRUE(none) << none.err().message;
  EXPECT_EQ(*none, nullptr);
}

TEST(binary_subscription, from_the_end_a_version_and_a_filter) {
  node_server server;
  auto c = server.connect();
  ledger appended;
  std::uint64_t ids = 1;
  append(*c, appended, "v-1", 10, ids, "a");

  auto end = params();
  end.from.what = actors::subscription_start::kind::end;
  auto at_end = client::subscription::open(*c, end, 10);
  ASSERT_TRUE(at_end);

  auto v = params(actors::subscription_target::kind::stream, "v-1");
  v.from.what = actors::subscription_start::kind::version;
  v.from.version = stream_version{8};
  auto from_version = client::subscription::open(*c, v, 10);
  ASSERT_TRUE(from_version);

  auto f = params();
  f.filter = "type = 'b' and data.n >= 12";
  auto filtered = client::subscription::open(*c, f, 10);
  ASSERT_TRUE(filtered) << filtered.err().message;

  append(*c, appended, "v-1", 5, ids, "b");  // versions 10..14, data.n 11..15

  for (std::uint64_t want = 10; want < 15; ++want) {
    auto e = (*at_end)->next(10s);
    ASSERT_TRUE(e && *e);
    EXPECT_EQ((*e)->version.value(), want);
  }
  for (std::uint64_t want = 8; want < 15; ++want) {
    auto e = (*from_version)->next(10s);
    ASSERT_TRUE(e && *e);
    EXPECT_EQ((*e)->version.value(), want);
  }
  for (std::uint64_t want = 11; want < 15; ++want) {
    auto e = (*filtered)->next(10s);
    ASSERT_TRUE(e && *e);
    EXPECT_EQ((*e)->version.value(), want) << (*e)->data;
    EXPECT_EQ((*e)->type, "b");
  }
}

TEST(binary_subscription, bad_requests_are_typed_errors) {
  node_server server;
  auto c = server.connect();
  auto f = params();
  f.filter = "type = ";
  auto bad_filter = client::subscription::open(*c, f, 10);
  ASSERT_FALSE(bad_filter);
  EXPECT_EQ(bad_filter.err().code, errc::query_syntax);

  auto t = params();
  t.from.what = actors::subscription_start::kind::position;
  t.from.positions.resize(3);  // the node has 8 partitions
  auto bad_position = client::subscription::open(*c, t, 10);
  ASSERT_FALSE(bad_position);
  EXPECT_EQ(bad_position.err().code, errc::invalid_argument);

  auto s = params(actors::subscription_target::kind::stream, "");
  auto bad_stream = client::subscription::open(*c, s, 10);
  ASSERT_FALSE(bad_stream);
  EXPECT_EQ(bad_stream.err().code, errc::invalid_stream_id);
  EXPECT_TRUE(c->ping().ok());  // the connection goes on
}

// The raw protocol: subscribe with `credits`, on request id `id`.
void send_subscribe(raw_peer& peer, std::uint64_t id, std::uint32_t credits) {
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<wire::Request>();
  request.setId(id);
  net::wire_codec::subscribe_params p;
  p.credits = credits;
  net::wire_codec::encode_subscribe(request.initSubscribe(), p);
  peer.send(message);
}

void send_grant(raw_peer& peer, std::uint64_t id, std::uint64_t subscription,
                std::uint32_t credits) {
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<wire::Request>();
  request.setId(id);
  auto grant = request.initGrantCredits();
  grant.setSubscription(subscription);
  grant.setCredits(credits);
  peer.send(message);
}

TEST(binary_subscription, a_client_that_reads_nothing_keeps_server_memory_bounded) {
  node_server server;
  raw_peer peer(server.port());
  peer.handshake();
  send_subscribe(peer, 7, 1'000'000);  // credits are not the limit here
  auto subscribed = peer.receive();
  ASSERT_TRUE(subscribed);
  ASSERT_EQ(subscribed->get().which(), wire::Response::SUBSCRIBED);

  // 100k events of ~600 bytes (60 MB) while the client reads nothing.
  auto writer = server.connect();
  constexpr std::size_t k_events = 100'000;
  const std::string data = R"({"payload":")" + std::string(580, 'x') + R"("})";
  for (std::size_t i = 0; i < k_events / 500; ++i) {
    std::vector<engine::event_input> batch;
    for (std::size_t j = 0; j < 500; ++j) {
      batch.push_back(make_event(i * 500 + j + 1, "big", data));
    }
    auto r = writer->append(
        {"slow-" + std::to_string(i % 10), expected_version::any(), std::move(batch)});
    ASSERT_TRUE(r) << r.err().message;
  }
  // The node read only what the socket took, a page at a time: far from
  // everything, never more than one page held.
  const auto delivered = server.metrics().subscription_events.load();
  std::printf(
      "client reading nothing: %llu of %zu events pushed (socket buffers), at most %llu "
      "held by the subscription\n",
      static_cast<unsigned long long>(delivered), k_events,
      static_cast<unsigned long long>(server.metrics().subscription_held_events_max.load()));
  EXPECT_LT(delivered, k_events / 2) << "the server kept reading for a client that does not read";
  EXPECT_LE(server.metrics().subscription_held_events_max.load(), k_page);
  EXPECT_LE(server.metrics().subscription_held_events.load(), k_page);

  // Reading now: every event arrives, once, in order.
  std::map<std::string, std::uint64_t> next;
  std::size_t got = 0;
  while (got < k_events) {
    auto frame = peer.receive(30s);
    ASSERT_TRUE(frame) << "after " << got << " events";
    auto r = frame->get();
    ASSERT_EQ(r.which(), wire::Response::SUBSCRIPTION_EVENTS);
    EXPECT_EQ(r.getId(), 7u);
    for (auto e : r.getSubscriptionEvents().getEvents()) {
      const std::string stream = e.getStream();
      ASSERT_EQ(e.getEvent().getVersion(), next[stream]) << stream;
      ++next[stream];
      ++got;
    }
  }
  EXPECT_EQ(got, k_events);
  EXPECT_LE(server.metrics().subscription_held_events_max.load(), k_page);
}

TEST(binary_subscription, a_slow_granter_gets_no_more_than_it_granted) {
  node_server server;
  auto writer = server.connect();
  ledger appended;
  std::uint64_t ids = 1;
  for (int i = 0; i < 50; ++i) append(*writer, appended, "g-" + std::to_string(i % 3), 10, ids);

  raw_peer peer(server.port());
  peer.handshake();
  send_subscribe(peer, 3, 4);
  ASSERT_EQ(peer.receive()->get().which(), wire::Response::SUBSCRIBED);
  std::uint64_t granted = 4, got = 0;
  std::uint64_t request_id = 100;
  while (got < 500) {
    auto frame = peer.receive(30s);
    ASSERT_TRUE(frame);
    auto r = frame->get();
    ASSERT_EQ(r.which(), wire::Response::SUBSCRIPTION_EVENTS);
    got += r.getSubscriptionEvents().getEvents().size();
    ASSERT_LE(got, granted) << "more events than credits";
    if (got == granted) {
      send_grant(peer, ++request_id, 3, 7);
      granted += 7;
    }
  }
  EXPECT_LE(server.metrics().subscription_held_events_max.load(), 7u);

  // Unsubscribe: subscriptionEnded without an error, on the subscription's id.
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<wire::Request>();
  request.setId(++request_id);
  request.initUnsubscribe().setSubscription(3);
  peer.send(message);
  while (true) {
    auto frame = peer.receive(10s);
    ASSERT_TRUE(frame);
    auto r = frame->get();
    if (r.which() == wire::Response::SUBSCRIPTION_EVENTS) continue;
    ASSERT_EQ(r.which(), wire::Response::SUBSCRIPTION_ENDED);
    EXPECT_EQ(r.getId(), 3u);
    EXPECT_FALSE(r.getSubscriptionEnded().getFailed());
    break;
  }
  EXPECT_TRUE(eventually([&] { return server.metrics().subscriptions_open.load() == 0; }));
}

}  // namespace
}  // namespace annal::testing
