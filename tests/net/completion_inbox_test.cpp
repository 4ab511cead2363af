#include "net/completion_inbox.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace {

using annal::net::completion_inbox;

struct log {
  std::vector<std::string> entries;
};

TEST(completion_inbox_test, only_the_first_push_of_a_burst_asks_for_a_drain) {
  completion_inbox<log> inbox;
  log target;
  EXPECT_TRUE(inbox.push([](log &l) { l.entries.push_back("a"); }));
  EXPECT_FALSE(inbox.push([](log &l) { l.entries.push_back("b"); }));
  EXPECT_FALSE(inbox.push([](log &l) { l.entries.push_back("c"); }));
  EXPECT_TRUE(target.entries.empty()) << "nothing runs before the drain";
  inbox.drain(target);
  EXPECT_EQ(target.entries, (std::vector<std::string>{"a", "b", "c"}));

  EXPECT_TRUE(inbox.push([](log &l) { l.entries.push_back("d"); }))
      << "a new burst";
  inbox.drain(target);
  EXPECT_EQ(target.entries.back(), "d");
  inbox.drain(target);
  EXPECT_EQ(target.entries.size(), 4u)
      << "a drain of an empty inbox runs nothing";
}

TEST(completion_inbox_test, a_push_during_a_drain_starts_the_next_burst) {
  completion_inbox<log> inbox;
  log target;
  bool asked = false;
  inbox.push([&](log &l) {
    l.entries.push_back("first");
    asked = inbox.push(
        [](log &l2) { l2.entries.push_back("pushed while draining"); });
  });
  inbox.drain(target);
  EXPECT_TRUE(asked)
      << "the drain took the inbox empty: the push must schedule another";
  EXPECT_EQ(target.entries, std::vector<std::string>{"first"});
  inbox.drain(target);
  EXPECT_EQ(target.entries,
            (std::vector<std::string>{"first", "pushed while draining"}));
}

TEST(completion_inbox_test, takes_move_only_completions) {
  completion_inbox<log> inbox;
  log target;
  auto owned = std::make_unique<std::string>("moved in");
  inbox.push(
      [owned = std::move(owned)](log &l) { l.entries.push_back(*owned); });
  inbox.drain(target);
  EXPECT_EQ(target.entries, std::vector<std::string>{"moved in"});
}

// Producers on other threads, one consumer that drains once per true push:
// every completion runs exactly once.
TEST(completion_inbox_test, every_completion_from_many_threads_runs_once) {
  completion_inbox<std::vector<int>> inbox;
  std::vector<int> seen;
  std::atomic<int> drains_asked{0};
  constexpr int k_threads = 4, k_each = 5000;
  std::vector<std::thread> producers;
  for (int t = 0; t < k_threads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < k_each; ++i) {
        const int value = t * k_each + i;
        if (inbox.push(
                [value](std::vector<int> &out) { out.push_back(value); })) {
          drains_asked.fetch_add(1);
        }
      }
    });
  }
  int drained = 0;
  const auto all_done = [&] {
    return static_cast<int>(seen.size()) == k_threads * k_each;
  };
  while (!all_done()) {
    if (drained < drains_asked.load()) {
      inbox.drain(seen);
      ++drained;
    } else {
      std::this_thread::yield();
    }
  }
  for (auto &p : producers)
    p.join();
  std::sort(seen.begin(), seen.end());
  for (int i = 0; i < k_threads * k_each; ++i)
    ASSERT_EQ(seen[i], i);
  EXPECT_GE(drains_asked.load(), 1);
}

} // namespace
