// Every endpoint of the HTTP API over a real socket, against a real store.

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "engine/partitioning.hpp"
#include "net/json_codec.hpp"
#include "tests/net/http_fixture.hpp"

namespace annal::testing {
namespace {

using nlohmann::json;

class http_api_test : public http_fixture {};

TEST_F(http_api_test, health_names_the_node) {
  const auto reply = client_->get("/health");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.header("content-type"), "application/json");
  EXPECT_EQ(body(reply), (json{{"status", "ok"}, {"node", "test-node"}}));
}

TEST_F(http_api_test, append_then_read_forward) {
  const auto appended = append_numbers("orders-1", 0, 3, "\"no_stream\"");
  ASSERT_EQ(appended.status, 201) << appended.body;
  const auto a = body(appended);
  EXPECT_EQ(a["firstVersion"], 0);
  EXPECT_EQ(a["lastVersion"], 2);
  EXPECT_TRUE(a["position"].is_number_unsigned());
  EXPECT_EQ(a["partition"], handler_->store().partition_for("orders-1").value());
  EXPECT_EQ(a["duplicate"], false);

  const auto read = client_->get("/streams/orders-1");
  ASSERT_EQ(read.status, 200) << read.body;
  const auto page = body(read);
  ASSERT_EQ(page["events"].size(), 3u);
  std::int64_t last_timestamp = 0;
  for (int i = 0; i < 3; ++i) {
    const auto& e = page["events"][i];
    EXPECT_EQ(e["version"], i);
    EXPECT_EQ(e["type"], "t");
    EXPECT_EQ(e["data"], (json{{"n", i}}));
    EXPECT_TRUE(e["metadata"].is_null());
    EXPECT_FALSE(e.contains("dataEncoding"));
    EXPECT_TRUE(net::json::parse_uuid(e["id"].get<std::string>()).has_value()) << e["id"];
    EXPECT_GE(e["timestamp"].get<std::int64_t>(), last_timestamp);
    EXPECT_GT(e["timestamp"].get<std::int64_t>(), 0);
    last_timestamp = e["timestamp"].get<std::int64_t>();
  }
  EXPECT_TRUE(page["next"].is_null());
  EXPECT_EQ(page["lastVersion"], 2);
}

TEST_F(http_api_test, data_and_metadata_json_values_round_trip) {
  const std::string request = R"({"events":[
      {"type":"placed","data":{"items":[1,2.5,"x"],"ok":true,"nested":{"k":null}},
       "metadata":{"trace":"abc"}},
      {"type":"scalar","data":42,"metadata":"just a string"}]})";
  ASSERT_EQ(client_->post("/streams/values", request).status, 201);
  const auto page = body(client_->get("/streams/values"));
  ASSERT_EQ(page["events"].size(), 2u);
  EXPECT_EQ(page["events"][0]["data"], json::parse(R"({"items":[1,2.5,"x"],"ok":true,"nested":{"k":null}})"));
  EXPECT_EQ(page["events"][0]["metadata"], (json{{"trace", "abc"}}));
  EXPECT_EQ(page["events"][0]["type"], "placed");
  EXPECT_EQ(page["events"][1]["data"], 42);
  EXPECT_EQ(page["events"][1]["metadata"], "just a string");
}

