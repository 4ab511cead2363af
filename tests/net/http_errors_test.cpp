// Bad input to the HTTP API: each gets a typed error with the right status,
// the server keeps serving, and events acknowledged before are still there.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "engine/errors.hpp"
#include "net/http_api.hpp"
#include "tests/net/http_fixture.hpp"

namespace annal::testing {
namespace {

using nlohmann::json;

class http_errors_test : public http_fixture {
 protected:
  void SetUp() override {
    http_fixture::SetUp();
    ASSERT_EQ(append_numbers("acknowledged", 0, 3).status, 201);
  }

  // The reply has `status` and error `code`, with a message.
  void expect_error(const http_reply& reply, int status, const std::string& code) {
    EXPECT_EQ(reply.status, status) << reply.body;
    EXPECT_EQ(reply.header("content-type"), "application/json");
    EXPECT_EQ(error_code(reply), code);
    const auto doc = body(reply);
    ASSERT_TRUE(doc.contains("error"));
    EXPECT_TRUE(doc["error"]["message"].is_string());
    EXPECT_FALSE(doc["error"]["message"].get<std::string>().empty());
  }

  // The server still answers (on a fresh connection too) and the events
  // acknowledged in SetUp are intact.
  void expect_still_serving() {
    for (auto* client : {&*client_, &fresh_client()}) {
      const auto reply = client->get("/streams/acknowledged");
      ASSERT_EQ(reply.status, 200) << reply.body;
      const auto page = body(reply);
      ASSERT_EQ(page["events"].size(), 3u);
      for (int i = 0; i < 3; ++i) EXPECT_EQ(page["events"][i]["data"]["n"], i);
    }
  }

  http_client& fresh_client() {
    fresh_.emplace(endpoint_);
    return *fresh_;
  }

  std::optional<http_client> fresh_;
};

TEST_F(http_errors_test, invalid_json_is_malformed_request) {
  expect_error(client_->post("/streams/s", "{\"events\": [ {"), 400, "malformed_request");
  expect_error(client_->post("/streams/s", "not json at all"), 400, "malformed_request");
  expect_error(client_->post("/streams/s", ""), 400, "malformed_request");
  expect_error(client_->post("/streams/s", "[1,2]"), 400, "malformed_request");
  // Invalid UTF-8 inside a JSON string.
  expect_error(client_->post("/streams/s", "{\"events\":[{\"type\":\"\xff\"}]}"), 400,
               "malformed_request");
  expect_still_serving();
}

TEST_F(http_errors_test, wrong_field_types_are_malformed_request) {
  expect_error(client_->post("/streams/s", R"({"events":{"type":"t"}})"), 400,
               "malformed_request");
  expect_error(client_->post("/streams/s", R"({"events":[{"type":5}]})"), 400,
               "malformed_request");
  expect_error(client_->post("/streams/s", R"({"events":["t"]})"), 400, "malformed_request");
  expect_error(client_->post("/streams/s", R"({"expectedVersion":true,"events":[{"type":"t"}]})"),
               400, "malformed_request");
  expect_error(client_->post("/streams/s", R"({"events":[{"type":"t","id":7}]})"), 400,
               "malformed_request");
  expect_error(client_->put("/streams/s/metadata", R"({"maxCount":"ten"})"), 400,
               "malformed_request");
  expect_error(client_->put("/streams/s/snapshot", R"({"version":"1","data":1})"), 400,
               "malformed_request");
  expect_still_serving();
}

TEST_F(http_errors_test, missing_fields_are_malformed_request) {
  expect_error(client_->post("/streams/s", R"({"expectedVersion":"any"})"), 400,
               "malformed_request");
  expect_error(client_->post("/streams/s", R"({"events":[{"data":1}]})"), 400,
               "malformed_request");
  expect_error(client_->put("/streams/s/snapshot", R"({"data":1})"), 400, "malformed_request");
  expect_error(client_->put("/streams/s/snapshot", R"({"version":0})"), 400, "malformed_request");
  expect_still_serving();
}

TEST_F(http_errors_test, bad_values_are_invalid_input) {
  expect_error(client_->post("/streams/s", R"({"events":[]})"), 400, "invalid_event");
  expect_error(client_->post("/streams/s", R"({"events":[{"type":""}]})"), 400, "invalid_event");
  expect_error(client_->post("/streams/s", R"({"events":[{"type":"t","id":"not-a-uuid"}]})"), 400,
               "invalid_event");
  expect_error(client_->post("/streams/s", R"({"expectedVersion":"sometimes","events":[{"type":"t"}]})"),
               400, "invalid_argument");
  expect_error(client_->post("/streams/s", R"({"expectedVersion":-1,"events":[{"type":"t"}]})"),
               400, "invalid_argument");
  expect_error(client_->post("/streams/s",
                             R"({"events":[{"type":"t","data":"@@","dataEncoding":"base64"}]})"),
               400, "invalid_argument");
  expect_error(client_->get("/streams/acknowledged?limit=abc"), 400, "invalid_argument");
  expect_error(client_->get("/streams/acknowledged?limit=0"), 400, "invalid_argument");
  expect_error(client_->get("/streams/acknowledged?direction=sideways"), 400, "invalid_argument");
  expect_error(client_->get("/streams/acknowledged?from=-3"), 400, "invalid_argument");
  expect_error(client_->del("/streams/acknowledged?tombstone=maybe"), 400, "invalid_argument");
  expect_still_serving();
}

TEST_F(http_errors_test, body_over_the_limit_is_413) {
  const std::string big(64 * 1024 + 1, ' ');  // limit: 64 KiB
  const auto reply = client_->post("/streams/s", big);
  expect_error(reply, 413, "frame_too_large");
  // A body of exactly the limit is read (and then judged on its content).
  std::string at_limit = R"({"events":[{"type":"t","data":")";
  at_limit += std::string(64 * 1024 - at_limit.size() - 4, 'x');
  at_limit += R"("}]})";
  ASSERT_EQ(at_limit.size(), 64u * 1024);
  EXPECT_EQ(client_->post("/streams/s", at_limit).status, 201);
  expect_still_serving();
}

