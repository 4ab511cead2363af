// The query evaluator (engine/query/plan.hpp, partition_scan.hpp,
// partial_result.hpp, result_table.hpp) against a brute-force evaluation
// written independently here: random events (seeded) in the real partitions
// of a store, every filter kind, every aggregate, group-by, time buckets,
// top K and listings, scanned in small steps and merged in different orders.
// Plus the scan limits and the caps.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "engine/query/group_table.hpp"
#include "engine/query/partial_result.hpp"
#include "engine/query/partition_scan.hpp"
#include "engine/query/percentile_sketch.hpp"
#include "engine/query/plan.hpp"
#include "engine/query/result_table.hpp"
#include "tests/support/store_fixture.hpp"
#include "tests/support/test_rng.hpp"

namespace {

using namespace annal;
using namespace annal::engine::query;
using annal::engine::errc;
using annal::engine::expected_version;
using annal::testing::must;
using annal::testing::store_fixture;
using annal::testing::test_rng;

// ------------------------------------------------------------ the model

// A JSON value as the test wrote it.
struct mval {
  enum class kind { null, boolean, number, string, json };
  kind what = kind::null;
  bool b = false;
  double n = 0;
  std::string s;  // string: the unescaped content; json: the exact text written
};

// A document: nullopt when it is not a JSON object (or not JSON); members by
// dotted path ("nested.x"), objects and arrays also as json values.
using mdoc = std::optional<std::map<std::string, mval>>;

struct model_event {
  std::string stream;
  std::string category;
  partition_id partition;
  lsn position;
  std::uint32_t index = 0;
  event_id id{};
  std::string type;
  std::string data;
  std::string metadata;
  stream_version version;
  timestamp_us timestamp = 0;
  mdoc data_doc;
  mdoc metadata_doc;
};

std::string json_number(double d) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.17g", d);
  return buffer;
}

// A JSON string literal for `s` with the escapes the test uses.
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_of(const mval& v) {
  switch (v.what) {
    case mval::kind::null:
      return "null";
    case mval::kind::boolean:
      return v.b ? "true" : "false";
    case mval::kind::number:
      return json_number(v.n);
    case mval::kind::string:
      return json_string(v.s);
    case mval::kind::json:
      return v.s;
  }
  return "null";
}

mval num(double d) { return {mval::kind::number, false, d, {}}; }
mval str(std::string s) { return {mval::kind::string, false, 0, std::move(s)}; }
mval boolean(bool b) { return {mval::kind::boolean, b, 0, {}}; }
mval null() { return {}; }

const std::vector<std::string> k_regions = {"eu-west",  "eu-east",   "us-west",    "ap-south",
                                            "quote\"d", "new\nline", "caf\xc3\xa9"};

// Random data: the JSON text and its model.
std::pair<std::string, mdoc> random_data(test_rng& rng) {
  const auto form = rng.below(100);
  if (form < 3) return {"{\"amount\": 5", std::nullopt};  // truncated
  if (form < 5) return {"not json", std::nullopt};
  if (form < 7) return {"[1,2]", std::nullopt};
  if (form < 9) return {"", std::nullopt};
  if (form < 10) return {"{\"amount\": 1} trailing", std::nullopt};

  std::vector<std::pair<std::string, mval>> members;
  std::map<std::string, mval> doc;
  const auto a = rng.below(100);
  if (a < 80) {
    members.emplace_back("amount", num((static_cast<double>(rng.below(4001)) - 1000) / 4));
  } else if (a < 85) {
    members.emplace_back("amount", str("12.5"));
  } else if (a < 90) {
    members.emplace_back("amount", null());
  }
  const auto r = rng.below(100);
  if (r < 85) {
    members.emplace_back("region", str(k_regions[rng.below(k_regions.size())]));
  } else if (r < 90) {
    members.emplace_back("region", num(7));
  }
  members.emplace_back("n", num(static_cast<double>(rng.below(40))));
  if (rng.percent(70)) members.emplace_back("flag", boolean(rng.percent(50)));
  if (rng.percent(20)) members.emplace_back("z", null());
  if (rng.percent(30)) {
    mval tags{mval::kind::json, false, 0, rng.percent(50) ? "[1,2]" : "[\"a\", {\"b\": 1}]"};
    members.emplace_back("tags", tags);
  }
  const auto n = rng.below(100);
  if (n < 50) {
    const double x = static_cast<double>(rng.below(200)) / 2;
    const std::string y = "s-" + std::to_string(rng.below(5));
    const std::string text = "{\"x\":" + json_number(x) + ",\"y\":" + json_string(y) + "}";
    members.emplace_back("nested", mval{mval::kind::json, false, 0, text});
    doc["nested.x"] = num(x);
    doc["nested.y"] = str(y);
  } else if (n < 60) {
    members.emplace_back("nested", num(5));
  }
  // Members in random order.
  for (std::size_t i = members.size(); i > 1; --i) std::swap(members[i - 1], members[rng.below(i)]);
  std::string text = "{";
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (i > 0) text += rng.percent(50) ? "," : " , ";
    text += json_string(members[i].first) + ":" + json_of(members[i].second);
    doc[members[i].first] = members[i].second;
  }
  text += "}";
  return {text, doc};
}

std::pair<std::string, mdoc> random_metadata(test_rng& rng) {
  if (rng.percent(40)) return {"", std::nullopt};
  std::map<std::string, mval> doc;
  doc["user"] = str("u-" + std::to_string(rng.below(10)));
  doc["score"] = num(static_cast<double>(rng.below(100)) / 2);
  return {
      "{\"user\":" + json_string(doc["user"].s) + ",\"score\":" + json_number(doc["score"].n) + "}",
      doc};
}

const std::vector<std::string> k_streams = {"orders-1", "orders-2",  "orders-3", "orders-4",
                                            "orders_x", "ordersx-2", "users-1",  "users-2",
                                            "users-3",  "payments-1"};
const std::vector<std::string> k_types = {"OrderPlaced", "OrderShipped", "UserCreated"};

// ------------------------------------------------------------ brute force

// A field's value in the model; nullopt: missing.
std::optional<mval> value_of(const model_event& e, const field& f) {
  switch (f.what) {
    case field::kind::type:
      return str(e.type);
    case field::kind::stream:
      return str(e.stream);
    case field::kind::category:
      return str(e.category);
    case field::kind::data:
    case field::kind::metadata: {
      const mdoc& doc = f.what == field::kind::data ? e.data_doc : e.metadata_doc;
      if (!doc) return std::nullopt;
      std::string path;
      for (const auto& m : f.path) path += (path.empty() ? "" : ".") + m;
      auto it = doc->find(path);
      if (it == doc->end()) return std::nullopt;
      return it->second;
    }
  }
  return std::nullopt;
}

