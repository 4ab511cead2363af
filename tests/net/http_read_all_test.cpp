// GET /all (read-all with a resume token) and GET /stats over a real
// socket, against a real store.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "net/read_all_token.hpp"
#include "tests/net/http_fixture.hpp"

namespace annal::testing {
namespace {

using nlohmann::json;

class http_read_all_test : public http_fixture {};

TEST_F(http_read_all_test, pages_follow_the_next_token_to_every_event_once) {
  std::map<std::string, int> written;  // stream -> events
  for (int i = 0; i < 12; ++i) {
    const std::string stream = "http-all-" + std::to_string(i % 5);
    const int n = 1 + i % 3;
    ASSERT_EQ(append_numbers(stream, 10 * i, n).status, 201);
    written[stream] += n;
  }
  std::set<std::pair<std::string, int>> seen;
  std::map<std::string, int> next_version;
  std::int64_t last = 0;
  std::string from;
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 100);
    const auto reply = client_->get("/all?limit=4" + (from.empty() ? "" : "&from=" + from));
    ASSERT_EQ(reply.status, 200) << reply.body;
    const auto page = body(reply);
    ASSERT_LE(page["events"].size(), 4u);
    for (const auto& e : page["events"]) {
      const auto stream = e["stream"].get<std::string>();
      const int version = e["version"].get<int>();
      EXPECT_TRUE(seen.emplace(stream, version).second) << "duplicate " << e.dump();
      EXPECT_EQ(version, next_version[stream]) << e.dump();
      next_version[stream] = version + 1;
      EXPECT_GE(e["timestamp"].get<std::int64_t>(), last);
      last = e["timestamp"].get<std::int64_t>();
      EXPECT_EQ(e["partition"], handler_->store().partition_for(stream).value());
      EXPECT_TRUE(e["position"].is_number_unsigned());
      EXPECT_EQ(e["type"], "t");
      EXPECT_TRUE(e["data"].contains("n")) << e.dump();
      EXPECT_TRUE(e["id"].is_string());
    }
    ASSERT_TRUE(page["next"].is_string());
    from = page["next"].get<std::string>();
    if (page["atEnd"].get<bool>()) break;
  }
  std::map<std::string, int> counted;
  for (const auto& [stream, version] : seen) ++counted[stream];
  EXPECT_EQ(counted, written);

  // From the last token: nothing, until an append.
  auto tail = body(client_->get("/all?from=" + from));
  EXPECT_TRUE(tail["events"].empty());
  EXPECT_TRUE(tail["atEnd"].get<bool>());
  ASSERT_EQ(append_numbers("http-all-late", 0, 1).status, 201);
  tail = body(client_->get("/all?from=" + from));
  ASSERT_EQ(tail["events"].size(), 1u);
  EXPECT_EQ(tail["events"][0]["stream"], "http-all-late");
}

TEST_F(http_read_all_test, default_and_clamped_limits_and_base64) {
  ASSERT_EQ(append_numbers("http-lim", 0, 30).status, 201);
  EXPECT_EQ(body(client_->get("/all"))["events"].size(), 5u);              // default_page_size
  EXPECT_EQ(body(client_->get("/all?limit=1000"))["events"].size(), 20u);  // max_page_size
  const auto b64 = body(client_->get("/all?limit=1&dataEncoding=base64"));
  EXPECT_EQ(b64["events"][0]["dataEncoding"], "base64");
}

TEST_F(http_read_all_test, bad_parameters_are_typed_400_errors) {
  ASSERT_EQ(append_numbers("http-bad", 0, 1).status, 201);
  const auto token = body(client_->get("/all"))["next"].get<std::string>();
  auto broken = token;
  broken[broken.size() / 2] = broken[broken.size() / 2] == 'A' ? 'B' : 'A';
  // A well-formed token of another cluster (a different partition count).
  const auto other = net::encode_read_all_token(std::vector<actors::all_position>(7));
  const std::vector<std::string> queries = {"from=" + broken, "from=%21%21", "from=" + other,
                                            "limit=0",        "limit=x",     "limit=-1"};
  for (const auto& query : queries) {
    const auto reply = client_->get("/all?" + query);
    EXPECT_EQ(reply.status, 400) << query << ": " << reply.body;
    EXPECT_EQ(error_code(reply), "invalid_argument") << query;
  }
  const auto post = client_->post("/all", "{}");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("allow"), "GET");
}

TEST_F(http_read_all_test, stats_list_partitions_and_node_totals) {
  ASSERT_EQ(append_numbers("http-stats-1", 0, 3).status, 201);
  ASSERT_EQ(append_numbers("http-stats-2", 0, 2).status, 201);
  const auto reply = client_->get("/stats");
  ASSERT_EQ(reply.status, 200) << reply.body;
  const auto stats = body(reply);
  ASSERT_EQ(stats["partitions"].size(), 4u);
  std::uint64_t events = 0, bytes = 0;
  for (std::uint32_t p = 0; p < 4; ++p) {
    const auto& entry = stats["partitions"][p];
    EXPECT_EQ(entry["partition"], p);
    EXPECT_EQ(entry["node"], "store");
    events += entry["events"].get<std::uint64_t>();
    bytes += entry["endLsn"].get<std::uint64_t>();
  }
  EXPECT_EQ(events, 5u);
  EXPECT_EQ(stats["events"], 5);
  EXPECT_EQ(stats["streams"], 2);
  ASSERT_EQ(stats["nodes"].size(), 1u);
  EXPECT_EQ(
      stats["nodes"][0],
      (json{
          {"node", "store"}, {"partitions", 4}, {"streams", 2}, {"events", 5}, {"bytes", bytes}}));
  EXPECT_EQ(client_->post("/stats", "{}").status, 405);
}

}  // namespace
}  // namespace annal::testing
