// Read-all's two halves: reading one partition from a position
// (read_partition_all) and merging sorted runs under a limit
// (merge_read_all), plus the per-partition counts of `annal stats`.
#include "actors/read_all.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <tuple>

#include "actors/stats.hpp"
#include "tests/support/store_fixture.hpp"

namespace annal::testing {
namespace {

using actors::all_event;
using actors::all_position;
using actors::make_all_position;
using actors::read_all_part;
using engine::errc;

constexpr std::size_t k_no_byte_limit = std::size_t{1} << 40;

// An event of partition p in the record at `record`, index `index`.
all_event ev(std::uint32_t p, timestamp_us t, std::uint64_t record, std::uint32_t index = 0,
             std::string_view stream = "s") {
  all_event e;
  e.stream = stream;
  e.partition = partition_id{p};
  e.index = index;
  e.event.type = "T";
  e.event.timestamp = t;
  e.event.position = lsn{record};
  return e;
}

read_all_part part(std::vector<all_event> events,
                   std::vector<std::pair<std::uint32_t, all_position>> next, bool at_end) {
  read_all_part out;
  out.events = std::move(events);
  for (auto& [p, position] : next) out.next.emplace_back(partition_id{p}, position);
  out.at_end = at_end;
  return out;
}

all_position at(std::uint64_t record, std::uint32_t index = 0) {
  return make_all_position(lsn{record}, index);
}

// (partition, record lsn, index) of each event of a page.
std::vector<std::tuple<std::uint32_t, std::uint64_t, std::uint32_t>> ids(
    const actors::read_all_page& page) {
  std::vector<std::tuple<std::uint32_t, std::uint64_t, std::uint32_t>> out;
  for (const auto& e : page.events) {
    out.emplace_back(e.partition.value(), e.event.position.value(), e.index);
  }
  return out;
}

// --- merge_read_all -----------------------------------------------------

TEST(read_all_merge, orders_by_timestamp_then_partition_then_position) {
  std::vector<read_all_part> parts;
  parts.push_back(part({ev(0, 10, 0), ev(0, 30, 100, 0), ev(0, 30, 100, 1)}, {{0, at(200)}}, true));
  parts.push_back(part({ev(1, 20, 0), ev(1, 30, 50)}, {{1, at(90)}}, true));
  parts.push_back(part({ev(2, 5, 0)}, {{2, at(40)}}, true));
  auto page =
      actors::merge_read_all(std::move(parts), std::vector<all_position>(3), 100, k_no_byte_limit);
  using id = std::tuple<std::uint32_t, std::uint64_t, std::uint32_t>;
  EXPECT_EQ(ids(page), (std::vector<id>{
                           {2, 0, 0}, {0, 0, 0}, {1, 0, 0}, {0, 100, 0}, {0, 100, 1}, {1, 50, 0}}));
  EXPECT_TRUE(page.at_end);
  EXPECT_EQ(page.next, (std::vector<all_position>{at(200), at(90), at(40)}));
}

TEST(read_all_merge, the_limit_applies_after_the_merge_and_next_passes_only_returned_events) {
  std::vector<read_all_part> parts;
  parts.push_back(part({ev(0, 10, 0), ev(0, 40, 100, 0), ev(0, 40, 100, 1)}, {{0, at(200)}}, true));
  parts.push_back(part({ev(1, 20, 0), ev(1, 30, 60)}, {{1, at(90)}}, true));
  // Partition 2 is not read: its position stays as given.
  auto page =
      actors::merge_read_all(std::move(parts), {at(0), at(0), at(777, 3)}, 4, k_no_byte_limit);
  ASSERT_EQ(page.events.size(), 4u);
  EXPECT_EQ(page.events[3].partition, partition_id{0});
  EXPECT_EQ(page.events[3].index, 0u);
  EXPECT_FALSE(page.at_end);
  // Partition 0 continues at the second event of its record at lsn 100;
  // partition 1 was read whole, so it continues at its own next.
  EXPECT_EQ(page.next, (std::vector<all_position>{at(100, 1), at(90), at(777, 3)}));
}

TEST(read_all_merge, a_part_with_more_events_stops_the_page_at_its_last_event) {
  // Partition 0 stopped at timestamp 20 (it may have events at 21 next);
  // partition 1's events after 20 must wait for the next page.
  std::vector<read_all_part> parts;
  parts.push_back(part({ev(0, 10, 0), ev(0, 20, 10)}, {{0, at(20)}}, false));
  parts.push_back(part({ev(1, 15, 0), ev(1, 25, 10), ev(1, 35, 20)}, {{1, at(30)}}, true));
  auto page =
      actors::merge_read_all(std::move(parts), std::vector<all_position>(2), 100, k_no_byte_limit);
  using id = std::tuple<std::uint32_t, std::uint64_t, std::uint32_t>;
  EXPECT_EQ(ids(page), (std::vector<id>{{0, 0, 0}, {1, 0, 0}, {0, 10, 0}}));
  EXPECT_FALSE(page.at_end);
  // Partition 1 continues after its first event (index 1 of its record).
  EXPECT_EQ(page.next, (std::vector<all_position>{at(20), at(0, 1)}));
}

TEST(read_all_merge, a_part_with_more_but_no_events_blocks_the_page_and_still_advances) {
  std::vector<read_all_part> parts;
  parts.push_back(part({}, {{0, at(5000)}}, false));  // scanned metadata records only
  parts.push_back(part({ev(1, 15, 0)}, {{1, at(30)}}, true));
  auto page =
      actors::merge_read_all(std::move(parts), std::vector<all_position>(2), 100, k_no_byte_limit);
  EXPECT_TRUE(page.events.empty());
  EXPECT_FALSE(page.at_end);
  EXPECT_EQ(page.next, (std::vector<all_position>{at(5000), at(0)}));
}

TEST(read_all_merge, the_byte_budget_cuts_the_page_after_at_least_one_event) {
  std::vector<read_all_part> parts;
  parts.push_back(part({ev(0, 1, 0), ev(0, 2, 10), ev(0, 3, 20)}, {{0, at(30)}}, true));
  const std::size_t one = ev(0, 1, 0).budget_bytes();
  auto page = actors::merge_read_all(std::move(parts), std::vector<all_position>(1), 100, 2 * one);
  EXPECT_EQ(page.events.size(), 2u);
  EXPECT_EQ(page.next, (std::vector<all_position>{at(10, 1)}));
  EXPECT_FALSE(page.at_end);

  std::vector<read_all_part> again;
  again.push_back(part({ev(0, 1, 0), ev(0, 2, 10)}, {{0, at(30)}}, true));
  page = actors::merge_read_all(std::move(again), std::vector<all_position>(1), 100, 1);
  EXPECT_EQ(page.events.size(), 1u) << "one event even over the budget";
  EXPECT_EQ(page.next, (std::vector<all_position>{at(0, 1)}));
}

TEST(read_all_merge, one_partition_alone_is_cut_exactly_like_the_general_merge) {
  // One part of one partition takes a shortcut (no heap, no copies); an
  // extra empty partition at its end sends the same events through the
  // k-way merge. Both must cut the page at the same event and give the same
  // next positions, also with a clock that went back (timestamp 5 after 30).
  const std::vector<all_event> events = {ev(0, 10, 0, 0), ev(0, 10, 0, 1), ev(0, 30, 10),
                                         ev(0, 5, 20),    ev(0, 20, 30),   ev(0, 25, 40)};
  const std::size_t one = events.front().budget_bytes();
  for (const bool at_end : {true, false}) {
    for (const std::size_t limit : {1u, 2u, 3u, 4u, 6u, 100u}) {
      for (const std::size_t max_bytes : {std::size_t{1}, 2 * one, 5 * one, k_no_byte_limit}) {
        SCOPED_TRACE(::testing::Message()
                     << "at_end " << at_end << " limit " << limit << " max_bytes " << max_bytes);
        std::vector<read_all_part> alone;
        alone.push_back(part(events, {{0, at(50)}}, at_end));
        auto shortcut = actors::merge_read_all(std::move(alone), {at(0), at(7)}, limit, max_bytes);
        std::vector<read_all_part> with_other;
        with_other.push_back(part(events, {{0, at(50)}}, at_end));
        with_other.push_back(part({}, {{1, at(7)}}, true));
        auto merged =
            actors::merge_read_all(std::move(with_other), {at(0), at(7)}, limit, max_bytes);
        EXPECT_EQ(ids(shortcut), ids(merged));
        EXPECT_EQ(shortcut.next, merged.next);
        EXPECT_EQ(shortcut.at_end, merged.at_end);
      }
    }
  }
  // Spot checks of the shortcut's own answers.
  std::vector<read_all_part> parts;
  parts.push_back(part(events, {{0, at(50)}}, false));
  auto page = actors::merge_read_all(std::move(parts), {at(0)}, 100, k_no_byte_limit);
  // Not at its end: the page stops at the first event that sorts after its
  // last one (timestamp 30 > 25), which comes again on the next page.
  using id = std::tuple<std::uint32_t, std::uint64_t, std::uint32_t>;
  EXPECT_EQ(ids(page), (std::vector<id>{{0, 0, 0}, {0, 0, 1}}));
  EXPECT_EQ(page.next, (std::vector<all_position>{at(0, 2)}));
  EXPECT_FALSE(page.at_end);
  std::vector<read_all_part> cut;
  cut.push_back(part(events, {{0, at(50)}}, true));
  page = actors::merge_read_all(std::move(cut), {at(0)}, 100, k_no_byte_limit);
  EXPECT_EQ(page.events.size(), 6u) << "at its end: no horizon";
  EXPECT_EQ(page.next, (std::vector<all_position>{at(50)}));
  EXPECT_TRUE(page.at_end);
}

TEST(read_all_merge, merged_pages_merge_again_like_their_partitions) {
  // A node's merged page (partitions 0 and 2, cut by its limit) merged with
  // another node's: the same result as merging the four partitions at once.
  auto node_a =
      part({ev(0, 1, 0), ev(2, 2, 0), ev(0, 3, 10)}, {{0, at(10, 1)}, {2, at(10)}}, false);
  auto node_b = part({ev(1, 1, 0), ev(3, 4, 0)}, {{1, at(5)}, {3, at(9)}}, true);
  std::vector<read_all_part> parts;
  parts.push_back(node_a);
  parts.push_back(node_b);
  auto page =
      actors::merge_read_all(std::move(parts), std::vector<all_position>(4), 3, k_no_byte_limit);
  using id = std::tuple<std::uint32_t, std::uint64_t, std::uint32_t>;
  EXPECT_EQ(ids(page), (std::vector<id>{{0, 0, 0}, {1, 0, 0}, {2, 0, 0}}));
  EXPECT_EQ(page.next, (std::vector<all_position>{at(0, 1), at(5), at(10), at(0)}));
}

TEST(read_all_merge, check_read_all_rejects_bad_requests) {
  actors::read_all_request r;
  EXPECT_TRUE(actors::check_read_all(r, 4).ok());
  r.limit = 0;
  EXPECT_EQ(actors::check_read_all(r, 4).err().code, errc::invalid_argument);
  r.limit = 1;
  r.from.resize(3);
  EXPECT_EQ(actors::check_read_all(r, 4).err().code, errc::invalid_argument);
  r.from.resize(4);
  EXPECT_TRUE(actors::check_read_all(r, 4).ok());
  r.partitions = {partition_id{4}};
  EXPECT_EQ(actors::check_read_all(r, 4).err().code, errc::invalid_argument);
  r.partitions = {partition_id{1}, partition_id{1}};
  EXPECT_EQ(actors::check_read_all(r, 4).err().code, errc::invalid_argument);
}

// --- read_partition_all over a real store --------------------------------

class read_all_partition_test : public store_fixture {
 protected:
  actors::read_all_part read(engine::partition& p, all_position from, std::size_t limit,
                             std::size_t max_bytes = actors::k_read_all_max_bytes) {
    return must(actors::read_partition_all(p, from, limit, max_bytes), "read_partition_all");
  }
};

TEST_F(read_all_partition_test, reads_append_records_with_stream_names_and_skips_other_records) {
  const std::string a = "orders-1";
  const std::string b = stream_in_partition_of(a);
  append_synced(a, engine::expected_version::any(), fresh_events(2));
  must(partition_of(a).set_metadata(a, engine::stream_metadata{5, 0, 0}), "metadata");
  append_synced(b, engine::expected_version::any(), fresh_events(1));
  must(partition_of(a).put_snapshot(b, stream_version{0}, "snap"), "snapshot");
  must(st().sync(), "sync");

  auto& p = partition_of(a);
  auto part = read(p, all_position{}, 100);
  ASSERT_EQ(part.events.size(), 3u);
  EXPECT_EQ(part.events[0].stream, a);
  EXPECT_EQ(part.events[0].event.version, stream_version{0});
  EXPECT_EQ(part.events[1].stream, a);
  EXPECT_EQ(part.events[1].index, 1u);
  EXPECT_EQ(part.events[1].event.data, data_for(2));
  EXPECT_EQ(part.events[2].stream, b);
  EXPECT_EQ(part.events[2].partition, p.id());
  EXPECT_TRUE(part.at_end);
  ASSERT_EQ(part.next.size(), 1u);
  // Past the snapshot record: a later page starts at the end.
  EXPECT_EQ(part.next[0].second, make_all_position(p.visible_end(), 0));
  EXPECT_TRUE(read(p, part.next[0].second, 100).events.empty());
}

TEST_F(read_all_partition_test, resumes_inside_an_append_batch) {
  const std::string s = "batch-1";
  const auto first = next_id();
  append_synced(s, engine::expected_version::any(), fresh_events(5));
  append_synced(s, engine::expected_version::any(), fresh_events(1));
  auto& p = partition_of(s);
  std::vector<std::string> seen;
  all_position from{};
  int pages = 0;
  for (;;) {
    auto part = read(p, from, 2);
    for (const auto& e : part.events) seen.emplace_back(e.event.data);
    from = part.next[0].second;
    ++pages;
    if (part.at_end) break;
    ASSERT_LT(pages, 10);
  }
  ASSERT_EQ(seen.size(), 6u);
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], data_for(first + i));
}

