// GET /metrics: Prometheus text exposition of node_metrics.

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "net/prometheus.hpp"
#include "tests/net/http_fixture.hpp"

namespace annal::testing {
namespace {

// Sample lines of an exposition: "name{labels}" -> value. Fails the test on
// a line that is neither a comment nor a well-formed sample.
std::map<std::string, double> parse_samples(const std::string& text) {
  static const std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?) (\S+)$)");
  static const std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  std::map<std::string, double> samples;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_match(line, comment)) continue;
    EXPECT_TRUE(std::regex_match(line, m, sample)) << "bad line: " << line;
    if (m.empty()) continue;
    EXPECT_EQ(samples.count(m[1]), 0u) << "duplicate sample " << m[1];
    samples[m[1]] = std::stod(m[3]);
  }
  return samples;
}

// The buckets of `name` in exposition order, checked to be cumulative and to
// end in +Inf == _count.
void expect_valid_histogram(const std::string& text, const std::string& name,
                            std::uint64_t expected_count, double expected_sum) {
  const auto samples = parse_samples(text);
  EXPECT_NE(text.find("# TYPE " + name + " histogram\n"), std::string::npos);
  std::vector<std::pair<double, double>> buckets;  // (le, count) in text order
  const std::regex bucket("^" + name + R"re(_bucket\{le="([^"]+)"\} (\S+)$)re");
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (!std::regex_match(line, m, bucket)) continue;
    const double le = m[1] == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(m[1]);
    buckets.emplace_back(le, std::stod(m[2]));
  }
  ASSERT_GE(buckets.size(), 2u);
  for (std::size_t i = 1; i < buckets.size(); ++i) {
    EXPECT_LT(buckets[i - 1].first, buckets[i].first) << "bounds ascend";
    EXPECT_LE(buckets[i - 1].second, buckets[i].second) << "buckets are cumulative";
  }
  EXPECT_TRUE(std::isinf(buckets.back().first));
  EXPECT_EQ(buckets.back().second, samples.at(name + "_count"));
  EXPECT_EQ(samples.at(name + "_count"), static_cast<double>(expected_count));
  EXPECT_NEAR(samples.at(name + "_sum"), expected_sum, 1e-6);
}

TEST(prometheus_test, renders_every_counter_and_valid_histograms) {
  actors::node_metrics m;
  m.append_requests = 3;
  m.appended_events = 7;
  m.appended_bytes = 700;
  m.read_requests = 2;
  m.read_events = 5;
  m.read_bytes = 500;
  m.sync_rounds = 4;
  m.checkpoints = 1;
  m.checkpoint_failures = 2;
  m.connections_open = 2;
  m.connections_accepted = 9;
  m.http_requests = 11;
  m.subscriptions_open = 3;
  m.subscription_events = 40;
  m.subscription_held_events = 5;
  m.subscription_held_events_max = 12;
  m.count_error(engine::errc::wrong_expected_version);
  m.count_error(engine::errc::wrong_expected_version);
  m.count_error(engine::errc::io_error);
  for (double v : {0.00001, 0.0003, 0.0003, 0.002, 0.7, 20.0}) m.sync_seconds.observe(v);
  m.append_seconds.observe(0.001);
  m.checkpoint_seconds.observe(0.008);
  m.checkpoint_pause_seconds.observe(0.0005);

  const std::string text = net::render_prometheus(m, "node-\"1\"");
  const auto s = parse_samples(text);
  EXPECT_EQ(s.at("annal_append_requests_total"), 3);
  EXPECT_EQ(s.at("annal_appended_events_total"), 7);
  EXPECT_EQ(s.at("annal_appended_bytes_total"), 700);
  EXPECT_EQ(s.at("annal_read_requests_total"), 2);
  EXPECT_EQ(s.at("annal_read_events_total"), 5);
  EXPECT_EQ(s.at("annal_read_bytes_total"), 500);
  EXPECT_EQ(s.at("annal_sync_rounds_total"), 4);
  EXPECT_EQ(s.at("annal_checkpoints_total"), 1);
  EXPECT_EQ(s.at("annal_checkpoint_failures_total"), 2);
  EXPECT_EQ(s.at("annal_connections_open"), 2);
  EXPECT_EQ(s.at("annal_connections_accepted_total"), 9);
  EXPECT_EQ(s.at("annal_http_requests_total"), 11);
  EXPECT_EQ(s.at("annal_subscriptions_open"), 3);
  EXPECT_EQ(s.at("annal_subscription_events_total"), 40);
  EXPECT_EQ(s.at("annal_subscription_held_events"), 5);
  EXPECT_EQ(s.at("annal_subscription_held_events_max"), 12);
  EXPECT_EQ(s.at(R"(annal_errors_total{code="wrong_expected_version"})"), 2);
  EXPECT_EQ(s.at(R"(annal_errors_total{code="io_error"})"), 1);
  EXPECT_EQ(s.at(R"(annal_errors_total{code="not_found"})"), 0);
  EXPECT_EQ(s.count(R"(annal_errors_total{code="ok"})"), 0u);
  EXPECT_EQ(s.at(R"(annal_node_info{node="node-\"1\""})"), 1);
  EXPECT_NE(text.find("# TYPE annal_errors_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE annal_connections_open gauge\n"), std::string::npos);

  expect_valid_histogram(text, "annal_sync_seconds", 6, 0.00001 + 0.0003 * 2 + 0.002 + 0.7 + 20);
  expect_valid_histogram(text, "annal_append_seconds", 1, 0.001);
  expect_valid_histogram(text, "annal_checkpoint_seconds", 1, 0.008);
  expect_valid_histogram(text, "annal_checkpoint_pause_seconds", 1, 0.0005);
  // The observation of 20 s is only in +Inf; 0.0003 sits in le=0.0005.
  EXPECT_EQ(s.at(R"(annal_sync_seconds_bucket{le="10"})"), 5);
  EXPECT_EQ(s.at(R"(annal_sync_seconds_bucket{le="0.0005"})"), 3);
  EXPECT_EQ(s.at(R"(annal_sync_seconds_bucket{le="+Inf"})"), 6);
}

class http_metrics_test : public http_fixture {};

TEST_F(http_metrics_test, metrics_endpoint_serves_the_exposition) {
  ASSERT_EQ(append_numbers("m", 0, 2).status, 201);
  ASSERT_EQ(client_->post("/streams/m", "{").status, 400);
  ASSERT_EQ(client_->get("/streams/m").status, 200);
  metrics_.sync_seconds.observe(0.004);
  metrics_.sync_seconds.observe(0.03);

  const auto reply = client_->get("/metrics");
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(reply.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const auto s = parse_samples(reply.body);
  EXPECT_EQ(s.at("annal_http_requests_total"), 4);  // this one included
  EXPECT_EQ(s.at(R"(annal_errors_total{code="malformed_request"})"), 1);
  EXPECT_EQ(s.at(R"(annal_node_info{node="test-node"})"), 1);
  expect_valid_histogram(reply.body, "annal_sync_seconds", 2, 0.034);
  expect_valid_histogram(reply.body, "annal_append_seconds", 0, 0);
}

}  // namespace
}  // namespace annal::testing
