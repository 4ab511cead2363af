// User snapshots: put_snapshot stores (stream, version, payload), get_snapshot
// returns the latest, read_from_snapshot returns it with the events after it.
// Snapshots obey visibility, deletion and retention, and survive a reopen.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/store_fixture.hpp"

namespace {

using annal::stream_version;
using annal::engine::errc;
using annal::engine::expected_version;
using annal::testing::data_for;
using annal::testing::data_of;
using annal::testing::must;
using annal::testing::store_fixture;
using annal::testing::versions_of;

using versions = std::vector<std::uint64_t>;

class snapshot_test : public store_fixture {
 protected:
  // `count` synced events, one append each; returns the id of the first.
  std::uint64_t write(std::string_view stream, std::size_t count) {
    return append_each_synced(stream, count);
  }
  void put(std::string_view stream, std::uint64_t version, std::string_view payload) {
    must(partition_of(stream).put_snapshot(stream, stream_version{version}, payload),
         "put_snapshot");
    must(st().sync(), "sync");
  }
  // The latest snapshot as (version, payload); version UINT64_MAX if none.
  std::pair<std::uint64_t, std::string> latest(std::string_view stream) {
    auto s = must(partition_of(stream).get_snapshot(stream), "get_snapshot");
    if (!s) return {UINT64_MAX, ""};
    return {s->version.value(), std::string(s->payload)};
  }
};

TEST_F(snapshot_test, stream_without_snapshot_has_none) {
  write("orders-1", 2);
  EXPECT_EQ(latest("orders-1").first, UINT64_MAX);
  EXPECT_EQ(latest("orders-2").first, UINT64_MAX);  // no such stream either
}

TEST_F(snapshot_test, put_snapshot_then_get_snapshot_returns_version_and_payload) {
  write("orders-1", 5);
  clock_.advance_seconds(7);
  const std::string payload("{\"total\":42}\0\xff", 14);
  put("orders-1", 3, payload);
  auto s = must(partition_of("orders-1").get_snapshot("orders-1"), "get_snapshot");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->version.value(), 3u);
  EXPECT_EQ(std::string(s->payload), payload);
  EXPECT_EQ(s->timestamp, clock_.now_us());
}

TEST_F(snapshot_test, snapshot_at_last_version_is_allowed) {
  write("orders-1", 3);
  put("orders-1", 2, "state-2");
  EXPECT_EQ(latest("orders-1"), (std::pair<std::uint64_t, std::string>{2, "state-2"}));
}

TEST_F(snapshot_test, snapshot_past_last_version_is_invalid_argument) {
  write("orders-1", 3);
  auto r = partition_of("orders-1").put_snapshot("orders-1", stream_version{3}, "state");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  EXPECT_EQ(latest("orders-1").first, UINT64_MAX);
}

TEST_F(snapshot_test, snapshot_of_missing_stream_is_stream_not_found) {
  auto r = partition_of("orders-1").put_snapshot("orders-1", stream_version{0}, "state");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::stream_not_found);
}

TEST_F(snapshot_test, snapshot_of_soft_deleted_stream_is_stream_not_found) {
  write("orders-1", 2);
  must(partition_of("orders-1").delete_stream("orders-1", expected_version::any(), false),
       "delete");
  auto r = partition_of("orders-1").put_snapshot("orders-1", stream_version{1}, "state");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::stream_not_found);
}

TEST_F(snapshot_test, latest_snapshot_wins) {
  write("orders-1", 10);
  put("orders-1", 3, "state-3");
  put("orders-1", 8, "state-8");
  EXPECT_EQ(latest("orders-1"), (std::pair<std::uint64_t, std::string>{8, "state-8"}));
  // The latest put, not the highest version.
  put("orders-1", 5, "state-5");
  EXPECT_EQ(latest("orders-1"), (std::pair<std::uint64_t, std::string>{5, "state-5"}));
}

TEST_F(snapshot_test, snapshot_is_invisible_until_synced) {
  write("orders-1", 5);
  ASSERT_TRUE(partition_of("orders-1").put_snapshot("orders-1", stream_version{2}, "state-2"));
  EXPECT_EQ(latest("orders-1").first, UINT64_MAX);
  must(st().sync(), "sync");
  EXPECT_EQ(latest("orders-1"), (std::pair<std::uint64_t, std::string>{2, "state-2"}));
}

