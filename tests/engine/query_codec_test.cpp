#include "engine/query/query_codec.hpp"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/query/limits.hpp"
#include "engine/query/parser.hpp"

namespace {

namespace q = annal::engine::query;
namespace wire = annal::wire;
using annal::engine::errc;

q::query parsed(std::string_view text) {
  auto r = q::parse_query(text);
  EXPECT_TRUE(r.ok()) << text << "\n  -> " << (r.ok() ? "" : r.err().message);
  return r.ok() ? std::move(r).value() : q::query{};
}

// Decodes the Query built by `build` into a fresh message, through the
// bytes path (as a peer would receive it).
annal::engine::result<q::query> decode_built(
    const std::function<void(wire::Query::Builder)>& build) {
  capnp::MallocMessageBuilder message;
  build(message.initRoot<wire::Query>());
  const auto words = capnp::messageToFlatArray(message);
  const auto bytes = words.asBytes();
  return q::decode_query_bytes(
      std::string_view(reinterpret_cast<const char*>(bytes.begin()), bytes.size()));
}

// A valid Query to damage: `from $all where type = 'A' | first 10`, with
// `where` left for the caller.
void valid_frame(wire::Query::Builder out) {
  out.initSource().setAll();
  auto events = out.initResult().initEvents();
  events.setLimit(10);
}

void type_equals(wire::Expr::Builder out) {
  auto c = out.initCompare();
  c.initSubject().setKind(wire::Field::Kind::TYPE);
  c.setOp(wire::Comparison::Op::EQ);
  c.initValues(1)[0].setText("A");
}

// Expects `r` to be refused as malformed_request, with `what` in the message.
void expect_malformed(const annal::engine::result<q::query>& r, std::string_view what) {
  ASSERT_FALSE(r.ok()) << "decoded, but must be refused: " << what;
  EXPECT_EQ(r.err().code, errc::malformed_request) << r.err().message;
  EXPECT_NE(r.err().message.find(what), std::string::npos) << r.err().message;
}

// --- Round trips --------------------------------------------------------------

const char* const k_queries[] = {
    "from $all",
    "from 'orders-1'",
    "from 'orders-*'",
    "from category 'orders'",
    "from 'it''s \"quoted\"'",
    "from 'orders-*' where type = 'OrderPlaced' and data.amount > 100 since -10m | "
    "sum(data.amount), count() by data.region",
    "from $all where type in ('PaymentFailed') | last 50",
    "from $all where type = 'A' or type = 'B' and not type = 'C'",
    "from $all where (type = 'A' or type = 'B') and not (data.x exists or metadata.y.z exists)",
    "from $all where data.n != -1.5e-3 and data.n < 0 and data.n <= 2 and data.n >= 3 and "
    "data.n > 1e300",
    "from $all where data.b = true or data.b = false or data.b = null or data.s = ''",
    "from $all where type in ('A', 2, true, null, '')",
    "from $all where stream prefix 'orders-' and category = 'orders'",
    "from $all where data.'first name'.\"x.y\" exists",
    "from $all since '2026-11-23T10:00:00.250Z' until '2026-11-23T11:00:00+01:00'",
    "from $all since '1960-01-01T00:00:00Z' until 1700000000000000",
    "from $all since -1h30m until -500ms | first 1",
    "from $all | last 10000",
    "from $all | count(), sum(data.a), avg(data.b), min(metadata.c), max(data.d.e), "
    "count_distinct(type), percentile(data.f, 99.5), p50(data.g), p999(data.g)",
    "from $all | count() by type, stream, category, data.region every 5m top 10",
    "from $all | avg(data.ms) every 1d",
    "from $all | p99(data.latency) top 10000",
};

TEST(query_codec_test, parsed_queries_survive_bytes_round_trip) {
  for (const char* text : k_queries) {
    const q::query original = parsed(text);
    const std::string bytes = q::encode_query_bytes(original);
    auto decoded = q::decode_query_bytes(bytes);
    ASSERT_TRUE(decoded.ok()) << text << "\n  -> " << decoded.err().message;
    EXPECT_EQ(*decoded, original) << text;
  }
}

TEST(query_codec_test, parsed_queries_survive_builder_round_trip) {
  for (const char* text : k_queries) {
    const q::query original = parsed(text);
    capnp::MallocMessageBuilder message;
    q::encode_query(original, message.initRoot<wire::Query>());
    auto decoded = q::decode_query(message.getRoot<wire::Query>().asReader());
    ASSERT_TRUE(decoded.ok()) << text << "\n  -> " << decoded.err().message;
    EXPECT_EQ(*decoded, original) << text;
  }
}

TEST(query_codec_test, extreme_values_survive_round_trip) {
  q::query original = parsed("from $all where data.x = 0 since -1s until 0");
  original.where->compare.values = {std::numeric_limits<double>::max(),
                                    std::numeric_limits<double>::denorm_min(), -0.0};
  original.where->compare.op = q::compare_op::in;
  original.since->micros = std::numeric_limits<std::int64_t>::min();
  original.until->micros = std::numeric_limits<std::int64_t>::max();
  auto decoded = q::decode_query_bytes(q::encode_query_bytes(original));
  ASSERT_TRUE(decoded.ok()) << decoded.err().message;
  EXPECT_EQ(*decoded, original);
}

TEST(query_codec_test, deepest_valid_expressions_survive_bytes_round_trip) {
  std::string nots;
  for (int i = 0; i < q::k_max_expr_depth; ++i) nots += "not ";
  std::string chains;
  for (int i = 0; i < q::k_max_expr_depth / 2; ++i) chains += "type = 'A' or type = 'B' and (";
  for (const std::string& text : {"from $all where " + nots + "data.a.b.c in (1, 'x')",
                                  "from $all where " + chains + "data.a.b.c in (1, 'x')" +
                                      std::string(q::k_max_expr_depth / 2, ')')}) {
    const q::query original = parsed(text);
    auto decoded = q::decode_query_bytes(q::encode_query_bytes(original));
    ASSERT_TRUE(decoded.ok()) << decoded.err().message;
    EXPECT_EQ(*decoded, original);
  }
}

TEST(query_codec_test, unaligned_bytes_decode) {
  const q::query original = parsed(k_queries[5]);
  const std::string bytes = q::encode_query_bytes(original);
  for (std::size_t shift = 1; shift < 8; ++shift) {
    std::string buffer(shift, '\0');
    buffer += bytes;
    auto decoded = q::decode_query_bytes(std::string_view(buffer).substr(shift));
    ASSERT_TRUE(decoded.ok()) << decoded.err().message;
    EXPECT_EQ(*decoded, original);
  }
}

// --- Hostile messages ---------------------------------------------------------

TEST(query_codec_test, empty_message_has_no_source) {
  expect_malformed(decode_built([](wire::Query::Builder) {}), "no source");
}

TEST(query_codec_test, missing_event_listing_or_aggregation) {
  expect_malformed(decode_built([](wire::Query::Builder out) { out.initSource().setAll(); }),
                   "no event listing");
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     out.initSource().setAll();
                     out.initResult().initAggregation();
                     out.getResult().disownAggregation();
                   }),
                   "no aggregation");
}

