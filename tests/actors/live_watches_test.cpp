#include "actors/live_watches.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <thread>

namespace annal::actors {
namespace {

// Hooks that record what live_watches asks for; the test answers by hand.
struct fake_node {
  struct read_call {
    read_all_request request;
    reply_fn<read_all_page> reply;
  };
  std::deque<read_call> reads;
  std::deque<std::pair<partition_id, wait_msg>> parked;
  std::deque<std::pair<std::chrono::milliseconds, std::function<void()>>> timers;

  live_watches::hooks hooks() {
    live_watches::hooks h;
    h.read = [this](read_all_request r, reply_fn<read_all_page> reply) {
      reads.push_back({std::move(r), std::move(reply)});
    };
    h.park = [this](partition_id p, wait_msg m) { parked.emplace_back(p, std::move(m)); };
    h.after = [this](std::chrono::milliseconds d, std::function<void()> f) {
      timers.emplace_back(d, std::move(f));
    };
    return h;
  }
};

constexpr std::uint32_t k_partitions = 4;

read_all_request live_round(std::vector<all_position> from) {
  read_all_request r;
  r.from = std::move(from);
  for (std::uint32_t p = 0; p < k_partitions; ++p) r.partitions.emplace_back(p);
  r.wait_ms = 5000;
  r.watch = 42;
  return r;
}

std::vector<all_position> at(std::uint64_t v) {
  return std::vector<all_position>(k_partitions, all_position{v});
}

read_all_page empty_page(std::vector<all_position> next) {
  read_all_page page;
  page.next = std::move(next);
  page.at_end = true;
  return page;
}

std::vector<std::uint32_t> ids(const std::vector<partition_id>& ps) {
  std::vector<std::uint32_t> out;
  for (auto p : ps) out.push_back(p.value());
  return out;
}

struct answers {
  std::vector<result<read_all_page>> got;
  reply_fn<read_all_page> fn() {
    return [this](result<read_all_page> r) { got.push_back(std::move(r)); };
  }
};

TEST(live_watches, a_first_round_reads_every_partition_then_parks_a_wait_on_each) {
  fake_node node;
  live_watches watches(node.hooks());
  answers out;
  watches.round(live_round(at(0)), out.fn());
  ASSERT_EQ(node.reads.size(), 1u);
  EXPECT_EQ(node.reads[0].request.wait_ms, 0u) << "a plain read";
  EXPECT_EQ(ids(node.reads[0].request.partitions), (std::vector<std::uint32_t>{0, 1, 2, 3}));
  node.reads[0].reply(empty_page(at(0)));
  ASSERT_EQ(node.parked.size(), k_partitions);
  EXPECT_EQ(node.parked[2].first.value(), 2u);
  EXPECT_EQ(node.parked[2].second.watch, 42u);
  EXPECT_EQ(node.parked[2].second.from, all_position{0});
  EXPECT_EQ(node.timers.size(), 1u);
  EXPECT_TRUE(out.got.empty()) << "the round waits";
}

TEST(live_watches, a_wake_reads_only_its_partition_and_the_next_round_only_that_one_again) {
  fake_node node;
  live_watches watches(node.hooks());
  answers out;
  watches.round(live_round(at(0)), out.fn());
  node.reads.front().reply(empty_page(at(0)));
  node.reads.clear();

  node.parked[1].second.reply(wake_reason::ready);
  ASSERT_EQ(node.reads.size(), 1u);
  EXPECT_EQ(ids(node.reads[0].request.partitions), (std::vector<std::uint32_t>{1}));
  auto next = at(0);
  next[1] = all_position{7};
  read_all_page page = empty_page(next);
  page.events.resize(1);
  page.at_end = false;
  node.reads[0].reply(std::move(page));
  ASSERT_EQ(out.got.size(), 1u);
  ASSERT_TRUE(out.got[0].ok());
  EXPECT_EQ(out.got[0]->events.size(), 1u);

  // Partitions 0, 2 and 3 stay parked: the next round reads and parks 1 only.
  node.reads.clear();
  node.parked.clear();
  watches.round(live_round(next), out.fn());
  ASSERT_EQ(node.reads.size(), 1u);
  EXPECT_EQ(ids(node.reads[0].request.partitions), (std::vector<std::uint32_t>{1}));
  node.reads[0].reply(empty_page(next));
  ASSERT_EQ(node.parked.size(), 1u);
  EXPECT_EQ(node.parked[0].first.value(), 1u);
  EXPECT_EQ(node.parked[0].second.from, all_position{7});
}

TEST(live_watches, a_round_with_every_wait_parked_sends_nothing_and_a_wake_answers_it) {
  fake_node node;
  live_watches watches(node.hooks());
  answers out;
  auto first = live_round(at(0));
  first.wait_ms = 1;
  watches.round(first, out.fn());
  node.reads.front().reply(empty_page(at(0)));
  auto waits = std::move(node.parked);
  node.parked.clear();
  node.reads.clear();
  const auto due = request_clock::now() + std::chrono::milliseconds(2);
  while (request_clock::now() < due) std::this_thread::yield();
  node.timers.front().second();  // the first round times out: an empty page at the end
  ASSERT_EQ(out.got.size(), 1u);
  EXPECT_TRUE(out.got[0]->events.empty());
  EXPECT_TRUE(out.got[0]->at_end);

  watches.round(live_round(at(0)), out.fn());
  EXPECT_TRUE(node.reads.empty());
  EXPECT_TRUE(node.parked.empty()) << "the waits of the first round are still parked";
  waits[3].second.reply(wake_reason::ready);
  ASSERT_EQ(node.reads.size(), 1u);
  EXPECT_EQ(ids(node.reads[0].request.partitions), (std::vector<std::uint32_t>{3}));
}

// A watch whose first round read every partition, found nothing and parked
// a wait on each: `waits` holds those waits; no read is outstanding.
class live_watches_parked : public ::testing::Test {
 protected:
  live_watches_parked() {
    watches.round(live_round(at(0)), out.fn());
    node.reads.front().reply(empty_page(at(0)));
    waits = std::move(node.parked);
    node.reads.clear();
  }

