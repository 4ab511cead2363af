// The wire form of partial results and answers
// (engine/query/partial_result_codec.hpp, schema/query_result.capnp):
// round trips give the same answers, and hostile input is malformed_request.

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>
#include <kj/exception.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/query/group_key.hpp"
#include "engine/query/partial_result_codec.hpp"
#include "engine/query/partition_scan.hpp"
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

field data(std::vector<std::string> path) { return {field::kind::data, std::move(path)}; }
aggregate agg(aggregate_kind k, std::optional<field> f = std::nullopt, double p = 0) {
  return aggregate{k, std::move(f), p};
}

query full_aggregation(std::int64_t bucket = 0) {
  query q;
  q.result = aggregation{
      {agg(aggregate_kind::count), agg(aggregate_kind::sum, data({"amount"})),
       agg(aggregate_kind::avg, data({"amount"})), agg(aggregate_kind::min, data({"amount"})),
       agg(aggregate_kind::max, data({"amount"})),
       agg(aggregate_kind::count_distinct, data({"region"})),
       agg(aggregate_kind::percentile, data({"amount"}), 90)},
      {data({"region"}), data({"nested"})},
      bucket,
      0};
  return q;
}

query ungrouped() {
  query q;
  q.result = aggregation{
      {agg(aggregate_kind::count), agg(aggregate_kind::percentile, data({"amount"}), 50)},
      {},
      0,
      0};
  return q;
}

query listing(std::uint32_t n, bool newest_first) {
  query q;
  q.result = event_listing{n, newest_first};
  return q;
}

// A flat Cap'n Proto message holding `r`.
kj::Array<capnp::word> encoded(const partial_result& r, const plan& p) {
  capnp::MallocMessageBuilder message;
  encode_partial_result(r, p, message.initRoot<wire::PartialResult>());
  return capnp::messageToFlatArray(message);
}

engine::result<partial_result> decoded(kj::ArrayPtr<const capnp::word> words, const plan& p) {
  capnp::FlatArrayMessageReader reader(words);
  return decode_partial_result(reader.getRoot<wire::PartialResult>(), p);
}

class query_result_codec_test : public store_fixture {
 protected:
  void SetUp() override {
    store_fixture::SetUp();
    test_rng rng(17);
    const std::vector<std::string> regions = {"eu-west", "us-east", "ap"};
    std::uint64_t id = 1;
    for (int b = 0; b < 200; ++b) {
      clock_.advance_seconds(static_cast<std::int64_t>(rng.below(3)));
      std::vector<engine::event_input> events;
      for (std::uint64_t i = 0, n = rng.between(1, 4); i < n; ++i) {
        std::string d = "{\"amount\":" + std::to_string(static_cast<int>(rng.below(2000)) - 500) +
                        ".5,\"region\":\"" + regions[rng.below(regions.size())] + "\"";
        if (rng.percent(30)) d += ",\"nested\":[1,{\"a\":2}]";
        d += "}";
        events.push_back(annal::testing::make_event(id++, "OrderPlaced", d, "{\"m\":1}"));
      }
      must(append("orders-" + std::to_string(rng.below(20)), expected_version::any(), events),
           "append");
    }
    must(st().sync(), "sync");
  }

  // One partial result per partition.
  std::vector<partial_result> scan(const std::shared_ptr<const plan>& p) {
    std::vector<partial_result> parts;
    for (std::uint32_t i = 0; i < st().partition_count(); ++i) {
      auto& part = *must(st().get(partition_id{i}), "get");
      partition_scan s(p, partition_id{i}, part.visible_end());
      scan_usage usage;
      while (!must(s.step(part, 4096, scan_limits{}, usage), "step")) {
      }
      parts.push_back(s.take());
    }
    return parts;
  }

  // The answer of `q` from partials merged directly and from partials that
  // went through the wire: they must agree.
  void round_trip(const query& q) {
    auto p = must(plan::compile(q), "compile");
    partial_result direct, via_wire;
    for (auto& part : scan(p)) must(merge(direct, std::move(part), *p), "merge");
    for (auto& part : scan(p)) {
      const auto words = encoded(part, *p);
      must(merge(via_wire, must(decoded(words, *p), "decode"), *p), "merge");
    }
    // A merged partial goes through the wire too.
    const auto words = encoded(via_wire, *p);
    auto again = must(decoded(words, *p), "decode merged");
    const auto want = finish(std::move(direct), *p);
    const auto got = finish(std::move(again), *p);
    EXPECT_TRUE(got == want);
    EXPECT_GT(want.events_scanned, 0u);

    // And the answer itself.
    capnp::MallocMessageBuilder message;
    encode_query_answer(want, message.initRoot<wire::QueryAnswer>());
    const auto answer_words = capnp::messageToFlatArray(message);
    capnp::FlatArrayMessageReader reader(answer_words);
    const auto back = must(decode_query_answer(reader.getRoot<wire::QueryAnswer>()), "decode");
    EXPECT_TRUE(back == want);
  }
};