TEST_F(snapshot_test, previous_snapshot_stays_visible_while_newer_one_is_unsynced) {
  write("orders-1", 5);
  put("orders-1", 2, "state-2");
  ASSERT_TRUE(partition_of("orders-1").put_snapshot("orders-1", stream_version{4}, "state-4"));
  EXPECT_EQ(latest("orders-1"), (std::pair<std::uint64_t, std::string>{2, "state-2"}));
  auto r = must(partition_of("orders-1").read_from_snapshot("orders-1", 100), "read");
  ASSERT_TRUE(r.snapshot.has_value());
  EXPECT_EQ(r.snapshot->version.value(), 2u);
  EXPECT_EQ(versions_of(r.events), (versions{3, 4}));
  must(st().sync(), "sync");
  EXPECT_EQ(latest("orders-1"), (std::pair<std::uint64_t, std::string>{4, "state-4"}));
}

TEST_F(snapshot_test, read_from_snapshot_returns_snapshot_and_events_after_it) {
  const std::uint64_t id = write("orders-1", 10);
  put("orders-1", 5, "state-5");
  auto r = must(partition_of("orders-1").read_from_snapshot("orders-1", 100), "read");
  ASSERT_TRUE(r.snapshot.has_value());
  EXPECT_EQ(r.snapshot->version.value(), 5u);
  EXPECT_EQ(std::string(r.snapshot->payload), "state-5");
  EXPECT_EQ(versions_of(r.events), (versions{6, 7, 8, 9}));
  EXPECT_EQ(r.events.events[0].data, data_for(id + 6));
  EXPECT_EQ(r.events.last_version->value(), 9u);
  EXPECT_FALSE(r.events.next.has_value());
}

TEST_F(snapshot_test, read_from_snapshot_at_last_version_returns_no_events) {
  write("orders-1", 4);
  put("orders-1", 3, "state-3");
  auto r = must(partition_of("orders-1").read_from_snapshot("orders-1", 100), "read");
  ASSERT_TRUE(r.snapshot.has_value());
  EXPECT_TRUE(r.events.events.empty());
  EXPECT_EQ(r.events.last_version->value(), 3u);
}

TEST_F(snapshot_test, read_from_snapshot_without_snapshot_reads_from_the_start) {
  write("orders-1", 3);
  auto r = must(partition_of("orders-1").read_from_snapshot("orders-1", 100), "read");
  EXPECT_FALSE(r.snapshot.has_value());
  EXPECT_EQ(versions_of(r.events), (versions{0, 1, 2}));
}

TEST_F(snapshot_test, read_from_snapshot_pages_with_limit) {
  write("orders-1", 10);
  put("orders-1", 1, "state-1");
  auto r = must(partition_of("orders-1").read_from_snapshot("orders-1", 3), "read");
  EXPECT_EQ(versions_of(r.events), (versions{2, 3, 4}));
  ASSERT_TRUE(r.events.next.has_value());
  EXPECT_EQ(r.events.next->value(), 5u);
}

TEST_F(snapshot_test, read_from_snapshot_of_missing_stream_is_stream_not_found) {
  auto r = partition_of("orders-1").read_from_snapshot("orders-1", 10);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::stream_not_found);
}

TEST_F(snapshot_test, read_from_snapshot_of_tombstoned_stream_is_stream_deleted) {
  write("orders-1", 3);
  put("orders-1", 1, "state-1");
  must(partition_of("orders-1").delete_stream("orders-1", expected_version::any(), true),
       "tombstone");
  must(st().sync(), "sync");
  EXPECT_EQ(latest("orders-1").first, UINT64_MAX);
  auto r = partition_of("orders-1").read_from_snapshot("orders-1", 10);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::stream_deleted);
}

TEST_F(snapshot_test, soft_delete_drops_the_snapshot_for_good) {
  // The snapshot describes events the delete removed: after the stream is
  // written again it must not come back.
  write("orders-1", 4);
  put("orders-1", 2, "state-2");
  must(partition_of("orders-1").delete_stream("orders-1", expected_version::any(), false),
       "delete");
  must(st().sync(), "sync");
  EXPECT_EQ(latest("orders-1").first, UINT64_MAX);

  write("orders-1", 2);
  EXPECT_EQ(latest("orders-1").first, UINT64_MAX);
  auto r = must(partition_of("orders-1").read_from_snapshot("orders-1", 100), "read");
  EXPECT_FALSE(r.snapshot.has_value());
  EXPECT_EQ(versions_of(r.events), (versions{4, 5}));

  crash_and_reopen();
  EXPECT_EQ(latest("orders-1").first, UINT64_MAX);
  reopen();
  EXPECT_EQ(latest("orders-1").first, UINT64_MAX);
}

TEST_F(snapshot_test, snapshot_below_truncate_before_stays_readable) {
  // Snapshot, then truncate what it covers: the usual way to bound a stream.
  write("orders-1", 10);
  put("orders-1", 6, "state-6");
  must(partition_of("orders-1").set_metadata("orders-1", {.truncate_before = 8}), "metadata");
  must(st().sync(), "sync");
  auto r = must(partition_of("orders-1").read_from_snapshot("orders-1", 100), "read");
  ASSERT_TRUE(r.snapshot.has_value());
  EXPECT_EQ(r.snapshot->version.value(), 6u);
  EXPECT_EQ(versions_of(r.events), (versions{8, 9}));
}