TEST_F(http_api_test, expected_version_cases) {
  // stream_exists on a stream that does not exist: 409 with currentVersion null.
  auto r = append_numbers("ev", 0, 1, "\"stream_exists\"");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(error_code(r), "wrong_expected_version");
  EXPECT_TRUE(body(r)["error"].contains("currentVersion"));
  EXPECT_TRUE(body(r)["error"]["currentVersion"].is_null());
  // An exact version on a stream that does not exist.
  r = append_numbers("ev", 0, 1, "0");
  EXPECT_EQ(r.status, 409);
  EXPECT_TRUE(body(r)["error"]["currentVersion"].is_null());

  ASSERT_EQ(append_numbers("ev", 0, 2, "\"no_stream\"").status, 201);  // versions 0..1
  r = append_numbers("ev", 2, 1, "\"no_stream\"");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(body(r)["error"]["currentVersion"], 1);

  r = append_numbers("ev", 2, 1, "1");  // exact, as a number
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(body(r)["firstVersion"], 2);
  r = append_numbers("ev", 3, 1, "\"2\"");  // exact, as a string
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(body(r)["firstVersion"], 3);

  r = append_numbers("ev", 9, 1, "1");  // stale
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(error_code(r), "wrong_expected_version");
  EXPECT_EQ(body(r)["error"]["currentVersion"], 3);

  r = append_numbers("ev", 4, 1, "\"stream_exists\"");
  ASSERT_EQ(r.status, 201);
  EXPECT_EQ(body(r)["firstVersion"], 4);
  r = append_numbers("ev", 5, 1, "\"any\"");
  ASSERT_EQ(r.status, 201);
  EXPECT_EQ(body(r)["firstVersion"], 5);

  // None of the rejected appends left anything behind.
  const auto page = body(client_->get("/streams/ev?limit=20"));
  ASSERT_EQ(page["events"].size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(page["events"][i]["data"]["n"], i);
}

TEST_F(http_api_test, idempotent_retry_with_explicit_ids_returns_the_original_result) {
  const std::string request = R"({"expectedVersion":"no_stream","events":[
      {"id":"6f1c2a9e-0b7d-4c1e-9a55-3e2f1d0c4b8a","type":"a","data":1},
      {"id":"6F1C2A9E-0B7D-4C1E-9A55-3E2F1D0C4B8B","type":"b","data":2}]})";
  const auto first = client_->post("/streams/idem", request);
  ASSERT_EQ(first.status, 201) << first.body;
  const auto retry = client_->post("/streams/idem", request);
  ASSERT_EQ(retry.status, 201) << retry.body;
  auto a = body(first);
  auto b = body(retry);
  EXPECT_EQ(a["duplicate"], false);
  EXPECT_EQ(b["duplicate"], true);
  for (const char* field : {"firstVersion", "lastVersion", "position", "partition"}) {
    EXPECT_EQ(a[field], b[field]) << field;
  }
  const auto page = body(client_->get("/streams/idem"));
  ASSERT_EQ(page["events"].size(), 2u);
  EXPECT_EQ(page["events"][0]["id"], "6f1c2a9e-0b7d-4c1e-9a55-3e2f1d0c4b8a");
  EXPECT_EQ(page["events"][1]["id"], "6f1c2a9e-0b7d-4c1e-9a55-3e2f1d0c4b8b");
}

TEST_F(http_api_test, paging_forward_follows_next) {
  ASSERT_EQ(append_numbers("pages", 0, 12).status, 201);
  std::vector<int> seen;
  std::string target = "/streams/pages";  // default page size: 5
  int pages = 0;
  while (true) {
    const auto reply = client_->get(target);
    ASSERT_EQ(reply.status, 200) << reply.body;
    const auto page = body(reply);
    for (const auto& e : page["events"]) seen.push_back(e["data"]["n"].get<int>());
    ++pages;
    if (page["next"].is_null()) break;
    target = "/streams/pages?from=" + std::to_string(page["next"].get<int>());
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 12u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(seen[i], i);

  // A limit over the maximum (20) is clamped.
  ASSERT_EQ(append_numbers("pages", 12, 20).status, 201);
  const auto big = body(client_->get("/streams/pages?limit=1000&direction=forward"));
  EXPECT_EQ(big["events"].size(), 20u);
  EXPECT_EQ(big["next"], 20);
}

TEST_F(http_api_test, paging_backward_from_the_end_follows_next) {
  ASSERT_EQ(append_numbers("back", 0, 7).status, 201);
  std::vector<int> seen;
  std::string target = "/streams/back?direction=backward&limit=3";
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 10);
    const auto reply = client_->get(target);
    ASSERT_EQ(reply.status, 200) << reply.body;
    const auto page = body(reply);
    for (const auto& e : page["events"]) seen.push_back(e["version"].get<int>());
    if (page["next"].is_null()) break;
    target = "/streams/back?direction=backward&limit=3&from=" +
             std::to_string(page["next"].get<int>());
  }
  EXPECT_EQ(seen, (std::vector<int>{6, 5, 4, 3, 2, 1, 0}));

  // Backward from an explicit version.
  const auto page = body(client_->get("/streams/back?direction=backward&from=2"));
  ASSERT_EQ(page["events"].size(), 3u);
  EXPECT_EQ(page["events"][0]["version"], 2);
  EXPECT_EQ(page["events"][2]["version"], 0);
  EXPECT_TRUE(page["next"].is_null());
}