bool same(const std::optional<mval>& v, const value& literal) {
  if (!v) return false;
  if (std::holds_alternative<null_value>(literal)) return v->what == mval::kind::null;
  if (auto* b = std::get_if<bool>(&literal)) return v->what == mval::kind::boolean && v->b == *b;
  if (auto* d = std::get_if<double>(&literal)) return v->what == mval::kind::number && v->n == *d;
  return v->what == mval::kind::string && v->s == std::get<std::string>(literal);
}

bool brute_compare(const std::optional<mval>& v, const comparison& c) {
  const auto& lits = c.values;
  switch (c.op) {
    case compare_op::exists:
      return v.has_value();
    case compare_op::eq:
      return same(v, lits[0]);
    case compare_op::ne:
      return !same(v, lits[0]);
    case compare_op::in:
      return std::any_of(lits.begin(), lits.end(), [&](const value& l) { return same(v, l); });
    case compare_op::prefix:
      return v && v->what == mval::kind::string &&
             v->s.compare(0, std::get<std::string>(lits[0]).size(),
                          std::get<std::string>(lits[0])) == 0;
    default:
      break;
  }
  if (!v) return false;
  int order = 0;
  if (auto* d = std::get_if<double>(&lits[0])) {
    if (v->what != mval::kind::number) return false;
    order = v->n < *d ? -1 : v->n > *d ? 1 : 0;
  } else {
    if (v->what != mval::kind::string) return false;
    order = v->s < std::get<std::string>(lits[0]) ? -1 : v->s > std::get<std::string>(lits[0]);
  }
  switch (c.op) {
    case compare_op::lt:
      return order < 0;
    case compare_op::le:
      return order <= 0;
    case compare_op::gt:
      return order > 0;
    case compare_op::ge:
      return order >= 0;
    default:
      return false;
  }
}

bool brute_eval(const model_event& e, const expr& x) {
  switch (x.what) {
    case expr::kind::compare:
      return brute_compare(value_of(e, x.compare.subject), x.compare);
    case expr::kind::and_:
      return std::all_of(x.children.begin(), x.children.end(),
                         [&](const expr& c) { return brute_eval(e, c); });
    case expr::kind::or_:
      return std::any_of(x.children.begin(), x.children.end(),
                         [&](const expr& c) { return brute_eval(e, c); });
    case expr::kind::not_:
      return !brute_eval(e, x.children[0]);
  }
  return false;
}

bool brute_matches(const model_event& e, const query& q) {
  switch (q.from.what) {
    case source::kind::all:
      break;
    case source::kind::stream:
      if (e.stream != q.from.name) return false;
      break;
    case source::kind::stream_prefix:
      if (e.stream.rfind(q.from.name, 0) != 0) return false;
      break;
    case source::kind::category:
      if (e.category != q.from.name) return false;
      break;
  }
  if (q.since && e.timestamp < q.since->micros) return false;
  if (q.until && e.timestamp >= q.until->micros) return false;
  return !q.where || brute_eval(e, *q.where);
}

// A key cell as the answer shows it: null, bool, number or text.
value cell_of(const std::optional<mval>& v) {
  if (!v || v->what == mval::kind::null) return null_value{};
  switch (v->what) {
    case mval::kind::boolean:
      return v->b;
    case mval::kind::number:
      return v->n;
    default:
      return v->s;
  }
}

// The documented key order: null < false < true < numbers < strings < json.
struct key_cell {
  int rank = 0;
  double n = 0;
  std::string s;
  auto operator<=>(const key_cell&) const = default;
};
key_cell key_cell_of(const std::optional<mval>& v) {
  if (!v || v->what == mval::kind::null) return {0, 0, {}};
  switch (v->what) {
    case mval::kind::boolean:
      return {v->b ? 2 : 1, 0, {}};
    case mval::kind::number:
      return {3, v->n, {}};
    case mval::kind::string:
      return {4, 0, v->s};
    default:
      return {5, 0, v->s};
  }
}

std::string distinct_text(const mval& v) {
  switch (v.what) {
    case mval::kind::null:
      return "z";
    case mval::kind::boolean:
      return v.b ? "t" : "f";
    case mval::kind::number:
      return "n" + json_number(v.n == 0 ? 0.0 : v.n);
    case mval::kind::string:
      return "s" + v.s;
    case mval::kind::json:
      return "j" + v.s;
  }
  return "";
}

struct brute_group {
  std::vector<value> cells;
  std::uint64_t count = 0;
  std::vector<std::vector<double>> numbers;  // per aggregate
  std::vector<std::set<std::string>> distinct;
};

std::int64_t floor_bucket(timestamp_us t, std::int64_t b) {
  return static_cast<std::int64_t>(std::floor(static_cast<long double>(t) / b)) * b;
}

// The exact nearest-rank percentile.
double exact_percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto n = static_cast<double>(v.size());
  auto rank = static_cast<std::size_t>(std::max(1.0, std::ceil(p / 100 * n - 1e-9)));
  rank = std::min(rank, v.size());
  return v[rank - 1];
}

struct brute_table {
  std::vector<std::vector<value>> rows;
  std::vector<bool> approximate;  // per column: a percentile
};