  fake_node node;
  live_watches watches{node.hooks()};
  answers out;
  std::deque<std::pair<partition_id, wait_msg>> waits;
};

TEST_F(live_watches_parked, a_wake_between_rounds_is_kept_and_read_by_the_next_round) {
  waits[0].second.reply(wake_reason::ready);  // answers the round: reads 0
  ASSERT_EQ(node.reads.size(), 1u);
  node.reads.front().reply(empty_page(at(0)));  // (nothing after all)
  node.reads.clear();
  waits[2].second.reply(wake_reason::ready);  // no round waits: remembered
  EXPECT_TRUE(node.reads.empty());

  watches.round(live_round(at(0)), out.fn());
  ASSERT_EQ(node.reads.size(), 1u);
  EXPECT_EQ(ids(node.reads[0].request.partitions), (std::vector<std::uint32_t>{0, 2}));
}

TEST_F(live_watches_parked,
       stale_and_superseded_answers_change_nothing_and_errors_reach_the_round) {
  waits[1].second.reply(wake_reason::superseded);  // its slot is re-parked by the next round
  EXPECT_TRUE(out.got.empty());
  waits[1].second.reply(wake_reason::ready);  // stale now: ignored
  EXPECT_TRUE(node.reads.empty());
  waits[2].second.reply(engine::error{engine::errc::not_owner, "moved"});
  ASSERT_EQ(out.got.size(), 1u);
  ASSERT_FALSE(out.got[0].ok());
  EXPECT_EQ(out.got[0].err().code, engine::errc::not_owner);
}

TEST(live_watches, a_timer_that_fires_early_waits_for_the_round_deadline) {
  fake_node node;
  live_watches watches(node.hooks());
  answers out;
  auto first = live_round(at(0));
  watches.round(first, out.fn());
  node.reads.front().reply(empty_page(at(0)));
  node.reads.clear();
  node.parked[0].second.reply(wake_reason::ready);
  node.reads.front().reply(empty_page(at(0)));
  node.reads.clear();
  // A second round with a long wait while the first round's timer is armed.
  auto second = live_round(at(0));
  second.wait_ms = 20000;
  watches.round(second, out.fn());
  node.reads.front().reply(empty_page(at(0)));
  ASSERT_EQ(node.timers.size(), 1u) << "one timer per watch";
  const auto before = out.got.size();
  node.timers.front().second();  // before the deadline: re-armed, no answer
  EXPECT_EQ(out.got.size(), before);
  ASSERT_EQ(node.timers.size(), 2u);
  EXPECT_GT(node.timers.back().first, std::chrono::milliseconds(10000));
}

}  // namespace
}  // namespace annal::actors
