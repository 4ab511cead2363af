// GET /subscribe (server-sent events) over a real node: catch-up then live
// with concurrent appends, a reconnect with Last-Event-ID, typed errors
// before the stream starts, heartbeats, and a reader that stops reading.
#include "net/http_subscribe.hpp"

#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "actors/node.hpp"
#include "net/http_server.hpp"
#include "net/read_all_token.hpp"
#include "tests/support/await_reply.hpp"
#include "tests/support/event_factory.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/sse_client.hpp"
#include "tests/support/temp_dir.hpp"

namespace annal::testing {
namespace {

using engine::expected_version;
using namespace std::chrono_literals;

constexpr std::uint32_t k_partitions = 8;

class http_subscribe_test : public ::testing::Test {
 protected:
  void SetUp() override {
    actors::node_options o;
    o.data_dir = dir_.file("data");
    o.partition_count = k_partitions;
    o.fsync = engine::fsync_mode::none;
    auto started = actors::node::start(std::move(o));
    ASSERT_TRUE(started) << started.err().message;
    node_ = std::move(started).value();
    net::http_server_options options;
    options.sse_heartbeat = 200ms;
    server_ = std::make_unique<net::http_server>(io_, node_->handler(), node_->metrics(), options);
    auto bound = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(bound) << bound.err().message;
    endpoint_ = *bound;
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  void TearDown() override {
    node_->stop();
    server_->stop();
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
    server_.reset();
  }

  // Appends `n` events to `stream`; counts them in appended_.
  void append(const std::string& stream, std::size_t n, const std::string& data = "{}") {
    std::vector<engine::event_input> events;
    for (std::size_t i = 0; i < n; ++i) events.push_back(make_event(++ids_, "t", data));
    auto r = await_reply<actors::append_reply>([&](auto reply) {
      node_->handler().append({stream, expected_version::any(), std::move(events)},
                              std::move(reply));
    });
    ASSERT_TRUE(r) << r.err().message;
    std::lock_guard lock(mu_);
    appended_[stream] = r->last_version.value() + 1;
  }

  std::map<std::string, std::uint64_t> appended() {
    std::lock_guard lock(mu_);
    return appended_;
  }

  // Reads `n` events, each the next version of its stream; `last_id` gets
  // the id of the last one.
  static void read_in_order(sse_client& c, std::size_t n,
                            std::map<std::string, std::uint64_t>& next,
                            std::string* last_id = nullptr) {
    for (std::size_t i = 0; i < n; ++i) {
      auto e = c.next(30s);
      ASSERT_TRUE(e) << "no event after " << i << " of " << n;
      ASSERT_EQ(e->event, "t");
      auto json = nlohmann::json::parse(e->data);
      const auto stream = json["stream"].get<std::string>();
      ASSERT_EQ(json["version"].get<std::uint64_t>(), next[stream]) << stream;
      ASSERT_FALSE(e->id.empty());
      ++next[stream];
      if (last_id) *last_id = e->id;
    }
  }

  static std::uint64_t total(const std::map<std::string, std::uint64_t>& counts,
                             std::string_view prefix = {}) {
    std::uint64_t n = 0;
    for (const auto& [s, c] : counts) {
      if (s.starts_with(prefix)) n += c;
    }
    return n;
  }

  temp_dir dir_;
  std::unique_ptr<actors::node> node_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<net::http_server> server_;
  asio::ip::tcp::endpoint endpoint_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::map<std::string, std::uint64_t> appended_;  // guarded by mu_
  std::uint64_t ids_ = 0;                          // the appending thread's
};

TEST_F(http_subscribe_test, catch_up_then_live_with_concurrent_appends_delivers_each_event_once) {
  for (int i = 0; i < 12; ++i) append((i % 2 ? "shop-" : "user-") + std::to_string(i), 15);

  sse_client all(endpoint_, "/subscribe");
  ASSERT_EQ(all.status(), 200);
  EXPECT_EQ(all.header("content-type"), "text/event-stream; charset=utf-8");
  sse_client shops(endpoint_, "/subscribe?category=shop&from=start");
  sse_client one(endpoint_, "/subscribe?stream=user-4&from=0");

  std::thread writer([&] {
    for (int round = 0; round < 30; ++round) {
      for (int i = round % 3; i < 12; i += 3) {
        append((i % 2 ? "shop-" : "user-") + std::to_string(i), 1 + round % 2);
      }
    }
  });
  std::map<std::string, std::uint64_t> next_all;
  read_in_order(all, 150, next_all);
  writer.join();
  const auto counts = appended();
  read_in_order(all, total(counts) - 150, next_all);
  EXPECT_EQ(next_all, counts);

  std::map<std::string, std::uint64_t> next_shops;
  read_in_order(shops, total(counts, "shop-"), next_shops);
  for (const auto& [s, n] : next_shops) EXPECT_EQ(n, counts.at(s)) << s;

  std::map<std::string, std::uint64_t> next_one;
  read_in_order(one, counts.at("user-4"), next_one);
  EXPECT_EQ(next_one.size(), 1u);

  // Live, and heartbeats while idle.
  append("shop-1", 1);
  auto live = all.next(10s);
  ASSERT_TRUE(live);
  EXPECT_EQ(nlohmann::json::parse(live->data)["stream"], "shop-1");
  const auto comments = one.comments();
  EXPECT_TRUE(eventually([&] {
    one.next(50ms);
    return one.comments() > comments + 1;
  }));
}

TEST_F(http_subscribe_test, a_reconnect_with_last_event_id_resumes_without_gap_or_duplicate) {
  for (int i = 0; i < 20; ++i) append("r-" + std::to_string(i % 4), 3);
  std::map<std::string, std::uint64_t> next;
  std::string last_id;
  {
    sse_client c(endpoint_, "/subscribe");
    ASSERT_EQ(c.status(), 200);
    read_in_order(c, 25, next, &last_id);
  }
  for (int i = 0; i < 10; ++i) append("r-" + std::to_string(i % 5), 2);
  // The id wins over `from`.
  sse_client again(endpoint_, "/subscribe?from=end", last_id);
  ASSERT_EQ(again.status(), 200);
  read_in_order(again, total(appended()) - 25, next);
  EXPECT_EQ(next, appended());
  EXPECT_FALSE(again.next(300ms)) << "nothing more";

  // Without events the stream's first id is its start: from=end, then a
  // reconnect with that id gets what was appended in between.
  sse_client at_end(endpoint_, "/subscribe?from=end");
  ASSERT_TRUE(eventually([&] {
    at_end.next(20ms);
    return !at_end.last_id().empty();
  }));
  const auto start_id = at_end.last_id();
  at_end.close();
  append("late", 2);
  sse_client resumed(endpoint_, "/subscribe?from=end", start_id);
  auto e = resumed.next(10s);
  ASSERT_TRUE(e);
  EXPECT_EQ(nlohmann::json::parse(e->data)["stream"], "late");
}

TEST_F(http_subscribe_test, bad_parameters_are_json_errors_before_the_stream) {
  struct bad {
    std::string target;
    int status;
    std::string code;
  };
  const std::vector<bad> cases = {
      {"/subscribe?from=not-a-token", 400, "invalid_argument"},
      {"/subscribe?stream=a&category=b", 400, "invalid_argument"},
      {"/subscribe?stream=", 400, "invalid_stream_id"},
      {"/subscribe?filter=type%20%3D", 400, "query_syntax"},
      {"/subscribe?dataEncoding=hex", 400, "invalid_argument"},
      {"/subscribe?filter=type%20%3D%20'x'%20%7C%20count()", 400, "invalid_argument"},
  };
  for (const auto& c : cases) {
    sse_client client(endpoint_, c.target);
    EXPECT_EQ(client.status(), c.status) << c.target;
    auto body = nlohmann::json::parse(client.read_body(), nullptr, false);
    ASSERT_FALSE(body.is_discarded()) << c.target;
    EXPECT_EQ(body["error"]["code"], c.code) << c.target << ": " << body.dump();
  }
  // A token of a store with another partition count: refused at the start.
  http_client plain(endpoint_);
  append("x", 1);
  actors::read_all_request r;
  auto page = await_reply<actors::read_all_page>(
      [&](auto reply) { node_->handler().read_all(r, std::move(reply)); });
  ASSERT_TRUE(page);
  auto positions = page->next;
  positions.pop_back();
  sse_client wrong(endpoint_, "/subscribe?from=" + net::encode_read_all_token(positions));
  EXPECT_EQ(wrong.status(), 400);
  auto body = nlohmann::json::parse(wrong.read_body());
  EXPECT_EQ(body["error"]["code"], "invalid_argument");
  auto method = plain.post("/subscribe", "");
  EXPECT_EQ(method.status, 405);
}

TEST_F(http_subscribe_test, a_reader_that_stops_reading_holds_the_server_to_one_page) {
  sse_client c(endpoint_, "/subscribe?filter=type%20%3D%20't'");
  ASSERT_EQ(c.status(), 200);
  // Not reading while 40k events of ~600 bytes (24 MB) go in: far more than
  // one page (subscription_options::page_events) and the socket buffers.
  const std::string data = R"({"payload":")" + std::string(580, 'x') + R"("})";
  for (int i = 0; i < 80; ++i) append("slow-" + std::to_string(i % 4), 500, data);
  const auto delivered = node_->metrics().subscription_events.load();
  EXPECT_LT(delivered, 40000u) << "the server kept reading for a reader that does not read";
  EXPECT_LE(node_->metrics().subscription_held_events_max.load(),
            actors::subscription_options{}.page_events);
  std::map<std::string, std::uint64_t> next;
  read_in_order(c, 40000, next);
  EXPECT_EQ(next, appended());
}

TEST(sse_event, data_lines_split_at_every_line_break) {
  EXPECT_EQ(net::sse_event("I", "T", "{}"), "id: I\nevent: T\ndata: {}\n\n");
  EXPECT_EQ(net::sse_event("", "T", "a\nb\r\nc\rd"),
            "event: T\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
  EXPECT_EQ(net::sse_event("", "T", "a\n"), "event: T\ndata: a\ndata: \n\n");
}

}  // namespace
}  // namespace annal::testing
