// Stream metadata and deletion: max_count, max_age and truncate_before hide
// events from reads; a soft delete hides every current event and the stream
// continues at the next version when written again; a tombstone forbids
// writes forever. get_stream_info reports all of it.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/store_fixture.hpp"

namespace {

using annal::engine::errc;
using annal::engine::expected_version;
using annal::engine::stream_metadata;
using annal::testing::data_for;
using annal::testing::data_of;
using annal::testing::must;
using annal::testing::store_fixture;
using annal::testing::versions_of;

using versions = std::vector<std::uint64_t>;

class metadata_test : public store_fixture {
 protected:
  // `count` synced events, one batch; returns the id of the first.
  std::uint64_t write(std::string_view stream, std::size_t count) {
    const std::uint64_t first = next_id();
    append_synced(stream, expected_version::any(), fresh_events(count));
    return first;
  }
  void set(std::string_view stream, const stream_metadata& m) {
    must(partition_of(stream).set_metadata(stream, m), "set_metadata");
    must(st().sync(), "sync");
  }
  void soft_delete(std::string_view stream) {
    must(partition_of(stream).delete_stream(stream, expected_version::any(), false), "delete");
    must(st().sync(), "sync");
  }
  void tombstone(std::string_view stream) {
    must(partition_of(stream).delete_stream(stream, expected_version::any(), true), "tombstone");
    must(st().sync(), "sync");
  }
  versions forward(std::string_view stream) {
    return versions_of(must(read_forward(stream), "read forward"));
  }
  versions backward(std::string_view stream) {
    return versions_of(must(read_backward(stream), "read backward"));
  }
};

TEST_F(metadata_test, unknown_stream_has_default_info) {
  const auto i = info("orders-1");
  EXPECT_EQ(i.metadata, stream_metadata{});
  EXPECT_FALSE(i.last_version.has_value());
  EXPECT_EQ(i.first_retained, 0u);
  EXPECT_FALSE(i.deleted);
  EXPECT_FALSE(i.tombstoned);
}

TEST_F(metadata_test, set_metadata_is_reported_by_stream_info) {
  write("orders-1", 2);
  const stream_metadata m{.max_count = 7, .max_age_seconds = 3600, .truncate_before = 1};
  set("orders-1", m);
  const auto i = info("orders-1");
  EXPECT_EQ(i.metadata, m);
  EXPECT_EQ(i.last_version->value(), 1u);
  EXPECT_EQ(i.first_retained, 1u);
}

TEST_F(metadata_test, metadata_can_be_set_before_the_stream_exists) {
  set("orders-1", {.max_count = 2});
  EXPECT_EQ(info("orders-1").metadata.max_count, 2u);
  write("orders-1", 5);
  EXPECT_EQ(forward("orders-1"), (versions{3, 4}));
}

// ------------------------------------------------------------ max_count

TEST_F(metadata_test, max_count_keeps_the_latest_events) {
  const std::uint64_t id = write("orders-1", 10);
  set("orders-1", {.max_count = 3});
  auto page = must(read_forward("orders-1"), "read");
  EXPECT_EQ(versions_of(page), (versions{7, 8, 9}));
  EXPECT_EQ(data_of(page),
            (std::vector<std::string>{data_for(id + 7), data_for(id + 8), data_for(id + 9)}));
  EXPECT_EQ(page.last_version->value(), 9u);
  EXPECT_EQ(backward("orders-1"), (versions{9, 8, 7}));
  EXPECT_EQ(info("orders-1").first_retained, 7u);
}

TEST_F(metadata_test, max_count_window_slides_with_new_events) {
  write("orders-1", 5);
  set("orders-1", {.max_count = 3});
  EXPECT_EQ(forward("orders-1"), (versions{2, 3, 4}));
  write("orders-1", 2);
  EXPECT_EQ(forward("orders-1"), (versions{4, 5, 6}));
}

TEST_F(metadata_test, max_count_larger_than_stream_hides_nothing) {
  write("orders-1", 3);
  set("orders-1", {.max_count = 10});
  EXPECT_EQ(forward("orders-1"), (versions{0, 1, 2}));
}

TEST_F(metadata_test, backward_paging_stops_at_first_retained) {
  write("orders-1", 10);
  set("orders-1", {.max_count = 5});
  auto page = must(read_backward("orders-1", UINT64_MAX, 3), "read");
  EXPECT_EQ(versions_of(page), (versions{9, 8, 7}));
  ASSERT_TRUE(page.next.has_value());
  page = must(read_backward("orders-1", page.next->value(), 3), "read");
  EXPECT_EQ(versions_of(page), (versions{6, 5}));
  EXPECT_FALSE(page.next.has_value());
  // Starting below the retained range finds nothing.
  page = must(read_backward("orders-1", 3, 3), "read");
  EXPECT_TRUE(page.events.empty());
  EXPECT_FALSE(page.next.has_value());
}

TEST_F(metadata_test, hidden_events_do_not_change_expected_version) {
  write("orders-1", 10);
  set("orders-1", {.max_count = 2});
  auto r = append("orders-1", expected_version::exact(9), fresh_events(1));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), 10u);
  auto wrong = append("orders-1", expected_version::exact(1), fresh_events(1));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.err().current_version->value(), 10u);
}

