// Read-all and stats through a node's request_handler: every partition
// actor reads its own log, the node merges, and a resume position never
// skips or repeats an event, also while appends go on.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "tests/actors/node_harness.hpp"
#include "tests/support/event_factory.hpp"

namespace annal::testing {
namespace {

using engine::errc;
using engine::expected_version;

struct event_key {
  std::string stream;
  std::uint64_t version;
  auto operator<=>(const event_key&) const = default;
};

class node_read_all_test : public ::testing::Test {
 protected:
  node_read_all_test() {
    auto options = small_node_options(dir_, engine::fsync_mode::always);
    options.partition_count = 8;
    node_ = start_node(std::move(options));
  }

  engine::result<actors::append_reply> append(const std::string& stream, std::uint64_t id,
                                              std::size_t n = 1) {
    return await_reply<actors::append_reply>([&](auto reply) {
      node_->handler().append(append_of(stream, expected_version::any(), make_events(id, n)),
                              std::move(reply));
    });
  }

  engine::result<actors::read_all_page> read_all(std::vector<actors::all_position> from,
                                                 std::size_t limit,
                                                 std::vector<partition_id> partitions = {}) {
    return await_reply<actors::read_all_page>([&](auto reply) {
      node_->handler().read_all(
          actors::read_all_request{std::move(from), limit, std::move(partitions)},
          std::move(reply));
    });
  }

  engine::result<std::vector<actors::partition_stats>> stats() {
    return await_reply<std::vector<actors::partition_stats>>(
        [&](auto reply) { node_->handler().stats(std::move(reply)); });
  }

  temp_dir dir_;
  std::unique_ptr<actors::node> node_;
};

TEST_F(node_read_all_test, pages_return_every_acknowledged_event_once_in_timestamp_order) {
  // Four writers side by side, to 40 streams over all 8 partitions.
  std::set<event_key> acknowledged;
  std::mutex mu;
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 30; ++i) {
        const std::string stream = "all-" + std::to_string((w * 30 + i) % 40);
        const std::size_t n = 1 + static_cast<std::size_t>(i % 3);
        auto r = append(stream, static_cast<std::uint64_t>(1000 * (w + 1) + 10 * i), n);
        ASSERT_TRUE(r) << r.err().message;
        std::lock_guard lock(mu);
        for (auto v = r->first_version.value(); v <= r->last_version.value(); ++v) {
          acknowledged.insert({stream, v});
        }
      }
    });
  }
  for (auto& t : writers) t.join();

  std::vector<actors::all_position> from;
  std::set<event_key> seen;
  std::map<std::string, std::uint64_t> next_version;
  timestamp_us last = 0;
  std::set<std::uint32_t> partitions;
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 1000);
    auto page = read_all(from, 7);
    ASSERT_TRUE(page) << page.err().message;
    ASSERT_LE(page->events.size(), 7u);
    ASSERT_EQ(page->next.size(), 8u);
    for (const auto& e : page->events) {
      EXPECT_GE(e.event.timestamp, last);
      last = e.event.timestamp;
      const std::string stream(e.stream);
      EXPECT_TRUE(seen.insert({stream, e.event.version.value()}).second) << "duplicate";
      EXPECT_EQ(e.event.version.value(), next_version[stream]) << stream;
      next_version[stream] = e.event.version.value() + 1;
      partitions.insert(e.partition.value());
    }
    from = page->next;
    if (page->at_end) break;
  }
  EXPECT_EQ(seen, acknowledged);
  EXPECT_EQ(partitions.size(), 8u) << "the streams cover every partition";

  // The last position is the end: nothing more, until something is appended.
  auto tail = read_all(from, 7);
  ASSERT_TRUE(tail);
  EXPECT_TRUE(tail->events.empty());
  EXPECT_TRUE(tail->at_end);
  ASSERT_TRUE(append("all-after", 99999));
  tail = read_all(from, 7);
  ASSERT_TRUE(tail);
  ASSERT_EQ(tail->events.size(), 1u);
  EXPECT_EQ(tail->events[0].stream, "all-after");
}

