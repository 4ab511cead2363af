// Retention: a checkpoint removes the segment files whose events are all past
// retention (truncate_before, max_count, max_age, delete), but keeps the files
// the previous checkpoint lists for one more checkpoint (its fallback).
// Events past retention are never returned, before or after a reopen.

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "tests/support/forwarding_file_system.hpp"
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

// Small segments: a few one-event records each.
constexpr std::uint64_t k_segment_bytes = 512;

class retention_test : public store_fixture {
 protected:
  retention_test() { options_.partition.log.segment_bytes = k_segment_bytes; }

  const std::string stream_ = "orders-1";

  std::vector<std::string> segments() { return segment_files(st().partition_for(stream_)); }
  void set(const stream_metadata& m) {
    must(partition_of(stream_).set_metadata(stream_, m), "set_metadata");
    must(st().sync(), "sync");
  }
  void checkpoint() { must(partition_of(stream_).checkpoint(), "checkpoint"); }
  // Every version a forward read returns, with the data checked against the
  // ids (version v has id first_id + v).
  versions readable(std::uint64_t first_id) {
    auto page = must(read_forward(stream_), "read");
    for (const auto& e : page.events) {
      EXPECT_EQ(e.data, data_for(first_id + e.version.value())) << "version " << e.version.value();
    }
    return versions_of(page);
  }
  static versions range(std::uint64_t from, std::uint64_t to) {
    versions v;
    for (std::uint64_t i = from; i < to; ++i) v.push_back(i);
    return v;
  }
};

TEST_F(retention_test, small_segment_size_gives_many_segments) {
  append_each_synced(stream_, 40);
  checkpoint();  // flushes the partition log to its files
  EXPECT_GE(segments().size(), 5u);
}

TEST_F(retention_test, segments_within_retention_are_kept) {
  const std::uint64_t id = append_each_synced(stream_, 40);
  checkpoint();
  const auto before = segments();
  checkpoint();
  checkpoint();
  EXPECT_EQ(segments(), before);
  EXPECT_EQ(readable(id), range(0, 40));
}

TEST_F(retention_test, truncated_segments_disappear_after_two_checkpoints) {
  const std::uint64_t id = append_each_synced(stream_, 40);
  checkpoint();  // lists every segment
  const auto all = segments();
  ASSERT_GE(all.size(), 5u);

  set({.truncate_before = 30});
  EXPECT_EQ(readable(id), range(30, 40));
  checkpoint();  // the previous checkpoint still lists them: kept as its fallback
  EXPECT_EQ(segments(), all);
  EXPECT_EQ(readable(id), range(30, 40));

  checkpoint();  // no checkpoint lists them any more
  const auto left = segments();
  EXPECT_LT(left.size(), all.size());
  // Whole segments below the one holding version 30 are gone, in order.
  EXPECT_EQ(left.back(), all.back());
  EXPECT_TRUE(std::equal(left.begin(), left.end(), all.end() - static_cast<long>(left.size())));
  EXPECT_EQ(readable(id), range(30, 40));
  EXPECT_EQ(info(stream_).first_retained, 30u);
}

TEST_F(retention_test, first_checkpoint_removes_at_once_when_no_previous_checkpoint_exists) {
  // Nothing lists the segments yet, so there is no fallback to protect.
  const std::uint64_t id = append_each_synced(stream_, 40);
  set({.truncate_before = 30});
  checkpoint();
  const auto left = segments();
  ASSERT_FALSE(left.empty());
  EXPECT_NE(left.front(), "00000000000000000000.seg");
  EXPECT_EQ(readable(id), range(30, 40));
}

// The job removes the files on its own thread; the owner forgets the
// segments when it finishes the checkpoint.
TEST_F(retention_test, the_checkpoint_job_removes_emptied_files_and_finish_forgets_them) {
  const std::uint64_t id = append_each_synced(stream_, 40);
  set({.truncate_before = 30});
  auto& p = partition_of(stream_);
  const auto files_before = segments();
  const auto listed_before = p.log().segments().size();
  ASSERT_EQ(listed_before, files_before.size());

  auto job = must(p.begin_checkpoint(), "begin_checkpoint");
  EXPECT_EQ(segments(), files_before) << "begin removes nothing";
  ASSERT_TRUE(job.write().ok());
  const auto files_after = segments();
  EXPECT_LT(files_after.size(), files_before.size()) << "write() removes the emptied files";
  EXPECT_EQ(p.log().segments().size(), listed_before) << "the owner lists them until finish";

  ASSERT_TRUE(p.finish_checkpoint(std::move(job), {}).ok());
  EXPECT_EQ(p.log().segments().size(), files_after.size());
  EXPECT_EQ(readable(id), range(30, 40));
  crash_and_reopen();
  EXPECT_EQ(segments(), files_after);
  EXPECT_EQ(readable(id), range(30, 40));
}

