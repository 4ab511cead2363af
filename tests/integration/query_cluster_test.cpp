// Queries on a cluster of three real `annal start` processes with a real
// etcd: every aggregate, group-by, time bucket, top-k, listing and filter
// kind is checked against a brute-force evaluation, written here
// independently, of the same events read back with read-all.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "client/client.hpp"
#include "tests/integration/node_fixture.hpp"
#include "tests/support/etcd_process.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/node_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_rng.hpp"

namespace annal::testing {
namespace {

using engine::errc;
using nlohmann::json;
namespace q = engine::query;

constexpr std::uint32_t k_partitions = 8;
constexpr int k_events = 2400;

// An event as read back, with what the brute force needs.
struct stored_event {
  std::string stream;
  std::uint32_t partition = 0;
  std::uint64_t position = 0;
  std::uint32_t index = 0;
  event_id id{};
  std::string type;
  json data;      // discarded (null) when not JSON
  json metadata;  // likewise
  timestamp_us timestamp = 0;
};

std::string category_of(const std::string& stream) { return stream.substr(0, stream.find('-')); }

// The JSON value at `path` in `doc`, if any.
const json* member(const json& doc, std::initializer_list<const char*> path) {
  const json* at = &doc;
  for (const char* name : path) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(name);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

std::optional<double> number_at(const json& doc, std::initializer_list<const char*> path) {
  const json* v = member(doc, path);
  if (!v || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

// A result cell as text, for comparing keys: strings as they are, numbers
// without a fraction as integers, null as "null".
std::string text_of(const q::value& v) {
  if (std::holds_alternative<q::null_value>(v)) return "null";
  if (const bool* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const double* d = std::get_if<double>(&v)) {
    if (std::floor(*d) == *d && std::fabs(*d) < 9e15) return std::to_string(static_cast<long long>(*d));
    return std::to_string(*d);
  }
  return std::get<std::string>(v);
}

std::string text_of(const json* v) {
  if (!v || v->is_null()) return "null";
  if (v->is_string()) return v->get<std::string>();
  if (v->is_boolean()) return v->get<bool>() ? "true" : "false";
  const double d = v->get<double>();
  if (std::floor(d) == d && std::fabs(d) < 9e15) return std::to_string(static_cast<long long>(d));
  return std::to_string(d);
}

std::optional<double> number_of(const q::value& v) {
  if (const double* d = std::get_if<double>(&v)) return *d;
  return std::nullopt;
}

using events_ref = std::vector<const stored_event*>;

// One expected aggregate column: nullopt for null.
using aggregate_fn = std::function<std::optional<double>(const events_ref&)>;

aggregate_fn count_of() {
  return [](const events_ref& es) { return static_cast<double>(es.size()); };
}

aggregate_fn fold_amount(const std::string& how) {
  return [how](const events_ref& es) -> std::optional<double> {
    std::vector<double> xs;
    for (const auto* e : es) {
      if (auto x = number_at(e->data, {"amount"})) xs.push_back(*x);
    }
    if (how == "sum") {
      double s = 0;
      for (double x : xs) s += x;
      return s;
    }
    if (xs.empty()) return std::nullopt;
    if (how == "min") return *std::min_element(xs.begin(), xs.end());
    if (how == "max") return *std::max_element(xs.begin(), xs.end());
    double s = 0;
    for (double x : xs) s += x;
    return s / static_cast<double>(xs.size());  // avg
  };
}

aggregate_fn distinct_customers() {
  return [](const events_ref& es) {
    std::set<std::string> seen;
    for (const auto* e : es) {
      if (const json* c = member(e->data, {"customer"})) seen.insert(c->dump());
    }
    return static_cast<double>(seen.size());
  };
}

struct aggregate_case {
  std::string text;
  std::function<bool(const stored_event&)> where;
  // The group key of an event as text cells (empty: one group).
  std::function<std::vector<std::string>(const stored_event&)> key;
  std::vector<aggregate_fn> aggregates;
  std::uint32_t top = 0;
};

class query_cluster_test : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* id : {"a", "b", "c"}) {
      nodes_[id] = start_cluster_node(dir_.path() + "/" + id, id, etcd_.client_url(), 3,
                                      k_partitions);
    }
    for (const char* id : {"a", "b", "c"}) {
      ASSERT_TRUE(eventually([&] { return static_cast<bool>(via(id).query("from $all | count()")); }))
          << id << " never answered a query; output:\n"
          << nodes_[id]->output();
    }
    load();
  }

  client::client& via(const std::string& id) {
    auto& c = clients_[id];
    if (!c) {
      client::client_options options;
      options.port = nodes_.at(id)->binary_port();
      options.client_name = "query-cluster-test";
      auto connected = client::client::connect(options);
      if (!connected) throw std::runtime_error("connect " + id + ": " + connected.err().message);
      c = std::move(connected).value();
    }
    return *c;
  }

  // Random events in streams of three categories, appended through every
  // node, then read back in full (with partitions, positions and timestamps).
  void load() {
    test_rng rng(20261123);
    const char* regions[] = {"eu-west", "eu-north", "us-east", "us-west", "ap-south"};
    const char* types[] = {"OrderPlaced", "OrderShipped", "PaymentFailed", "PaymentSucceeded",
                           "UserSignedUp"};
    const char* categories[] = {"orders", "payments", "users"};
    const char* nodes[] = {"a", "b", "c"};
    int written = 0;
    while (written < k_events) {
      const std::string stream = std::string(categories[rng.below(3)]) + "-" +
                                 std::to_string(rng.below(40));
      std::vector<engine::event_input> batch;
      const int n = static_cast<int>(rng.between(1, 4));
      for (int i = 0; i < n; ++i) {
        json data;
        if (!rng.percent(10)) {
          data["amount"] = static_cast<double>(rng.between(1, 100000)) / 100.0;
        } else if (rng.percent(50)) {
          data["amount"] = "not a number";
        }
        if (!rng.percent(5)) data["region"] = regions[rng.below(5)];
        data["customer"] = "c-" + std::to_string(rng.below(30));
        data["nested"]["score"] = static_cast<int>(rng.below(10));
        auto e = event(types[rng.below(5)], data.dump());
        if (rng.percent(30)) e.data = "plain text, not JSON";
        if (rng.percent(60)) e.metadata = json{{"source", rng.percent(50) ? "web" : "mobile"}}.dump();
        batch.push_back(std::move(e));
      }
      auto r = via(nodes[rng.below(3)]).append(
          append_of(stream, engine::expected_version::any(), std::move(batch)));
      ASSERT_TRUE(r) << r.err().message;
      written += n;
    }
    actors::read_all_request request;
    request.limit = 1000;
    for (;;) {
      auto page = via("a").read_all(request);
      ASSERT_TRUE(page) << page.err().message;
      for (const auto& e : page->events) {
        stored_event s;
        s.stream = std::string(e.stream);
        s.partition = e.partition.value();
        s.position = e.event.position.value();
        s.index = e.index;
        s.id = e.event.id;
        s.type = std::string(e.event.type);
        s.data = json::parse(e.event.data, nullptr, false);
        if (s.data.is_discarded()) s.data = nullptr;
        s.metadata = json::parse(e.event.metadata, nullptr, false);
        if (s.metadata.is_discarded()) s.metadata = nullptr;
        s.timestamp = e.event.timestamp;
        events_.push_back(std::move(s));
      }
      request.from = page->next;
      if (page->events.empty() && page->at_end) break;
    }
    ASSERT_EQ(events_.size(), static_cast<std::size_t>(written));
  }

  // The answer through `node`, which must be a table.
  q::result_table table(const std::string& node, const std::string& text) {
    auto answer = via(node).query(text);
    if (!answer) throw std::runtime_error(text + ": " + answer.err().message);
    EXPECT_FALSE(answer->partial);
    EXPECT_EQ(answer->events_scanned, events_.size()) << text;
    EXPECT_EQ(answer->positions.size(), k_partitions) << text;
    auto* t = std::get_if<q::result_table>(&answer->body);
    if (!t) throw std::runtime_error(text + ": not a table");
    return *t;
  }

  void check(const aggregate_case& c, const std::string& node) {
    SCOPED_TRACE(c.text + " via " + node);
    std::map<std::vector<std::string>, events_ref> groups;
    for (const auto& e : events_) {
      if (!c.where(e)) continue;
      groups[c.key ? c.key(e) : std::vector<std::string>{}].push_back(&e);
    }
    const auto t = table(node, c.text);
    const std::size_t key_columns = t.columns.size() - c.aggregates.size();
    ASSERT_EQ(t.columns.size(), key_columns + c.aggregates.size());
    if (c.top > 0) {
      ASSERT_EQ(t.rows.size(), std::min<std::size_t>(c.top, groups.size()));
    } else if (!groups.empty() || key_columns > 0) {
      ASSERT_EQ(t.rows.size(), std::max<std::size_t>(groups.size(), key_columns == 0 ? 1 : 0));
    }
    std::vector<double> first_values;  // of the returned rows (top-k)
    for (const auto& row : t.rows) {
      std::vector<std::string> key;
      for (std::size_t i = 0; i < key_columns; ++i) key.push_back(text_of(row[i]));
      auto it = groups.find(key);
      const events_ref empty;
      const events_ref& members = it == groups.end() ? empty : it->second;
      ASSERT_TRUE(it != groups.end() || key_columns == 0) << "unexpected group " << key.front();
      for (std::size_t a = 0; a < c.aggregates.size(); ++a) {
        const auto expected = c.aggregates[a](members);
        const auto& cell = row[key_columns + a];
        if (!expected) {
          EXPECT_TRUE(std::holds_alternative<q::null_value>(cell)) << t.columns[key_columns + a];
          continue;
        }
        const auto got = number_of(cell);
        ASSERT_TRUE(got) << t.columns[key_columns + a] << " is not a number";
        EXPECT_NEAR(*got, *expected, 1e-6 * std::max(1.0, std::fabs(*expected)))
            << t.columns[key_columns + a];
      }
      if (!c.aggregates.empty()) first_values.push_back(*number_of(row[key_columns]));
    }
    if (c.top > 0) {
      // The K largest first aggregates (ties may pick either group).
      std::vector<double> all;
      for (const auto& [key, members] : groups) all.push_back(*c.aggregates[0](members));
      std::sort(all.rbegin(), all.rend());
      all.resize(std::min<std::size_t>(c.top, all.size()));
      std::sort(first_values.rbegin(), first_values.rend());
      EXPECT_EQ(first_values, all);
    }
  }

  temp_dir dir_;
  etcd_process etcd_;
  std::map<std::string, std::unique_ptr<node_process>> nodes_;
  std::map<std::string, std::unique_ptr<client::client>> clients_;
  std::vector<stored_event> events_;
};

auto any_event() {
  return [](const stored_event&) { return true; };
}

TEST_F(query_cluster_test, aggregates_match_a_brute_force_evaluation) {
  const auto amount_over = [](double limit) {
    return [limit](const stored_event& e) {
      auto a = number_at(e.data, {"amount"});
      return a && *a > limit;
    };
  };
  const auto region = [](const stored_event& e) {
    return std::vector<std::string>{text_of(member(e.data, {"region"}))};
  };
  std::vector<aggregate_case> cases = {
      {"from $all | count()", any_event(), nullptr, {count_of()}},
      {"from $all | count(), sum(data.amount), avg(data.amount), min(data.amount), "
       "max(data.amount), count_distinct(data.customer)",
       any_event(),
       nullptr,
       {count_of(), fold_amount("sum"), fold_amount("avg"), fold_amount("min"),
        fold_amount("max"), distinct_customers()}},
      {"from 'orders-*' where type = 'OrderPlaced' and data.amount > 100 | sum(data.amount), "
       "count() by data.region",
       [&](const stored_event& e) {
         return e.stream.starts_with("orders-") && e.type == "OrderPlaced" &&
                amount_over(100)(e);
       },
       region,
       {fold_amount("sum"), count_of()}},
      {"from category 'payments' where type in ('PaymentFailed', 'PaymentSucceeded') | count() "
       "by type, data.region",
       [](const stored_event& e) {
         return category_of(e.stream) == "payments" &&
                (e.type == "PaymentFailed" || e.type == "PaymentSucceeded");
       },
       [](const stored_event& e) {
         return std::vector<std::string>{e.type, text_of(member(e.data, {"region"}))};
       },
       {count_of()}},
      {"from 'users-7' | count(), max(data.amount)",
       [](const stored_event& e) { return e.stream == "users-7"; }, nullptr,
       {count_of(), fold_amount("max")}},
      {"from $all where data.amount <= 250.5 or not data.region exists | count() by stream",
       [](const stored_event& e) {
         auto a = number_at(e.data, {"amount"});
         return (a && *a <= 250.5) || member(e.data, {"region"}) == nullptr;
       },
       [](const stored_event& e) { return std::vector<std::string>{e.stream}; },
       {count_of()}},
      {"from $all where data.region prefix 'eu-' and data.nested.score >= 5 | avg(data.amount) by "
       "category",
       [](const stored_event& e) {
         const json* r = member(e.data, {"region"});
         auto s = number_at(e.data, {"nested", "score"});
         return r && r->is_string() && r->get<std::string>().starts_with("eu-") && s && *s >= 5;
       },
       [](const stored_event& e) { return std::vector<std::string>{category_of(e.stream)}; },
       {fold_amount("avg")}},
      {"from $all where metadata.source = 'web' and data.region != 'us-east' | count(), "
       "min(data.amount) by data.region",
       [](const stored_event& e) {
         const json* s = member(e.metadata, {"source"});
         const json* r = member(e.data, {"region"});
         const bool not_us_east = !(r && r->is_string() && r->get<std::string>() == "us-east");
         return s && s->is_string() && s->get<std::string>() == "web" && not_us_east;
       },
       region,
       {count_of(), fold_amount("min")}},
      {"from $all where type != 'UserSignedUp' | count() by data.customer top 5",
       [](const stored_event& e) { return e.type != "UserSignedUp"; },
       [](const stored_event& e) {
         return std::vector<std::string>{text_of(member(e.data, {"customer"}))};
       },
       {count_of()},
       5},
  };
  // A time window and buckets, from the loaded events' own timestamps.
  std::vector<timestamp_us> stamps;
  for (const auto& e : events_) stamps.push_back(e.timestamp);
  std::sort(stamps.begin(), stamps.end());
  const timestamp_us since = stamps[stamps.size() / 4];
  const timestamp_us until = stamps[stamps.size() * 3 / 4];
  cases.push_back({"from $all since " + std::to_string(since) + " until " + std::to_string(until) +
                       " | count(), sum(data.amount)",
                   [&](const stored_event& e) {
                     return e.timestamp >= since && e.timestamp < until;
                   },
                   nullptr,
                   {count_of(), fold_amount("sum")}});
  const std::int64_t bucket = 50'000;  // 50 ms
  cases.push_back({"from $all | count() by type every 50ms", any_event(),
                   [&](const stored_event& e) {
                     return std::vector<std::string>{
                         std::to_string(e.timestamp / bucket * bucket), e.type};
                   },
                   {count_of()}});
  const char* nodes[] = {"a", "b", "c"};
  for (std::size_t i = 0; i < cases.size(); ++i) check(cases[i], nodes[i % 3]);
}

TEST_F(query_cluster_test, percentiles_are_within_the_sketch_accuracy) {
  std::vector<double> amounts;
  for (const auto& e : events_) {
    if (auto a = number_at(e.data, {"amount"})) amounts.push_back(*a);
  }
  std::sort(amounts.begin(), amounts.end());
  const auto t = table("b", "from $all | p50(data.amount), p99(data.amount), "
                            "percentile(data.amount, 90)");
  ASSERT_EQ(t.rows.size(), 1u);
  const double quantiles[] = {0.50, 0.99, 0.90};
  for (std::size_t i = 0; i < 3; ++i) {
    // Nearest rank, give or take one rank, within the 1% relative accuracy.
    const auto rank = static_cast<std::size_t>(std::ceil(quantiles[i] * amounts.size())) - 1;
    const double lo = amounts[rank == 0 ? 0 : rank - 1] * 0.99;
    const double hi = amounts[std::min(rank + 1, amounts.size() - 1)] * 1.01;
    const auto got = number_of(t.rows[0][i]);
    ASSERT_TRUE(got) << t.columns[i];
    EXPECT_GE(*got, lo) << t.columns[i];
    EXPECT_LE(*got, hi) << t.columns[i];
  }
}

TEST_F(query_cluster_test, listings_match_a_brute_force_evaluation) {
  auto order = [](const stored_event* x, const stored_event* y) {
    return std::tie(x->timestamp, x->partition, x->position, x->index) <
           std::tie(y->timestamp, y->partition, y->position, y->index);
  };
  struct listing_case {
    std::string text;
    std::function<bool(const stored_event&)> where;
    std::size_t limit;
    bool newest_first;
  };
  const std::vector<listing_case> cases = {
      {"from $all where type in ('PaymentFailed') | last 50",
       [](const stored_event& e) { return e.type == "PaymentFailed"; }, 50, true},
      {"from 'orders-*' where data.amount > 900 | first 30",
       [](const stored_event& e) {
         auto a = number_at(e.data, {"amount"});
         return e.stream.starts_with("orders-") && a && *a > 900;
       },
       30, false},
      {"from $all where data.amount < 50 and metadata.source exists | first 40",
       [](const stored_event& e) {
         auto a = number_at(e.data, {"amount"});
         return a && *a < 50 && member(e.metadata, {"source"}) != nullptr;
       },
       40, false},
      {"from $all where data.customer = 'c-3' | last 10000",
       [](const stored_event& e) {
         const json* c = member(e.data, {"customer"});
         return c && c->is_string() && c->get<std::string>() == "c-3";
       },
       10000, true},
  };
  const char* nodes[] = {"c", "a", "b"};
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const char* node = nodes[i % 3];
    SCOPED_TRACE(c.text);
    events_ref expected;
    for (const auto& e : events_) {
      if (c.where(e)) expected.push_back(&e);
    }
    std::sort(expected.begin(), expected.end(), order);
    if (c.newest_first) std::reverse(expected.begin(), expected.end());
    if (expected.size() > c.limit) expected.resize(c.limit);
    auto answer = via(node).query(c.text);
    ASSERT_TRUE(answer) << answer.err().message;
    const auto* listed = std::get_if<std::vector<q::listed_event>>(&answer->body);
    ASSERT_NE(listed, nullptr);
    ASSERT_EQ(listed->size(), expected.size());
    for (std::size_t k = 0; k < expected.size(); ++k) {
      EXPECT_EQ((*listed)[k].id, expected[k]->id) << "event " << k;
      EXPECT_EQ((*listed)[k].stream, expected[k]->stream) << "event " << k;
      EXPECT_EQ((*listed)[k].timestamp, expected[k]->timestamp) << "event " << k;
    }
  }
}

TEST_F(query_cluster_test, http_answers_and_typed_errors) {
  http_client http(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                           nodes_.at("b")->http_port()));
  auto reply = http.post("/query", R"({"query": "from $all | count() by type"})");
  ASSERT_EQ(reply.status, 200) << reply.body;
  const auto body = json::parse(reply.body);
  std::map<std::string, double> by_type;
  for (const auto& e : events_) by_type[e.type] += 1;
  ASSERT_EQ(body.at("columns"), json::array({"type", "count()"}));
  ASSERT_EQ(body.at("rows").size(), by_type.size());
  for (const auto& row : body.at("rows")) {
    EXPECT_EQ(row.at(1).get<double>(), by_type.at(row.at(0).get<std::string>()));
  }
  EXPECT_EQ(body.at("eventsScanned").get<std::size_t>(), events_.size());
  EXPECT_EQ(body.at("partial"), false);
  EXPECT_EQ(body.at("positions").size(), k_partitions);

  // A parse error names the position and what was expected.
  reply = http.post("/query", R"({"query": "from $all where data.amount >"})");
  EXPECT_EQ(reply.status, 400) << reply.body;
  EXPECT_EQ(json::parse(reply.body).at("error").at("code"), "query_syntax");
  EXPECT_NE(json::parse(reply.body).at("error").at("message").get<std::string>().find("1:"),
            std::string::npos);
  reply = http.post("/query", R"({"query": 42})");
  EXPECT_EQ(reply.status, 400) << reply.body;
  reply = http.post("/query", "not json");
  EXPECT_EQ(reply.status, 400) << reply.body;

  auto bad = via("a").query("from $all | sum(nothing)");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err().code, errc::query_syntax);
  // The node is fine afterwards.
  EXPECT_TRUE(via("a").query("from $all | count()"));
}

}  // namespace
}  // namespace annal::testing