TEST(query_codec_test, missing_comparison_field_and_operand) {
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     valid_frame(out);
                     out.initWhere().initCompare();
                   }),
                   "a comparison without a field");
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     valid_frame(out);
                     auto where = out.initWhere();
                     where.initNot();
                     where.disownNot();
                   }),
                   "not without an operand");
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     valid_frame(out);
                     auto where = out.initWhere();
                     where.initCompare();
                     where.disownCompare();
                   }),
                   "without its comparison");
}

TEST(query_codec_test, wrong_value_counts) {
  struct wrong {
    wire::Comparison::Op op;
    unsigned values;
  };
  for (const wrong w :
       {wrong{wire::Comparison::Op::EQ, 0}, wrong{wire::Comparison::Op::EQ, 2},
        wrong{wire::Comparison::Op::GE, 3}, wrong{wire::Comparison::Op::IN, 0},
        wrong{wire::Comparison::Op::EXISTS, 1}, wrong{wire::Comparison::Op::PREFIX, 0},
        wrong{wire::Comparison::Op::PREFIX, 2}}) {
    expect_malformed(decode_built([&](wire::Query::Builder out) {
                       valid_frame(out);
                       auto c = out.initWhere().initCompare();
                       c.initSubject().setKind(wire::Field::Kind::TYPE);
                       c.setOp(w.op);
                       auto values = c.initValues(w.values);
                       for (unsigned i = 0; i < w.values; ++i) values[i].setText("A");
                     }),
                     "values");
  }
}

TEST(query_codec_test, prefix_with_a_number) {
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     valid_frame(out);
                     auto c = out.initWhere().initCompare();
                     c.initSubject().setKind(wire::Field::Kind::STREAM);
                     c.setOp(wire::Comparison::Op::PREFIX);
                     c.initValues(1)[0].setNumber(5);
                   }),
                   "prefix with a value that is not a string");
}