// While armed, the node log cannot release its segments: removing them or
// keeping them as spares (a rename) fails with EIO.
class failing_release final : public annal::testing::forwarding_file_system {
 public:
  failing_release() : forwarding_file_system(annal::engine::posix_file_system()) {}

  std::atomic<bool> armed{false};

  std::error_code remove_file(const std::string& path) override {
    if (armed && path.find("/node-log/") != std::string::npos) {
      return std::make_error_code(std::errc::io_error);
    }
    return base_.remove_file(path);
  }
  std::error_code rename_file(const std::string& from, const std::string& to) override {
    if (armed && from.find("/node-log/") != std::string::npos) {
      return std::make_error_code(std::errc::io_error);
    }
    return base_.rename_file(from, to);
  }
};

// One partition and small node-log segments, so that a checkpoint releases
// node-log segments; the file system outlives every store.
class retention_release_test : public retention_test {
 protected:
  retention_release_test() {
    options_.partition_count = 1;
    options_.node_log.segment_bytes = 4u << 10;
    options_.fs = &fs();
  }
  static failing_release& fs() {
    static failing_release instance;
    return instance;
  }
  // `rounds` group-commit rounds of 10 events each; the id of the first.
  std::uint64_t append_rounds(int rounds) {
    const std::uint64_t first = append_each_synced(stream_, 10);
    for (int i = 1; i < rounds; ++i) append_each_synced(stream_, 10);
    return first;
  }
};

TEST_F(retention_release_test, files_kept_by_a_failed_release_go_at_the_next_checkpoint) {
  const std::uint64_t id = append_rounds(4);
  checkpoint();  // lists every segment
  append_rounds(4);
  set({.truncate_before = 30});
  checkpoint();  // the one before still lists them: kept
  append_rounds(4);
  const auto before = segments();

  auto& p = partition_of(stream_);
  auto job = must(p.begin_checkpoint(), "begin_checkpoint");
  fs().armed = true;
  const auto written = job.write();
  fs().armed = false;
  ASSERT_FALSE(written.ok()) << "the node log's release should have failed";
  EXPECT_TRUE(job.retryable());
  EXPECT_FALSE(p.finish_checkpoint(std::move(job), written).ok());
  EXPECT_EQ(segments(), before) << "write() stopped before removing files";

  checkpoint();
  const auto after = segments();
  EXPECT_LT(after.size(), before.size()) << "the next checkpoint removes what the failed one kept";
  EXPECT_EQ(after.back(), before.back());
  EXPECT_EQ(readable(id), range(30, 120));
}

TEST_F(retention_test, max_count_retention_removes_old_segments) {
  const std::uint64_t id = append_each_synced(stream_, 40);
  checkpoint();
  const auto all = segments();
  set({.max_count = 5});
  checkpoint();
  checkpoint();
  EXPECT_LT(segments().size(), all.size());
  EXPECT_EQ(readable(id), range(35, 40));
  // The window keeps sliding over what is left.
  const std::uint64_t more = append_each_synced(stream_, 3);
  ASSERT_EQ(more, id + 40);
  EXPECT_EQ(readable(id), range(38, 43));
}

TEST_F(retention_test, max_age_retention_removes_segments_as_the_clock_advances) {
  const std::uint64_t id = append_each_synced(stream_, 30);  // at t0
  clock_.advance_seconds(3600);
  append_each_synced(stream_, 10);                            // at t0 + 1 h
  checkpoint();
  const auto all = segments();
  set({.max_age_seconds = 1800});
  EXPECT_EQ(readable(id), range(30, 40));
  checkpoint();
  checkpoint();
  const auto left = segments();
  EXPECT_LT(left.size(), all.size());
  EXPECT_EQ(readable(id), range(30, 40));

  clock_.advance_seconds(3600);  // now everything is too old
  EXPECT_TRUE(must(read_forward(stream_), "read").events.empty());
  checkpoint();
  checkpoint();
  // The active segment always stays; the stream stays writable after it.
  EXPECT_GE(segments().size(), 1u);
  EXPECT_LE(segments().size(), left.size());
  auto r = append(stream_, expected_version::exact(39), fresh_events(1));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), 40u);
  must(st().sync(), "sync");
  EXPECT_EQ(readable(id), versions{40});
}

