// A query's partition scans (actors/query_scans.hpp) over the real
// partitions of a store: one scan's failure stops its siblings at their
// next step, with the same error, instead of letting them scan on.
#include "actors/query_scans.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "engine/query/parser.hpp"
#include "tests/support/store_fixture.hpp"

namespace annal::testing {
namespace {

using engine::errc;
namespace q = engine::query;

class query_scans_test : public store_fixture {
 protected:
  // Two streams in different partitions, each `records` appends of 100
  // events of about 1 KiB: several scan steps (1 MiB each) per partition.
  void SetUp() override {
    store_fixture::SetUp();
    first_ = "orders-0";
    for (int i = 1;
         st().partition_for(second_ = "orders-" + std::to_string(i)) == st().partition_for(first_);
         ++i) {
    }
    const std::string data = R"({"pad":")" + std::string(1000, 'x') + R"("})";
    for (const auto& stream : {first_, second_}) {
      for (int r = 0; r < k_records; ++r) {
        std::vector<engine::event_input> events;
        for (int i = 0; i < 100; ++i) events.push_back(make_event(next_event_++, "t", data));
        must(append(stream, engine::expected_version::any(), events), "append");
      }
    }
    must(st().sync(), "sync");
  }

  std::shared_ptr<const q::plan> plan_of(const std::string& text) {
    return must(q::plan::compile(must(q::parse_query(text), "parse")), "compile");
  }

  static constexpr int k_records = 40;  // 4,000 events, about 4 MiB per stream
  std::string first_, second_;
  std::uint64_t next_event_ = 1;
};

// Where a scan's reply lands.
struct reply_box {
  std::optional<engine::result<q::partial_result>> value;
  actors::reply_fn<q::partial_result> fn() {
    return [this](engine::result<q::partial_result> r) { value.emplace(std::move(r)); };
  }
};

TEST_F(query_scans_test, a_partition_that_moves_away_stops_the_scans_of_its_siblings) {
  auto& a = partition_of(first_);
  auto& b = partition_of(second_);
  actors::query_scans scans_a(a.id()), scans_b(b.id());
  auto budget = std::make_shared<actors::query_budget>();
  const auto plan = plan_of("from $all | count()");
  reply_box reply_a, reply_b;
  const auto id_a = scans_a.start(a, plan, budget, reply_a.fn());
  const auto id_b = scans_b.start(b, plan, budget, reply_b.fn());
  ASSERT_TRUE(scans_a.step(a, id_a));
  ASSERT_TRUE(scans_b.step(b, id_b)) << "the second partition needs several steps";
  const auto scanned = budget->usage.events_scanned.load();
  ASSERT_LT(scanned, 8000u);

  scans_a.fail_all(engine::error{errc::not_owner, "partition moved"});
  ASSERT_TRUE(reply_a.value);
  ASSERT_FALSE(*reply_a.value);
  EXPECT_EQ(reply_a.value->err().code, errc::not_owner);

  // The sibling answers at its next step, with that error, scanning nothing more.
  EXPECT_FALSE(scans_b.step(b, id_b));
  ASSERT_TRUE(reply_b.value) << "the sibling scanned on";
  ASSERT_FALSE(*reply_b.value);
  EXPECT_EQ(reply_b.value->err().code, errc::not_owner);
  EXPECT_EQ(reply_b.value->err().message, "partition moved");
  EXPECT_EQ(budget->usage.events_scanned.load(), scanned);
  EXPECT_TRUE(scans_b.empty());

  // A scan that starts after the failure answers at its first step.
  reply_box late;
  const auto id_late = scans_b.start(b, plan, budget, late.fn());
  EXPECT_FALSE(scans_b.step(b, id_late));
  ASSERT_TRUE(late.value);
  ASSERT_FALSE(*late.value);
  EXPECT_EQ(late.value->err().code, errc::not_owner);
}

TEST_F(query_scans_test, a_scan_that_fails_records_its_error_for_its_siblings) {
  auto& a = partition_of(first_);
  auto& b = partition_of(second_);
  actors::query_scans scans_a(a.id()), scans_b(b.id());
  auto budget = std::make_shared<actors::query_budget>();
  budget->limits.max_listed_bytes = 100'000;  // less than 4,000 listed events of 1 KiB
  const auto plan = plan_of("from $all | first 4000");
  reply_box reply_a, reply_b;
  const auto id_a = scans_a.start(a, plan, budget, reply_a.fn());
  const auto id_b = scans_b.start(b, plan, budget, reply_b.fn());
  while (scans_a.step(a, id_a)) {
  }
  ASSERT_TRUE(reply_a.value);
  ASSERT_FALSE(*reply_a.value);
  EXPECT_EQ(reply_a.value->err().code, errc::query_too_large);
  const auto failure = budget->failure();
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->message, reply_a.value->err().message);

  const auto scanned = budget->usage.events_scanned.load();
  EXPECT_FALSE(scans_b.step(b, id_b));
  EXPECT_EQ(budget->usage.events_scanned.load(), scanned) << "the sibling scanned on";
  ASSERT_TRUE(reply_b.value);
  ASSERT_FALSE(*reply_b.value);
  EXPECT_EQ(reply_b.value->err().code, errc::query_too_large);
  EXPECT_EQ(reply_b.value->err().message, reply_a.value->err().message);
}

TEST_F(query_scans_test, scans_of_a_query_that_does_not_fail_run_to_the_end) {
  auto& a = partition_of(first_);
  auto& b = partition_of(second_);
  actors::query_scans scans_a(a.id()), scans_b(b.id());
  auto budget = std::make_shared<actors::query_budget>();
  const auto plan = plan_of("from $all | count()");
  reply_box reply_a, reply_b;
  const auto id_a = scans_a.start(a, plan, budget, reply_a.fn());
  const auto id_b = scans_b.start(b, plan, budget, reply_b.fn());
  bool more_a = true, more_b = true;
  while (more_a || more_b) {
    if (more_a) more_a = scans_a.step(a, id_a);
    if (more_b) more_b = scans_b.step(b, id_b);
  }
  ASSERT_TRUE(reply_a.value && *reply_a.value);
  ASSERT_TRUE(reply_b.value && *reply_b.value);
  EXPECT_EQ((*reply_a.value)->events_scanned + (*reply_b.value)->events_scanned, 8000u);
  EXPECT_FALSE(budget->failure());
}

}  // namespace
}  // namespace annal::testing
