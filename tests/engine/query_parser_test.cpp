#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "engine/query/limits.hpp"
#include "engine/query/parser.hpp"

namespace {

namespace q = annal::engine::query;
using annal::engine::errc;
using q::compare_op;
using q::parse_query;

// --- Building expected trees ------------------------------------------------

q::field type_field() { return {q::field::kind::type, {}}; }
q::field stream_field() { return {q::field::kind::stream, {}}; }
q::field category_field() { return {q::field::kind::category, {}}; }
q::field data(std::vector<std::string> path) { return {q::field::kind::data, std::move(path)}; }
q::field metadata(std::vector<std::string> path) {
  return {q::field::kind::metadata, std::move(path)};
}

q::value str(std::string s) { return q::value{std::move(s)}; }
q::value num(double d) { return q::value{d}; }

q::expr cmp(q::field subject, compare_op op, std::vector<q::value> values = {}) {
  q::expr e;
  e.what = q::expr::kind::compare;
  e.compare = {std::move(subject), op, std::move(values)};
  return e;
}
q::expr node(q::expr::kind what, std::vector<q::expr> children) {
  q::expr e;
  e.what = what;
  e.children = std::move(children);
  return e;
}
q::expr all_of(std::vector<q::expr> children) {
  return node(q::expr::kind::and_, std::move(children));
}
q::expr any_of(std::vector<q::expr> children) {
  return node(q::expr::kind::or_, std::move(children));
}
q::expr negate(q::expr child) { return node(q::expr::kind::not_, {std::move(child)}); }

// `type = 'A'`, `type = 'B'`, ... as leaves for the precedence tests.
q::expr type_is(std::string t) { return cmp(type_field(), compare_op::eq, {str(std::move(t))}); }

q::time_bound relative(std::int64_t micros) { return {q::time_bound::kind::relative, micros}; }
q::time_bound absolute(std::int64_t micros) { return {q::time_bound::kind::absolute, micros}; }

q::aggregate agg(q::aggregate_kind what, std::optional<q::field> subject = std::nullopt,
                 double percentile = 0) {
  return {what, std::move(subject), percentile};
}

constexpr std::int64_t k_second = 1'000'000;
constexpr std::int64_t k_minute = 60 * k_second;
constexpr std::int64_t k_hour = 60 * k_minute;
constexpr std::int64_t k_day = 24 * k_hour;
// 2026-11-23T10:00:00Z.
constexpr std::int64_t k_2026_11_23_10h = 1'795'428'000 * k_second;

q::query parsed(std::string_view text) {
  auto r = parse_query(text);
  EXPECT_TRUE(r.ok()) << text << "\n  -> " << (r.ok() ? "" : r.err().message);
  return r.ok() ? std::move(r).value() : q::query{};
}

q::expr parsed_where(std::string_view condition) {
  const auto query = parsed("from $all where " + std::string(condition));
  EXPECT_TRUE(query.where.has_value()) << condition;
  return query.where.value_or(q::expr{});
}

// The message of the query_syntax error `text` must fail with.
std::string syntax_error(std::string_view text) {
  auto r = parse_query(text);
  if (r.ok()) {
    ADD_FAILURE() << "parsed, but must fail: " << text;
    return {};
  }
  EXPECT_EQ(r.err().code, errc::query_syntax) << r.err().message;
  return r.err().message;
}

// --- Sources ------------------------------------------------------------------

TEST(query_parser_test, all_with_no_clauses_lists_the_first_100_events) {
  q::query expected;
  expected.from = {q::source::kind::all, ""};
  expected.result = q::event_listing{100, false};
  EXPECT_EQ(parsed("from $all"), expected);
}

TEST(query_parser_test, keywords_are_case_insensitive) {
  EXPECT_EQ(parsed("FROM $ALL WHERE TYPE = 'a' AND Data.x EXISTS SINCE -1m | LAST 5"),
            parsed("from $all where type = 'a' and data.x exists since -1m | last 5"));
}

TEST(query_parser_test, exact_stream) {
  EXPECT_EQ(parsed("from 'orders-1'").from, (q::source{q::source::kind::stream, "orders-1"}));
}

TEST(query_parser_test, trailing_star_is_a_stream_prefix) {
  EXPECT_EQ(parsed("from 'orders-*'").from, (q::source{q::source::kind::stream_prefix, "orders-"}));
}

TEST(query_parser_test, category) {
  EXPECT_EQ(parsed("from category 'orders'").from,
            (q::source{q::source::kind::category, "orders"}));
}

TEST(query_parser_test, doubled_quotes_escape_in_single_and_double_quoted_strings) {
  EXPECT_EQ(parsed("from 'it''s'").from.name, "it's");
  EXPECT_EQ(parsed("from \"say \"\"hi\"\"\"").from.name, "say \"hi\"");
  EXPECT_EQ(parsed("from \"it's\"").from.name, "it's");
  EXPECT_EQ(parsed_where("type = ''''"), cmp(type_field(), compare_op::eq, {str("'")}));
  EXPECT_EQ(parsed_where("type = ''"), cmp(type_field(), compare_op::eq, {str("")}));
}

// --- Predicates ---------------------------------------------------------------

TEST(query_parser_test, every_comparison_operator) {
  const std::pair<std::string, compare_op> ops[] = {{"=", compare_op::eq}, {"!=", compare_op::ne},
                                                    {"<", compare_op::lt}, {"<=", compare_op::le},
                                                    {">", compare_op::gt}, {">=", compare_op::ge}};
  for (const auto& [text, op] : ops) {
    EXPECT_EQ(parsed_where("data.n " + text + " 5"), cmp(data({"n"}), op, {num(5)})) << text;
    // Without spaces too.
    EXPECT_EQ(parsed_where("data.n" + text + "5"), cmp(data({"n"}), op, {num(5)})) << text;
  }
}

TEST(query_parser_test, in_exists_and_prefix) {
  EXPECT_EQ(parsed_where("type in ('A', 'B', 3, null)"),
            cmp(type_field(), compare_op::in, {str("A"), str("B"), num(3), q::null_value{}}));
  EXPECT_EQ(parsed_where("type in ('A')"), cmp(type_field(), compare_op::in, {str("A")}));
  EXPECT_EQ(parsed_where("metadata.trace exists"), cmp(metadata({"trace"}), compare_op::exists));
  EXPECT_EQ(parsed_where("stream prefix 'orders-'"),
            cmp(stream_field(), compare_op::prefix, {str("orders-")}));
}

TEST(query_parser_test, fields) {
  EXPECT_EQ(parsed_where("type exists"), cmp(type_field(), compare_op::exists));
  EXPECT_EQ(parsed_where("stream exists"), cmp(stream_field(), compare_op::exists));
  EXPECT_EQ(parsed_where("category exists"), cmp(category_field(), compare_op::exists));
  EXPECT_EQ(parsed_where("data.customer.address.city exists"),
            cmp(data({"customer", "address", "city"}), compare_op::exists));
  EXPECT_EQ(parsed_where("metadata.user_id exists"),
            cmp(metadata({"user_id"}), compare_op::exists));
}

TEST(query_parser_test, member_names_are_case_sensitive_and_may_be_keywords_or_quoted) {
  EXPECT_EQ(parsed_where("data.Amount exists"), cmp(data({"Amount"}), compare_op::exists));
  EXPECT_EQ(parsed_where("data.type.FROM exists"), cmp(data({"type", "FROM"}), compare_op::exists));
  EXPECT_EQ(parsed_where("data.'first name'.\"x.y\" exists"),
            cmp(data({"first name", "x.y"}), compare_op::exists));
  EXPECT_EQ(parsed_where("data . a . b exists"), cmp(data({"a", "b"}), compare_op::exists));
}

TEST(query_parser_test, values) {
  EXPECT_EQ(parsed_where("data.v = 'text'"), cmp(data({"v"}), compare_op::eq, {str("text")}));
  EXPECT_EQ(parsed_where("data.v = true"), cmp(data({"v"}), compare_op::eq, {true}));
  EXPECT_EQ(parsed_where("data.v = FALSE"), cmp(data({"v"}), compare_op::eq, {false}));
  EXPECT_EQ(parsed_where("data.v = Null"), cmp(data({"v"}), compare_op::eq, {q::null_value{}}));
}

TEST(query_parser_test, numbers_follow_json_syntax) {
  const std::pair<std::string, double> numbers[] = {{"0", 0},
                                                    {"42", 42},
                                                    {"-7", -7},
                                                    {"1.5", 1.5},
                                                    {"-0.25", -0.25},
                                                    {"2e3", 2000},
                                                    {"2E+3", 2000},
                                                    {"1e-2", 0.01},
                                                    {"-1.5e2", -150},
                                                    {"0.5E-1", 0.05},
                                                    {"123456789012", 123456789012.0}};
  for (const auto& [text, expected] : numbers) {
    EXPECT_EQ(parsed_where("data.v = " + text), cmp(data({"v"}), compare_op::eq, {num(expected)}))
        << text;
  }
}

// --- Expressions --------------------------------------------------------------

TEST(query_parser_test, chains_of_or_and_of_and_flatten_into_one_node) {
  EXPECT_EQ(parsed_where("type = 'A' or type = 'B' or type = 'C'"),
            any_of({type_is("A"), type_is("B"), type_is("C")}));
  EXPECT_EQ(parsed_where("type = 'A' and type = 'B' and type = 'C' and type = 'D'"),
            all_of({type_is("A"), type_is("B"), type_is("C"), type_is("D")}));
}

TEST(query_parser_test, not_binds_tighter_than_and_which_binds_tighter_than_or) {
  EXPECT_EQ(parsed_where("type = 'A' or type = 'B' and not type = 'C'"),
            any_of({type_is("A"), all_of({type_is("B"), negate(type_is("C"))})}));
  EXPECT_EQ(parsed_where("not type = 'A' and type = 'B' or type = 'C'"),
            any_of({all_of({negate(type_is("A")), type_is("B")}), type_is("C")}));
  EXPECT_EQ(parsed_where("type = 'A' and type = 'B' or type = 'C' and type = 'D'"),
            any_of({all_of({type_is("A"), type_is("B")}), all_of({type_is("C"), type_is("D")})}));
  EXPECT_EQ(parsed_where("not not type = 'A'"), negate(negate(type_is("A"))));
}

TEST(query_parser_test, parentheses_override_precedence_and_vanish_from_the_tree) {
  EXPECT_EQ(parsed_where("(type = 'A' or type = 'B') and type = 'C'"),
            all_of({any_of({type_is("A"), type_is("B")}), type_is("C")}));
  EXPECT_EQ(parsed_where("not (type = 'A' or type = 'B')"),
            negate(any_of({type_is("A"), type_is("B")})));
  EXPECT_EQ(parsed_where("((type = 'A'))"), type_is("A"));
  // A parenthesised chain stays a child of its own.
  EXPECT_EQ(parsed_where("type = 'A' or (type = 'B' or type = 'C')"),
            any_of({type_is("A"), any_of({type_is("B"), type_is("C")})}));
}

TEST(query_parser_test, nesting_of_64_levels_is_accepted) {
  std::string nots;
  for (int i = 0; i < q::k_max_expr_depth; ++i) nots += "not ";
  q::expr expected = type_is("A");
  for (int i = 0; i < q::k_max_expr_depth; ++i) expected = negate(std::move(expected));
  EXPECT_EQ(parsed_where(nots + "type = 'A'"), expected);

  const std::string open(q::k_max_expr_depth, '(');
  const std::string close(q::k_max_expr_depth, ')');
  EXPECT_EQ(parsed_where(open + "type = 'A'" + close), type_is("A"));
}

// --- Time bounds --------------------------------------------------------------

TEST(query_parser_test, relative_durations) {
  const std::pair<std::string, std::int64_t> durations[] = {
      {"-10m", -10 * k_minute},
      {"-1h30m", -(k_hour + 30 * k_minute)},
      {"-500ms", -500'000},
      {"-2d", -2 * k_day},
      {"-45s", -45 * k_second},
      {"-1d2h3m4s5ms", -(k_day + 2 * k_hour + 3 * k_minute + 4 * k_second + 5000)},
      {"-0s", 0}};
  for (const auto& [text, micros] : durations) {
    EXPECT_EQ(parsed("from $all since " + text).since, relative(micros)) << text;
  }
}

TEST(query_parser_test, rfc3339_timestamps) {
  EXPECT_EQ(parsed("from $all since '2026-11-23T10:00:00Z'").since, absolute(k_2026_11_23_10h));
  EXPECT_EQ(parsed("from $all since '2026-11-23T10:00:00.250Z'").since,
            absolute(k_2026_11_23_10h + 250'000));
  EXPECT_EQ(parsed("from $all since '2026-11-23T10:00:00.1234567Z'").since,
            absolute(k_2026_11_23_10h + 123'456));
  EXPECT_EQ(parsed("from $all since '2026-11-23T11:00:00+01:00'").since,
            absolute(k_2026_11_23_10h));
  EXPECT_EQ(parsed("from $all since '2026-11-23T04:30:00-05:30'").since,
            absolute(k_2026_11_23_10h));
  EXPECT_EQ(parsed("from $all since '2026-11-23t10:00:00z'").since, absolute(k_2026_11_23_10h));
  EXPECT_EQ(parsed("from $all since '1970-01-01T00:00:00Z'").since, absolute(0));
  EXPECT_EQ(parsed("from $all since '1969-12-31T23:59:59Z'").since, absolute(-k_second));
  EXPECT_EQ(parsed("from $all since '2024-02-29T00:00:00Z'").since,
            absolute(1'709'164'800 * k_second));
}

TEST(query_parser_test, a_number_is_absolute_microseconds) {
  EXPECT_EQ(parsed("from $all since 1700000000000000").since, absolute(1'700'000'000'000'000));
}

TEST(query_parser_test, since_and_until) {
  const auto query = parsed("from $all since -1h until '2026-11-23T10:00:00Z'");
  EXPECT_EQ(query.since, relative(-k_hour));
  EXPECT_EQ(query.until, absolute(k_2026_11_23_10h));
  const auto until_only = parsed("from $all until -5m");
  EXPECT_FALSE(until_only.since.has_value());
  EXPECT_EQ(until_only.until, relative(-5 * k_minute));
}

// --- Results ------------------------------------------------------------------

TEST(query_parser_test, first_and_last) {
  EXPECT_EQ(parsed("from $all | first 10").result,
            (decltype(q::query::result){q::event_listing{10, false}}));
  EXPECT_EQ(parsed("from $all | last 50").result,
            (decltype(q::query::result){q::event_listing{50, true}}));
  EXPECT_EQ(parsed("from $all | first 1").result,
            (decltype(q::query::result){q::event_listing{1, false}}));
  EXPECT_EQ(parsed("from $all | last 10000").result,
            (decltype(q::query::result){q::event_listing{10000, true}}));
}

TEST(query_parser_test, every_aggregate_kind) {
  q::aggregation expected;
  expected.aggregates = {
      agg(q::aggregate_kind::count),
      agg(q::aggregate_kind::sum, data({"a"})),
      agg(q::aggregate_kind::avg, data({"b"})),
      agg(q::aggregate_kind::min, metadata({"c"})),
      agg(q::aggregate_kind::max, data({"d", "e"})),
      agg(q::aggregate_kind::count_distinct, type_field()),
      agg(q::aggregate_kind::percentile, data({"f"}), 99.5),
      agg(q::aggregate_kind::percentile, data({"g"}), 50),
      agg(q::aggregate_kind::percentile, data({"g"}), 90),
      agg(q::aggregate_kind::percentile, data({"g"}), 95),
      agg(q::aggregate_kind::percentile, data({"g"}), 99),
      agg(q::aggregate_kind::percentile, data({"g"}), 99.9),
      agg(q::aggregate_kind::percentile, data({"h"}), 100),
  };
  EXPECT_EQ(parsed("from $all | count(), sum(data.a), avg(data.b), min(metadata.c), "
                   "max(data.d.e), count_distinct(type), percentile(data.f, 99.5), p50(data.g), "
                   "p90(data.g), p95(data.g), p99(data.g), p999(data.g), percentile(data.h, 100)")
                .result,
            (decltype(q::query::result){expected}));
}

TEST(query_parser_test, by_every_and_top) {
  q::aggregation expected;
  expected.aggregates = {agg(q::aggregate_kind::count)};
  expected.group_by = {type_field(), data({"region"})};
  expected.bucket_micros = 5 * k_minute;
  expected.top = 10;
  EXPECT_EQ(parsed("from $all | count() by type, data.region every 5m top 10").result,
            (decltype(q::query::result){expected}));

  q::aggregation bucketed;
  bucketed.aggregates = {agg(q::aggregate_kind::avg, data({"ms"}))};
  bucketed.bucket_micros = k_hour + 30 * k_minute;
  EXPECT_EQ(parsed("from $all | avg(data.ms) every 1h30m").result,
            (decltype(q::query::result){bucketed}));

  q::aggregation one_group;
  one_group.aggregates = {agg(q::aggregate_kind::count)};
  EXPECT_EQ(parsed("from $all | count()").result, (decltype(q::query::result){one_group}));
}

TEST(query_parser_test, example_sum_and_count_by_region_over_a_stream_prefix) {
  q::query expected;
  expected.from = {q::source::kind::stream_prefix, "orders-"};
  expected.where =
      all_of({type_is("OrderPlaced"), cmp(data({"amount"}), compare_op::gt, {num(100)})});
  expected.since = relative(-10 * k_minute);
  q::aggregation a;
  a.aggregates = {agg(q::aggregate_kind::sum, data({"amount"})), agg(q::aggregate_kind::count)};
  a.group_by = {data({"region"})};
  expected.result = a;
  EXPECT_EQ(parsed("from 'orders-*' where type = 'OrderPlaced' and data.amount > 100 since -10m | "
                   "sum(data.amount), count() by data.region"),
            expected);
}

TEST(query_parser_test, example_last_50_failed_payments) {
  q::query expected;
  expected.from = {q::source::kind::all, ""};
  expected.where = cmp(type_field(), compare_op::in, {str("PaymentFailed")});
  expected.result = q::event_listing{50, true};
  EXPECT_EQ(parsed("from $all where type in ('PaymentFailed') | last 50"), expected);
}

TEST(query_parser_test, whitespace_and_newlines_separate_tokens) {
  EXPECT_EQ(parsed("\n  from\t$all\r\n  where type = 'A'\n  | last 5\n"),
            parsed("from $all where type = 'A' | last 5"));
}

TEST(query_parser_test, text_of_exactly_64_kib_is_accepted) {
  const std::string head = "from $all where type = '";
  std::string text = head + std::string(q::k_max_query_bytes - head.size() - 1, 'x') + "'";
  ASSERT_EQ(text.size(), q::k_max_query_bytes);
  EXPECT_TRUE(parse_query(text).ok());
}

// --- Errors: one test per kind, each with the exact position and expectation --

TEST(query_parser_test, missing_from) {
  EXPECT_EQ(syntax_error("select * from x"), "at 1:1 (offset 0): expected 'from', found 'select'");
  EXPECT_EQ(syntax_error(""), "at 1:1 (offset 0): expected 'from', found end of query");
}

TEST(query_parser_test, unknown_source) {
  EXPECT_EQ(syntax_error("from $al"),
            "at 1:6 (offset 5): expected a source ($all, category 'name' or 'stream'), found "
            "'$al'");
  EXPECT_EQ(syntax_error("from orders"),
            "at 1:6 (offset 5): expected a source ($all, category 'name' or 'stream'), found "
            "'orders'");
  EXPECT_EQ(syntax_error("from category orders"),
            "at 1:15 (offset 14): expected a category name in quotes, found 'orders'");
}

TEST(query_parser_test, unknown_keyword) {
  EXPECT_EQ(syntax_error("from $all wher type = 'x'"),
            "at 1:11 (offset 10): expected end of query, found 'wher'");
  EXPECT_EQ(syntax_error("from $all where typ = 'x'"),
            "at 1:17 (offset 16): expected a field (type, stream, category, data.x, metadata.x), "
            "found 'typ'");
  EXPECT_EQ(syntax_error("from $all where type like 'x'"),
            "at 1:22 (offset 21): expected an operator (=, !=, <, <=, >, >=, in, exists, prefix), "
            "found 'like'");
  EXPECT_EQ(
      syntax_error("from $all | median(data.x)"),
      "at 1:13 (offset 12): expected first N, last N or an aggregate (count(), sum, avg, min, "
      "max, count_distinct, percentile, p50, p90, p95, p99, p999), found 'median'");
  EXPECT_EQ(syntax_error("from $all | count(), median(data.x)"),
            "at 1:22 (offset 21): expected an aggregate (count(), sum, avg, min, max, "
            "count_distinct, percentile, p50, p90, p95, p99, p999), found 'median'");
}

TEST(query_parser_test, unknown_token) {
  EXPECT_EQ(syntax_error("from $all where type ~ 'x'"),
            "at 1:22 (offset 21): expected an operator (=, !=, <, <=, >, >=, in, exists, prefix), "
            "found '~'");
  EXPECT_EQ(syntax_error("from $all where type ! 'x'"),
            "at 1:22 (offset 21): expected an operator (=, !=, <, <=, >, >=, in, exists, prefix), "
            "found '!'");
  EXPECT_EQ(syntax_error("from $all where @type = 'x'"),
            "at 1:17 (offset 16): expected a field (type, stream, category, data.x, metadata.x), "
            "found '@'");
  // A multi-byte character is shown whole, and columns count characters.
  EXPECT_EQ(syntax_error("from 'ü' → x"), "at 1:10 (offset 10): expected end of query, found '→'");
}

TEST(query_parser_test, position_on_a_later_line) {
  EXPECT_EQ(syntax_error("from $all\nwhere type = 'A'\n  and typo = 1"),
            "at 3:7 (offset 33): expected a field (type, stream, category, data.x, metadata.x), "
            "found 'typo'");
}

TEST(query_parser_test, unterminated_string) {
  EXPECT_EQ(syntax_error("from 'orders"),
            "at 1:6 (offset 5): expected a closing quote (') for this string, found end of query");
  EXPECT_EQ(syntax_error("from $all where type = \"it''s"),
            "at 1:24 (offset 23): expected a closing quote (\") for this string, found end of "
            "query");
  EXPECT_EQ(syntax_error("from 'a''"),
            "at 1:6 (offset 5): expected a closing quote (') for this string, found end of query");
}

TEST(query_parser_test, bad_number) {
  for (const std::string bad : {"01", "1.", "1.2.3", "1e", "1e+", "-01", "1x", "1e400", "0x10"}) {
    EXPECT_EQ(syntax_error("from $all where data.n = " + bad),
              "at 1:26 (offset 25): expected a number like 42, -1.5 or 2e3, found '" + bad + "'")
        << bad;
  }
  EXPECT_EQ(syntax_error("from $all where data.n = -x"),
            "at 1:26 (offset 25): expected a value (a string, a number, true, false or null), "
            "found '-'");
  EXPECT_EQ(syntax_error("from $all where data.n = .5"),
            "at 1:26 (offset 25): expected a value (a string, a number, true, false or null), "
            "found '.'");
}

TEST(query_parser_test, missing_value) {
  EXPECT_EQ(syntax_error("from $all where type ="),
            "at 1:23 (offset 22): expected a value (a string, a number, true, false or null), "
            "found end of query");
  EXPECT_EQ(syntax_error("from $all where type = yes"),
            "at 1:24 (offset 23): expected a value (a string, a number, true, false or null), "
            "found 'yes'");
  EXPECT_EQ(syntax_error("from $all where type in ()"),
            "at 1:26 (offset 25): expected a value (a string, a number, true, false or null), "
            "found ')'");
  EXPECT_EQ(syntax_error("from $all where type in 'A'"),
            "at 1:25 (offset 24): expected '(' after in, found 'A'");
  EXPECT_EQ(syntax_error("from $all where type in ('A' 'B')"),
            "at 1:30 (offset 29): expected ',' or ')', found 'B'");
}

TEST(query_parser_test, bad_duration_or_unit) {
  for (const std::string bad : {"-10y", "-5", "-1h30", "-10mm", "-1.5h", "-99999999999999999d"}) {
    EXPECT_EQ(syntax_error("from $all since " + bad),
              "at 1:17 (offset 16): expected a duration like -10m (units ms, s, m, h, d), found '" +
                  bad + "'")
        << bad;
  }
  EXPECT_EQ(syntax_error("from $all | count() every 5x"),
            "at 1:27 (offset 26): expected a positive duration like 5m (units ms, s, m, h, d), "
            "found '5x'");
}

TEST(query_parser_test, every_needs_a_positive_duration_without_minus) {
  EXPECT_EQ(syntax_error("from $all | count() every -5m"),
            "at 1:27 (offset 26): expected a positive duration like 5m (units ms, s, m, h, d), "
            "found '-5m'");
  EXPECT_EQ(syntax_error("from $all | count() every 0s"),
            "at 1:27 (offset 26): expected a positive duration like 5m (units ms, s, m, h, d), "
            "found '0s'");
  EXPECT_EQ(syntax_error("from $all | count() every '5m'"),
            "at 1:27 (offset 26): expected a positive duration like 5m (units ms, s, m, h, d), "
            "found '5m'");
}

TEST(query_parser_test, bad_timestamp) {
  for (const std::string bad :
       {"2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-11-23T24:00:00Z",
        "2026-11-23T10:00:60Z", "2026-11-23T10:00:00", "2026-11-23", "2026-11-23T10:00:00.Z",
        "2026-11-23T10:00:00+1:00", "26-11-23T10:00:00Z", "2026-11-23T10:00:00Z ", "yesterday"}) {
    EXPECT_EQ(syntax_error("from $all since '" + bad + "'"),
              "at 1:17 (offset 16): expected an RFC 3339 timestamp like '2026-11-23T10:00:00Z', "
              "found '" +
                  bad + "'")
        << bad;
  }
}

TEST(query_parser_test, time_bound_of_the_wrong_kind) {
  const std::string expected =
      "expected a time (a duration like -10m, an RFC 3339 timestamp like '2026-11-23T10:00:00Z' "
      "or microseconds since the epoch), found ";
  EXPECT_EQ(syntax_error("from $all since true"), "at 1:17 (offset 16): " + expected + "'true'");
  EXPECT_EQ(syntax_error("from $all until 10m"), "at 1:17 (offset 16): " + expected + "'10m'");
  EXPECT_EQ(syntax_error("from $all since 1.5"), "at 1:17 (offset 16): " + expected + "'1.5'");
  EXPECT_EQ(syntax_error("from $all since 99999999999999999999"),
            "at 1:17 (offset 16): " + expected + "'99999999999999999999'");
  EXPECT_EQ(syntax_error("from $all since"), "at 1:16 (offset 15): " + expected + "end of query");
}

TEST(query_parser_test, prefix_needs_a_string) {
  EXPECT_EQ(syntax_error("from $all where type prefix 5"),
            "at 1:29 (offset 28): expected a string, found '5'");
  EXPECT_EQ(syntax_error("from $all where type prefix null"),
            "at 1:29 (offset 28): expected a string, found 'null'");
}

TEST(query_parser_test, empty_field_path) {
  EXPECT_EQ(syntax_error("from $all where data = 1"),
            "at 1:22 (offset 21): expected '.' and a member name (data.x), found '='");
  EXPECT_EQ(syntax_error("from $all where metadata exists"),
            "at 1:26 (offset 25): expected '.' and a member name (metadata.x), found 'exists'");
  EXPECT_EQ(syntax_error("from $all where data. = 1"),
            "at 1:23 (offset 22): expected a member name (an identifier or a quoted string), "
            "found '='");
  EXPECT_EQ(syntax_error("from $all where data.1 = 1"),
            "at 1:22 (offset 21): expected a member name (an identifier or a quoted string), "
            "found '1'");
  EXPECT_EQ(syntax_error("from $all | sum(data)"),
            "at 1:21 (offset 20): expected '.' and a member name (data.x), found ')'");
}

TEST(query_parser_test, wildcard_in_the_middle) {
  EXPECT_EQ(syntax_error("from 'ord*ers'"),
            "at 1:6 (offset 5): expected a '*' only at the end of a stream name, found 'ord*ers'");
  EXPECT_EQ(syntax_error("from '**'"),
            "at 1:6 (offset 5): expected a '*' only at the end of a stream name, found '**'");
}

TEST(query_parser_test, invalid_stream_name) {
  const std::string expected =
      "expected a stream name of 1 to 256 bytes of UTF-8 without control characters, found ";
  EXPECT_EQ(syntax_error("from ''"), "at 1:6 (offset 5): " + expected + "''");
  EXPECT_EQ(syntax_error("from '*'"), "at 1:6 (offset 5): " + expected + "'*'");
  EXPECT_EQ(syntax_error("from category ''"), "at 1:15 (offset 14): " + expected + "''");
  EXPECT_EQ(syntax_error("from '" + std::string(257, 's') + "'"),
            "at 1:6 (offset 5): " + expected + "'" + std::string(39, 's') + "...");
}

TEST(query_parser_test, limit_zero_or_too_large) {
  EXPECT_EQ(syntax_error("from $all | first 0"),
            "at 1:19 (offset 18): expected a limit from 1 to 10000, found '0'");
  EXPECT_EQ(syntax_error("from $all | last 10001"),
            "at 1:18 (offset 17): expected a limit from 1 to 10000, found '10001'");
  EXPECT_EQ(syntax_error("from $all | last -5"),
            "at 1:18 (offset 17): expected a limit from 1 to 10000, found '-5'");
  EXPECT_EQ(syntax_error("from $all | last 99999999999999999999999"),
            "at 1:18 (offset 17): expected a limit from 1 to 10000, found "
            "'99999999999999999999999'");
  EXPECT_EQ(syntax_error("from $all | first"),
            "at 1:18 (offset 17): expected a limit from 1 to 10000, found end of query");
}

TEST(query_parser_test, top_zero_or_too_large) {
  EXPECT_EQ(syntax_error("from $all | count() by type top 0"),
            "at 1:33 (offset 32): expected a group count from 1 to 10000, found '0'");
  EXPECT_EQ(syntax_error("from $all | count() by type top 10001"),
            "at 1:33 (offset 32): expected a group count from 1 to 10000, found '10001'");
}

TEST(query_parser_test, percentile_out_of_range) {
  for (const std::string bad : {"0", "100.5", "-1", "1e3"}) {
    EXPECT_EQ(syntax_error("from $all | percentile(data.ms, " + bad + ")"),
              "at 1:33 (offset 32): expected a percentile in (0, 100], found '" + bad + "'")
        << bad;
  }
  EXPECT_EQ(syntax_error("from $all | percentile(data.ms, '50')"),
            "at 1:33 (offset 32): expected a percentile in (0, 100], found '50'");
  EXPECT_EQ(syntax_error("from $all | percentile(data.ms)"),
            "at 1:31 (offset 30): expected ',' and a percentile, found ')'");
}

TEST(query_parser_test, malformed_aggregate_call) {
  EXPECT_EQ(syntax_error("from $all | count(type)"),
            "at 1:19 (offset 18): expected ')' (count takes no field), found 'type'");
  EXPECT_EQ(syntax_error("from $all | count"),
            "at 1:18 (offset 17): expected '(' after count, found end of query");
  EXPECT_EQ(syntax_error("from $all | sum data.x"),
            "at 1:17 (offset 16): expected '(', found 'data'");
  EXPECT_EQ(syntax_error("from $all | sum(data.x"),
            "at 1:23 (offset 22): expected ')', found end of query");
  EXPECT_EQ(syntax_error("from $all | count() by"),
            "at 1:23 (offset 22): expected a field (type, stream, category, data.x, metadata.x), "
            "found end of query");
}

TEST(query_parser_test, missing_closing_parenthesis) {
  EXPECT_EQ(syntax_error("from $all where (type = 'A' or type = 'B'"),
            "at 1:42 (offset 41): expected ')', found end of query");
  EXPECT_EQ(syntax_error("from $all where (type = 'A' | count()"),
            "at 1:29 (offset 28): expected ')', found '|'");
}

TEST(query_parser_test, trailing_input) {
  EXPECT_EQ(syntax_error("from $all | count() extra"),
            "at 1:21 (offset 20): expected end of query, found 'extra'");
  EXPECT_EQ(syntax_error("from $all where type = 'A')"),
            "at 1:27 (offset 26): expected end of query, found ')'");
  EXPECT_EQ(syntax_error("from $all | last 5 | count()"),
            "at 1:20 (offset 19): expected end of query, found '|'");
  EXPECT_EQ(syntax_error("from $all since -1h where type = 'A'"),
            "at 1:21 (offset 20): expected end of query, found 'where'");
  EXPECT_EQ(syntax_error("from $all where type = 'A' and"),
            "at 1:31 (offset 30): expected a field (type, stream, category, data.x, metadata.x), "
            "found end of query");
}

TEST(query_parser_test, since_after_until) {
  EXPECT_EQ(syntax_error("from $all until -1m since -2m"),
            "at 1:21 (offset 20): expected '|' or end of query ('since' comes before 'until'), "
            "found 'since'");
}

TEST(query_parser_test, nesting_deeper_than_64_parentheses) {
  const std::string open(q::k_max_expr_depth + 1, '(');
  const std::string close(q::k_max_expr_depth + 1, ')');
  // The 65th '(' is at offset 16 + 64.
  EXPECT_EQ(syntax_error("from $all where " + open + "type = 'A'" + close),
            "at 1:81 (offset 80): expected an expression nested at most 64 levels deep, found '('");
}

TEST(query_parser_test, nesting_deeper_than_64_nots) {
  std::string nots;
  for (int i = 0; i <= q::k_max_expr_depth; ++i) nots += "not ";
  // The 65th 'not' is at offset 16 + 64 * 4.
  EXPECT_EQ(syntax_error("from $all where " + nots + "type = 'A'"),
            "at 1:273 (offset 272): expected an expression nested at most 64 levels deep, found "
            "'not'");
}

TEST(query_parser_test, tree_deeper_than_64_levels) {
  // Each level nests an or over an and inside one pair of parentheses, so
  // 33 pairs of parentheses (within the textual limit) make a tree 66 deep.
  // Depths are checked bottom-up: the first node over 64 is the and of the
  // outermost level (1 + the 64 levels inside its parentheses).
  constexpr int k_levels = 33;
  std::string text = "from $all where ";
  for (int i = 0; i < k_levels; ++i) text += "type = 'A' or type = 'B' and (";
  text += "type = 'C'" + std::string(k_levels, ')');
  const std::size_t outer_and = std::string("from $all where type = 'A' or type = 'B' ").size();
  EXPECT_EQ(syntax_error(text), "at 1:" + std::to_string(outer_and + 1) + " (offset " +
                                    std::to_string(outer_and) +
                                    "): expected an expression nested at most 64 levels deep, "
                                    "found 'and'");

  // One level less is 64 deep, which is accepted.
  std::string accepted = "from $all where ";
  for (int i = 0; i < k_levels - 1; ++i) accepted += "type = 'A' or type = 'B' and (";
  accepted += "type = 'C'" + std::string(k_levels - 1, ')');
  EXPECT_TRUE(parse_query(accepted).ok());
}

TEST(query_parser_test, nesting_of_60000_parentheses_fails_without_overflowing_the_stack) {
  const std::string text = "from $all where " + std::string(60'000, '(');
  EXPECT_EQ(syntax_error(text),
            "at 1:81 (offset 80): expected an expression nested at most 64 levels deep, found '('");
}

TEST(query_parser_test, every_prefix_of_a_query_parses_or_fails_with_a_position) {
  const std::string text =
      "from 'orders-*' where (type = 'A' or not data.x.'y' in (1, -2.5e3, 'b''c', null)) and "
      "stream prefix \"o\" since '2026-11-23T10:00:00.250+01:00' until -1h30m | "
      "percentile(data.ms, 99.5), count() by data.region every 1m top 5";
  ASSERT_TRUE(parse_query(text).ok());
  for (std::size_t size = 0; size < text.size(); ++size) {
    auto r = parse_query(std::string_view(text).substr(0, size));
    if (!r.ok()) {
      EXPECT_EQ(r.err().code, errc::query_syntax);
      EXPECT_EQ(r.err().message.rfind("at 1:", 0), 0u) << r.err().message;
    }
  }
}

TEST(query_parser_test, text_longer_than_64_kib) {
  const std::string head = "from $all where type = '";
  const std::string text = head + std::string(q::k_max_query_bytes - head.size(), 'x') + "'";
  ASSERT_EQ(text.size(), q::k_max_query_bytes + 1);
  EXPECT_EQ(syntax_error(text),
            "at 1:65537 (offset 65536): expected a query of at most 65536 bytes, found 65537 "
            "bytes");
}

}  // namespace