// -------------------------------------------------------------- max_age

TEST_F(metadata_test, max_age_hides_events_older_than_the_cutoff) {
  write("orders-1", 3);         // at t0
  clock_.advance_seconds(100);
  write("orders-1", 2);         // at t0 + 100 s
  clock_.advance_seconds(10);   // now t0 + 110 s
  set("orders-1", {.max_age_seconds = 50});
  EXPECT_EQ(forward("orders-1"), (versions{3, 4}));
  EXPECT_EQ(info("orders-1").first_retained, 3u);

  clock_.advance_seconds(40);   // t0 + 150 s: the second batch is exactly 50 s old
  EXPECT_EQ(forward("orders-1"), (versions{3, 4}));
  clock_.advance_seconds(1);    // now older than 50 s
  auto page = must(read_forward("orders-1"), "read");
  EXPECT_TRUE(page.events.empty());
  EXPECT_EQ(page.last_version->value(), 4u);  // the stream still exists
  EXPECT_EQ(info("orders-1").first_retained, 5u);
  auto r = append("orders-1", expected_version::exact(4), fresh_events(1));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), 5u);
}

TEST_F(metadata_test, max_age_is_judged_by_the_current_clock) {
  write("orders-1", 2);
  clock_.advance_seconds(100);
  set("orders-1", {.max_age_seconds = 50});
  EXPECT_TRUE(must(read_forward("orders-1"), "read").events.empty());
  clock_.advance_seconds(-100);  // the clock steps back: the events are young again
  EXPECT_EQ(forward("orders-1"), (versions{0, 1}));
}

// ------------------------------------------------------ truncate_before

TEST_F(metadata_test, truncate_before_hides_lower_versions) {
  write("orders-1", 6);
  set("orders-1", {.truncate_before = 4});
  EXPECT_EQ(forward("orders-1"), (versions{4, 5}));
  EXPECT_EQ(backward("orders-1"), (versions{5, 4}));
  auto page = must(read_forward("orders-1", 1, 1), "read");
  EXPECT_EQ(versions_of(page), (versions{4}));
  ASSERT_TRUE(page.next.has_value());
  EXPECT_EQ(page.next->value(), 5u);
}