brute_table brute_aggregate(const std::vector<model_event>& events, const query& q) {
  const auto& agg = std::get<aggregation>(q.result);
  std::map<std::vector<key_cell>, brute_group> groups;
  for (const auto& e : events) {
    if (!brute_matches(e, q)) continue;
    std::vector<key_cell> key;
    std::vector<value> cells;
    if (agg.bucket_micros > 0) {
      const double b = static_cast<double>(floor_bucket(e.timestamp, agg.bucket_micros));
      key.push_back({3, b, {}});
      cells.push_back(b);
    }
    for (const auto& f : agg.group_by) {
      key.push_back(key_cell_of(value_of(e, f)));
      cells.push_back(cell_of(value_of(e, f)));
    }
    auto& g = groups[key];
    if (g.numbers.empty()) {
      g.cells = cells;
      g.numbers.resize(agg.aggregates.size());
      g.distinct.resize(agg.aggregates.size());
    }
    ++g.count;
    for (std::size_t a = 0; a < agg.aggregates.size(); ++a) {
      if (!agg.aggregates[a].subject) continue;
      const auto v = value_of(e, *agg.aggregates[a].subject);
      if (!v) continue;
      if (v->what == mval::kind::number) g.numbers[a].push_back(v->n);
      g.distinct[a].insert(distinct_text(*v));
    }
  }
  if (groups.empty() && agg.bucket_micros == 0 && agg.group_by.empty()) {
    auto& g = groups[{}];
    g.numbers.resize(agg.aggregates.size());
    g.distinct.resize(agg.aggregates.size());
  }
  struct row {
    std::vector<key_cell> key;
    std::vector<value> cells;
  };
  std::vector<row> rows;
  for (auto& [key, g] : groups) {
    row r{key, g.cells};
    for (std::size_t a = 0; a < agg.aggregates.size(); ++a) {
      const auto& spec = agg.aggregates[a];
      const auto& nums = g.numbers[a];
      double sum = 0;
      for (double d : nums) sum += d;
      switch (spec.what) {
        case aggregate_kind::count:
          r.cells.push_back(static_cast<double>(g.count));
          break;
        case aggregate_kind::sum:
          r.cells.push_back(sum);
          break;
        case aggregate_kind::avg:
          r.cells.push_back(nums.empty() ? value{null_value{}}
                                         : value{sum / static_cast<double>(nums.size())});
          break;
        case aggregate_kind::min:
          r.cells.push_back(nums.empty() ? value{null_value{}}
                                         : value{*std::min_element(nums.begin(), nums.end())});
          break;
        case aggregate_kind::max:
          r.cells.push_back(nums.empty() ? value{null_value{}}
                                         : value{*std::max_element(nums.begin(), nums.end())});
          break;
        case aggregate_kind::count_distinct:
          r.cells.push_back(static_cast<double>(g.distinct[a].size()));
          break;
        case aggregate_kind::percentile:
          r.cells.push_back(nums.empty() ? value{null_value{}}
                                         : value{exact_percentile(nums, spec.percentile)});
          break;
      }
    }
    rows.push_back(std::move(r));
  }
  const std::size_t first = (agg.bucket_micros > 0 ? 1 : 0) + agg.group_by.size();
  if (agg.top > 0) {
    auto metric = [&](const row& r) {
      const auto* d = std::get_if<double>(&r.cells[first]);
      return d ? std::optional<double>(*d) : std::nullopt;
    };
    std::stable_sort(rows.begin(), rows.end(), [&](const row& a, const row& b) {
      const auto x = metric(a), y = metric(b);
      if (x != y) return x && (!y || *x > *y);
      return a.key < b.key;
    });
    if (rows.size() > agg.top) rows.resize(agg.top);
  }
  brute_table t;
  for (auto& r : rows) t.rows.push_back(std::move(r.cells));
  t.approximate.assign(first, false);
  for (const auto& a : agg.aggregates)
    t.approximate.push_back(a.what == aggregate_kind::percentile);
  return t;
}

std::vector<listed_event> brute_list(const std::vector<model_event>& events, const query& q) {
  const auto& l = std::get<event_listing>(q.result);
  std::vector<listed_event> out;
  for (const auto& e : events) {
    if (!brute_matches(e, q)) continue;
    out.push_back(listed_event{e.stream, e.partition, e.position, e.index, e.id, e.type, e.data,
                               e.metadata, e.version, e.timestamp});
  }
  auto key = [](const listed_event& e) {
    return std::make_tuple(e.timestamp, e.partition.value(), e.position.value(), e.index);
  };
  std::sort(out.begin(), out.end(), [&](const listed_event& a, const listed_event& b) {
    return l.newest_first ? key(b) < key(a) : key(a) < key(b);
  });
  if (out.size() > l.limit) out.resize(l.limit);
  return out;
}

std::string show(const value& v) {
  if (std::holds_alternative<null_value>(v)) return "null";
  if (auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto* d = std::get_if<double>(&v)) return json_number(*d);
  return json_string(std::get<std::string>(v));
}

// ------------------------------------------------------------ building queries

field type_field() { return {field::kind::type, {}}; }
field stream_field() { return {field::kind::stream, {}}; }
field category_field() { return {field::kind::category, {}}; }
field data(std::vector<std::string> path) { return {field::kind::data, std::move(path)}; }
field meta(std::vector<std::string> path) { return {field::kind::metadata, std::move(path)}; }

expr cmp(field f, compare_op op, std::vector<value> values = {}) {
  expr e;
  e.what = expr::kind::compare;
  e.compare = comparison{std::move(f), op, std::move(values)};
  return e;
}
expr node(expr::kind k, std::vector<expr> children) {
  expr e;
  e.what = k;
  e.children = std::move(children);
  return e;
}
expr all_of(std::vector<expr> c) { return node(expr::kind::and_, std::move(c)); }
expr any_of(std::vector<expr> c) { return node(expr::kind::or_, std::move(c)); }
expr negate(expr c) { return node(expr::kind::not_, {std::move(c)}); }

aggregate agg(aggregate_kind k, std::optional<field> f = std::nullopt, double p = 0) {
  return aggregate{k, std::move(f), p};
}

query aggregate_query(std::vector<aggregate> aggs, std::vector<field> by = {},
                      std::int64_t bucket = 0, std::uint32_t top = 0) {
  query q;
  q.result = aggregation{std::move(aggs), std::move(by), bucket, top};
  return q;
}
query listing_query(std::uint32_t limit, bool newest_first) {
  query q;
  q.result = event_listing{limit, newest_first};
  return q;
}
time_bound at(timestamp_us t) { return {time_bound::kind::absolute, t}; }

// Random pieces for the randomized comparison.
const std::vector<field> k_fields = {type_field(),          stream_field(),        category_field(),
                                     data({"amount"}),      data({"region"}),      data({"n"}),
                                     data({"flag"}),        data({"z"}),           data({"nested"}),
                                     data({"nested", "x"}), data({"nested", "y"}), data({"tags"}),
                                     data({"absent"}),      meta({"user"}),        meta({"score"})};
const std::vector<value> k_literals = {null_value{},  true,          false,     0.0,
                                       1.5,           -2.25,         10.0,      25.0,
                                       100.75,        7.0,           "eu-west", std::string("eu"),
                                       "OrderPlaced", "orders-1",    "orders",  "u-3",
                                       "s-1",         "caf\xc3\xa9", "",        "12.5",
                                       "users-2"};

value random_literal(test_rng& rng, bool ordered) {
  while (true) {
    value v = k_literals[rng.below(k_literals.size())];
    if (!ordered || std::holds_alternative<double>(v) || std::holds_alternative<std::string>(v)) {
      return v;
    }
  }
}

expr random_expr(test_rng& rng, int depth) {
  if (depth > 0 && rng.percent(40)) {
    const auto k = rng.below(3);
    if (k == 2) return negate(random_expr(rng, depth - 1));
    std::vector<expr> children;
    for (std::uint64_t i = 0, n = rng.between(2, 3); i < n; ++i) {
      children.push_back(random_expr(rng, depth - 1));
    }
    return node(k == 0 ? expr::kind::and_ : expr::kind::or_, std::move(children));
  }
  const field& f = k_fields[rng.below(k_fields.size())];
  const auto op = static_cast<compare_op>(rng.below(9));
  switch (op) {
    case compare_op::exists:
      return cmp(f, op);
    case compare_op::prefix: {
      value v;
      do v = random_literal(rng, true);
      while (!std::holds_alternative<std::string>(v));
      return cmp(f, op, {v});
    }
    case compare_op::in: {
      std::vector<value> values;
      for (std::uint64_t i = 0, n = rng.between(1, 3); i < n; ++i) {
        values.push_back(random_literal(rng, false));
      }
      return cmp(f, op, values);
    }
    case compare_op::eq:
    case compare_op::ne:
      return cmp(f, op, {random_literal(rng, false)});
    default:
      return cmp(f, op, {random_literal(rng, true)});
  }
}