TEST_F(http_errors_test, batch_over_the_limit_is_413) {
  json events = json::array();
  for (int i = 0; i < 51; ++i) events.push_back({{"type", "t"}});  // limit: 50
  const auto reply = client_->post("/streams/s", json{{"events", events}}.dump());
  expect_error(reply, 413, "batch_too_large");
  EXPECT_EQ(client_->get("/streams/s").status, 404);  // nothing was written
  expect_still_serving();
}

TEST_F(http_errors_test, invalid_stream_ids_are_400) {
  expect_error(client_->post("/streams/%FF%FE", R"({"events":[{"type":"t"}]})"), 400,
               "invalid_stream_id");
  expect_error(client_->get("/streams/a%01b"), 400, "invalid_stream_id");
  expect_error(client_->get("/streams/bad%zzescape"), 400, "invalid_stream_id");
  expect_error(client_->get("/streams/trailing%2"), 400, "invalid_stream_id");
  expect_error(client_->get("/streams/" + std::string(257, 'a')), 400, "invalid_stream_id");
  expect_error(client_->get("/streams/"), 400, "invalid_stream_id");
  expect_error(client_->del("/streams/%C3%28?tombstone=true"), 400, "invalid_stream_id");
  // 256 bytes is the longest id.
  EXPECT_EQ(append_numbers(std::string(256, 'a'), 0, 1).status, 201);
  expect_still_serving();
}

TEST_F(http_errors_test, unknown_paths_are_404_and_wrong_methods_405) {
  expect_error(client_->get("/nope"), 404, "not_found");
  expect_error(client_->get("/"), 404, "not_found");
  expect_error(client_->get("/streams/acknowledged/unknown"), 404, "not_found");
  expect_error(client_->get("/streamsx"), 404, "not_found");

  const auto put = client_->put("/streams/acknowledged", "{}");
  expect_error(put, 405, "unknown_request");
  EXPECT_EQ(put.header("allow"), "GET, POST, DELETE");
  const auto post_health = client_->post("/health", "{}");
  expect_error(post_health, 405, "unknown_request");
  EXPECT_EQ(post_health.header("allow"), "GET");
  expect_error(client_->del("/streams/acknowledged/head"), 405, "unknown_request");
  expect_still_serving();
}