TEST_F(query_result_codec_test, aggregation_round_trips) { round_trip(full_aggregation()); }
TEST_F(query_result_codec_test, bucketed_aggregation_round_trips) {
  round_trip(full_aggregation(5'000'000));
}
TEST_F(query_result_codec_test, ungrouped_aggregation_round_trips) { round_trip(ungrouped()); }
TEST_F(query_result_codec_test, listings_round_trip) {
  round_trip(listing(10, false));
  round_trip(listing(25, true));
  round_trip(listing(10000, true));
}

// ------------------------------------------------------------ hostile input

class hostile_result_test : public ::testing::Test {
 protected:
  void expect_malformed(const engine::result<partial_result>& r, const std::string& what) {
    EXPECT_FALSE(r) << what;
    if (!r) {
      EXPECT_EQ(r.err().code, errc::malformed_request) << what << ": " << r.err().message;
    }
  }

  // A message for `p` built by `fill`, decoded.
  template <class Fill>
  engine::result<partial_result> decode_built(const plan& p, Fill fill) {
    capnp::MallocMessageBuilder message;
    auto root = message.initRoot<wire::PartialResult>();
    fill(root);
    const auto words = capnp::messageToFlatArray(message);
    return decoded(words, p);
  }

  std::shared_ptr<const plan> grouped_ = must(plan::compile(full_aggregation(60'000'000)), "plan");
  std::shared_ptr<const plan> listed_ = must(plan::compile(listing(2, false)), "plan");
};

// A well-formed group for grouped_: bucket, region, nested; 7 accumulators.
void fill_group(wire::Group::Builder g, double bucket = 60'000'000, const char* region = "eu") {
  auto key = g.initKey(3);
  key[0].setNumber(bucket);
  key[1].setText(
      capnp::Data::Reader(reinterpret_cast<const kj::byte*>(region), std::strlen(region)));
  key[2].setNull();
  auto accs = g.initAccumulators(7);
  for (unsigned a = 0; a < 7; ++a) {
    accs[a].setCount(1);
    accs[a].setSum(2);
    accs[a].setMin(2);
    accs[a].setMax(2);
  }
}

TEST_F(hostile_result_test, well_formed_group_decodes) {
  auto r = decode_built(
      *grouped_, [](wire::PartialResult::Builder root) { fill_group(root.initGroups(1)[0]); });
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->groups.size(), 1u);
}

TEST_F(hostile_result_test, wrong_union_arm_is_malformed) {
  expect_malformed(decode_built(*grouped_, [](auto root) { root.initEvents(0); }), "events");
  expect_malformed(decode_built(*listed_, [](auto root) { root.initGroups(0); }), "groups");
}

TEST_F(hostile_result_test, key_of_wrong_width_is_malformed) {
  expect_malformed(decode_built(*grouped_,
                                [](auto root) {
                                  auto g = root.initGroups(1)[0];
                                  fill_group(g);
                                  g.initKey(2);
                                }),
                   "two key columns");
}

TEST_F(hostile_result_test, bad_key_numbers_are_malformed) {
  expect_malformed(
      decode_built(*grouped_, [](auto root) { fill_group(root.initGroups(1)[0], std::nan("")); }),
      "NaN bucket");
  expect_malformed(decode_built(*grouped_,
                                [](auto root) {
                                  auto g = root.initGroups(1)[0];
                                  fill_group(g);
                                  g.getKey()[0].setText(capnp::Data::Reader(
                                      reinterpret_cast<const kj::byte*>("x"), 1));
                                }),
                   "text bucket");
}

TEST_F(hostile_result_test, duplicate_group_keys_are_malformed) {
  expect_malformed(decode_built(*grouped_,
                                [](auto root) {
                                  auto groups = root.initGroups(2);
                                  fill_group(groups[0]);
                                  fill_group(groups[1]);
                                }),
                   "duplicate");
}