TEST_F(http_api_test, non_json_data_round_trips_as_base64) {
  const std::string raw("\x00\xff\x01 not json", 12);
  const std::string meta = "plain text";
  const json request = {{"events",
                         {{{"type", "bin"},
                           {"data", net::json::base64_encode(raw)},
                           {"dataEncoding", "base64"},
                           {"metadata", net::json::base64_encode(meta)},
                           {"metadataEncoding", "base64"}}}}};
  ASSERT_EQ(client_->post("/streams/bin", request.dump()).status, 201);

  const auto e = body(client_->get("/streams/bin"))["events"][0];
  EXPECT_EQ(e["dataEncoding"], "base64");
  EXPECT_EQ(net::json::base64_decode(e["data"].get<std::string>()), raw);
  EXPECT_EQ(e["metadataEncoding"], "base64");
  EXPECT_EQ(net::json::base64_decode(e["metadata"].get<std::string>()), meta);

  // Stored bytes that are JSON come back as JSON, unless base64 is asked for.
  const json as_json = {{"events",
                         {{{"type", "j"},
                           {"data", net::json::base64_encode(R"({"a":1})")},
                           {"dataEncoding", "base64"}}}}};
  ASSERT_EQ(client_->post("/streams/bin", as_json.dump()).status, 201);
  const auto page = body(client_->get("/streams/bin?from=1"));
  EXPECT_EQ(page["events"][0]["data"], (json{{"a", 1}}));
  const auto forced = body(client_->get("/streams/bin?from=1&dataEncoding=base64"));
  EXPECT_EQ(forced["events"][0]["dataEncoding"], "base64");
  EXPECT_EQ(net::json::base64_decode(forced["events"][0]["data"].get<std::string>()),
            R"({"a":1})");
}

TEST_F(http_api_test, head_returns_the_last_event) {
  ASSERT_EQ(append_numbers("headed", 0, 4).status, 201);
  const auto reply = client_->get("/streams/headed/head");
  ASSERT_EQ(reply.status, 200) << reply.body;
  const auto e = body(reply);
  EXPECT_EQ(e["version"], 3);
  EXPECT_EQ(e["data"]["n"], 3);

  const auto missing = client_->get("/streams/nobody/head");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(error_code(missing), "stream_not_found");
  const auto read_missing = client_->get("/streams/nobody");
  EXPECT_EQ(read_missing.status, 404);
  EXPECT_EQ(error_code(read_missing), "stream_not_found");
}

TEST_F(http_api_test, metadata_limits_what_reads_return) {
  ASSERT_EQ(append_numbers("meta", 0, 5).status, 201);
  auto put = client_->put("/streams/meta/metadata", R"({"maxCount":2,"maxAge":3600})");
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_TRUE(body(put)["position"].is_number_unsigned());
  EXPECT_EQ(body(put)["partition"], handler_->store().partition_for("meta").value());

  const auto got = client_->get("/streams/meta/metadata");
  ASSERT_EQ(got.status, 200) << got.body;
  const auto m = body(got);
  EXPECT_EQ(m["maxCount"], 2);
  EXPECT_EQ(m["maxAge"], 3600);
  EXPECT_EQ(m["truncateBefore"], 0);
  EXPECT_EQ(m["lastVersion"], 4);
  EXPECT_EQ(m["deleted"], false);
  EXPECT_EQ(m["tombstoned"], false);

  const auto page = body(client_->get("/streams/meta"));
  ASSERT_EQ(page["events"].size(), 2u);
  EXPECT_EQ(page["events"][0]["version"], 3);

  ASSERT_EQ(client_->put("/streams/meta/metadata", R"({"truncateBefore":4})").status, 200);
  const auto truncated = body(client_->get("/streams/meta"));
  ASSERT_EQ(truncated["events"].size(), 1u);
  EXPECT_EQ(truncated["events"][0]["version"], 4);
  EXPECT_EQ(body(client_->get("/streams/meta/metadata"))["maxCount"], 0);
}