// ------------------------------------------------------------ the fixture

class query_eval_test : public store_fixture {
 protected:
  static constexpr timestamp_us k_start = 1'700'000'000'000'000;

  // `batches` appends of 1..5 random events to random streams, the clock
  // moving 0..3 s (sometimes back) between them; then the model is read back.
  void fill(std::uint64_t seed, std::size_t batches) {
    test_rng rng(seed);
    timestamp_us now = k_start;
    std::uint64_t id = 1;
    std::map<std::uint64_t, std::pair<mdoc, mdoc>> docs;  // by event id number
    for (std::size_t b = 0; b < batches; ++b) {
      now += static_cast<timestamp_us>(rng.below(3'000'001));
      clock_.set(rng.percent(5) ? now - 5'000'000 : now);
      const std::string& stream = k_streams[rng.below(k_streams.size())];
      std::vector<engine::event_input> events;
      for (std::uint64_t i = 0, n = rng.between(1, 5); i < n; ++i) {
        auto [data_text, data_doc] = random_data(rng);
        auto [meta_text, meta_doc] = random_metadata(rng);
        docs[id] = {data_doc, meta_doc};
        events.push_back(annal::testing::make_event(id++, k_types[rng.below(k_types.size())],
                                                    data_text, meta_text));
      }
      must(append(stream, expected_version::any(), events), "append");
    }
    must(st().sync(), "sync");
    read_model(docs);
  }

  // The model from reads of every stream, with the documents written.
  void read_model(const std::map<std::uint64_t, std::pair<mdoc, mdoc>>& docs) {
    events_.clear();
    for (const auto& stream : k_streams) {
      auto page = read_forward(stream, 0, 100000);
      if (!page) continue;
      std::map<std::uint64_t, std::uint64_t> first_version;  // by lsn
      for (const auto& e : page->events) {
        auto [it, added] = first_version.try_emplace(e.position.value(), e.version.value());
        if (!added) it->second = std::min(it->second, e.version.value());
      }
      for (const auto& e : page->events) {
        model_event m;
        m.stream = stream;
        m.category = stream.substr(0, stream.find('-'));
        m.partition = st().partition_for(stream);
        m.position = e.position;
        m.index = static_cast<std::uint32_t>(e.version.value() - first_version[e.position.value()]);
        m.id = e.id;
        m.type = std::string(e.type);
        m.data = std::string(e.data);
        m.metadata = std::string(e.metadata);
        m.version = e.version;
        m.timestamp = e.timestamp;
        std::uint64_t n = 0;
        for (int i = 8; i < 16; ++i) n = (n << 8) | m.id[static_cast<std::size_t>(i)];
        m.data_doc = docs.at(n).first;
        m.metadata_doc = docs.at(n).second;
        events_.push_back(std::move(m));
      }
    }
  }

  // Scans every partition in steps of random sizes up to `max_step` bytes.
  std::vector<partial_result> scan_all(const std::shared_ptr<const plan>& p, test_rng& rng,
                                       std::size_t max_step) {
    std::vector<partial_result> parts;
    for (std::uint32_t i = 0; i < st().partition_count(); ++i) {
      auto& part = *must(st().get(partition_id{i}), "get");
      partition_scan scan(p, partition_id{i}, part.visible_end());
      scan_usage usage;
      for (int steps = 0;; ++steps) {
        auto done = scan.step(part, rng.between(1, max_step), scan_limits{}, usage);
        if (!done) throw std::runtime_error("step: " + done.err().message);
        if (*done) break;
        if (steps > 1'000'000) throw std::runtime_error("the scan does not finish");
      }
      parts.push_back(scan.take());
      EXPECT_EQ(parts.back().positions.front().second, part.visible_end());
    }
    return parts;
  }

  // The answer of `q`, merged in two orders (which must agree).
  query_answer run(const query& q, test_rng& rng, std::size_t max_step = 4096) {
    auto p = must(plan::compile(q), "compile");
    // Left fold in partition order.
    auto a = scan_all(p, rng, max_step);
    partial_result left;
    for (auto& part : a) must(merge(left, std::move(part), *p), "merge");
    // Pairs from the back: (3 + 2) + (1 + 0).
    auto b = scan_all(p, rng, max_step);
    std::vector<partial_result> level;
    for (std::size_t i = b.size(); i > 0; i -= std::min<std::size_t>(i, 2)) {
      partial_result pair = std::move(b[i - 1]);
      if (i >= 2) must(merge(pair, std::move(b[i - 2]), *p), "merge");
      level.push_back(std::move(pair));
    }
    while (level.size() > 1) {
      partial_result last = std::move(level.back());
      level.pop_back();
      must(merge(level.back(), std::move(last), *p), "merge");
    }
    auto x = finish(std::move(left), *p);
    auto y = finish(std::move(level.front()), *p);
    EXPECT_TRUE(x == y) << "merge orders disagree";
    EXPECT_EQ(x.events_scanned, events_.size());
    EXPECT_FALSE(x.partial);
    EXPECT_EQ(x.positions.size(), st().partition_count());
    return x;
  }

  // Checks the answer of `q` against the brute force; the number of events
  // that pass its filters.
  std::size_t check(const query& q, test_rng& rng, const std::string& what) {
    SCOPED_TRACE(what);
    std::size_t matched = 0;
    for (const auto& e : events_) matched += brute_matches(e, q) ? 1 : 0;
    check_answer(q, run(q, rng));
    return matched;
  }

  void check_answer(const query& q, const query_answer& answer) {
    if (std::holds_alternative<event_listing>(q.result)) {
      const auto& got = std::get<std::vector<listed_event>>(answer.body);
      const auto want = brute_list(events_, q);
      ASSERT_EQ(got.size(), want.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_TRUE(got[i] == want[i])
            << "event " << i << ": got " << got[i].stream << " lsn " << got[i].position.value()
            << "/" << got[i].index << ", want " << want[i].stream << " lsn "
            << want[i].position.value() << "/" << want[i].index;
      }
      return;
    }
    const auto& got = std::get<result_table>(answer.body);
    const auto want = brute_aggregate(events_, q);
    ASSERT_EQ(got.columns.size(), want.approximate.size());
    ASSERT_EQ(got.rows.size(), want.rows.size());
    for (std::size_t r = 0; r < got.rows.size(); ++r) {
      ASSERT_EQ(got.rows[r].size(), want.approximate.size());
      for (std::size_t c = 0; c < got.rows[r].size(); ++c) {
        const value& g = got.rows[r][c];
        const value& w = want.rows[r][c];
        const auto where = "row " + std::to_string(r) + " column " + got.columns[c] + ": got " +
                           show(g) + ", want " + show(w);
        if (want.approximate[c] && std::holds_alternative<double>(w)) {
          ASSERT_TRUE(std::holds_alternative<double>(g)) << where;
          const double x = std::get<double>(g), y = std::get<double>(w);
          EXPECT_LE(std::fabs(x - y), 0.01 * std::fabs(y) + 1e-12) << where;
        } else {
          EXPECT_TRUE(g == w) << where;
        }
      }
    }
  }