TEST_F(metadata_test, truncate_before_past_the_end_hides_everything) {
  write("orders-1", 3);
  set("orders-1", {.truncate_before = 10});
  auto page = must(read_forward("orders-1"), "read");
  EXPECT_TRUE(page.events.empty());
  EXPECT_EQ(page.last_version->value(), 2u);
  EXPECT_TRUE(must(partition_of("orders-1").read_last("orders-1"), "read_last").events.empty());
  // New events below truncate_before stay hidden; from it on they show.
  write("orders-1", 8);
  EXPECT_EQ(forward("orders-1"), (versions{10}));
}

TEST_F(metadata_test, the_most_restrictive_setting_wins) {
  write("orders-1", 10);
  set("orders-1", {.max_count = 6, .truncate_before = 2});
  EXPECT_EQ(forward("orders-1"), (versions{4, 5, 6, 7, 8, 9}));
  set("orders-1", {.max_count = 6, .truncate_before = 8});
  EXPECT_EQ(forward("orders-1"), (versions{8, 9}));
}

TEST_F(metadata_test, metadata_change_is_invisible_until_synced) {
  write("orders-1", 5);
  auto r = partition_of("orders-1").set_metadata("orders-1", {.max_count = 1});
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_GT(r->durable_after.value(), 0u);
  // Not yet durable: a crash now would lose it, so no read may depend on it.
  EXPECT_EQ(forward("orders-1"), (versions{0, 1, 2, 3, 4}));
  EXPECT_EQ(info("orders-1").metadata, stream_metadata{});
  must(st().sync(), "sync");
  EXPECT_EQ(forward("orders-1"), (versions{4}));
  EXPECT_EQ(info("orders-1").metadata.max_count, 1u);
}

// ---------------------------------------------------------- soft delete

TEST_F(metadata_test, soft_delete_hides_events_and_writing_again_continues_versions) {
  write("orders-1", 3);
  soft_delete("orders-1");
  EXPECT_EQ(read_forward("orders-1").err().code, errc::stream_not_found);
  auto i = info("orders-1");
  EXPECT_TRUE(i.deleted);
  EXPECT_FALSE(i.tombstoned);
  EXPECT_FALSE(i.last_version.has_value());

  const std::uint64_t id = write("orders-1", 2);
  auto page = must(read_forward("orders-1"), "read");
  EXPECT_EQ(versions_of(page), (versions{3, 4}));
  EXPECT_EQ(data_of(page), (std::vector<std::string>{data_for(id), data_for(id + 1)}));
  EXPECT_EQ(page.last_version->value(), 4u);
  i = info("orders-1");
  EXPECT_FALSE(i.deleted);
  EXPECT_EQ(i.first_retained, 3u);
  EXPECT_EQ(i.last_version->value(), 4u);
}

TEST_F(metadata_test, soft_delete_keeps_other_metadata) {
  write("orders-1", 6);
  set("orders-1", {.max_count = 2});
  soft_delete("orders-1");
  EXPECT_EQ(info("orders-1").metadata.max_count, 2u);
  write("orders-1", 3);
  EXPECT_EQ(forward("orders-1"), (versions{7, 8}));
}

TEST_F(metadata_test, soft_delete_of_missing_stream_is_stream_not_found) {
  auto r = partition_of("orders-1").delete_stream("orders-1", expected_version::any(), false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::stream_not_found);
}

TEST_F(metadata_test, soft_delete_of_soft_deleted_stream_is_stream_not_found) {
  write("orders-1", 1);
  soft_delete("orders-1");
  auto r = partition_of("orders-1").delete_stream("orders-1", expected_version::any(), false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::stream_not_found);
}

TEST_F(metadata_test, soft_delete_is_invisible_until_synced) {
  write("orders-1", 3);
  auto r = partition_of("orders-1").delete_stream("orders-1", expected_version::any(), false);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(forward("orders-1"), (versions{0, 1, 2}));
  EXPECT_FALSE(info("orders-1").deleted);
  must(st().sync(), "sync");
  EXPECT_EQ(read_forward("orders-1").err().code, errc::stream_not_found);
  EXPECT_TRUE(info("orders-1").deleted);
}