TEST_F(snapshot_test, snapshot_survives_close_and_reopen) {
  write("orders-1", 5);
  put("orders-1", 3, "state-3");
  reopen();
  EXPECT_EQ(latest("orders-1"), (std::pair<std::uint64_t, std::string>{3, "state-3"}));
  auto r = must(partition_of("orders-1").read_from_snapshot("orders-1", 100), "read");
  EXPECT_EQ(versions_of(r.events), (versions{4}));
}

TEST_F(snapshot_test, snapshot_survives_crash) {
  write("orders-1", 5);
  put("orders-1", 1, "state-1");
  must(st().checkpoint_all(), "checkpoint");  // the checkpoint holds state-1 ...
  put("orders-1", 4, "state-4");                // ... the node log state-4
  crash_and_reopen();
  EXPECT_GT(st().recovery().replayed_records, 0u);
  EXPECT_EQ(latest("orders-1"), (std::pair<std::uint64_t, std::string>{4, "state-4"}));
  crash_and_reopen();
  EXPECT_EQ(latest("orders-1"), (std::pair<std::uint64_t, std::string>{4, "state-4"}));
}

TEST_F(snapshot_test, snapshot_keeps_its_segment_past_retention) {
  options_.partition.log.segment_bytes = 256;
  reopen();
  write("orders-1", 4);
  put("orders-1", 3, "state-3");
  write("orders-1", 30);
  must(partition_of("orders-1").set_metadata("orders-1", {.truncate_before = 30}), "metadata");
  must(st().sync(), "sync");
  for (int i = 0; i < 3; ++i) must(st().checkpoint_all(), "checkpoint");
  EXPECT_EQ(latest("orders-1"), (std::pair<std::uint64_t, std::string>{3, "state-3"}));
  reopen();
  auto r = must(partition_of("orders-1").read_from_snapshot("orders-1", 100), "read");
  ASSERT_TRUE(r.snapshot.has_value());
  EXPECT_EQ(std::string(r.snapshot->payload), "state-3");
  EXPECT_EQ(versions_of(r.events), (versions{30, 31, 32, 33}));
}

TEST_F(snapshot_test, checkpoint_makes_a_pending_snapshot_durable_and_keeps_it_readable) {
  options_.partition.log.segment_bytes = 256;
  reopen();
  write("orders-1", 4);
  put("orders-1", 3, "state-3");
  write("orders-1", 30);
  must(partition_of("orders-1").set_metadata("orders-1", {.truncate_before = 30}), "metadata");
  must(st().sync(), "sync");
  must(partition_of("orders-1").checkpoint(), "checkpoint");
  ASSERT_TRUE(partition_of("orders-1").put_snapshot("orders-1", stream_version{33}, "state-33"));
  EXPECT_EQ(latest("orders-1"), (std::pair<std::uint64_t, std::string>{3, "state-3"}))
      << "not visible before it is durable";
  // A checkpoint syncs the node log first, so state-33 is durable and visible
  // before retention runs; state-3's segment may go, state-33 stays readable.
  must(partition_of("orders-1").checkpoint(), "checkpoint");
  must(partition_of("orders-1").checkpoint(), "checkpoint");
  EXPECT_EQ(latest("orders-1"), (std::pair<std::uint64_t, std::string>{33, "state-33"}));
  reopen();
  EXPECT_EQ(latest("orders-1"), (std::pair<std::uint64_t, std::string>{33, "state-33"}));
}

TEST_F(snapshot_test, soft_deleted_snapshot_segment_removal_does_not_break_reads) {
  // After a delete, retention may remove the snapshot's segment; writing the
  // stream again must not make reads reach for it.
  options_.partition.log.segment_bytes = 256;
  reopen();
  write("orders-1", 2);
  put("orders-1", 1, "state-1");
  write("orders-1", 20);
  must(partition_of("orders-1").delete_stream("orders-1", expected_version::any(), false),
       "delete");
  write(stream_in_partition_of("orders-1", "orders-"), 20);  // more segments after the delete
  for (int i = 0; i < 3; ++i) must(st().checkpoint_all(), "checkpoint");
  write("orders-1", 1);
  auto snap = partition_of("orders-1").get_snapshot("orders-1");
  ASSERT_TRUE(snap) << snap.err().message;
  EXPECT_FALSE(snap->has_value());
  auto r = partition_of("orders-1").read_from_snapshot("orders-1", 100);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(versions_of(r->events), (versions{22}));
}

}  // namespace