TEST_F(node_read_all_test, resuming_while_appends_go_on_never_skips_or_repeats) {
  std::atomic<bool> done{false};
  std::set<event_key> acknowledged;
  std::thread writer([&] {
    for (int i = 0; i < 150; ++i) {
      const std::string stream = "live-" + std::to_string(i % 13);
      auto r = append(stream, static_cast<std::uint64_t>(5000 + 2 * i), 2);
      ASSERT_TRUE(r) << r.err().message;
      acknowledged.insert({stream, r->first_version.value()});
      acknowledged.insert({stream, r->last_version.value()});
    }
    done = true;
  });
  std::vector<actors::all_position> from;
  std::set<event_key> seen;
  std::map<std::string, std::uint64_t> next_version;
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 100000);
    const bool writer_done = done.load();
    auto page = read_all(from, 5);
    ASSERT_TRUE(page) << page.err().message;
    for (const auto& e : page->events) {
      const std::string stream(e.stream);
      EXPECT_TRUE(seen.insert({stream, e.event.version.value()}).second) << "duplicate";
      EXPECT_EQ(e.event.version.value(), next_version[stream]) << stream << ": a gap";
      next_version[stream] = e.event.version.value() + 1;
    }
    from = page->next;
    if (writer_done && page->at_end) break;
  }
  writer.join();
  EXPECT_EQ(seen, acknowledged);
}

TEST_F(node_read_all_test, a_partition_list_reads_only_those_partitions) {
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(append("only-" + std::to_string(i), 100 + i));
  std::vector<actors::all_position> from;
  std::size_t count = 0;
  for (;;) {
    auto page = read_all(from, 100, {partition_id{2}, partition_id{5}});
    ASSERT_TRUE(page) << page.err().message;
    for (const auto& e : page->events) {
      EXPECT_TRUE(e.partition == partition_id{2} || e.partition == partition_id{5});
      ++count;
    }
    from = page->next;
    if (page->at_end) break;
  }
  std::size_t expected = 0;
  auto all = stats();
  ASSERT_TRUE(all);
  for (const auto& s : *all) {
    if (s.partition == partition_id{2} || s.partition == partition_id{5}) expected += s.events;
  }
  EXPECT_EQ(count, expected);
  EXPECT_GT(count, 0u);
  for (std::uint32_t p = 0; p < 8; ++p) {
    if (p != 2 && p != 5) {
      EXPECT_EQ(from[p], actors::all_position{}) << "partition " << p;
    }
  }
}

TEST_F(node_read_all_test, bad_requests_are_invalid_argument) {
  auto r = read_all({}, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  r = read_all(std::vector<actors::all_position>(3), 10);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  r = read_all({}, 10, {partition_id{8}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  std::vector<actors::all_position> past(8);
  past[0] = actors::make_all_position(lsn{1}, 0);  // past the end of an empty partition
  r = read_all(past, 10);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_argument);
}

TEST_F(node_read_all_test, stats_count_every_partition_and_sum_to_the_events_appended) {
  std::size_t appended = 0;
  std::set<std::string> streams;
  for (int i = 0; i < 30; ++i) {
    const std::string stream = "stats-" + std::to_string(i % 17);
    ASSERT_TRUE(append(stream, 200 + 10 * i, 1 + i % 3));
    appended += 1 + i % 3;
    streams.insert(stream);
  }
  auto all = stats();
  ASSERT_TRUE(all) << all.err().message;
  ASSERT_EQ(all->size(), 8u);
  std::uint64_t events = 0, stream_count = 0;
  for (std::uint32_t p = 0; p < 8; ++p) {
    const auto& s = (*all)[p];
    EXPECT_EQ(s.partition, partition_id{p});
    EXPECT_EQ(s.node, "dev");
    EXPECT_EQ(s.end_lsn.value() > 0, s.events > 0);
    events += s.events;
    stream_count += s.streams;
  }
  EXPECT_EQ(events, appended);
  EXPECT_EQ(stream_count, streams.size());
}

TEST_F(node_read_all_test, a_partition_not_served_here_fails_read_all_but_not_stats) {
  ASSERT_TRUE(append("fenced-1", 1));
  node_->set_owned(partition_id{3}, false);
  auto r = read_all({}, 10);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::not_owner);
  auto others = read_all({}, 10, {partition_id{0}, partition_id{1}});
  EXPECT_TRUE(others) << others.err().message;
  auto all = stats();
  ASSERT_TRUE(all) << all.err().message;
  EXPECT_EQ(all->size(), 8u);
}

}  // namespace
}  // namespace annal::testing