TEST(query_codec_test, numbers_that_are_not_finite) {
  for (const double d : {std::nan(""), std::numeric_limits<double>::infinity(),
                         -std::numeric_limits<double>::infinity()}) {
    expect_malformed(decode_built([&](wire::Query::Builder out) {
                       valid_frame(out);
                       auto c = out.initWhere().initCompare();
                       c.initSubject().setKind(wire::Field::Kind::TYPE);
                       c.setOp(wire::Comparison::Op::EQ);
                       c.initValues(1)[0].setNumber(d);
                     }),
                     "not finite");
  }
}

TEST(query_codec_test, field_paths_of_the_wrong_length) {
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     valid_frame(out);
                     auto c = out.initWhere().initCompare();
                     c.initSubject().setKind(wire::Field::Kind::DATA);
                     c.setOp(wire::Comparison::Op::EXISTS);
                   }),
                   "a data or metadata field without a path");
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     valid_frame(out);
                     auto c = out.initWhere().initCompare();
                     auto subject = c.initSubject();
                     subject.setKind(wire::Field::Kind::TYPE);
                     subject.initPath(1).set(0, "x");
                     c.setOp(wire::Comparison::Op::EXISTS);
                   }),
                   "a type, stream or category field with a path");
}

TEST(query_codec_test, unknown_enumerants) {
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     valid_frame(out);
                     auto c = out.initWhere().initCompare();
                     c.initSubject().setKind(static_cast<wire::Field::Kind>(77));
                     c.setOp(wire::Comparison::Op::EXISTS);
                   }),
                   "unknown field kind 77");
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     valid_frame(out);
                     auto c = out.initWhere().initCompare();
                     c.initSubject().setKind(wire::Field::Kind::TYPE);
                     c.setOp(static_cast<wire::Comparison::Op>(9));
                   }),
                   "unknown operator 9");
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     out.initSource().setAll();
                     auto a = out.initResult().initAggregation();
                     a.initAggregates(1)[0].setKind(static_cast<wire::Aggregate::Kind>(7));
                   }),
                   "unknown aggregate kind 7");
}

TEST(query_codec_test, and_or_with_fewer_than_two_operands) {
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     valid_frame(out);
                     type_equals(out.initWhere().initAnd(1)[0]);
                   }),
                   "and with 1 operands");
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     valid_frame(out);
                     out.initWhere().initOr(0);
                   }),
                   "or with 0 operands");
}

TEST(query_codec_test, nesting_deeper_than_64) {
  for (const int depth : {q::k_max_expr_depth + 1, 100'000}) {
    expect_malformed(decode_built([&](wire::Query::Builder out) {
                       valid_frame(out);
                       auto e = out.initWhere();
                       for (int i = 0; i < depth; ++i) e = e.initNot();
                       type_equals(e);
                     }),
                     "nested deeper than 64");
  }
  // Through and / or lists as well.
  expect_malformed(decode_built([&](wire::Query::Builder out) {
                     valid_frame(out);
                     auto e = out.initWhere();
                     for (int i = 0; i <= q::k_max_expr_depth; ++i) {
                       auto children = i % 2 ? e.initAnd(2) : e.initOr(2);
                       type_equals(children[0]);
                       e = children[1];
                     }
                     type_equals(e);
                   }),
                   "nested deeper than 64");
}

TEST(query_codec_test, exactly_64_levels_decode) {
  auto r = decode_built([&](wire::Query::Builder out) {
    valid_frame(out);
    auto e = out.initWhere();
    for (int i = 0; i < q::k_max_expr_depth; ++i) e = e.initNot();
    type_equals(e);
  });
  ASSERT_TRUE(r.ok()) << r.err().message;
}

TEST(query_codec_test, invalid_source_names) {
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     valid_frame(out);
                     out.getSource().setStream("");
                   }),
                   "not a valid stream id");
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     valid_frame(out);
                     out.getSource().setCategory("bad\ncategory");
                   }),
                   "not a valid stream id");
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     valid_frame(out);
                     out.getSource().setStreamPrefix("orders-*");
                   }),
                   "a stream name with '*'");
}

TEST(query_codec_test, relative_time_in_the_future) {
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     valid_frame(out);
                     out.initSince().setRelative(1);
                   }),
                   "a relative time in the future");
}

