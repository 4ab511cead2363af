// Reading a stream: forward and backward pages with a `next` token, the last
// event, what a read returns for missing, deleted and tombstoned streams,
// visibility (only synced writes are read) and the timestamps events carry.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/store_fixture.hpp"

namespace {

using annal::stream_version;
using annal::timestamp_us;
using annal::engine::errc;
using annal::engine::event_input;
using annal::engine::expected_version;
using annal::engine::read_direction;
using annal::testing::data_for;
using annal::testing::data_of;
using annal::testing::make_event;
using annal::testing::must;
using annal::testing::store_fixture;
using annal::testing::versions_of;

using versions = std::vector<std::uint64_t>;

class read_test : public store_fixture {
 protected:
  // Versions 0..9 in batches of 3, 3, 3 and 1 (so pages cross records).
  // Event v has data data_for(first_id + v).
  std::uint64_t write_ten(std::string_view stream) {
    const std::uint64_t first = next_id();
    for (std::size_t size : {3, 3, 3, 1}) {
      must(append(stream, expected_version::any(), fresh_events(size)), "append");
    }
    must(st().sync(), "sync");
    return first;
  }
};

// ------------------------------------------------------------ visibility

TEST_F(read_test, first_append_is_invisible_until_sync) {
  auto r = append("orders-1", expected_version::no_stream(), fresh_events(2));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_GT(r->durable_after.value(), 0u);

  auto before = read_forward("orders-1");
  ASSERT_FALSE(before);
  EXPECT_EQ(before.err().code, errc::stream_not_found);
  EXPECT_EQ(partition_of("orders-1").read_last("orders-1").err().code, errc::stream_not_found);
  EXPECT_FALSE(info("orders-1").last_version.has_value());

  const auto durable = must(st().sync(), "sync");
  EXPECT_GE(durable, r->durable_after);
  auto after = read_forward("orders-1");
  ASSERT_TRUE(after) << after.err().message;
  EXPECT_EQ(versions_of(*after), (versions{0, 1}));
  EXPECT_EQ(data_of(*after), (std::vector<std::string>{data_for(1), data_for(2)}));
  EXPECT_EQ(info("orders-1").last_version->value(), 1u);
}

TEST_F(read_test, appends_to_existing_stream_are_invisible_until_sync) {
  append_synced("orders-1", expected_version::any(), fresh_events(2));
  ASSERT_TRUE(append("orders-1", expected_version::exact(1), fresh_events(2)));

  auto before = read_forward("orders-1");
  ASSERT_TRUE(before) << before.err().message;
  EXPECT_EQ(versions_of(*before), (versions{0, 1}));
  EXPECT_EQ(before->last_version->value(), 1u);
  EXPECT_FALSE(before->next.has_value());
  auto last = partition_of("orders-1").read_last("orders-1");
  ASSERT_TRUE(last) << last.err().message;
  EXPECT_EQ(versions_of(*last), (versions{1}));
  EXPECT_EQ(info("orders-1").last_version->value(), 1u);

  must(st().sync(), "sync");
  auto after = read_forward("orders-1");
  ASSERT_TRUE(after) << after.err().message;
  EXPECT_EQ(versions_of(*after), (versions{0, 1, 2, 3}));
  EXPECT_EQ(after->last_version->value(), 3u);
}

TEST_F(read_test, advance_durable_below_write_keeps_it_invisible) {
  auto& p = partition_of("orders-1");
  auto first = append("orders-1", expected_version::any(), fresh_events(1));
  ASSERT_TRUE(first);
  auto second = append("orders-1", expected_version::any(), fresh_events(1));
  ASSERT_TRUE(second);
  ASSERT_LT(first->durable_after, second->durable_after);

  // The node log made the first write durable but not the second.
  p.advance_durable(first->durable_after);
  auto page = read_forward("orders-1");
  ASSERT_TRUE(page) << page.err().message;
  EXPECT_EQ(versions_of(*page), (versions{0}));

  p.advance_durable(second->durable_after);
  page = read_forward("orders-1");
  ASSERT_TRUE(page) << page.err().message;
  EXPECT_EQ(versions_of(*page), (versions{0, 1}));
}

// ------------------------------------------------------------- contents

TEST_F(read_test, read_returns_ids_types_data_metadata_and_positions) {
  std::vector<event_input> events{
      make_event(100, "order-placed", R"({"total":12})", R"({"user":"ann"})"),
      make_event(101, "order-paid", std::string("\0\x01\xff binary", 10), ""),
  };
  const auto r = append_synced("orders-1", expected_version::no_stream(), events);
  auto page = read_forward("orders-1");
  ASSERT_TRUE(page) << page.err().message;
  ASSERT_EQ(page->events.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& e = page->events[i];
    EXPECT_EQ(e.id, events[i].id);
    EXPECT_EQ(e.type, events[i].type);
    EXPECT_EQ(e.data, events[i].data);
    EXPECT_EQ(e.metadata, events[i].metadata);
    EXPECT_EQ(e.version.value(), i);
    EXPECT_EQ(e.position, r.position);
    EXPECT_EQ(e.timestamp, clock_.now_us());
  }
}

TEST_F(read_test, events_outlive_the_partition_through_page_buffers) {
  write_ten("orders-1");
  auto page = must(read_forward("orders-1"), "read");
  reopen();  // the partition that served the page is gone
  EXPECT_EQ(page.events.size(), 10u);
  EXPECT_EQ(page.events[9].data, data_for(10));
}

// -------------------------------------------------------------- paging

TEST_F(read_test, forward_read_pages_with_next_token) {
  const std::uint64_t id = write_ten("orders-1");
  std::vector<std::uint64_t> seen;
  std::vector<std::string> data;
  std::optional<stream_version> from = stream_version{0};
  std::vector<std::optional<std::uint64_t>> tokens;
  while (from) {
    auto page = read_forward("orders-1", from->value(), 4);
    ASSERT_TRUE(page) << page.err().message;
    EXPECT_EQ(page->last_version->value(), 9u);
    for (auto v : versions_of(*page)) seen.push_back(v);
    for (auto& d : data_of(*page)) data.push_back(d);
    from = page->next;
    tokens.push_back(from ? std::optional(from->value()) : std::nullopt);
  }
  EXPECT_EQ(seen, (versions{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(tokens, (std::vector<std::optional<std::uint64_t>>{4, 8, std::nullopt}));
  for (std::uint64_t v = 0; v < 10; ++v) EXPECT_EQ(data[v], data_for(id + v));
}

TEST_F(read_test, backward_read_pages_with_next_token) {
  const std::uint64_t id = write_ten("orders-1");
  std::vector<std::uint64_t> seen;
  std::optional<stream_version> from = stream_version{UINT64_MAX};
  std::vector<std::optional<std::uint64_t>> tokens;
  while (from) {
    auto page = read_backward("orders-1", from->value(), 4);
    ASSERT_TRUE(page) << page.err().message;
    for (const auto& e : page->events) {
      seen.push_back(e.version.value());
      EXPECT_EQ(e.data, data_for(id + e.version.value()));
    }
    from = page->next;
    tokens.push_back(from ? std::optional(from->value()) : std::nullopt);
  }
  EXPECT_EQ(seen, (versions{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
  EXPECT_EQ(tokens, (std::vector<std::optional<std::uint64_t>>{5, 1, std::nullopt}));
}

TEST_F(read_test, forward_read_from_middle_returns_the_rest) {
  write_ten("orders-1");
  auto page = read_forward("orders-1", 7, 100);
  ASSERT_TRUE(page) << page.err().message;
  EXPECT_EQ(versions_of(*page), (versions{7, 8, 9}));
  EXPECT_FALSE(page->next.has_value());
}

TEST_F(read_test, page_ending_exactly_at_last_version_has_no_next) {
  write_ten("orders-1");
  auto forward = read_forward("orders-1", 5, 5);
  ASSERT_TRUE(forward) << forward.err().message;
  EXPECT_EQ(versions_of(*forward), (versions{5, 6, 7, 8, 9}));
  EXPECT_FALSE(forward->next.has_value());
  auto backward = read_backward("orders-1", 4, 5);
  ASSERT_TRUE(backward) << backward.err().message;
  EXPECT_EQ(versions_of(*backward), (versions{4, 3, 2, 1, 0}));
  EXPECT_FALSE(backward->next.has_value());
}

TEST_F(read_test, backward_read_from_middle_goes_down_to_version_zero) {
  write_ten("orders-1");
  auto page = read_backward("orders-1", 2, 100);
  ASSERT_TRUE(page) << page.err().message;
  EXPECT_EQ(versions_of(*page), (versions{2, 1, 0}));
  EXPECT_FALSE(page->next.has_value());
  EXPECT_EQ(page->last_version->value(), 9u);
}

TEST_F(read_test, forward_read_past_the_end_is_empty_with_last_version) {
  write_ten("orders-1");
  auto page = read_forward("orders-1", 10, 5);
  ASSERT_TRUE(page) << page.err().message;
  EXPECT_TRUE(page->events.empty());
  EXPECT_FALSE(page->next.has_value());
  ASSERT_TRUE(page->last_version.has_value());
  EXPECT_EQ(page->last_version->value(), 9u);
}

TEST_F(read_test, backward_read_from_past_the_end_starts_at_last_version) {
  write_ten("orders-1");
  auto page = read_backward("orders-1", 1000, 2);
  ASSERT_TRUE(page) << page.err().message;
  EXPECT_EQ(versions_of(*page), (versions{9, 8}));
  ASSERT_TRUE(page->next.has_value());
  EXPECT_EQ(page->next->value(), 7u);
}

TEST_F(read_test, read_last_returns_the_latest_event) {
  const std::uint64_t id = write_ten("orders-1");
  auto last = partition_of("orders-1").read_last("orders-1");
  ASSERT_TRUE(last) << last.err().message;
  ASSERT_EQ(last->events.size(), 1u);
  EXPECT_EQ(last->events[0].version.value(), 9u);
  EXPECT_EQ(last->events[0].data, data_for(id + 9));
  EXPECT_EQ(last->last_version->value(), 9u);

  append_synced("orders-1", expected_version::exact(9), fresh_events(1));
  last = partition_of("orders-1").read_last("orders-1");
  ASSERT_TRUE(last) << last.err().message;
  EXPECT_EQ(versions_of(*last), (versions{10}));
}

TEST_F(read_test, streams_do_not_see_each_other) {
  const std::string a = "orders-1";
  const std::string b = stream_in_partition_of(a, "orders-");
  append_synced(a, expected_version::any(), fresh_events(2));
  append_synced(b, expected_version::any(), fresh_events(3));
  append_synced(a, expected_version::any(), fresh_events(1));
  auto page_a = must(read_forward(a), "read a");
  auto page_b = must(read_forward(b), "read b");
  EXPECT_EQ(data_of(page_a), (std::vector<std::string>{data_for(1), data_for(2), data_for(6)}));
  EXPECT_EQ(data_of(page_b), (std::vector<std::string>{data_for(3), data_for(4), data_for(5)}));
  EXPECT_EQ(page_a.last_version->value(), 2u);
  EXPECT_EQ(page_b.last_version->value(), 2u);
}

// ------------------------------------------------ missing and deleted

TEST_F(read_test, never_written_stream_is_stream_not_found) {
  append_synced("orders-1", expected_version::any(), fresh_events(1));
  for (const char* stream : {"orders-2", "orders-"}) {
    auto page = read_forward(stream);
    ASSERT_FALSE(page);
    EXPECT_EQ(page.err().code, errc::stream_not_found);
    EXPECT_EQ(read_backward(stream).err().code, errc::stream_not_found);
    EXPECT_EQ(partition_of(stream).read_last(stream).err().code, errc::stream_not_found);
  }
}

TEST_F(read_test, stream_with_only_metadata_is_stream_not_found) {
  must(partition_of("orders-1").set_metadata("orders-1", {.max_count = 3}), "set_metadata");
  must(st().sync(), "sync");
  EXPECT_EQ(read_forward("orders-1").err().code, errc::stream_not_found);
}

TEST_F(read_test, soft_deleted_stream_is_stream_not_found) {
  write_ten("orders-1");
  must(partition_of("orders-1").delete_stream("orders-1", expected_version::any(), false),
       "delete");
  must(st().sync(), "sync");
  EXPECT_EQ(read_forward("orders-1").err().code, errc::stream_not_found);
  EXPECT_EQ(read_backward("orders-1").err().code, errc::stream_not_found);
  EXPECT_EQ(partition_of("orders-1").read_last("orders-1").err().code, errc::stream_not_found);
}

TEST_F(read_test, tombstoned_stream_is_stream_deleted) {
  write_ten("orders-1");
  must(partition_of("orders-1").delete_stream("orders-1", expected_version::any(), true),
       "tombstone");
  must(st().sync(), "sync");
  EXPECT_EQ(read_forward("orders-1").err().code, errc::stream_deleted);
  EXPECT_EQ(read_backward("orders-1").err().code, errc::stream_deleted);
  EXPECT_EQ(partition_of("orders-1").read_last("orders-1").err().code, errc::stream_deleted);
}

TEST_F(read_test, tombstoned_never_written_stream_is_stream_deleted) {
  must(partition_of("orders-1").delete_stream("orders-1", expected_version::any(), true),
       "tombstone");
  must(st().sync(), "sync");
  EXPECT_EQ(read_forward("orders-1").err().code, errc::stream_deleted);
}

// ------------------------------------------------------------ timestamps

TEST_F(read_test, events_of_one_batch_share_the_clock_timestamp) {
  clock_.set(1'800'000'000'123'456);
  append_synced("orders-1", expected_version::any(), fresh_events(3));
  auto page = must(read_forward("orders-1"), "read");
  ASSERT_EQ(page.events.size(), 3u);
  for (const auto& e : page.events) EXPECT_EQ(e.timestamp, 1'800'000'000'123'456);
}

TEST_F(read_test, timestamps_never_decrease_within_a_partition_when_clock_goes_back) {
  const std::string a = "orders-1";
  const std::string b = stream_in_partition_of(a, "orders-");
  const timestamp_us t0 = clock_.now_us();
  append_synced(a, expected_version::any(), fresh_events(2));
  clock_.set(t0 - 60'000'000);  // the wall clock steps back a minute
  append_synced(b, expected_version::any(), fresh_events(2));
  append_synced(a, expected_version::any(), fresh_events(1));
  clock_.set(t0 + 5);
  append_synced(b, expected_version::any(), fresh_events(1));

  auto page_a = must(read_forward(a), "read a");
  auto page_b = must(read_forward(b), "read b");
  ASSERT_EQ(page_a.events.size(), 3u);
  ASSERT_EQ(page_b.events.size(), 3u);
  EXPECT_EQ(page_a.events[0].timestamp, t0);
  EXPECT_EQ(page_a.events[1].timestamp, t0);
  EXPECT_EQ(page_b.events[0].timestamp, t0);  // not t0 - 60 s
  EXPECT_EQ(page_b.events[1].timestamp, t0);
  EXPECT_EQ(page_a.events[2].timestamp, t0);
  EXPECT_EQ(page_b.events[2].timestamp, t0 + 5);  // the clock caught up
}

TEST_F(read_test, timestamps_follow_the_clock_forward) {
  const timestamp_us t0 = clock_.now_us();
  append_synced("orders-1", expected_version::any(), fresh_events(1));
  clock_.advance_seconds(3);
  append_synced("orders-1", expected_version::any(), fresh_events(1));
  auto page = must(read_forward("orders-1"), "read");
  ASSERT_EQ(page.events.size(), 2u);
  EXPECT_EQ(page.events[0].timestamp, t0);
  EXPECT_EQ(page.events[1].timestamp, t0 + 3'000'000);
}

}  // namespace