TEST_F(hostile_result_test, wrong_accumulator_count_is_malformed) {
  expect_malformed(decode_built(*grouped_,
                                [](auto root) {
                                  auto g = root.initGroups(1)[0];
                                  fill_group(g);
                                  g.initAccumulators(6);
                                }),
                   "six accumulators");
}

TEST_F(hostile_result_test, min_above_max_is_malformed) {
  expect_malformed(decode_built(*grouped_,
                                [](auto root) {
                                  auto g = root.initGroups(1)[0];
                                  fill_group(g);
                                  g.getAccumulators()[3].setMin(5);
                                }),
                   "min > max");
}

TEST_F(hostile_result_test, bad_distinct_values_are_malformed) {
  auto with_distinct = [&](std::vector<std::string> values) {
    return decode_built(*grouped_, [&](auto root) {
      auto g = root.initGroups(1)[0];
      fill_group(g);
      auto list = g.getAccumulators()[5].initDistinct(static_cast<unsigned>(values.size()));
      for (unsigned i = 0; i < values.size(); ++i) {
        list.set(i, capnp::Data::Reader(reinterpret_cast<const kj::byte*>(values[i].data()),
                                        values[i].size()));
      }
    });
  };
  std::string good;
  append_key_value(good, field_value::of_string("eu"));
  std::string two = good;
  append_key_value(two, field_value::of_number(1));
  auto ok = with_distinct({good});
  ASSERT_TRUE(ok) << ok.err().message;
  EXPECT_EQ(std::get<double>(
                std::get<result_table>(finish(std::move(*ok), *grouped_).body).rows[0][3 + 5]),
            1.0);
  expect_malformed(with_distinct({good, good}), "repeated value");
  expect_malformed(with_distinct({std::string("\x09", 1)}), "unknown tag");
  expect_malformed(with_distinct({std::string("\x04\x05\x00\x00\x00"
                                              "ab",
                                              7)}),
                   "short string");
  expect_malformed(with_distinct({two}), "two values");
  expect_malformed(with_distinct({""}), "empty");
}