  std::vector<model_event> events_;
};

// ------------------------------------------------------------ named cases

TEST_F(query_eval_test, every_filter_aggregate_and_listing_matches_brute_force) {
  fill(42, 700);
  ASSERT_GT(events_.size(), 1500u);
  test_rng rng(7);
  const timestamp_us mid = events_[events_.size() / 2].timestamp;

  std::vector<std::pair<std::string, query>> cases;
  auto count = [] { return aggregate_query({agg(aggregate_kind::count)}); };
  cases.emplace_back("count all", count());
  {
    auto q = count();
    q.where = cmp(type_field(), compare_op::eq, {"OrderPlaced"});
    cases.emplace_back("count by type", q);
  }
  for (auto [kind, name] : {std::pair{source::kind::stream, "orders-1"},
                            std::pair{source::kind::stream_prefix, "orders"},
                            std::pair{source::kind::stream_prefix, "orders-"},
                            std::pair{source::kind::category, "orders"},
                            std::pair{source::kind::category, "orders_x"}}) {
    auto q = count();
    q.from = source{kind, name};
    cases.emplace_back(std::string("source ") + name, q);
  }
  {
    auto q = count();
    q.since = at(mid);
    cases.emplace_back("since", q);
    q.until = at(mid + 200'000'000);
    cases.emplace_back("since until", q);
    q.since.reset();
    cases.emplace_back("until", q);
  }
  const std::vector<std::pair<std::string, expr>> predicates = {
      {"amount eq", cmp(data({"amount"}), compare_op::eq, {10.0})},
      {"amount ne", cmp(data({"amount"}), compare_op::ne, {10.0})},
      {"amount lt", cmp(data({"amount"}), compare_op::lt, {0.0})},
      {"amount le", cmp(data({"amount"}), compare_op::le, {-2.25})},
      {"amount gt", cmp(data({"amount"}), compare_op::gt, {100.75})},
      {"amount ge", cmp(data({"amount"}), compare_op::ge, {100.75})},
      {"amount eq string", cmp(data({"amount"}), compare_op::eq, {"12.5"})},
      {"amount eq null", cmp(data({"amount"}), compare_op::eq, {null_value{}})},
      {"amount ne null", cmp(data({"amount"}), compare_op::ne, {null_value{}})},
      {"amount exists", cmp(data({"amount"}), compare_op::exists)},
      {"region in", cmp(data({"region"}), compare_op::in, {"eu-west", "us-west", 7.0})},
      {"region prefix", cmp(data({"region"}), compare_op::prefix, {"eu-"})},
      {"region lt", cmp(data({"region"}), compare_op::lt, {"eu-west"})},
      {"region escaped", cmp(data({"region"}), compare_op::eq, {"quote\"d"})},
      {"region unicode", cmp(data({"region"}), compare_op::eq, {"caf\xc3\xa9"})},
      {"flag eq true", cmp(data({"flag"}), compare_op::eq, {true})},
      {"flag ne false", cmp(data({"flag"}), compare_op::ne, {false})},
      {"z eq null", cmp(data({"z"}), compare_op::eq, {null_value{}})},
      {"z exists", cmp(data({"z"}), compare_op::exists)},
      {"nested exists", cmp(data({"nested"}), compare_op::exists)},
      {"nested eq", cmp(data({"nested"}), compare_op::eq, {5.0})},
      {"nested.x ge", cmp(data({"nested", "x"}), compare_op::ge, {50.0})},
      {"nested.y eq", cmp(data({"nested", "y"}), compare_op::eq, {"s-1"})},
      {"tags exists", cmp(data({"tags"}), compare_op::exists)},
      {"absent ne", cmp(data({"absent"}), compare_op::ne, {1.0})},
      {"metadata user", cmp(meta({"user"}), compare_op::eq, {"u-3"})},
      {"metadata score", cmp(meta({"score"}), compare_op::lt, {10.0})},
      {"stream prefix", cmp(stream_field(), compare_op::prefix, {"users"})},
      {"category ne", cmp(category_field(), compare_op::ne, {"orders"})},
      {"type in", cmp(type_field(), compare_op::in, {"OrderPlaced", "UserCreated"})},
      {"not", negate(cmp(data({"amount"}), compare_op::gt, {0.0}))},
      {"and mixed", all_of({cmp(type_field(), compare_op::eq, {"OrderPlaced"}),
                            cmp(category_field(), compare_op::eq, {"orders"}),
                            cmp(data({"amount"}), compare_op::gt, {0.0}),
                            cmp(meta({"user"}), compare_op::exists)})},
      {"or mixed", any_of({cmp(type_field(), compare_op::eq, {"UserCreated"}),
                           all_of({cmp(data({"flag"}), compare_op::eq, {true}),
                                   negate(cmp(meta({"score"}), compare_op::ge, {25.0}))})})},
  };
  for (const auto& [name, e] : predicates) {
    auto q = count();
    q.where = e;
    cases.emplace_back("where " + name, q);
  }
  const field amount = data({"amount"});
  for (auto k : {aggregate_kind::sum, aggregate_kind::avg, aggregate_kind::min, aggregate_kind::max,
                 aggregate_kind::count_distinct}) {
    cases.emplace_back("aggregate " + aggregate_name(agg(k, amount)),
                       aggregate_query({agg(k, amount)}));
  }
  for (double p : {1.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
    cases.emplace_back("percentile " + std::to_string(p),
                       aggregate_query({agg(aggregate_kind::percentile, amount, p)}));
  }
  for (const auto& f : {data({"region"}), data({"nested"}), data({"tags"}), data({"flag"}),
                        meta({"user"}), type_field(), stream_field()}) {
    cases.emplace_back("count_distinct " + field_name(f),
                       aggregate_query({agg(aggregate_kind::count_distinct, f)}));
  }
  const std::vector<aggregate> all_aggs = {agg(aggregate_kind::count),
                                           agg(aggregate_kind::sum, amount),
                                           agg(aggregate_kind::avg, amount),
                                           agg(aggregate_kind::min, amount),
                                           agg(aggregate_kind::max, amount),
                                           agg(aggregate_kind::count_distinct, data({"n"})),
                                           agg(aggregate_kind::percentile, amount, 95)};
  cases.emplace_back("all aggregates", aggregate_query(all_aggs));
  cases.emplace_back("by region", aggregate_query(all_aggs, {data({"region"})}));
  cases.emplace_back("by type, category",
                     aggregate_query(all_aggs, {type_field(), category_field()}));
  cases.emplace_back("by flag, nested",
                     aggregate_query(all_aggs, {data({"flag"}), data({"nested"})}));
  cases.emplace_back("by metadata", aggregate_query(all_aggs, {meta({"user"})}));
  cases.emplace_back("sum of a string field",
                     aggregate_query({agg(aggregate_kind::avg, data({"region"})),
                                      agg(aggregate_kind::sum, data({"region"}))},
                                     {type_field()}));
  cases.emplace_back("bucket 60s", aggregate_query(all_aggs, {}, 60'000'000));
  cases.emplace_back("bucket 7s by type", aggregate_query(all_aggs, {type_field()}, 7'000'000));
  cases.emplace_back("top 3 by n",
                     aggregate_query({agg(aggregate_kind::count)}, {data({"n"})}, 0, 3));
  cases.emplace_back("top 2 min by region",
                     aggregate_query({agg(aggregate_kind::min, amount)}, {data({"region"})}, 0, 2));
  cases.emplace_back("top 5 avg bucketed",
                     aggregate_query({agg(aggregate_kind::avg, amount), agg(aggregate_kind::count)},
                                     {stream_field()}, 30'000'000, 5));
  cases.emplace_back("top 100 (more than groups)",
                     aggregate_query({agg(aggregate_kind::count)}, {type_field()}, 0, 100));
  {
    auto q = aggregate_query(all_aggs, {data({"region"})});
    q.where = cmp(data({"region"}), compare_op::eq, {"no such region"});
    cases.emplace_back("grouped, nothing matches", q);
    q = aggregate_query(all_aggs);
    q.where = cmp(data({"region"}), compare_op::eq, {"no such region"});
    cases.emplace_back("ungrouped, nothing matches", q);
  }
  for (std::uint32_t n : {1u, 7u, 50u, 100000u}) {
    for (bool newest : {false, true}) {
      auto q = listing_query(n, newest);
      cases.emplace_back((newest ? "last " : "first ") + std::to_string(n), q);
      q.where = all_of({cmp(data({"amount"}), compare_op::gt, {50.0}),
                        cmp(type_field(), compare_op::ne, {"UserCreated"})});
      q.from = source{source::kind::category, "orders"};
      cases.emplace_back((newest ? "filtered last " : "filtered first ") + std::to_string(n), q);
    }
  }
  for (const auto& [name, q] : cases) {
    const std::size_t matched = check(q, rng, name);
    // Every case but these selects some events and leaves out others.
    if (name.find("nothing matches") != std::string::npos) {
      EXPECT_EQ(matched, 0u) << name;
    } else if (name.find("where") == 0 || name.find("source") == 0 || name.find("since") == 0 ||
               name.find("until") == 0 || name.find("filtered") == 0 || name == "count by type") {
      EXPECT_GT(matched, 0u) << name;
      // `ne` on a member no event has is true for every event.
      if (name != "where absent ne") {
        EXPECT_LT(matched, events_.size()) << name;
      }
    }
  }
}

TEST_F(query_eval_test, random_queries_match_brute_force) {
  fill(1234, 500);
  test_rng rng(99);
  const timestamp_us first = events_.front().timestamp;
  for (int i = 0; i < 150; ++i) {
    query q;
    const auto s = rng.below(10);
    if (s < 2) q.from = source{source::kind::stream, k_streams[rng.below(k_streams.size())]};
    if (s == 2) q.from = source{source::kind::stream_prefix, "orders"};
    if (s == 3) q.from = source{source::kind::category, "users"};
    if (rng.percent(30)) q.since = at(first + static_cast<timestamp_us>(rng.below(600'000'000)));
    if (rng.percent(30)) q.until = at(first + static_cast<timestamp_us>(rng.below(900'000'000)));
    if (rng.percent(85)) q.where = random_expr(rng, 3);
    if (rng.percent(35)) {
      q.result = event_listing{static_cast<std::uint32_t>(rng.between(1, 40)), rng.percent(50)};
    } else {
      aggregation a;
      for (std::uint64_t n = rng.between(1, 3), j = 0; j < n; ++j) {
        const auto kind = static_cast<aggregate_kind>(rng.below(7));
        if (kind == aggregate_kind::count) {
          a.aggregates.push_back(agg(kind));
        } else {
          const double p = static_cast<double>(rng.between(1, 1000)) / 10;
          a.aggregates.push_back(agg(kind, k_fields[rng.below(k_fields.size())], p));
        }
      }
      for (std::uint64_t n = rng.below(3), j = 0; j < n; ++j) {
        a.group_by.push_back(k_fields[rng.below(k_fields.size())]);
      }
      if (rng.percent(30))
        a.bucket_micros = static_cast<std::int64_t>(rng.between(1, 120)) * 1'000'000;
      if (rng.percent(30)) a.top = static_cast<std::uint32_t>(rng.between(1, 10));
      // Top K ranks by the first aggregate: the sketch's estimate would rank
      // differently from the exact percentile the brute force has.
      if (a.top > 0 && a.aggregates[0].what == aggregate_kind::percentile) {
        a.aggregates[0] = agg(aggregate_kind::count);
      }
      q.result = a;
    }
    check(q, rng, "random query " + std::to_string(i));
    if (HasFatalFailure()) return;
  }
}

TEST_F(query_eval_test, one_record_per_step_gives_the_same_answer) {
  fill(5, 200);
  test_rng rng(1);
  auto q = aggregate_query({agg(aggregate_kind::count), agg(aggregate_kind::sum, data({"amount"}))},
                           {data({"region"})});
  const auto big = run(q, rng, 1 << 20);
  const auto small = run(q, rng, 1);
  EXPECT_TRUE(big == small);
}

// ------------------------------------------------------------ limits and caps

class query_limits_test : public query_eval_test {
 protected:
  void SetUp() override {
    query_eval_test::SetUp();
    fill(77, 300);
  }

  // Scans partition 0..n with `limits`, one budget shared; the first error or
  // the merged result.
  engine::result<query_answer> scan_with(const query& q, const scan_limits& limits) {
    auto p = must(plan::compile(q), "compile");
    partial_result merged;
    scan_usage usage;
    for (std::uint32_t i = 0; i < st().partition_count(); ++i) {
      auto& part = *must(st().get(partition_id{i}), "get");
      partition_scan scan(p, partition_id{i}, part.visible_end());
      while (true) {
        auto done = scan.step(part, 512, limits, usage);
        if (!done) return done.err();
        if (*done) break;
      }
      must(merge(merged, scan.take(), *p), "merge");
    }
    return finish(std::move(merged), *p);
  }

  // `count` events of about 1 KiB ({"i":n,"pad":"ppp..."}, n from 0) in
  // `stream`, in batches of 100, with event ids from `first_id` on.
  void append_big(const std::string& stream, std::uint64_t first_id, std::uint64_t count) {
    const std::string pad(1000, 'p');
    std::vector<engine::event_input> events;
    for (std::uint64_t n = 0; n < count; ++n) {
      events.push_back(annal::testing::make_event(
          first_id + n, "Big", "{\"i\":" + std::to_string(n) + ",\"pad\":\"" + pad + "\"}"));
      if (events.size() == 100 || n + 1 == count) {
        must(append(stream, expected_version::any(), events), "append");
        events.clear();
      }
    }
    must(st().sync(), "sync");
  }

  // `last n` of `stream`, with listed bytes capped at `max_listed_bytes`.
  engine::result<query_answer> last_of(const std::string& stream, std::uint32_t n,
                                       std::uint64_t max_listed_bytes, bool allow_partial = false) {
    auto q = listing_query(n, true);
    q.from = source{source::kind::stream, stream};
    scan_limits limits;
    limits.max_listed_bytes = max_listed_bytes;
    limits.allow_partial = allow_partial;
    return scan_with(q, limits);
  }
};

TEST_F(query_limits_test, too_many_events_scanned_is_query_too_large) {
  scan_limits limits;
  limits.max_events_scanned = 10;
  auto r = scan_with(aggregate_query({agg(aggregate_kind::count)}), limits);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::query_too_large);
}

