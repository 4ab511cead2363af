// A query's partition scans (actors/query_scans.hpp) over the real
// partitions of a store: one scan's failure stops its siblings at their
// next step, with the same error, instead of letting them scan on.
#include "actors/query_scans.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
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

// One query's scans of two partitions, side by side on one shared budget.
// Not movable: the scans' replies point into it.
struct sibling_scans {
  sibling_scans(engine::partition& a, engine::partition& b, std::shared_ptr<const q::plan> plan,
                std::shared_ptr<actors::query_budget> shared)
      : a(a),
        b(b),
        scans_a(a.id()),
        scans_b(b.id()),
        budget(std::move(shared)),
        id_a(scans_a.start(a, plan, budget, reply_a.fn())),
        id_b(scans_b.start(b, plan, budget, reply_b.fn())) {}
  sibling_scans(const sibling_scans&) = delete;
  sibling_scans& operator=(const sibling_scans&) = delete;

  bool step_a() { return scans_a.step(a, id_a); }
  bool step_b() { return scans_b.step(b, id_b); }

  engine::partition& a;
  engine::partition& b;
  actors::query_scans scans_a, scans_b;
  std::shared_ptr<actors::query_budget> budget;
  reply_box reply_a, reply_b;
  const std::uint64_t id_a, id_b;
};

TEST_F(query_scans_test, a_partition_that_moves_away_stops_the_scans_of_its_siblings) {
  const auto plan = plan_of("from $all | count()");
  sibling_scans q(partition_of(first_), partition_of(second_), plan,
                  std::make_shared<actors::query_budget>());
  ASSERT_TRUE(q.step_a());
  ASSERT_TRUE(q.step_b()) << "the second partition needs several steps";
  const auto scanned = q.budget->usage.events_scanned.load();
  ASSERT_LT(scanned, 8000u);

  q.scans_a.fail_all(engine::error{errc::not_owner, "partition moved"});
  ASSERT_TRUE(q.reply_a.value);
  ASSERT_FALSE(*q.reply_a.value);
  EXPECT_EQ(q.reply_a.value->err().code, errc::not_owner);

  // The sibling answers at its next step, with that error, scanning nothing more.
  EXPECT_FALSE(q.step_b());
  ASSERT_TRUE(q.reply_b.value) << "the sibling scanned on";
  ASSERT_FALSE(*q.reply_b.value);
  EXPECT_EQ(q.reply_b.value->err().code, errc::not_owner);
  EXPECT_EQ(q.reply_b.value->err().message, "partition moved");
  EXPECT_EQ(q.budget->usage.events_scanned.load(), scanned);
  EXPECT_TRUE(q.scans_b.empty());

  // A scan that starts after the failure answers at its first step.
  reply_box late;
  const auto id_late = q.scans_b.start(q.b, plan, q.budget, late.fn());
  EXPECT_FALSE(q.scans_b.step(q.b, id_late));
  ASSERT_TRUE(late.value);
  ASSERT_FALSE(*late.value);
  EXPECT_EQ(late.value->err().code, errc::not_owner);
}

TEST_F(query_scans_test, a_scan_that_fails_records_its_error_for_its_siblings) {
  auto budget = std::make_shared<actors::query_budget>();
  budget->limits.max_listed_bytes = 100'000;  // less than 4,000 listed events of 1 KiB
  sibling_scans q(partition_of(first_), partition_of(second_), plan_of("from $all | first 4000"),
                  budget);
  while (q.step_a()) {
  }
  ASSERT_TRUE(q.reply_a.value);
  ASSERT_FALSE(*q.reply_a.value);
  EXPECT_EQ(q.reply_a.value->err().code, errc::query_too_large);
  const auto failure = budget->failure();
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->message, q.reply_a.value->err().message);

  const auto scanned = budget->usage.events_scanned.load();
  EXPECT_FALSE(q.step_b());
  EXPECT_EQ(budget->usage.events_scanned.load(), scanned) << "the sibling scanned on";
  ASSERT_TRUE(q.reply_b.value);
  ASSERT_FALSE(*q.reply_b.value);
  EXPECT_EQ(q.reply_b.value->err().code, errc::query_too_large);
  EXPECT_EQ(q.reply_b.value->err().message, q.reply_a.value->err().message);
}

TEST_F(query_scans_test, a_cancelled_query_stops_its_scans_at_their_next_step) {
  auto budget = std::make_shared<actors::query_budget>();
  budget->cancel = std::make_shared<std::atomic<bool>>(false);
  sibling_scans q(partition_of(first_), partition_of(second_), plan_of("from $all | count()"),
                  budget);
  ASSERT_TRUE(q.step_a());
  ASSERT_TRUE(q.step_b());
  EXPECT_FALSE(budget->failure());
  const auto scanned = budget->usage.events_scanned.load();
  ASSERT_LT(scanned, 8000u);

  budget->cancel->store(true);
  EXPECT_FALSE(q.step_a());
  EXPECT_FALSE(q.step_b());
  EXPECT_EQ(budget->usage.events_scanned.load(), scanned) << "a scan went on after the cancel";
  for (auto* reply : {&q.reply_a, &q.reply_b}) {
    ASSERT_TRUE(reply->value);
    ASSERT_FALSE(*reply->value);
    EXPECT_EQ(reply->value->err().code, errc::connection_lost);
  }
  EXPECT_TRUE(q.scans_a.empty());
  EXPECT_TRUE(q.scans_b.empty());
}

TEST_F(query_scans_test, scans_of_a_query_that_does_not_fail_run_to_the_end) {
  sibling_scans q(partition_of(first_), partition_of(second_), plan_of("from $all | count()"),
                  std::make_shared<actors::query_budget>());
  bool more_a = true, more_b = true;
  while (more_a || more_b) {
    if (more_a) more_a = q.step_a();
    if (more_b) more_b = q.step_b();
  }
  ASSERT_TRUE(q.reply_a.value && *q.reply_a.value);
  ASSERT_TRUE(q.reply_b.value && *q.reply_b.value);
  EXPECT_EQ((*q.reply_a.value)->events_scanned + (*q.reply_b.value)->events_scanned, 8000u);
  EXPECT_FALSE(q.budget->failure());
}

}  // namespace
}  // namespace annal::testing