TEST_F(read_all_partition_test, unacknowledged_records_are_not_read) {
  const std::string s = "pending-1";
  append_synced(s, engine::expected_version::any(), fresh_events(1));
  must(append(s, engine::expected_version::any(), fresh_events(1)), "append, not synced");
  auto& p = partition_of(s);
  auto part = read(p, all_position{}, 100);
  EXPECT_EQ(part.events.size(), 1u);
  EXPECT_TRUE(part.at_end);
  must(st().sync(), "sync");
  auto after = read(p, part.next[0].second, 100);
  EXPECT_EQ(after.events.size(), 1u);
}

TEST_F(read_all_partition_test, a_position_past_the_end_is_invalid_argument) {
  const std::string s = "end-1";
  append_synced(s, engine::expected_version::any(), fresh_events(1));
  auto& p = partition_of(s);
  auto r = actors::read_partition_all(p, make_all_position(lsn{p.end().value() + 1}, 0), 10,
                                      actors::k_read_all_max_bytes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_argument);
}

TEST_F(read_all_partition_test, a_position_inside_a_record_is_invalid_argument) {
  const std::string s = "inside-1";
  append_synced(s, engine::expected_version::any(), fresh_events(1));
  append_synced(s, engine::expected_version::any(), fresh_events(1));
  auto& p = partition_of(s);
  auto r =
      actors::read_partition_all(p, make_all_position(lsn{3}, 0), 10, actors::k_read_all_max_bytes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_argument) << r.err().message;
}

