#include "engine/event_id_window.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/event_factory.hpp"

namespace {

using annal::event_id;
using annal::engine::event_id_window;
using annal::testing::make_event_id;
using entry = event_id_window::entry;

entry at(std::uint32_t stream, std::uint64_t version) { return entry{stream, version}; }

std::vector<std::pair<event_id, entry>> contents(const event_id_window& w) {
  std::vector<std::pair<event_id, entry>> out;
  w.for_each([&](const event_id& id, const entry& e) { out.emplace_back(id, e); });
  return out;
}

// The reference model: the last `capacity` inserts, and for each id the
// newest place among them.
class window_model {
 public:
  explicit window_model(std::size_t capacity) : capacity_(capacity) {}

  void insert(const event_id& id, entry where) {
    if (recent_.size() == capacity_) {
      const auto& oldest = recent_.front();
      auto it = live_.find(oldest.first);
      if (--it->second.count == 0) live_.erase(it);
      recent_.pop_front();
    }
    recent_.emplace_back(id, where);
    auto& slot = live_[id];
    ++slot.count;
    slot.newest = where;
  }

  std::optional<entry> find(const event_id& id) const {
    auto it = live_.find(id);
    if (it == live_.end()) return std::nullopt;
    return it->second.newest;
  }

 private:
  struct slot {
    std::size_t count = 0;
    entry newest;
  };
  std::size_t capacity_;
  std::deque<std::pair<event_id, entry>> recent_;
  std::map<event_id, slot> live_;
};

void expect_same(const event_id_window& w, const window_model& model,
                 const std::vector<event_id>& ids, std::size_t step) {
  for (const auto& id : ids) {
    const auto* got = w.find(id);
    const auto want = model.find(id);
    ASSERT_EQ(got != nullptr, want.has_value()) << "step " << step;
    if (got) {
      ASSERT_EQ(got->stream, want->stream) << "step " << step;
      ASSERT_EQ(got->version, want->version) << "step " << step;
    }
  }
}

// Random inserts from a pool of ids (so that ids repeat and probe chains
// collide), each checked against the model for every id of the pool.
void run_against_model(std::size_t capacity, const std::vector<event_id>& pool,
                       std::size_t inserts, std::uint32_t seed) {
  event_id_window w(capacity);
  window_model model(capacity);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, pool.size() - 1);
  for (std::size_t step = 0; step < inserts; ++step) {
    const auto& id = pool[pick(rng)];
    const entry where = at(static_cast<std::uint32_t>(step % 7), step);
    w.insert(id, where);
    model.insert(id, where);
    ASSERT_LE(w.size(), capacity);
    expect_same(w, model, pool, step);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(event_id_window_test, empty_window_finds_nothing) {
  event_id_window w(4);
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.capacity(), 4u);
  EXPECT_EQ(w.find(make_event_id(1)), nullptr);
  EXPECT_EQ(w.find(event_id{}), nullptr) << "the all-zero id is not special";
}

TEST(event_id_window_test, inserted_ids_are_found_with_their_place) {
  event_id_window w(4);
  w.insert(make_event_id(1), at(0, 10));
  w.insert(make_event_id(2), at(3, 0));
  ASSERT_NE(w.find(make_event_id(1)), nullptr);
  EXPECT_EQ(w.find(make_event_id(1))->stream, 0u);
  EXPECT_EQ(w.find(make_event_id(1))->version, 10u);
  EXPECT_EQ(w.find(make_event_id(2))->stream, 3u);
  EXPECT_EQ(w.find(make_event_id(2))->version, 0u);
  EXPECT_EQ(w.find(make_event_id(3)), nullptr);
  EXPECT_EQ(w.size(), 2u);
}

TEST(event_id_window_test, oldest_id_is_evicted_first_once_full) {
  event_id_window w(3);
  for (std::uint64_t n = 1; n <= 5; ++n) w.insert(make_event_id(n), at(0, n));
  EXPECT_EQ(w.size(), 3u);
  EXPECT_EQ(w.capacity(), 3u);
  EXPECT_EQ(w.find(make_event_id(1)), nullptr);
  EXPECT_EQ(w.find(make_event_id(2)), nullptr);
  for (std::uint64_t n = 3; n <= 5; ++n) {
    ASSERT_NE(w.find(make_event_id(n)), nullptr) << n;
    EXPECT_EQ(w.find(make_event_id(n))->version, n);
  }
  const auto c = contents(w);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].first, make_event_id(3)) << "visited oldest first";
  EXPECT_EQ(c[1].first, make_event_id(4));
  EXPECT_EQ(c[2].first, make_event_id(5));
  EXPECT_EQ(c[2].second.version, 5u);
}

