// Every HTTP endpoint against a real node process.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/node_fixture.hpp"
#include "tests/support/http_client.hpp"

namespace annal::testing {
namespace {

using nlohmann::json;

class http_ops_test : public node_fixture {
 protected:
  void SetUp() override {
    node_fixture::SetUp();
    http_ = std::make_unique<http_client>(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), node_->http_port()));
  }

  json body(const http_reply& r) { return json::parse(r.body); }

  std::unique_ptr<http_client> http_;
};

TEST_F(http_ops_test, append_and_read_with_paging) {
  auto r = http_->post("/streams/orders-7", R"({"expectedVersion": "no_stream", "events": [
      {"id": "0b5e8a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "type": "OrderPlaced", "data": {"amount": 10}},
      {"type": "OrderPaid", "data": {"amount": 10}, "metadata": {"by": "alice"}},
      {"type": "Note", "data": "aGVsbG8=", "dataEncoding": "base64"}]})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto j = body(r);
  EXPECT_EQ(j["firstVersion"], 0);
  EXPECT_EQ(j["lastVersion"], 2);

  r = http_->get("/streams/orders-7?from=0&limit=2");
  ASSERT_EQ(r.status, 200) << r.body;
  j = body(r);
  ASSERT_EQ(j["events"].size(), 2u);
  EXPECT_EQ(j["events"][0]["id"], "0b5e8a52-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
  EXPECT_EQ(j["events"][0]["type"], "OrderPlaced");
  EXPECT_EQ(j["events"][0]["data"]["amount"], 10);
  EXPECT_EQ(j["events"][1]["metadata"]["by"], "alice");
  EXPECT_EQ(j["next"], 2);

  r = http_->get("/streams/orders-7?from=2&limit=2");
  j = body(r);
  ASSERT_EQ(j["events"].size(), 1u);
  EXPECT_EQ(j["events"][0]["data"], "aGVsbG8=");  // "hello" is not JSON: base64 out
  EXPECT_EQ(j["events"][0]["dataEncoding"], "base64");
  EXPECT_TRUE(j["next"].is_null());

  r = http_->get("/streams/orders-7?direction=backward&limit=2");
  j = body(r);
  ASSERT_EQ(j["events"].size(), 2u);
  EXPECT_EQ(j["events"][0]["version"], 2);
  EXPECT_EQ(j["events"][1]["version"], 1);
  EXPECT_EQ(j["next"], 0);

  r = http_->get("/streams/orders-7/head");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body(r)["version"], 2);

  r = http_->get("/streams/never-written");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(body(r)["error"]["code"], "stream_not_found");
}

TEST_F(http_ops_test, expected_version_conflicts_are_409_with_the_current_version) {
  ASSERT_EQ(http_->post("/streams/ev-9", R"({"events": [{"type": "A", "data": 1}]})").status, 201);
  auto r = http_->post("/streams/ev-9", R"({"expectedVersion": 5, "events": [{"type": "A"}]})");
  ASSERT_EQ(r.status, 409) << r.body;
  auto j = body(r);
  EXPECT_EQ(j["error"]["code"], "wrong_expected_version");
  EXPECT_EQ(j["error"]["currentVersion"], 0);

  r = http_->post("/streams/ev-10", R"({"expectedVersion": "stream_exists", "events": [{"type": "A"}]})");
  ASSERT_EQ(r.status, 409);
  EXPECT_TRUE(body(r)["error"]["currentVersion"].is_null());

  r = http_->post("/streams/ev-9", R"({"expectedVersion": 0, "events": [{"type": "A"}]})");
  EXPECT_EQ(r.status, 201);
}

TEST_F(http_ops_test, idempotent_retry_with_explicit_ids) {
  const std::string append = R"({"expectedVersion": "any", "events": [
      {"id": "11111111-2222-4333-8444-555555555555", "type": "A", "data": {"n": 1}}]})";
  auto first = http_->post("/streams/idem-9", append);
  ASSERT_EQ(first.status, 201);
  auto retry = http_->post("/streams/idem-9", append);
  ASSERT_EQ(retry.status, 201) << retry.body;
  EXPECT_EQ(body(retry)["firstVersion"], body(first)["firstVersion"]);
  EXPECT_EQ(body(retry)["duplicate"], true);
  EXPECT_EQ(body(http_->get("/streams/idem-9"))["events"].size(), 1u);
}

TEST_F(http_ops_test, metadata_delete_tombstone_and_snapshot) {
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(http_->post("/streams/m-9", R"({"events": [{"type": "A"}]})").status, 201);
  }
  auto r = http_->put("/streams/m-9/metadata", R"({"maxCount": 2})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = http_->get("/streams/m-9/metadata");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body(r)["maxCount"], 2);
  EXPECT_EQ(body(http_->get("/streams/m-9"))["events"][0]["version"], 2);

  r = http_->put("/streams/m-9/snapshot", R"({"version": 3, "data": {"sum": 4}})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = http_->get("/streams/m-9/snapshot");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body(r)["version"], 3);
  EXPECT_EQ(body(r)["data"]["sum"], 4);

  r = http_->del("/streams/m-9");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(http_->get("/streams/m-9").status, 404);
  r = http_->del("/streams/m-9?tombstone=true");
  ASSERT_EQ(r.status, 200) << r.body;
  r = http_->post("/streams/m-9", R"({"events": [{"type": "A"}]})");
  EXPECT_EQ(r.status, 410);
  EXPECT_EQ(body(r)["error"]["code"], "stream_deleted");
}

TEST_F(http_ops_test, health_and_metrics) {
  auto r = http_->get("/health");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body(r)["status"], "ok");
  ASSERT_EQ(http_->post("/streams/met-1", R"({"events": [{"type": "A", "data": 1}]})").status, 201);
  r = http_->get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("annal_append_requests_total 1"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("annal_sync_seconds_bucket"), std::string::npos);
}

TEST_F(http_ops_test, http_and_binary_clients_see_the_same_stream) {
  ASSERT_EQ(http_->post("/streams/both-1", R"({"events": [{"type": "A", "data": {"v": 1}}]})").status,
            201);
  auto appended = client_->append(
      append_of("both-1", engine::expected_version::exact(0), {event("B", R"({"v":2})")}));
  ASSERT_TRUE(appended.ok()) << appended.err().message;
  auto j = body(http_->get("/streams/both-1"));
  ASSERT_EQ(j["events"].size(), 2u);
  EXPECT_EQ(j["events"][1]["type"], "B");
  EXPECT_EQ(j["events"][1]["data"]["v"], 2);
}

}  // namespace
}  // namespace annal::testing