TEST_F(query_limits_test, too_many_events_scanned_with_allow_partial_stops_at_a_record) {
  scan_limits limits;
  limits.max_events_scanned = 100;
  limits.allow_partial = true;
  auto r = scan_with(aggregate_query({agg(aggregate_kind::count)}), limits);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_TRUE(r->partial);
  EXPECT_LE(r->events_scanned, 100u);
  EXPECT_GT(r->events_scanned, 90u);  // batches hold at most 5 events
  const auto& table = std::get<result_table>(r->body);
  // The count is the events before each partition's stop position.
  std::uint64_t expected = 0;
  for (const auto& e : events_) {
    for (const auto& [partition, stop] : r->positions) {
      if (partition == e.partition && e.position < stop) ++expected;
    }
  }
  EXPECT_EQ(std::get<double>(table.rows.at(0).at(0)), static_cast<double>(expected));
  EXPECT_EQ(expected, r->events_scanned);  // count() over everything scanned
  bool stopped_early = false;
  for (const auto& [partition, stop] : r->positions) {
    stopped_early = stopped_early || stop < must(st().get(partition), "get")->visible_end();
  }
  EXPECT_TRUE(stopped_early);
}

TEST_F(query_limits_test, past_deadline_is_query_timeout) {
  scan_limits limits;
  limits.deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  auto r = scan_with(aggregate_query({agg(aggregate_kind::count)}), limits);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::query_timeout);
}