TEST_F(metadata_test, write_after_soft_delete_is_invisible_until_synced) {
  write("orders-1", 3);
  soft_delete("orders-1");
  ASSERT_TRUE(append("orders-1", expected_version::no_stream(), fresh_events(1)));
  // The stream still reads as deleted: the write that revives it is not durable.
  EXPECT_EQ(read_forward("orders-1").err().code, errc::stream_not_found);
  must(st().sync(), "sync");
  EXPECT_EQ(forward("orders-1"), (versions{3}));
}

TEST_F(metadata_test, metadata_of_soft_deleted_stream_can_be_changed) {
  write("orders-1", 4);
  soft_delete("orders-1");
  set("orders-1", {.max_count = 1, .truncate_before = 4});
  auto i = info("orders-1");
  EXPECT_TRUE(i.deleted);
  EXPECT_EQ(i.metadata.max_count, 1u);
  EXPECT_EQ(read_forward("orders-1").err().code, errc::stream_not_found);
}

// ------------------------------------------------------------ tombstone

TEST_F(metadata_test, tombstone_forbids_writes_forever) {
  write("orders-1", 3);
  tombstone("orders-1");
  auto i = info("orders-1");
  EXPECT_TRUE(i.tombstoned);
  EXPECT_FALSE(i.last_version.has_value());
  EXPECT_EQ(read_forward("orders-1").err().code, errc::stream_deleted);

  for (int round = 0; round < 2; ++round) {
    auto r = append("orders-1", expected_version::any(), fresh_events(1));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, errc::stream_deleted);
    reopen();
  }
  crash_and_reopen();
  EXPECT_EQ(append("orders-1", expected_version::no_stream(), fresh_events(1)).err().code,
            errc::stream_deleted);
  EXPECT_TRUE(info("orders-1").tombstoned);
}

TEST_F(metadata_test, tombstone_after_soft_delete_is_final) {
  write("orders-1", 2);
  soft_delete("orders-1");
  tombstone("orders-1");
  EXPECT_TRUE(info("orders-1").tombstoned);
  EXPECT_EQ(append("orders-1", expected_version::no_stream(), fresh_events(1)).err().code,
            errc::stream_deleted);
}

TEST_F(metadata_test, tombstone_is_invisible_until_synced) {
  write("orders-1", 2);
  ASSERT_TRUE(partition_of("orders-1").delete_stream("orders-1", expected_version::any(), true));
  EXPECT_EQ(forward("orders-1"), (versions{0, 1}));
  EXPECT_FALSE(info("orders-1").tombstoned);
  must(st().sync(), "sync");
  EXPECT_EQ(read_forward("orders-1").err().code, errc::stream_deleted);
}

// ----------------------------------------------------------- durability

TEST_F(metadata_test, metadata_and_deletes_survive_close_and_crash) {
  write("orders-1", 5);
  write("orders-2", 2);
  write("orders-3", 2);
  set("orders-1", {.max_count = 2, .max_age_seconds = 1000, .truncate_before = 1});
  soft_delete("orders-2");
  tombstone("orders-3");
  for (int round = 0; round < 2; ++round) {
    if (round == 0) crash_and_reopen(); else reopen();
    EXPECT_EQ(info("orders-1").metadata,
              (stream_metadata{.max_count = 2, .max_age_seconds = 1000, .truncate_before = 1}));
    EXPECT_EQ(forward("orders-1"), (versions{3, 4}));
    EXPECT_TRUE(info("orders-2").deleted);
    EXPECT_EQ(read_forward("orders-2").err().code, errc::stream_not_found);
    EXPECT_TRUE(info("orders-3").tombstoned);
    EXPECT_EQ(read_forward("orders-3").err().code, errc::stream_deleted);
  }
  auto r = append("orders-2", expected_version::no_stream(), fresh_events(1));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), 2u);
}

}  // namespace
