#include "engine/query/query_codec.hpp"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fmt/format.h>
#include <kj/exception.h>

#include <cmath>
#include <cstring>

#include "engine/partitioning.hpp"

namespace annal::engine::query {
namespace {

// decode_query_bytes lets a message read this many times its own size in
// words (plus a floor), which every decode of an honest message stays far
// below; it bounds the work of a message whose pointers alias each other.
constexpr std::uint64_t k_traversal_factor = 4;
constexpr std::uint64_t k_traversal_floor_words = 1024;

capnp::Text::Reader as_text(const std::string& s) { return {s.c_str(), s.size()}; }

std::string to_string(capnp::Text::Reader t) { return std::string(t.begin(), t.size()); }

// --- Encoding ---------------------------------------------------------------

wire::Field::Kind to_wire(field::kind k) {
  switch (k) {
    case field::kind::type:
      return wire::Field::Kind::TYPE;
    case field::kind::stream:
      return wire::Field::Kind::STREAM;
    case field::kind::category:
      return wire::Field::Kind::CATEGORY;
    case field::kind::data:
      return wire::Field::Kind::DATA;
    case field::kind::metadata:
      return wire::Field::Kind::METADATA;
  }
  return wire::Field::Kind::TYPE;
}

wire::Comparison::Op to_wire(compare_op op) {
  switch (op) {
    case compare_op::eq:
      return wire::Comparison::Op::EQ;
    case compare_op::ne:
      return wire::Comparison::Op::NE;
    case compare_op::lt:
      return wire::Comparison::Op::LT;
    case compare_op::le:
      return wire::Comparison::Op::LE;
    case compare_op::gt:
      return wire::Comparison::Op::GT;
    case compare_op::ge:
      return wire::Comparison::Op::GE;
    case compare_op::in:
      return wire::Comparison::Op::IN;
    case compare_op::exists:
      return wire::Comparison::Op::EXISTS;
    case compare_op::prefix:
      return wire::Comparison::Op::PREFIX;
  }
  return wire::Comparison::Op::EQ;
}

wire::Aggregate::Kind to_wire(aggregate_kind k) {
  switch (k) {
    case aggregate_kind::count:
      return wire::Aggregate::Kind::COUNT;
    case aggregate_kind::sum:
      return wire::Aggregate::Kind::SUM;
    case aggregate_kind::avg:
      return wire::Aggregate::Kind::AVG;
    case aggregate_kind::min:
      return wire::Aggregate::Kind::MIN;
    case aggregate_kind::max:
      return wire::Aggregate::Kind::MAX;
    case aggregate_kind::count_distinct:
      return wire::Aggregate::Kind::COUNT_DISTINCT;
    case aggregate_kind::percentile:
      return wire::Aggregate::Kind::PERCENTILE;
  }
  return wire::Aggregate::Kind::COUNT;
}

void encode_field(const field& f, wire::Field::Builder out) {
  out.setKind(to_wire(f.what));
  if (f.path.empty()) return;
  auto path = out.initPath(static_cast<unsigned>(f.path.size()));
  for (unsigned i = 0; i < f.path.size(); ++i) path.set(i, as_text(f.path[i]));
}

void encode_value(const value& v, wire::Value::Builder out) {
  if (std::holds_alternative<null_value>(v)) {
    out.setNull();
  } else if (const auto* b = std::get_if<bool>(&v)) {
    out.setBoolean(*b);
  } else if (const auto* d = std::get_if<double>(&v)) {
    out.setNumber(*d);
  } else {
    out.setText(as_text(std::get<std::string>(v)));
  }
}

void encode_expr(const expr& e, wire::Expr::Builder out) {
  switch (e.what) {
    case expr::kind::compare: {
      auto c = out.initCompare();
      encode_field(e.compare.subject, c.initSubject());
      c.setOp(to_wire(e.compare.op));
      auto values = c.initValues(static_cast<unsigned>(e.compare.values.size()));
      for (unsigned i = 0; i < e.compare.values.size(); ++i) {
        encode_value(e.compare.values[i], values[i]);
      }
      return;
    }
    case expr::kind::and_:
    case expr::kind::or_: {
      const auto n = static_cast<unsigned>(e.children.size());
      auto children = e.what == expr::kind::and_ ? out.initAnd(n) : out.initOr(n);
      for (unsigned i = 0; i < n; ++i) encode_expr(e.children[i], children[i]);
      return;
    }
    case expr::kind::not_: {
      // Requires one child; without one the Query holds a bare `not`, which
      // decode_query refuses.
      auto child = out.initNot();
      if (!e.children.empty()) encode_expr(e.children.front(), child);
      return;
    }
  }
}

void encode_time(const time_bound& t, wire::TimeBound::Builder out) {
  if (t.what == time_bound::kind::relative) {
    out.setRelative(t.micros);
  } else {
    out.setAbsolute(t.micros);
  }
}

void encode_source(const source& s, wire::Source::Builder out) {
  switch (s.what) {
    case source::kind::all:
      out.setAll();
      return;
    case source::kind::stream:
      out.setStream(as_text(s.name));
      return;
    case source::kind::stream_prefix:
      out.setStreamPrefix(as_text(s.name));
      return;
    case source::kind::category:
      out.setCategory(as_text(s.name));
      return;
  }
}

void encode_aggregation(const aggregation& a, wire::Aggregation::Builder out) {
  auto aggregates = out.initAggregates(static_cast<unsigned>(a.aggregates.size()));
  for (unsigned i = 0; i < a.aggregates.size(); ++i) {
    const aggregate& in = a.aggregates[i];
    auto agg = aggregates[i];
    agg.setKind(to_wire(in.what));
    if (in.subject) encode_field(*in.subject, agg.initSubject());
    agg.setPercentile(in.percentile);
  }
  if (!a.group_by.empty()) {
    auto group_by = out.initGroupBy(static_cast<unsigned>(a.group_by.size()));
    for (unsigned i = 0; i < a.group_by.size(); ++i) encode_field(a.group_by[i], group_by[i]);
  }
  out.setBucketMicros(a.bucket_micros);
  out.setTop(a.top);
}

// --- Decoding ---------------------------------------------------------------

[[noreturn]] void malformed(std::string_view what) {
  throw error{errc::malformed_request, fmt::format("malformed query: {}", what)};
}

field decode_field(wire::Field::Reader in) {
  field f;
  switch (in.getKind()) {
    case wire::Field::Kind::TYPE:
      f.what = field::kind::type;
      break;
    case wire::Field::Kind::STREAM:
      f.what = field::kind::stream;
      break;
    case wire::Field::Kind::CATEGORY:
      f.what = field::kind::category;
      break;
    case wire::Field::Kind::DATA:
      f.what = field::kind::data;
      break;
    case wire::Field::Kind::METADATA:
      f.what = field::kind::metadata;
      break;
    default:
      malformed(fmt::format("unknown field kind {}", static_cast<unsigned>(in.getKind())));
  }
  const auto path = in.getPath();
  const bool json = f.what == field::kind::data || f.what == field::kind::metadata;
  if (json && path.size() == 0) malformed("a data or metadata field without a path");
  if (!json && path.size() != 0) malformed("a type, stream or category field with a path");
  f.path.reserve(path.size());
  for (auto member : path) f.path.push_back(to_string(member));
  return f;
}

value decode_value(wire::Value::Reader in) {
  switch (in.which()) {
    case wire::Value::NULL_:
      return null_value{};
    case wire::Value::BOOLEAN:
      return in.getBoolean();
    case wire::Value::NUMBER: {
      const double d = in.getNumber();
      if (!std::isfinite(d)) malformed("a number that is not finite");
      return d;
    }
    case wire::Value::TEXT:
      return to_string(in.getText());
  }
  malformed(fmt::format("unknown value kind {}", static_cast<unsigned>(in.which())));
}

comparison decode_comparison(wire::Comparison::Reader in) {
  comparison c;
  if (!in.hasSubject()) malformed("a comparison without a field");
  c.subject = decode_field(in.getSubject());
  const auto values = in.getValues();
  std::size_t min_values = 1;
  std::size_t max_values = 1;
  switch (in.getOp()) {
    case wire::Comparison::Op::EQ:
      c.op = compare_op::eq;
      break;
    case wire::Comparison::Op::NE:
      c.op = compare_op::ne;
      break;
    case wire::Comparison::Op::LT:
      c.op = compare_op::lt;
      break;
    case wire::Comparison::Op::LE:
      c.op = compare_op::le;
      break;
    case wire::Comparison::Op::GT:
      c.op = compare_op::gt;
      break;
    case wire::Comparison::Op::GE:
      c.op = compare_op::ge;
      break;
    case wire::Comparison::Op::PREFIX:
      c.op = compare_op::prefix;
      break;
    case wire::Comparison::Op::IN:
      c.op = compare_op::in;
      max_values = values.size();
      break;
    case wire::Comparison::Op::EXISTS:
      c.op = compare_op::exists;
      min_values = max_values = 0;
      break;
    default:
      malformed(fmt::format("unknown operator {}", static_cast<unsigned>(in.getOp())));
  }
  if (values.size() < min_values || values.size() > max_values) {
    malformed(fmt::format("operator {} with {} values", static_cast<unsigned>(in.getOp()),
                          values.size()));
  }
  c.values.reserve(values.size());
  for (auto v : values) c.values.push_back(decode_value(v));
  if (c.op == compare_op::prefix && !std::holds_alternative<std::string>(c.values.front())) {
    malformed("prefix with a value that is not a string");
  }
  return c;
}

// `levels_left`: how many more and / or / not nodes may lie below.
expr decode_expr(wire::Expr::Reader in, int levels_left) {
  expr e;
  switch (in.which()) {
    case wire::Expr::COMPARE:
      if (!in.hasCompare()) malformed("a compare expression without its comparison");
      e.what = expr::kind::compare;
      e.compare = decode_comparison(in.getCompare());
      return e;
    case wire::Expr::AND:
    case wire::Expr::OR: {
      if (levels_left == 0) {
        malformed(fmt::format("expressions nested deeper than {}", k_max_expr_depth));
      }
      const bool is_and = in.which() == wire::Expr::AND;
      e.what = is_and ? expr::kind::and_ : expr::kind::or_;
      const auto children = is_and ? in.getAnd() : in.getOr();
      if (children.size() < 2) {
        malformed(fmt::format("{} with {} operands", is_and ? "and" : "or", children.size()));
      }
      e.children.reserve(children.size());
      for (auto child : children) e.children.push_back(decode_expr(child, levels_left - 1));
      return e;
    }
    case wire::Expr::NOT:
      if (levels_left == 0) {
        malformed(fmt::format("expressions nested deeper than {}", k_max_expr_depth));
      }
      if (!in.hasNot()) malformed("not without an operand");
      e.what = expr::kind::not_;
      e.children.push_back(decode_expr(in.getNot(), levels_left - 1));
      return e;
  }
  malformed(fmt::format("unknown expression kind {}", static_cast<unsigned>(in.which())));
}

source decode_source(wire::Source::Reader in) {
  source s;
  switch (in.which()) {
    case wire::Source::ALL:
      s.what = source::kind::all;
      return s;
    case wire::Source::STREAM:
      s.what = source::kind::stream;
      s.name = to_string(in.getStream());
      break;
    case wire::Source::STREAM_PREFIX:
      s.what = source::kind::stream_prefix;
      s.name = to_string(in.getStreamPrefix());
      break;
    case wire::Source::CATEGORY:
      s.what = source::kind::category;
      s.name = to_string(in.getCategory());
      break;
    default:
      malformed(fmt::format("unknown source kind {}", static_cast<unsigned>(in.which())));
  }
  if (!valid_stream_id(s.name)) malformed("a source name that is not a valid stream id");
  if (s.what != source::kind::category && s.name.find('*') != std::string::npos) {
    malformed("a stream name with '*'");
  }
  return s;
}

time_bound decode_time(wire::TimeBound::Reader in) {
  time_bound t;
  switch (in.which()) {
    case wire::TimeBound::ABSOLUTE:
      t.what = time_bound::kind::absolute;
      t.micros = in.getAbsolute();
      return t;
    case wire::TimeBound::RELATIVE:
      t.what = time_bound::kind::relative;
      t.micros = in.getRelative();
      if (t.micros > 0) malformed("a relative time in the future");
      return t;
  }
  malformed(fmt::format("unknown time bound kind {}", static_cast<unsigned>(in.which())));
}

aggregate decode_aggregate(wire::Aggregate::Reader in) {
  aggregate a;
  switch (in.getKind()) {
    case wire::Aggregate::Kind::COUNT:
      a.what = aggregate_kind::count;
      break;
    case wire::Aggregate::Kind::SUM:
      a.what = aggregate_kind::sum;
      break;
    case wire::Aggregate::Kind::AVG:
      a.what = aggregate_kind::avg;
      break;
    case wire::Aggregate::Kind::MIN:
      a.what = aggregate_kind::min;
      break;
    case wire::Aggregate::Kind::MAX:
      a.what = aggregate_kind::max;
      break;
    case wire::Aggregate::Kind::COUNT_DISTINCT:
      a.what = aggregate_kind::count_distinct;
      break;
    case wire::Aggregate::Kind::PERCENTILE:
      a.what = aggregate_kind::percentile;
      break;
    default:
      malformed(fmt::format("unknown aggregate kind {}", static_cast<unsigned>(in.getKind())));
  }
  if (a.what == aggregate_kind::count) {
    if (in.hasSubject()) malformed("count with a field");
  } else {
    if (!in.hasSubject()) malformed("an aggregate without its field");
    a.subject = decode_field(in.getSubject());
  }
  a.percentile = in.getPercentile();
  if (a.what == aggregate_kind::percentile) {
    if (!(a.percentile > 0 && a.percentile <= 100)) malformed("a percentile outside (0, 100]");
  } else if (a.percentile != 0) {
    malformed("a percentile on an aggregate other than percentile");
  }
  return a;
}

aggregation decode_aggregation(wire::Aggregation::Reader in) {
  aggregation a;
  const auto aggregates = in.getAggregates();
  if (aggregates.size() == 0) malformed("an aggregation without aggregates");
  a.aggregates.reserve(aggregates.size());
  for (auto agg : aggregates) a.aggregates.push_back(decode_aggregate(agg));
  const auto group_by = in.getGroupBy();
  a.group_by.reserve(group_by.size());
  for (auto f : group_by) a.group_by.push_back(decode_field(f));
  a.bucket_micros = in.getBucketMicros();
  if (a.bucket_micros < 0) malformed("a negative bucket width");
  a.top = in.getTop();
  if (a.top > k_max_top) malformed(fmt::format("top {} above {}", a.top, k_max_top));
  return a;
}

query decode_checked(wire::Query::Reader in) {
  query q;
  if (!in.hasSource()) malformed("no source");
  q.from = decode_source(in.getSource());
  if (in.hasWhere()) q.where = decode_expr(in.getWhere(), k_max_expr_depth);
  if (in.hasSince()) q.since = decode_time(in.getSince());
  if (in.hasUntil()) q.until = decode_time(in.getUntil());
  const auto result = in.getResult();
  switch (result.which()) {
    case wire::Query::Result::EVENTS: {
      if (!result.hasEvents()) malformed("no event listing");
      const auto events = result.getEvents();
      event_listing listing;
      listing.limit = events.getLimit();
      listing.newest_first = events.getNewestFirst();
      if (listing.limit < 1 || listing.limit > k_max_limit) {
        malformed(fmt::format("limit {} outside 1..{}", listing.limit, k_max_limit));
      }
      q.result = listing;
      return q;
    }
    case wire::Query::Result::AGGREGATION:
      if (!result.hasAggregation()) malformed("no aggregation");
      q.result = decode_aggregation(result.getAggregation());
      return q;
  }
  malformed(fmt::format("unknown result kind {}", static_cast<unsigned>(result.which())));
}

}  // namespace

void encode_query(const query& q, wire::Query::Builder out) {
  encode_source(q.from, out.initSource());
  if (q.where) encode_expr(*q.where, out.initWhere());
  if (q.since) encode_time(*q.since, out.initSince());
  if (q.until) encode_time(*q.until, out.initUntil());
  auto result = out.initResult();
  if (const auto* listing = std::get_if<event_listing>(&q.result)) {
    auto events = result.initEvents();
    events.setLimit(listing->limit);
    events.setNewestFirst(listing->newest_first);
  } else {
    encode_aggregation(std::get<aggregation>(q.result), result.initAggregation());
  }
}

result<query> decode_query(wire::Query::Reader in) {
  try {
    return decode_checked(in);
  } catch (error& e) {
    return std::move(e);
  } catch (const kj::Exception& e) {
    return error{errc::malformed_request,
                 fmt::format("malformed query: {}", e.getDescription().cStr())};
  }
}

std::string encode_query_bytes(const query& q) {
  capnp::MallocMessageBuilder message;
  encode_query(q, message.initRoot<wire::Query>());
  const auto words = capnp::messageToFlatArray(message);
  const auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

result<query> decode_query_bytes(std::string_view bytes) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return error{
        errc::malformed_request,
        fmt::format("malformed query: {} bytes is no whole number of words", bytes.size())};
  }
  // Copied: Cap'n Proto reads words in place, and `bytes` may be unaligned.
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words.size() * k_traversal_factor + k_traversal_floor_words;
  options.nestingLimit = k_query_nesting_limit;
  try {
    capnp::FlatArrayMessageReader reader(words.asPtr(), options);
    if (reader.getEnd() != words.end()) {
      return error{errc::malformed_request, "malformed query: bytes after the message"};
    }
    return decode_query(reader.getRoot<wire::Query>());
  } catch (const kj::Exception& e) {
    return error{errc::malformed_request,
                 fmt::format("malformed query: {}", e.getDescription().cStr())};
  }
}

}  // namespace annal::engine::query