TEST_F(query_limits_test, past_deadline_with_allow_partial_scans_nothing) {
  scan_limits limits;
  limits.deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  limits.allow_partial = true;
  auto r = scan_with(listing_query(10, false), limits);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_TRUE(r->partial);
  EXPECT_EQ(r->events_scanned, 0u);
  EXPECT_TRUE(std::get<std::vector<listed_event>>(r->body).empty());
  for (const auto& [partition, stop] : r->positions) EXPECT_EQ(stop.value(), 0u);
}

TEST_F(query_limits_test, scan_stops_at_its_end_and_ignores_later_appends) {
  auto p = must(plan::compile(aggregate_query({agg(aggregate_kind::count)})), "compile");
  auto& part = partition_of("orders-1");
  const lsn end = part.visible_end();
  partition_scan scan(p, part.id(), end);
  scan_usage usage;
  ASSERT_FALSE(*scan.step(part, 1, scan_limits{}, usage));
  must(append("orders-1", expected_version::any(), fresh_events(3)), "append");
  must(st().sync(), "sync");
  while (!*scan.step(part, 1000, scan_limits{}, usage)) {
  }
  auto r = scan.take();
  EXPECT_EQ(r.positions.front().second, end);
  std::uint64_t expected = 0;
  for (const auto& e : events_) expected += e.partition == part.id() ? 1 : 0;
  EXPECT_EQ(r.events_scanned, expected);
}

TEST_F(query_limits_test, too_many_groups_is_query_too_large) {
  // Every event its own group by data.n would not pass the cap; a table
  // filled directly does.
  group_table groups({aggregate_kind::count});
  std::string key;
  for (std::size_t i = 0; i < k_max_groups; ++i) {
    key = std::to_string(i);
    ASSERT_NE(groups.find_or_add(key), string_index::npos);
  }
  EXPECT_EQ(groups.find_or_add("one more"), string_index::npos);
  EXPECT_NE(groups.find_or_add("7"), string_index::npos);  // existing groups still found

  group_table other({aggregate_kind::count});
  other.find_or_add("one more");
  auto s = groups.merge(other);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.err().code, errc::query_too_large);
}

TEST_F(query_limits_test, too_many_distinct_values_is_query_too_large) {
  group_table a({aggregate_kind::count_distinct});
  group_table b({aggregate_kind::count_distinct});
  const auto ga = a.find_or_add("x");
  const auto gb = b.find_or_add("y");
  std::string v;
  for (std::size_t i = 0; i < k_max_distinct_values; ++i) {
    v = "s" + std::to_string(i);
    ASSERT_TRUE(a.add_distinct(ga, 0, v));
    if (i % 2 == 0) {
      ASSERT_TRUE(b.add_distinct(gb, 0, v));
    }
  }
  EXPECT_FALSE(a.add_distinct(ga, 0, "another"));
  EXPECT_TRUE(a.add_distinct(ga, 0, "s5"));  // already there
  // Merging: group y's values count again (distinct per group).
  auto s = a.merge(b);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.err().code, errc::query_too_large);
}

TEST_F(query_limits_test, group_cap_in_a_scan_is_query_too_large) {
  // 100,001 distinct keys from a time bucket of 1 us over 100,001 batches
  // would be slow to write; group by the event id's data instead.
  std::vector<engine::event_input> events;
  for (std::uint64_t i = 0; i < k_max_groups + 1; ++i) {
    events.push_back(
        annal::testing::make_event(1'000'000 + i, "Bulk", "{\"g\":" + std::to_string(i) + "}"));
    if (events.size() == 10000 || i == k_max_groups) {
      must(append("bulk-1", expected_version::any(), events), "append");
      events.clear();
    }
  }
  must(st().sync(), "sync");
  auto q = aggregate_query({agg(aggregate_kind::count)}, {data({"g"})});
  q.from = source{source::kind::stream, "bulk-1"};
  auto r = scan_with(q, scan_limits{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::query_too_large);
  // One group fewer passes.
  q.where = cmp(data({"g"}), compare_op::lt, {static_cast<double>(k_max_groups)});
  auto ok = scan_with(q, scan_limits{});
  ASSERT_TRUE(ok) << ok.err().message;
  EXPECT_EQ(std::get<result_table>(ok->body).rows.size(), k_max_groups);
}

TEST_F(query_limits_test, listed_bytes_over_the_cap_are_query_too_large) {
  append_big("big-1", 2'000'000, 200);
  // 100 candidates of about 1 KiB each: over 50 KiB, under 200 KiB.
  auto r = last_of("big-1", 100, 50 * 1024);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::query_too_large);
  EXPECT_NE(r.err().message.find("51200 bytes"), std::string::npos) << r.err().message;
  // Also with allow_partial: the cap bounds memory.
  r = last_of("big-1", 100, 50 * 1024, true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::query_too_large);

  auto ok = last_of("big-1", 100, 200 * 1024);
  ASSERT_TRUE(ok) << ok.err().message;
  const auto& listed = std::get<std::vector<listed_event>>(ok->body);
  ASSERT_EQ(listed.size(), 100u);
  EXPECT_NE(listed.front().data.find("\"i\":199,"), std::string::npos) << listed.front().data;
}