TEST_F(http_errors_test, deeply_nested_json_is_refused) {
  const std::string deep = R"({"events":[{"type":"t","data":)" + std::string(30000, '[') +
                           std::string(30000, ']') + "}]}";
  expect_error(client_->post("/streams/s", deep), 400, "malformed_request");
  expect_still_serving();
}

TEST_F(http_errors_test, errors_found_by_the_http_layer_are_counted) {
  const auto before = metrics_.errors[static_cast<std::size_t>(engine::errc::malformed_request)].load();
  client_->post("/streams/s", "{");
  client_->post("/streams/s", "[]");
  client_->get("/nope");
  EXPECT_EQ(metrics_.errors[static_cast<std::size_t>(engine::errc::malformed_request)].load(),
            before + 2);
  EXPECT_EQ(metrics_.errors[static_cast<std::size_t>(engine::errc::not_found)].load(), 1u);
}

// A server that takes at most two connections.
class http_connection_limit_test : public http_fixture {
 protected:
  net::http_server_options options() const override {
    auto o = test_options();
    o.max_connections = 2;
    return o;
  }
};

TEST_F(http_connection_limit_test, connections_over_the_limit_are_closed_until_one_closes) {
  ASSERT_EQ(client_->get("/health").status, 200);
  std::optional<http_client> second(std::in_place, endpoint_);
  ASSERT_EQ(second->get("/health").status, 200);
  // A third is closed while two are open: its request gets no answer.
  {
    http_client third(endpoint_, std::chrono::seconds(30));
    EXPECT_THROW(third.get("/health"), std::runtime_error);
  }
  // The first two still work.
  EXPECT_EQ(client_->get("/health").status, 200);
  EXPECT_EQ(second->get("/health").status, 200);
  // One closes: a new connection is served once the node has seen it close.
  second.reset();
  http_client fourth(endpoint_);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (status != 200 && std::chrono::steady_clock::now() < deadline) {
    try {
      status = fourth.get("/health").status;
    } catch (const std::runtime_error&) {
      // Refused while the close is under way: try again.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  EXPECT_EQ(status, 200);
  EXPECT_EQ(client_->get("/health").status, 200);
}

// docs/http-api.md's error table: code name -> the statuses it is listed
// with (unknown_request: 400 from http_status, 405 for a wrong method).
std::map<std::string, std::set<int>> documented_statuses() {
  std::ifstream file(std::string(ANNAL_SOURCE_DIR) + "/docs/http-api.md");
  std::stringstream text;
  text << file.rdbuf();
  std::map<std::string, std::set<int>> statuses;
  std::istringstream lines(text.str());
  std::string line;
  bool in_table = false;
  const std::regex row(R"(^\| (\d{3}) \| ([^|]*) \|)");
  const std::regex code("`([a-z_]+)`");
  while (std::getline(lines, line)) {
    if (line.rfind("| HTTP status | code | when |", 0) == 0) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    if (line.empty()) break;
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    const int status = std::stoi(m[1]);
    const std::string codes = m[2];
    for (std::sregex_iterator it(codes.begin(), codes.end(), code), end; it != end; ++it) {
      statuses[(*it)[1]].insert(status);
    }
  }
  return statuses;
}

TEST(http_status_test, every_error_code_has_the_status_the_docs_give) {
  const auto documented = documented_statuses();
  ASSERT_GT(documented.size(), 20u) << "the error table of docs/http-api.md was not found";
  for (int value = 1; value <= static_cast<int>(engine::errc::last_errc); ++value) {
    const auto code = static_cast<engine::errc>(value);
    const std::string name = engine::errc_name(code);
    const auto it = documented.find(name);
    ASSERT_NE(it, documented.end()) << name << " is not in the table";
    EXPECT_TRUE(it->second.contains(net::http_status(code)))
        << name << ": " << net::http_status(code) << " is not a status the table gives it";
  }
}

TEST(http_status_test, a_forwarded_request_with_an_unknown_outcome_is_a_bad_gateway) {
  EXPECT_EQ(net::http_status(engine::errc::connection_lost), 502);
  // Unlike a node that could not be reached (nothing sent: retry at will).
  EXPECT_EQ(net::http_status(engine::errc::node_unavailable), 503);
}

}  // namespace
}  // namespace annal::testing
