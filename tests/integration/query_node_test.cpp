// Queries on one real `annal dev` process: `annal query` (table and JSON),
// the node's scan and time limits (typed errors, or partial answers when
// asked for), and consistency positions that advance with appends.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/integration/node_fixture.hpp"

namespace annal::testing {
namespace {

using engine::errc;
using nlohmann::json;
namespace q = engine::query;

class query_node_test : public node_fixture {
 protected:
  void SetUp() override {}  // each test starts the node with its own flags

  // `batches` appends of `per_batch` OrderPlaced events with amounts 1..per_batch.
  void fill(int batches, int per_batch) {
    for (int b = 0; b < batches; ++b) {
      std::vector<engine::event_input> events;
      for (int i = 1; i <= per_batch; ++i) {
        events.push_back(event(i % 2 ? "OrderPlaced" : "OrderShipped",
                               R"({"amount":)" + std::to_string(i) + R"(,"region":"r)" +
                                   std::to_string(i % 3) + "\"}"));
      }
      auto r = client_->append(append_of("orders-" + std::to_string(b % 7),
                                         engine::expected_version::any(), std::move(events)));
      ASSERT_TRUE(r) << r.err().message;
    }
  }

  std::vector<std::string> server_args() {
    return {"--server", "127.0.0.1:" + std::to_string(node_->binary_port())};
  }
};

TEST_F(query_node_test, cli_prints_a_table_or_json) {
  start_node();
  fill(4, 10);  // 40 events: 20 placed with amounts 1,3,...,19 (sum 100)
  auto args = server_args();
  args.insert(args.begin(), {"query", "from 'orders-*' where type = 'OrderPlaced' | count(), "
                                      "sum(data.amount)"});
  auto r = run_annal(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("count()  sum(data.amount)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("20       100"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(40 events scanned)"), std::string::npos) << r.out;

  args.push_back("--json");
  args[1] = "from $all | count() by data.region";
  r = run_annal(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto body = json::parse(r.out);
  EXPECT_EQ(body.at("columns"), json::array({"data.region", "count()"}));
  // amounts 1..10 mod 3: r0 x3, r1 x4, r2 x3, four times over.
  EXPECT_EQ(body.at("rows"), json::parse(R"([["r0",12],["r1",16],["r2",12]])"));

  args.pop_back();
  args[1] = "from $all | last 2";
  r = run_annal(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("OrderShipped"), std::string::npos) << r.out;  // amount 10, the last

  args[1] = "from $all where data.amount >";
  r = run_annal(args);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("annal: query_syntax: at 1:30"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("expected a value"), std::string::npos) << r.err;
}

TEST_F(query_node_test, a_scan_over_the_limit_is_refused_or_partial) {
  start_node({"--query-max-scan", "1000"});
  fill(30, 100);  // 3,000 events
  auto refused = client_->query("from $all | count()");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.err().code, errc::query_too_large) << refused.err().message;

  auto partial = client_->query("from $all | count()", /*allow_partial=*/true);
  ASSERT_TRUE(partial) << partial.err().message;
  EXPECT_TRUE(partial->partial);
  EXPECT_LE(partial->events_scanned, 1000u);
  const auto& table = std::get<q::result_table>(partial->body);
  ASSERT_EQ(table.rows.size(), 1u);
  // Whole records only: every counted event was scanned.
  EXPECT_EQ(std::get<double>(table.rows[0][0]), static_cast<double>(partial->events_scanned));
  EXPECT_GT(partial->events_scanned, 0u);

  // The limit counts every event scanned, matching or not; the node goes on.
  auto narrow = client_->query("from 'orders-1' where data.amount = 1 | count()");
  ASSERT_FALSE(narrow);
  EXPECT_EQ(narrow.err().code, errc::query_too_large);
  auto page = client_->read({"orders-1", stream_version{0}, false, 10});
  ASSERT_TRUE(page) << page.err().message;
  EXPECT_EQ(page->events.size(), 10u);
}

TEST_F(query_node_test, a_query_over_the_time_limit_is_refused_or_partial) {
  start_node();
  fill(200, 1000);  // 200,000 events: far more than a millisecond of scanning
  auto late = client_->query("from $all | count() by data.region", false, /*timeout_ms=*/1);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.err().code, errc::query_timeout) << late.err().message;

  auto partial = client_->query("from $all | count() by data.region", true, 1);
  ASSERT_TRUE(partial) << partial.err().message;
  EXPECT_TRUE(partial->partial);
  EXPECT_LT(partial->events_scanned, 200'000u);

  auto full = client_->query("from $all | count()");
  ASSERT_TRUE(full) << full.err().message;
  EXPECT_FALSE(full->partial);
  EXPECT_EQ(full->events_scanned, 200'000u);
}

TEST_F(query_node_test, positions_cover_exactly_what_was_scanned) {
  start_node();
  fill(5, 10);
  auto before = client_->query("from $all | count()");
  ASSERT_TRUE(before) << before.err().message;
  fill(5, 10);
  auto after = client_->query("from $all | count()");
  ASSERT_TRUE(after) << after.err().message;
  EXPECT_EQ(std::get<double>(std::get<q::result_table>(before->body).rows[0][0]), 50.0);
  EXPECT_EQ(std::get<double>(std::get<q::result_table>(after->body).rows[0][0]), 100.0);
  ASSERT_EQ(before->positions.size(), after->positions.size());
  std::uint64_t grew = 0;
  for (std::size_t i = 0; i < before->positions.size(); ++i) {
    EXPECT_EQ(before->positions[i].first, after->positions[i].first);
    EXPECT_LE(before->positions[i].second, after->positions[i].second);
    if (after->positions[i].second > before->positions[i].second) ++grew;
  }
  EXPECT_GT(grew, 0u);
}

}  // namespace
}  // namespace annal::testing
