#include "engine/query/parser.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "engine/partitioning.hpp"
#include "engine/query/lexer.hpp"
#include "engine/query/limits.hpp"

namespace annal::engine::query {
namespace {

constexpr std::int64_t k_micros_per_ms = 1000;
constexpr std::int64_t k_micros_per_second = 1000 * k_micros_per_ms;
constexpr std::int64_t k_micros_per_minute = 60 * k_micros_per_second;
constexpr std::int64_t k_micros_per_hour = 60 * k_micros_per_minute;
constexpr std::int64_t k_micros_per_day = 24 * k_micros_per_hour;

// What the error messages say was expected. Tests match them literally.
constexpr std::string_view k_expected_field =
    "a field (type, stream, category, data.x, metadata.x)";
constexpr std::string_view k_expected_value = "a value (a string, a number, true, false or null)";
constexpr std::string_view k_expected_number = "a number like 42, -1.5 or 2e3";
constexpr std::string_view k_expected_operator =
    "an operator (=, !=, <, <=, >, >=, in, exists, prefix)";
constexpr std::string_view k_expected_source = "a source ($all, category 'name' or 'stream')";
constexpr std::string_view k_expected_stream_name =
    "a stream name of 1 to 256 bytes of UTF-8 without control characters";
constexpr std::string_view k_expected_time =
    "a time (a duration like -10m, an RFC 3339 timestamp like '2026-11-23T10:00:00Z' or "
    "microseconds since the epoch)";
constexpr std::string_view k_expected_duration = "a duration like -10m (units ms, s, m, h, d)";
constexpr std::string_view k_expected_bucket = "a positive duration like 5m (units ms, s, m, h, d)";
constexpr std::string_view k_expected_timestamp =
    "an RFC 3339 timestamp like '2026-11-23T10:00:00Z'";
constexpr std::string_view k_expected_member = "a member name (an identifier or a quoted string)";
constexpr std::string_view k_expected_result =
    "first N, last N or an aggregate (count(), sum, avg, min, max, count_distinct, "
    "percentile, p50, p90, p95, p99, p999)";
constexpr std::string_view k_expected_aggregate =
    "an aggregate (count(), sum, avg, min, max, count_distinct, percentile, p50, p90, p95, p99, "
    "p999)";
constexpr std::string_view k_expected_percentile = "a percentile in (0, 100]";
constexpr std::string_view k_expected_end = "end of query";

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// JSON number syntax: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, and a
// finite double.
std::optional<double> parse_json_number(std::string_view s) {
  std::size_t i = 0;
  auto digits = [&] {
    const std::size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - from;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (digits() == 0) {
    return std::nullopt;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return std::nullopt;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<std::uint64_t> parse_unsigned(std::string_view s) {
  if (!all_digits(s)) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// "1h30m", "500ms", "2d": one or more (digits, unit) pairs, no sign. The
// total in microseconds; nullopt for anything else or an int64 overflow.
std::optional<std::int64_t> parse_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t digits_from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    const auto count = parse_unsigned(s.substr(digits_from, i - digits_from));
    const std::size_t unit_from = i;
    while (i < s.size() && !(s[i] >= '0' && s[i] <= '9')) ++i;
    const std::string_view unit = s.substr(unit_from, i - unit_from);
    std::int64_t scale = 0;
    if (unit == "ms") {
      scale = k_micros_per_ms;
    } else if (unit == "s") {
      scale = k_micros_per_second;
    } else if (unit == "m") {
      scale = k_micros_per_minute;
    } else if (unit == "h") {
      scale = k_micros_per_hour;
    } else if (unit == "d") {
      scale = k_micros_per_day;
    }
    if (!count || scale == 0) return std::nullopt;
    if (*count > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / scale)) {
      return std::nullopt;
    }
    const auto part = static_cast<std::int64_t>(*count) * scale;
    if (total > std::numeric_limits<std::int64_t>::max() - part) return std::nullopt;
    total += part;
  }
  return total;
}

// RFC 3339: YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|+HH:MM|-HH:MM), as
// microseconds since the epoch. Digits of the fraction beyond microseconds
// are dropped; a leap second (:60) is refused (Unix time has none).
std::optional<timestamp_us> parse_rfc3339(std::string_view s) {
  std::size_t i = 0;
  auto number = [&](std::size_t width) -> std::optional<int> {
    if (i + width > s.size()) return std::nullopt;
    int v = 0;
    for (std::size_t k = 0; k < width; ++k) {
      const char c = s[i + k];
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    i += width;
    return v;
  };
  auto literal = [&](std::string_view choices) {
    if (i < s.size() && choices.find(s[i]) != std::string_view::npos) {
      ++i;
      return true;
    }
    return false;
  };
  const auto year = number(4);
  if (!year || !literal("-")) return std::nullopt;
  const auto month = number(2);
  if (!month || !literal("-")) return std::nullopt;
  const auto day = number(2);
  if (!day || !literal("Tt ")) return std::nullopt;
  const auto hour = number(2);
  if (!hour || !literal(":")) return std::nullopt;
  const auto minute = number(2);
  if (!minute || !literal(":")) return std::nullopt;
  const auto second = number(2);
  if (!second || *hour > 23 || *minute > 59 || *second > 59) return std::nullopt;
  std::int64_t fraction_micros = 0;
  if (literal(".")) {
    std::size_t digits = 0;
    std::int64_t scale = 100000;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      fraction_micros += (s[i] - '0') * scale;
      scale /= 10;
      ++digits;
      ++i;
    }
    if (digits == 0) return std::nullopt;
  }
  std::int64_t offset_micros = 0;
  if (!literal("Zz")) {
    const bool negative = i < s.size() && s[i] == '-';
    if (!literal("+-")) return std::nullopt;
    const auto offset_hours = number(2);
    if (!offset_hours || !literal(":")) return std::nullopt;
    const auto offset_minutes = number(2);
    if (!offset_minutes || *offset_hours > 23 || *offset_minutes > 59) return std::nullopt;
    offset_micros = *offset_hours * k_micros_per_hour + *offset_minutes * k_micros_per_minute;
    if (negative) offset_micros = -offset_micros;
  }
  if (i != s.size()) return std::nullopt;

  const std::chrono::year_month_day date{std::chrono::year{*year},
                                         std::chrono::month{static_cast<unsigned>(*month)},
                                         std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok()) return std::nullopt;
  const std::int64_t days = std::chrono::sys_days{date}.time_since_epoch().count();
  return days * k_micros_per_day + *hour * k_micros_per_hour + *minute * k_micros_per_minute +
         *second * k_micros_per_second + fraction_micros - offset_micros;
}

// An expression with the number of and / or / not nodes on its deepest path.
struct parsed_expr {
  expr tree;
  int depth = 0;
};

// Recursive descent over the grammar in docs/queries.md; one token of
// lookahead (current_). Failures are thrown as engine::error and caught by
// parse_query, which keeps the descent free of error plumbing. Not
// thread-safe; lives for one parse_query call.
class parser {
 public:
  explicit parser(std::string_view text) : text_(text), lexer_(text) { advance(); }

  query parse() {
    query q;
    if (!at_keyword("from")) fail("'from'");
    advance();
    q.from = parse_source();
    if (at_keyword("where")) {
      advance();
      q.where = parse_or().tree;
    }
    if (at_keyword("since")) {
      advance();
      q.since = parse_time();
    }
    if (at_keyword("until")) {
      advance();
      q.until = parse_time();
      if (at_keyword("since")) fail("'|' or end of query ('since' comes before 'until')");
    }
    if (at(token::kind::pipe)) {
      advance();
      q.result = parse_result();
    }
    if (!at(token::kind::end)) fail(k_expected_end);
    return q;
  }

 private:
  void advance() {
    auto next = lexer_.next();
    if (!next) throw std::move(next.err());
    current_ = std::move(next.value());
  }

  [[noreturn]] void fail_at(const token& t, std::string_view expected) const {
    throw syntax_error(text_, t.offset, expected, describe_token(t));
  }
  [[noreturn]] void fail(std::string_view expected) const { fail_at(current_, expected); }

  bool at(token::kind what) const { return current_.what == what; }
  bool at_keyword(std::string_view keyword) const {
    return at(token::kind::word) && iequals(current_.text, keyword);
  }

  void expect(token::kind what, std::string_view expected) {
    if (!at(what)) fail(expected);
    advance();
  }

  source parse_source() {
    source s;
    if (at(token::kind::dollar_word)) {
      if (!iequals(current_.text, "$all")) fail(k_expected_source);
      s.what = source::kind::all;
      advance();
      return s;
    }
    if (at_keyword("category")) {
      advance();
      if (!at(token::kind::string)) fail("a category name in quotes");
      s.what = source::kind::category;
      s.name = current_.value;
      if (!valid_stream_id(s.name)) fail(k_expected_stream_name);
      advance();
      return s;
    }
    if (!at(token::kind::string)) fail(k_expected_source);
    s.name = current_.value;
    s.what = source::kind::stream;
    if (const auto star = s.name.find('*'); star != std::string::npos) {
      if (star + 1 != s.name.size()) fail("a '*' only at the end of a stream name");
      s.what = source::kind::stream_prefix;
      s.name.pop_back();
    }
    if (!valid_stream_id(s.name)) fail(k_expected_stream_name);
    advance();
    return s;
  }

  // Counts one level of textual nesting (a '(' or a 'not') at `t`.
  void enter_nesting(const token& t) {
    if (++nesting_ > k_max_expr_depth) fail_at(t, nesting_expected());
  }
  static std::string nesting_expected() {
    return fmt::format("an expression nested at most {} levels deep", k_max_expr_depth);
  }
  // A node made at `t` with its deepest child `child_depth` levels deep.
  int node_depth(const token& t, int child_depth) const {
    if (child_depth + 1 > k_max_expr_depth) fail_at(t, nesting_expected());
    return child_depth + 1;
  }

  // expr := and_expr ('or' and_expr)*
  parsed_expr parse_or() { return parse_chain("or", expr::kind::or_, &parser::parse_and); }
  // and_expr := unary ('and' unary)*
  parsed_expr parse_and() { return parse_chain("and", expr::kind::and_, &parser::parse_unary); }

  // operand (keyword operand)*, flattened into one node with every operand.
  parsed_expr parse_chain(std::string_view keyword, expr::kind what,
                          parsed_expr (parser::*operand)()) {
    parsed_expr first = (this->*operand)();
    if (!at_keyword(keyword)) return first;
    const token op = current_;
    parsed_expr chain;
    chain.tree.what = what;
    int deepest = first.depth;
    chain.tree.children.push_back(std::move(first.tree));
    while (at_keyword(keyword)) {
      advance();
      parsed_expr next = (this->*operand)();
      deepest = std::max(deepest, next.depth);
      chain.tree.children.push_back(std::move(next.tree));
    }
    chain.depth = node_depth(op, deepest);
    return chain;
  }

  // unary := 'not' unary | '(' expr ')' | predicate
  parsed_expr parse_unary() {
    if (at_keyword("not")) {
      const token op = current_;
      enter_nesting(op);
      advance();
      parsed_expr inner = parse_unary();
      --nesting_;
      parsed_expr negated;
      negated.tree.what = expr::kind::not_;
      negated.tree.children.push_back(std::move(inner.tree));
      negated.depth = node_depth(op, inner.depth);
      return negated;
    }
    if (at(token::kind::lparen)) {
      enter_nesting(current_);
      advance();
      parsed_expr inner = parse_or();
      expect(token::kind::rparen, "')'");
      --nesting_;
      return inner;
    }
    parsed_expr leaf;
    leaf.tree.what = expr::kind::compare;
    leaf.tree.compare = parse_predicate();
    return leaf;
  }

  comparison parse_predicate() {
    comparison c;
    c.subject = parse_field();
    switch (current_.what) {
      case token::kind::eq:
        c.op = compare_op::eq;
        break;
      case token::kind::ne:
        c.op = compare_op::ne;
        break;
      case token::kind::lt:
        c.op = compare_op::lt;
        break;
      case token::kind::le:
        c.op = compare_op::le;
        break;
      case token::kind::gt:
        c.op = compare_op::gt;
        break;
      case token::kind::ge:
        c.op = compare_op::ge;
        break;
      default:
        if (at_keyword("in")) {
          advance();
          c.op = compare_op::in;
          expect(token::kind::lparen, "'(' after in");
          c.values.push_back(parse_value());
          while (at(token::kind::comma)) {
            advance();
            c.values.push_back(parse_value());
          }
          expect(token::kind::rparen, "',' or ')'");
        } else if (at_keyword("exists")) {
          advance();
          c.op = compare_op::exists;
        } else if (at_keyword("prefix")) {
          advance();
          c.op = compare_op::prefix;
          if (!at(token::kind::string)) fail("a string");
          c.values.emplace_back(current_.value);
          advance();
        } else {
          fail(k_expected_operator);
        }
        return c;
    }
    advance();
    c.values.push_back(parse_value());
    return c;
  }

  // field := 'type' | 'stream' | 'category' | ('data' | 'metadata') ('.' (IDENT | STRING))+
  field parse_field() {
    field f;
    if (at_keyword("type")) {
      f.what = field::kind::type;
    } else if (at_keyword("stream")) {
      f.what = field::kind::stream;
    } else if (at_keyword("category")) {
      f.what = field::kind::category;
    } else if (at_keyword("data") || at_keyword("metadata")) {
      f.what = at_keyword("data") ? field::kind::data : field::kind::metadata;
      const bool is_data = f.what == field::kind::data;
      advance();
      if (!at(token::kind::dot)) {
        fail(is_data ? "'.' and a member name (data.x)" : "'.' and a member name (metadata.x)");
      }
      while (at(token::kind::dot)) {
        advance();
        if (at(token::kind::word)) {
          f.path.emplace_back(current_.text);
        } else if (at(token::kind::string)) {
          f.path.push_back(current_.value);
        } else {
          fail(k_expected_member);
        }
        advance();
      }
      return f;
    } else {
      fail(k_expected_field);
    }
    advance();
    return f;
  }

  // value := STRING | NUMBER | 'true' | 'false' | 'null'
  value parse_value() {
    value v;
    if (at(token::kind::string)) {
      v = current_.value;
    } else if (at(token::kind::numeric)) {
      const auto number = parse_json_number(current_.text);
      if (!number) fail(k_expected_number);
      v = *number;
    } else if (at_keyword("true")) {
      v = true;
    } else if (at_keyword("false")) {
      v = false;
    } else if (at_keyword("null")) {
      v = null_value{};
    } else {
      fail(k_expected_value);
    }
    advance();
    return v;
  }

  // time := '-' DURATION | STRING (RFC 3339) | NUMBER (microseconds since the epoch)
  time_bound parse_time() {
    time_bound t;
    if (at(token::kind::numeric) && current_.text.front() == '-') {
      const auto duration = parse_duration(current_.text.substr(1));
      if (!duration) fail(k_expected_duration);
      t.what = time_bound::kind::relative;
      t.micros = -*duration;
    } else if (at(token::kind::numeric)) {
      const auto micros = parse_unsigned(current_.text);
      if (!micros ||
          *micros > static_cast<std::uint64_t>(std::numeric_limits<timestamp_us>::max())) {
        fail(k_expected_time);
      }
      t.what = time_bound::kind::absolute;
      t.micros = static_cast<timestamp_us>(*micros);
    } else if (at(token::kind::string)) {
      const auto micros = parse_rfc3339(current_.value);
      if (!micros) fail(k_expected_timestamp);
      t.what = time_bound::kind::absolute;
      t.micros = *micros;
    } else {
      fail(k_expected_time);
    }
    advance();
    return t;
  }

  // An INTEGER in 1..max.
  std::uint32_t parse_count(std::uint32_t max, std::string_view expected) {
    if (!at(token::kind::numeric)) fail(expected);
    const auto n = parse_unsigned(current_.text);
    if (!n || *n < 1 || *n > max) fail(expected);
    advance();
    return static_cast<std::uint32_t>(*n);
  }

  // result := ('first' | 'last') INTEGER
  //         | agg (',' agg)* ['by' field (',' field)*] ['every' DURATION] ['top' INTEGER]
  std::variant<event_listing, aggregation> parse_result() {
    if (at_keyword("first") || at_keyword("last")) {
      event_listing listing;
      listing.newest_first = at_keyword("last");
      advance();
      listing.limit = parse_count(k_max_limit, fmt::format("a limit from 1 to {}", k_max_limit));
      return listing;
    }
    aggregation a;
    a.aggregates.push_back(parse_aggregate(k_expected_result));
    while (at(token::kind::comma)) {
      advance();
      a.aggregates.push_back(parse_aggregate(k_expected_aggregate));
    }
    if (at_keyword("by")) {
      advance();
      a.group_by.push_back(parse_field());
      while (at(token::kind::comma)) {
        advance();
        a.group_by.push_back(parse_field());
      }
    }
    if (at_keyword("every")) {
      advance();
      if (!at(token::kind::numeric)) fail(k_expected_bucket);
      const auto width = parse_duration(current_.text);
      if (!width || *width <= 0) fail(k_expected_bucket);
      a.bucket_micros = *width;
      advance();
    }
    if (at_keyword("top")) {
      advance();
      a.top = parse_count(k_max_top, fmt::format("a group count from 1 to {}", k_max_top));
    }
    return a;
  }

  // agg := 'count' '(' ')' | ('sum'|'avg'|'min'|'max'|'count_distinct') '(' field ')'
  //      | 'percentile' '(' field ',' NUMBER ')' | ('p50'|'p90'|'p95'|'p99'|'p999') '(' field ')'
  aggregate parse_aggregate(std::string_view expected) {
    static constexpr std::pair<std::string_view, double> k_fixed_percentiles[] = {
        {"p50", 50}, {"p90", 90}, {"p95", 95}, {"p99", 99}, {"p999", 99.9}};
    aggregate a;
    if (at_keyword("count")) {
      advance();
      expect(token::kind::lparen, "'(' after count");
      expect(token::kind::rparen, "')' (count takes no field)");
      return a;
    }
    if (at_keyword("sum")) {
      a.what = aggregate_kind::sum;
    } else if (at_keyword("avg")) {
      a.what = aggregate_kind::avg;
    } else if (at_keyword("min")) {
      a.what = aggregate_kind::min;
    } else if (at_keyword("max")) {
      a.what = aggregate_kind::max;
    } else if (at_keyword("count_distinct")) {
      a.what = aggregate_kind::count_distinct;
    } else if (at_keyword("percentile")) {
      a.what = aggregate_kind::percentile;
    } else {
      const auto* fixed =
          std::find_if(std::begin(k_fixed_percentiles), std::end(k_fixed_percentiles),
                       [&](const auto& p) { return at_keyword(p.first); });
      if (fixed == std::end(k_fixed_percentiles)) fail(expected);
      a.what = aggregate_kind::percentile;
      a.percentile = fixed->second;
    }
    const bool explicit_percentile = at_keyword("percentile");
    advance();
    expect(token::kind::lparen, "'('");
    a.subject = parse_field();
    if (explicit_percentile) {
      expect(token::kind::comma, "',' and a percentile");
      if (!at(token::kind::numeric)) fail(k_expected_percentile);
      const auto p = parse_json_number(current_.text);
      if (!p || !(*p > 0 && *p <= 100)) fail(k_expected_percentile);
      a.percentile = *p;
      advance();
    }
    expect(token::kind::rparen, "')'");
    return a;
  }

  std::string_view text_;
  lexer lexer_;
  token current_;
  int nesting_ = 0;  // open '(' and 'not' around current_
};

}  // namespace

result<query> parse_query(std::string_view text) {
  if (text.size() > k_max_query_bytes) {
    return syntax_error(text, k_max_query_bytes,
                        fmt::format("a query of at most {} bytes", k_max_query_bytes),
                        fmt::format("{} bytes", text.size()));
  }
  try {
    parser p(text);
    return p.parse();
  } catch (error& e) {
    return std::move(e);
  }
}

}  // namespace annal::engine::query