TEST_F(http_api_test, soft_delete_then_write_again_continues_versions) {
  ASSERT_EQ(append_numbers("soft", 0, 3).status, 201);
  const auto wrong = client_->del("/streams/soft?expectedVersion=1");
  EXPECT_EQ(wrong.status, 409);
  EXPECT_EQ(body(wrong)["error"]["currentVersion"], 2);

  const auto deleted = client_->del("/streams/soft?expectedVersion=2");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_TRUE(body(deleted)["position"].is_number_unsigned());
  const auto read = client_->get("/streams/soft");
  EXPECT_EQ(read.status, 404);
  EXPECT_EQ(error_code(read), "stream_not_found");
  EXPECT_EQ(body(client_->get("/streams/soft/metadata"))["deleted"], true);

  const auto again = append_numbers("soft", 3, 1);
  ASSERT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(body(again)["firstVersion"], 3);
  const auto page = body(client_->get("/streams/soft"));
  ASSERT_EQ(page["events"].size(), 1u);
  EXPECT_EQ(page["events"][0]["data"]["n"], 3);
}

TEST_F(http_api_test, tombstoned_stream_is_gone_for_good) {
  ASSERT_EQ(append_numbers("hard", 0, 2).status, 201);
  const auto deleted = client_->del("/streams/hard?tombstone=true");
  ASSERT_EQ(deleted.status, 200) << deleted.body;

  const auto read = client_->get("/streams/hard");
  EXPECT_EQ(read.status, 410);
  EXPECT_EQ(error_code(read), "stream_deleted");
  const auto append = append_numbers("hard", 2, 1);
  EXPECT_EQ(append.status, 410);
  EXPECT_EQ(error_code(append), "stream_deleted");
  EXPECT_EQ(body(client_->get("/streams/hard/metadata"))["tombstoned"], true);
}

TEST_F(http_api_test, snapshot_put_then_get) {
  ASSERT_EQ(append_numbers("snap", 0, 3).status, 201);
  const auto none = client_->get("/streams/snap/snapshot");
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(error_code(none), "not_found");

  const auto put = client_->put("/streams/snap/snapshot", R"({"version":1,"data":{"sum":1}})");
  ASSERT_EQ(put.status, 200) << put.body;
  const auto got = client_->get("/streams/snap/snapshot");
  ASSERT_EQ(got.status, 200) << got.body;
  const auto s = body(got);
  EXPECT_EQ(s["version"], 1);
  EXPECT_EQ(s["data"], (json{{"sum", 1}}));
  EXPECT_GT(s["timestamp"].get<std::int64_t>(), 0);

  const auto binary = json{{"version", 2},
                           {"data", net::json::base64_encode(std::string("\x01\x02", 2))},
                           {"dataEncoding", "base64"}};
  ASSERT_EQ(client_->put("/streams/snap/snapshot", binary.dump()).status, 200);
  const auto s2 = body(client_->get("/streams/snap/snapshot"));
  EXPECT_EQ(s2["version"], 2);
  EXPECT_EQ(s2["dataEncoding"], "base64");
  EXPECT_EQ(net::json::base64_decode(s2["data"].get<std::string>()), std::string("\x01\x02", 2));
}

TEST_F(http_api_test, stream_ids_in_the_path_are_percent_decoded) {
  ASSERT_EQ(append_numbers("a%2Fb%20c", 0, 1).status, 201);
  ASSERT_EQ(append_numbers("caf%C3%A9-1", 0, 2).status, 201);

  const auto page = body(client_->get("/streams/a%2fb%20c"));
  ASSERT_EQ(page["events"].size(), 1u);
  // The store holds the decoded ids.
  auto check = [&](const std::string& stream, std::uint64_t last) {
    auto p = handler_->store().get(handler_->store().partition_for(stream));
    ASSERT_TRUE(p.ok());
    auto info = (*p)->get_stream_info(stream);
    ASSERT_TRUE(info.ok());
    ASSERT_TRUE(info->last_version.has_value()) << stream;
    EXPECT_EQ(info->last_version->value(), last);
  };
  check("a/b c", 0);
  check("caf\xC3\xA9-1", 1);
}

// A request_handler that delivers every reply from its own thread, as the
// node's actors do.
class other_thread_handler final : public actors::request_handler {
 public:
  explicit other_thread_handler(actors::request_handler& inner) : inner_(inner) {
    worker_ = std::thread([this] { run(); });
  }
  ~other_thread_handler() override {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    worker_.join();
  }