TEST_F(read_all_partition_test, the_byte_budget_cuts_a_partition_page) {
  const std::string s = "bytes-1";
  append_synced(s, engine::expected_version::any(), fresh_events(10));
  auto part = read(partition_of(s), all_position{}, 100, 1);
  EXPECT_EQ(part.events.size(), 1u);
  EXPECT_FALSE(part.at_end);
  EXPECT_EQ(part.next[0].second, make_all_position(lsn{0}, 1));
}

// Pages through every partition as a node does (one part per partition,
// merged) with small random limits: every event exactly once, timestamps
// never going back, each stream's versions in order.
TEST_F(read_all_partition_test, paging_returns_every_event_once_in_timestamp_order) {
  std::mt19937 rng(7);
  std::map<std::string, std::uint64_t> appended;  // stream -> events
  std::size_t total = 0;
  for (int i = 0; i < 300; ++i) {
    const std::string stream = "s-" + std::to_string(rng() % 23);
    const std::size_t n = 1 + rng() % 4;
    must(append(stream, engine::expected_version::any(), fresh_events(n)), "append");
    appended[stream] += n;
    total += n;
    if (rng() % 3 == 0) clock_.set(clock_.now_us() + static_cast<timestamp_us>(rng() % 5));
    if (rng() % 7 == 0) must(st().sync(), "sync");
  }
  must(st().sync(), "sync");

  std::vector<all_position> from(st().partition_count());
  std::set<std::pair<std::string, std::uint64_t>> seen;
  std::map<std::string, std::uint64_t> next_version;
  timestamp_us last = 0;
  int pages = 0;
  for (;;) {
    const std::size_t limit = 1 + rng() % 7;
    std::vector<read_all_part> parts;
    for (std::uint32_t p = 0; p < st().partition_count(); ++p) {
      auto& partition = *must(st().get(partition_id{p}), "get");
      parts.push_back(read(partition, from[p], limit));
    }
    auto page = actors::merge_read_all(std::move(parts), from, limit, actors::k_read_all_max_bytes);
    ASSERT_LE(page.events.size(), limit);
    for (const auto& e : page.events) {
      EXPECT_GE(e.event.timestamp, last);
      last = e.event.timestamp;
      const std::string stream(e.stream);
      EXPECT_TRUE(seen.emplace(stream, e.event.version.value()).second) << "duplicate";
      EXPECT_EQ(e.event.version.value(), next_version[stream]) << stream;
      next_version[stream] = e.event.version.value() + 1;
    }
    from = page.next;
    ++pages;
    if (page.at_end) break;
    ASSERT_LT(pages, 10000);
  }
  EXPECT_EQ(seen.size(), total);
  EXPECT_EQ(next_version, appended);
}

TEST_F(read_all_partition_test, stats_count_streams_events_and_the_acknowledged_end) {
  const std::string a = "count-1";
  const std::string b = stream_in_partition_of(a);
  append_synced(a, engine::expected_version::any(), fresh_events(3));
  append_synced(b, engine::expected_version::any(), fresh_events(2));
  must(partition_of(a).set_metadata(stream_in_partition_of(a, "meta-only-"),
                                    engine::stream_metadata{1, 0, 0}),
       "metadata of a stream never written");
  must(st().sync(), "sync");
  auto& p = partition_of(a);
  const auto s = actors::stats_of(p);
  EXPECT_EQ(s.partition, p.id());
  EXPECT_EQ(s.streams, 2u);
  EXPECT_EQ(s.events, 5u);
  EXPECT_EQ(s.end_lsn, p.visible_end());
  EXPECT_GT(s.end_lsn.value(), 0u);
}

}  // namespace
}  // namespace annal::testing