TEST_F(query_limits_test, replaced_candidates_give_their_bytes_back) {
  // 2,000 events of about 1 KiB (2 MB) listed 10 at a time: at most 10 held.
  append_big("big-2", 3'000'000, 2000);
  // Newest first: each event scanned replaces the oldest candidate. Each
  // holds about 1,025 bytes: 10 fit in 11 KiB, 12 do not.
  auto ok = last_of("big-2", 10, 11 * 1024);
  ASSERT_TRUE(ok) << ok.err().message;
  const auto& listed = std::get<std::vector<listed_event>>(ok->body);
  ASSERT_EQ(listed.size(), 10u);
  EXPECT_NE(listed.front().data.find("\"i\":1999,"), std::string::npos) << listed.front().data;
  EXPECT_NE(listed.back().data.find("\"i\":1990,"), std::string::npos) << listed.back().data;
  auto over = last_of("big-2", 12, 11 * 1024);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.err().code, errc::query_too_large);
}

// ------------------------------------------------------------ plans and sketches

TEST(query_plan_test, compile_rejects_what_the_evaluator_cannot_run) {
  auto bad = [](query q, errc code) {
    auto p = plan::compile(std::move(q));
    EXPECT_FALSE(p);
    if (!p) {
      EXPECT_EQ(p.err().code, code) << p.err().message;
    }
  };
  auto count = aggregate_query({agg(aggregate_kind::count)});
  {
    auto q = count;
    q.since = time_bound{time_bound::kind::relative, -1000};
    bad(q, errc::invalid_argument);
  }
  {
    auto q = count;
    q.where = cmp(data({}), compare_op::exists);
    bad(q, errc::invalid_argument);
  }
  for (auto [op, values] : {std::pair{compare_op::lt, std::vector<value>{true}},
                            std::pair{compare_op::ge, std::vector<value>{null_value{}}},
                            std::pair{compare_op::prefix, std::vector<value>{1.0}},
                            std::pair{compare_op::eq, std::vector<value>{}},
                            std::pair{compare_op::in, std::vector<value>{}},
                            std::pair{compare_op::exists, std::vector<value>{1.0}},
                            std::pair{compare_op::eq, std::vector<value>{std::nan("")}}}) {
    auto q = count;
    q.where = cmp(data({"a"}), op, values);
    bad(q, errc::invalid_argument);
  }
  {
    auto q = count;
    q.where = node(expr::kind::not_, {});
    bad(q, errc::invalid_argument);
  }
  bad(aggregate_query({}), errc::invalid_argument);
  bad(aggregate_query({agg(aggregate_kind::count, data({"a"}))}), errc::invalid_argument);
  bad(aggregate_query({agg(aggregate_kind::sum)}), errc::invalid_argument);
  bad(aggregate_query({agg(aggregate_kind::percentile, data({"a"}), 0)}), errc::invalid_argument);
  bad(aggregate_query({agg(aggregate_kind::percentile, data({"a"}), 100.5)}),
      errc::invalid_argument);
  bad(aggregate_query({agg(aggregate_kind::count)}, {}, -5), errc::invalid_argument);
  bad(listing_query(0, false), errc::invalid_argument);
  bad(listing_query(k_max_listed_events + 1, false), errc::query_too_large);
}

TEST(query_plan_test, column_names) {
  auto p = must(plan::compile(aggregate_query(
                    {agg(aggregate_kind::count), agg(aggregate_kind::sum, data({"amount"})),
                     agg(aggregate_kind::percentile, data({"latency"}), 99),
                     agg(aggregate_kind::percentile, meta({"a", "b"}), 99.9),
                     agg(aggregate_kind::count_distinct, stream_field())},
                    {data({"region"}), category_field()}, 60'000'000)),
                "compile");
  EXPECT_EQ(p->column_names(),
            (std::vector<std::string>{"bucket", "data.region", "category", "count()",
                                      "sum(data.amount)", "p99(data.latency)",
                                      "p99.9(metadata.a.b)", "count_distinct(stream)"}));
}

TEST(percentile_sketch_test, every_percentile_within_one_percent) {
  test_rng rng(3);
  percentile_sketch whole, a, b;
  std::vector<double> values;
  for (int i = 0; i < 20000; ++i) {
    double v = std::exp(static_cast<double>(rng.below(4000)) / 100 - 20);  // 2e-9 .. 2e8
    if (rng.percent(30)) v = -v;
    if (rng.percent(2)) v = 0;
    values.push_back(v);
    whole.add(v);
    (rng.percent(50) ? a : b).add(v);
  }
  a.merge(b);
  for (double p = 0.5; p <= 100; p += 0.5) {
    const double exact = exact_percentile(values, p);
    for (const auto* s : {&whole, &a}) {
      const double got = *s->percentile(p);
      EXPECT_LE(std::fabs(got - exact), 0.01 * std::fabs(exact) + 1e-300) << "p" << p;
    }
  }
  EXPECT_EQ(*whole.percentile(50), *a.percentile(50));
  EXPECT_FALSE(percentile_sketch{}.percentile(50));
}

TEST(percentile_sketch_test, extreme_magnitudes_stay_in_range) {
  percentile_sketch s;
  for (double v : {1e308, -1e308, 1e-307, -1e-307, 5e-324, 0.0, 1.0}) s.add(v);
  EXPECT_EQ(s.count(), 7u);
  EXPECT_GT(s.positive().offset, -percentile_sketch::k_max_index);
  EXPECT_LT(s.positive().offset + static_cast<std::int32_t>(s.positive().counts.size()),
            percentile_sketch::k_max_index);
  EXPECT_LE(std::fabs(*s.percentile(100) - 1e308), 0.01 * 1e308);
  EXPECT_LE(std::fabs(*s.percentile(1) + 1e308), 0.01 * 1e308);
}

}  // namespace