  void append(actors::append_request r, actors::reply_fn<actors::append_reply> f) override {
    inner_.append(std::move(r), later(std::move(f)));
  }
  void read(actors::read_request r, actors::reply_fn<engine::read_page> f) override {
    inner_.read(std::move(r), later(std::move(f)));
  }
  void read_last(std::string s, actors::reply_fn<engine::read_page> f) override {
    inner_.read_last(std::move(s), later(std::move(f)));
  }
  void get_stream_info(std::string s, actors::reply_fn<engine::stream_info> f) override {
    inner_.get_stream_info(std::move(s), later(std::move(f)));
  }
  void set_metadata(std::string s, engine::stream_metadata m,
                    actors::reply_fn<actors::write_reply> f) override {
    inner_.set_metadata(std::move(s), m, later(std::move(f)));
  }
  void delete_stream(std::string s, engine::expected_version e, bool t,
                     actors::reply_fn<actors::write_reply> f) override {
    inner_.delete_stream(std::move(s), e, t, later(std::move(f)));
  }
  void put_snapshot(std::string s, stream_version v, std::string p,
                    actors::reply_fn<actors::write_reply> f) override {
    inner_.put_snapshot(std::move(s), v, std::move(p), later(std::move(f)));
  }
  void get_snapshot(std::string s,
                    actors::reply_fn<std::optional<engine::snapshot_read>> f) override {
    inner_.get_snapshot(std::move(s), later(std::move(f)));
  }
  void read_all(actors::read_all_request r, actors::reply_fn<actors::read_all_page> f) override {
    inner_.read_all(std::move(r), later(std::move(f)));
  }
  void stats(actors::reply_fn<std::vector<actors::partition_stats>> f) override {
    inner_.stats(later(std::move(f)));
  }

 private:
  template <class T>
  actors::reply_fn<T> later(actors::reply_fn<T> f) {
    return [this, f = std::move(f)](engine::result<T> r) mutable {
      auto shared = std::make_shared<engine::result<T>>(std::move(r));
      {
        std::lock_guard lock(mu_);
        queue_.push_back([f = std::move(f), shared]() mutable { f(std::move(*shared)); });
      }
      cv_.notify_one();
    };
  }

  void run() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return done_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto job = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  actors::request_handler& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool done_ = false;                        // guarded by mu_
  std::thread worker_;
};

TEST_F(http_api_test, replies_from_another_thread_with_concurrent_clients) {
  other_thread_handler deferred(*handler_);
  net::http_server server(io_, deferred, metrics_, test_options());
  auto bound = server.listen("127.0.0.1", 0);
  ASSERT_TRUE(bound.ok()) << bound.err().message;

  constexpr int k_clients = 4;
  constexpr int k_appends = 25;
  std::atomic<int> created{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < k_clients; ++c) {
    clients.emplace_back([&, c] {
      http_client client(*bound);
      for (int i = 0; i < k_appends; ++i) {
        const json request = {{"expectedVersion", i == 0 ? json("no_stream") : json(i - 1)},
                              {"events", {{{"type", "t"}, {"data", i}}}}};
        const auto reply = client.post("/streams/conc-" + std::to_string(c), request.dump());
        if (reply.status == 201) created.fetch_add(1);
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(created.load(), k_clients * k_appends);

  http_client client(*bound);
  for (int c = 0; c < k_clients; ++c) {
    const auto page = body(client.get("/streams/conc-" + std::to_string(c) + "?limit=20"));
    ASSERT_EQ(page["events"].size(), 20u);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(page["events"][i]["data"], i);
  }
  server.stop();
}

TEST_F(http_api_test, stop_is_idempotent_and_refuses_new_connections) {
  ASSERT_EQ(client_->get("/health").status, 200);
  server_->stop();
  server_->stop();
  // The open keep-alive connection gets 503 shutting_down and is closed.
  const auto reply = client_->get("/health");
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(error_code(reply), "shutting_down");
  EXPECT_FALSE(reply.keep_alive);
  EXPECT_EQ(reply.header("connection"), "close");
  // New connections are refused.
  http_client fresh(endpoint_, std::chrono::seconds(10));
  EXPECT_THROW(fresh.get("/health"), std::runtime_error);
  // listen() after stop() is refused.
  EXPECT_EQ(server_->listen("127.0.0.1", 0).err().code, engine::errc::shutting_down);
}

}  // namespace
}  // namespace annal::testing