TEST_F(hostile_result_test, sketch_buckets_out_of_range_are_malformed) {
  auto with_sketch = [&](std::int32_t offset, std::vector<std::uint64_t> counts) {
    return decode_built(*grouped_, [&](auto root) {
      auto g = root.initGroups(1)[0];
      fill_group(g);
      auto buckets = g.getAccumulators()[6].initSketch().initPositive();
      buckets.setOffset(offset);
      auto list = buckets.initCounts(static_cast<unsigned>(counts.size()));
      for (unsigned i = 0; i < counts.size(); ++i) list.set(i, counts[i]);
    });
  };
  ASSERT_TRUE(with_sketch(100, {1, 2, 3}));
  expect_malformed(with_sketch(45'000, {1}), "offset past the range");
  expect_malformed(with_sketch(39'999, {1, 1}), "end past the range");
  expect_malformed(with_sketch(-40'000, {1}), "offset below the range");
  expect_malformed(with_sketch(0, {UINT64_MAX, 2}), "count overflow");
}

void fill_event(wire::ListedEvent::Builder e, std::uint64_t lsn_value, const char* stream = "s-1") {
  e.setStream(stream);
  e.setPartition(0);
  e.setLsn(lsn_value);
  e.setIndex(0);
  e.setType("T");
  e.setTimestampUs(1);
}

TEST_F(hostile_result_test, bad_listings_are_malformed) {
  auto ok = decode_built(*listed_, [](auto root) {
    auto events = root.initEvents(2);
    fill_event(events[0], 8);
    fill_event(events[1], 0);
  });
  ASSERT_TRUE(ok) << ok.err().message;
  EXPECT_EQ(ok->events.front().position.value(), 0u);  // put in order
  expect_malformed(decode_built(*listed_,
                                [](auto root) {
                                  auto events = root.initEvents(3);
                                  for (unsigned i = 0; i < 3; ++i) fill_event(events[i], 8 * i);
                                }),
                   "more than N");
  expect_malformed(decode_built(*listed_,
                                [](auto root) {
                                  auto events = root.initEvents(2);
                                  fill_event(events[0], 8);
                                  fill_event(events[1], 8);
                                }),
                   "same event twice");
  expect_malformed(
      decode_built(*listed_, [](auto root) { fill_event(root.initEvents(1)[0], 0, ""); }),
      "empty stream id");
  expect_malformed(decode_built(*listed_,
                                [](auto root) {
                                  auto e = root.initEvents(1)[0];
                                  fill_event(e, 0);
                                  e.setType("");
                                }),
                   "empty type");
}

TEST_F(hostile_result_test, a_partition_twice_is_malformed) {
  expect_malformed(decode_built(*listed_,
                                [](auto root) {
                                  auto positions = root.initPositions(2);
                                  positions[0].setPartition(3);
                                  positions[1].setPartition(3);
                                  root.initEvents(0);
                                }),
                   "partition twice");
}

TEST_F(hostile_result_test, bad_answers_are_malformed) {
  auto decode_answer = [](auto fill) {
    capnp::MallocMessageBuilder message;
    auto root = message.initRoot<wire::QueryAnswer>();
    fill(root);
    const auto words = capnp::messageToFlatArray(message);
    capnp::FlatArrayMessageReader reader(words);
    return decode_query_answer(reader.getRoot<wire::QueryAnswer>());
  };
  auto expect_bad = [](const engine::result<query_answer>& r, const char* what) {
    EXPECT_FALSE(r) << what;
    if (!r) {
      EXPECT_EQ(r.err().code, errc::malformed_request) << what;
    }
  };
  auto table = [](wire::QueryAnswer::Builder root, unsigned columns, unsigned values) {
    auto t = root.initTable();
    auto c = t.initColumns(columns);
    for (unsigned i = 0; i < columns; ++i) c.set(i, "c");
    t.initRows(1)[0].initValues(values);
  };
  EXPECT_TRUE(decode_answer([&](auto root) { table(root, 2, 2); }));
  expect_bad(decode_answer([&](auto root) { table(root, 2, 3); }), "row too wide");
  expect_bad(decode_answer([&](auto root) { table(root, 0, 0); }), "no columns");
  expect_bad(decode_answer([&](auto root) {
               table(root, 1, 1);
               root.getTable().getRows()[0].getValues()[0].setJson(
                   capnp::Data::Reader(reinterpret_cast<const kj::byte*>("{}"), 2));
             }),
             "json cell");
  expect_bad(decode_answer([&](auto root) {
               auto positions = root.initPositions(2);
               positions[0].setPartition(2);
               positions[1].setPartition(1);
               table(root, 1, 1);
             }),
             "positions not ascending");
  expect_bad(decode_answer([&](auto root) { fill_event(root.initEvents(1)[0], 0, ""); }),
             "bad event");
}

// Damaged bytes never crash the decoder: each decode succeeds or is
// malformed_request (a kj::Exception from Cap'n Proto included).
TEST_F(hostile_result_test, damaged_messages_are_malformed_or_decode) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<wire::PartialResult>();
  auto groups = root.initGroups(3);
  for (unsigned g = 0; g < 3; ++g) {
    fill_group(groups[g], 60'000'000 * (g + 1));
    std::string v;
    append_key_value(v, field_value::of_string("x" + std::to_string(g)));
    groups[g].getAccumulators()[5].initDistinct(1).set(
        0, capnp::Data::Reader(reinterpret_cast<const kj::byte*>(v.data()), v.size()));
    auto sketch = groups[g].getAccumulators()[6].initSketch().initPositive();
    sketch.setOffset(10);
    sketch.initCounts(3).set(1, 5);
  }
  const auto words = capnp::messageToFlatArray(message);
  const auto bytes = words.asBytes();
  test_rng rng(5);
  int decoded_ok = 0, refused = 0;
  for (int round = 0; round < 20000; ++round) {
    std::vector<capnp::word> copy(words.begin(), words.end());
    auto* raw = reinterpret_cast<unsigned char*>(copy.data());
    // Keep the segment table (the first word) intact: the reader checks it
    // before the decoder runs.
    for (std::uint64_t n = rng.between(1, 4); n > 0; --n) {
      const auto at = 8 + rng.below(bytes.size() - 8);
      raw[at] = static_cast<unsigned char>(rng.percent(50) ? rng.below(256) : raw[at] ^ 0x80);
    }
    try {
      capnp::FlatArrayMessageReader reader(kj::arrayPtr(copy.data(), copy.size()));
      auto r = decode_partial_result(reader.getRoot<wire::PartialResult>(), *grouped_);
      if (r) {
        ++decoded_ok;
        // A decoded result is usable.
        (void)finish(std::move(*r), *grouped_);
      } else {
        ASSERT_EQ(r.err().code, errc::malformed_request) << r.err().message;
        ++refused;
      }
    } catch (const kj::Exception&) {
      ++refused;  // getRoot itself refused the root pointer
    }
  }
  EXPECT_GT(decoded_ok, 0);
  EXPECT_GT(refused, 0);
}

}  // namespace