TEST(query_codec_test, limits_out_of_range) {
  for (const std::uint32_t limit : {0u, q::k_max_limit + 1}) {
    expect_malformed(decode_built([&](wire::Query::Builder out) {
                       valid_frame(out);
                       out.getResult().getEvents().setLimit(limit);
                     }),
                     "limit");
  }
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     out.initSource().setAll();
                     auto a = out.initResult().initAggregation();
                     a.initAggregates(1)[0].setKind(wire::Aggregate::Kind::COUNT);
                     a.setTop(q::k_max_top + 1);
                   }),
                   "top 10001");
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     out.initSource().setAll();
                     auto a = out.initResult().initAggregation();
                     a.initAggregates(1)[0].setKind(wire::Aggregate::Kind::COUNT);
                     a.setBucketMicros(-1);
                   }),
                   "a negative bucket width");
}

TEST(query_codec_test, malformed_aggregates) {
  auto with_aggregate = [](const std::function<void(wire::Aggregate::Builder)>& build) {
    return decode_built([&](wire::Query::Builder out) {
      out.initSource().setAll();
      build(out.initResult().initAggregation().initAggregates(1)[0]);
    });
  };
  auto data_x = [](wire::Aggregate::Builder a) {
    auto f = a.initSubject();
    f.setKind(wire::Field::Kind::DATA);
    f.initPath(1).set(0, "x");
  };
  expect_malformed(decode_built([](wire::Query::Builder out) {
                     out.initSource().setAll();
                     out.initResult().initAggregation();
                   }),
                   "an aggregation without aggregates");
  expect_malformed(with_aggregate([&](wire::Aggregate::Builder a) {
                     a.setKind(wire::Aggregate::Kind::COUNT);
                     data_x(a);
                   }),
                   "count with a field");
  expect_malformed(
      with_aggregate([](wire::Aggregate::Builder a) { a.setKind(wire::Aggregate::Kind::SUM); }),
      "an aggregate without its field");
  for (const double p : {0.0, -1.0, 100.5, std::nan("")}) {
    expect_malformed(with_aggregate([&](wire::Aggregate::Builder a) {
                       a.setKind(wire::Aggregate::Kind::PERCENTILE);
                       data_x(a);
                       a.setPercentile(p);
                     }),
                     "a percentile outside (0, 100]");
  }
  expect_malformed(with_aggregate([&](wire::Aggregate::Builder a) {
                     a.setKind(wire::Aggregate::Kind::AVG);
                     data_x(a);
                     a.setPercentile(50);
                   }),
                   "a percentile on an aggregate other than percentile");
}

TEST(query_codec_test, bytes_that_are_no_message) {
  for (const std::string_view bytes :
       {std::string_view{}, std::string_view("1234567"), std::string_view("123456789")}) {
    expect_malformed(q::decode_query_bytes(bytes), "malformed query");
  }
  // A segment table promising more than there is.
  std::string lying(16, '\0');
  lying[4] = 100;
  expect_malformed(q::decode_query_bytes(lying), "malformed query");
  // Trailing words after a valid message.
  std::string padded = q::encode_query_bytes(parsed("from $all"));
  padded += std::string(8, '\0');
  expect_malformed(q::decode_query_bytes(padded), "bytes after the message");
}

TEST(query_codec_test, every_truncation_is_refused_without_a_crash) {
  const std::string bytes = q::encode_query_bytes(parsed(k_queries[5]));
  for (std::size_t size = 0; size < bytes.size(); size += 8) {
    auto r = q::decode_query_bytes(std::string_view(bytes).substr(0, size));
    ASSERT_FALSE(r.ok()) << size;
    EXPECT_EQ(r.err().code, errc::malformed_request);
  }
}

TEST(query_codec_test, damaged_bytes_decode_or_are_refused_never_crash) {
  // Every byte of a rich message, set to a few values: the result is either
  // a query that passes the checks (and so round-trips) or malformed_request.
  const std::string bytes = q::encode_query_bytes(parsed(
      "from 'orders-*' where (type = 'A' or not data.x.y in (1, 'b', null)) and stream prefix "
      "'o' since -1h until 1700000000000000 | percentile(data.ms, 99), count() by data.region "
      "every 1m top 5"));
  std::size_t refused = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (const unsigned char v : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::string damaged = bytes;
      damaged[i] = static_cast<char>(v);
      auto r = q::decode_query_bytes(damaged);
      if (r.ok()) {
        auto again = q::decode_query_bytes(q::encode_query_bytes(*r));
        ASSERT_TRUE(again.ok()) << again.err().message;
        EXPECT_EQ(*again, *r);
      } else {
        EXPECT_EQ(r.err().code, errc::malformed_request) << r.err().message;
        ++refused;
      }
    }
  }
  EXPECT_GT(refused, 0u);
}

}  // namespace