TEST(event_id_window_test, window_of_one_keeps_only_the_last_id) {
  event_id_window w(1);
  w.insert(make_event_id(1), at(0, 0));
  w.insert(make_event_id(2), at(0, 1));
  EXPECT_EQ(w.find(make_event_id(1)), nullptr);
  ASSERT_NE(w.find(make_event_id(2)), nullptr);
  w.insert(make_event_id(2), at(4, 9));
  ASSERT_NE(w.find(make_event_id(2)), nullptr);
  EXPECT_EQ(w.find(make_event_id(2))->stream, 4u);
  EXPECT_EQ(w.find(make_event_id(2))->version, 9u);
  EXPECT_EQ(w.size(), 1u);
}

TEST(event_id_window_test, reinserted_id_points_to_its_newest_place_until_that_is_evicted) {
  event_id_window w(3);
  const auto a = make_event_id(0xa);
  w.insert(a, at(0, 0));               // ring: a0
  w.insert(make_event_id(2), at(0, 1));  // a0 b
  w.insert(a, at(1, 5));               // a0 b a1
  ASSERT_NE(w.find(a), nullptr);
  EXPECT_EQ(w.find(a)->stream, 1u);
  EXPECT_EQ(w.find(a)->version, 5u);

  w.insert(make_event_id(3), at(0, 2));  // evicts a0: a must still point at a1
  ASSERT_NE(w.find(a), nullptr);
  EXPECT_EQ(w.find(a)->stream, 1u);
  EXPECT_EQ(w.find(a)->version, 5u);

  w.insert(make_event_id(4), at(0, 3));  // evicts b
  EXPECT_EQ(w.find(make_event_id(2)), nullptr);
  ASSERT_NE(w.find(a), nullptr);

  w.insert(make_event_id(5), at(0, 4));  // evicts a1
  EXPECT_EQ(w.find(a), nullptr);
  EXPECT_NE(w.find(make_event_id(3)), nullptr);
  EXPECT_NE(w.find(make_event_id(4)), nullptr);
  EXPECT_NE(w.find(make_event_id(5)), nullptr);
}

TEST(event_id_window_test, for_each_replayed_into_a_new_window_gives_the_same_lookups) {
  // How a checkpoint restores the window: insert what for_each visits.
  event_id_window w(50);
  for (std::uint64_t i = 0; i < 120; ++i) w.insert(make_event_id(i % 37), at(i % 3, i));
  event_id_window restored(50);
  w.for_each([&](const event_id& id, const entry& e) { restored.insert(id, e); });
  for (std::uint64_t n = 0; n < 40; ++n) {
    const auto* a = w.find(make_event_id(n));
    const auto* b = restored.find(make_event_id(n));
    ASSERT_EQ(a != nullptr, b != nullptr) << n;
    if (a) {
      EXPECT_EQ(a->stream, b->stream) << n;
      EXPECT_EQ(a->version, b->version) << n;
    }
  }
}

TEST(event_id_window_test, random_inserts_match_a_model_of_the_last_k_ids) {
  std::vector<event_id> pool;
  std::mt19937_64 rng(42);
  for (int i = 0; i < 300; ++i) {
    event_id id;
    for (auto& b : id) b = static_cast<std::uint8_t>(rng());
    pool.push_back(id);
  }
  run_against_model(64, pool, 20000, 1);
}

TEST(event_id_window_test, ids_sharing_their_first_8_bytes_match_the_model) {
  // Time-ordered UUIDs made in the same millisecond share their first bytes.
  std::vector<event_id> pool;
  for (std::uint64_t n = 0; n < 200; ++n) pool.push_back(make_event_id(n, 0x0190f00dcafe0000ull));
  run_against_model(50, pool, 20000, 2);
}

TEST(event_id_window_test, ids_sharing_their_last_8_bytes_match_the_model) {
  std::vector<event_id> pool;
  for (std::uint64_t n = 0; n < 200; ++n) pool.push_back(make_event_id(0x1234, n * 0x10000));
  run_against_model(50, pool, 20000, 3);
}

TEST(event_id_window_test, window_larger_than_the_pool_never_forgets) {
  std::vector<event_id> pool;
  for (std::uint64_t n = 0; n < 100; ++n) pool.push_back(make_event_id(n, 7));
  run_against_model(1000, pool, 5000, 4);
}

TEST(event_id_window_test, many_distinct_ids_fill_and_turn_over_the_window) {
  constexpr std::size_t k_capacity = 10000;
  event_id_window w(k_capacity);
  for (std::uint64_t n = 0; n < 3 * k_capacity; ++n) w.insert(make_event_id(n, 1), at(2, n));
  EXPECT_EQ(w.size(), k_capacity);
  for (std::uint64_t n = 0; n < 2 * k_capacity; ++n) {
    ASSERT_EQ(w.find(make_event_id(n, 1)), nullptr) << n;
  }
  for (std::uint64_t n = 2 * k_capacity; n < 3 * k_capacity; ++n) {
    const auto* e = w.find(make_event_id(n, 1));
    ASSERT_NE(e, nullptr) << n;
    ASSERT_EQ(e->version, n);
  }
}

}  // namespace