TEST_F(retention_test, soft_deleted_stream_segments_are_removed) {
  append_each_synced(stream_, 40);
  checkpoint();
  const auto all = segments();
  must(partition_of(stream_).delete_stream(stream_, expected_version::any(), false), "delete");
  must(st().sync(), "sync");
  checkpoint();
  checkpoint();
  EXPECT_LT(segments().size(), all.size());
  EXPECT_EQ(read_forward(stream_).err().code, errc::stream_not_found);
  const std::uint64_t id = append_each_synced(stream_, 2);
  auto page = must(read_forward(stream_), "read");
  EXPECT_EQ(versions_of(page), (versions{40, 41}));
  EXPECT_EQ(data_of(page), (std::vector<std::string>{data_for(id), data_for(id + 1)}));
}

TEST_F(retention_test, segments_with_live_events_of_another_stream_are_kept) {
  const std::string other = stream_in_partition_of(stream_, "orders-");
  // Interleaved: every segment holds events of both streams.
  const std::uint64_t first = next_id();
  for (int i = 0; i < 20; ++i) {
    must(append(stream_, expected_version::any(), fresh_events(1)), "append");
    must(append(other, expected_version::any(), fresh_events(1)), "append");
  }
  must(st().sync(), "sync");
  checkpoint();
  const auto all = segments();
  set({.truncate_before = 20});  // hides every event of stream_
  checkpoint();
  checkpoint();
  EXPECT_EQ(segments(), all);
  auto page = must(read_forward(other), "read other");
  ASSERT_EQ(page.events.size(), 20u);
  for (std::uint64_t v = 0; v < 20; ++v) {
    EXPECT_EQ(page.events[v].data, data_for(first + 2 * v + 1));
  }
  EXPECT_TRUE(must(read_forward(stream_), "read").events.empty());
}

TEST_F(retention_test, events_past_retention_stay_hidden_after_reopen) {
  const std::uint64_t id = append_each_synced(stream_, 40);
  checkpoint();
  set({.truncate_before = 30});
  checkpoint();
  checkpoint();
  reopen();
  EXPECT_EQ(readable(id), range(30, 40));
  // Lowering truncate_before cannot bring back what retention removed.
  set({.truncate_before = 0});
  const auto page = must(read_forward(stream_), "read");
  ASSERT_FALSE(page.events.empty());
  EXPECT_GT(page.events.front().version.value(), 0u);
  for (const auto& e : page.events) EXPECT_EQ(e.data, data_for(id + e.version.value()));
  reopen();
  const auto again = must(read_forward(stream_), "read");
  EXPECT_EQ(versions_of(again), versions_of(page));
}

TEST_F(retention_test, events_past_retention_stay_hidden_after_crash) {
  const std::uint64_t id = append_each_synced(stream_, 40);
  checkpoint();
  set({.truncate_before = 30});
  checkpoint();
  checkpoint();
  const auto left = segments();
  append_each_synced(stream_, 5);  // in the node log only
  crash_and_reopen();
  EXPECT_GT(st().recovery().replayed_records, 0u);
  EXPECT_EQ(readable(id), range(30, 45));
  EXPECT_EQ(info(stream_).first_retained, 30u);
  EXPECT_EQ(segments().front(), left.front());
}

TEST_F(retention_test, checkpoint_all_applies_retention_in_every_partition) {
  const std::string a = "orders-1";
  std::string b = "orders-2";
  for (int i = 3; st().partition_for(b) == st().partition_for(a); ++i) {
    b = "orders-" + std::to_string(i);
  }
  const std::uint64_t id_a = append_each_synced(a, 30);
  const std::uint64_t id_b = append_each_synced(b, 30);
  must(st().checkpoint_all(), "checkpoint");
  const auto all_a = segment_files(st().partition_for(a));
  const auto all_b = segment_files(st().partition_for(b));
  must(partition_of(a).set_metadata(a, {.max_count = 2}), "metadata");
  must(partition_of(b).set_metadata(b, {.max_count = 2}), "metadata");
  must(st().sync(), "sync");
  must(st().checkpoint_all(), "checkpoint");
  must(st().checkpoint_all(), "checkpoint");
  EXPECT_LT(segment_files(st().partition_for(a)).size(), all_a.size());
  EXPECT_LT(segment_files(st().partition_for(b)).size(), all_b.size());
  EXPECT_EQ(data_of(must(read_forward(a), "read a")),
            (std::vector<std::string>{data_for(id_a + 28), data_for(id_a + 29)}));
  EXPECT_EQ(data_of(must(read_forward(b), "read b")),
            (std::vector<std::string>{data_for(id_b + 28), data_for(id_b + 29)}));
}

}  // namespace
