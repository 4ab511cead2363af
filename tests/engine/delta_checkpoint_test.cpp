// Delta checkpoints at the partition: a checkpoint after a small change
// writes only that change; the chain on disk always loads to the index the
// partition holds, through retention, deletes, snapshots, new streams and
// crashes; a store of format 2 keeps writing full checkpoints.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "engine/checkpoint.hpp"
#include "tests/support/byte_damage.hpp"
#include "tests/support/disk_view.hpp"
#include "tests/support/store_fixture.hpp"

namespace {

using annal::partition_id;
using annal::stream_version;
using annal::engine::checkpoint_state;
using annal::engine::decode_checkpoint;
using annal::engine::expected_version;
using annal::engine::load_newest_checkpoint;
using annal::engine::posix_file_system;
using annal::engine::stream_entry;
using annal::engine::stream_index;
using annal::testing::must;
using annal::testing::store_fixture;

constexpr std::size_t k_max_deltas = 4;

// Everything a checkpoint keeps of a stream, as text (a mismatch prints it).
std::string describe(const stream_entry& e) {
  return fmt::format(
      "{} #{}: next {}, first {}, locations [{}], metadata {}/{}/{}, deleted {}, tombstoned {}, "
      "snapshot {}",
      e.id, e.number, e.next_version, e.first_located, fmt::join(e.locations, " "),
      e.metadata.max_count, e.metadata.max_age_seconds, e.metadata.truncate_before, e.deleted,
      e.tombstoned,
      e.snapshot ? fmt::format("{}@{}", e.snapshot->version.value(), e.snapshot->record.value())
                 : "none");
}

std::vector<std::string> describe(const stream_index& index) {
  std::vector<std::string> out;
  index.for_each([&](const stream_entry& e) { out.push_back(describe(e)); });
  return out;
}

class delta_checkpoint_test : public store_fixture {
 protected:
  delta_checkpoint_test() {
    options_.partition_count = 1;
    options_.partition.max_checkpoint_deltas = k_max_deltas;
    options_.partition.log.segment_bytes = 4096;  // retention removes whole segments
  }

  std::string partition_dir() const { return options_.directory + "/partitions/00000"; }

  std::vector<std::string> checkpoint_files() const {
    std::vector<std::string> out;
    for (const auto& name : annal::testing::files_in(partition_dir())) {
      if (name.ends_with(".ckpt")) out.push_back(name);
    }
    return out;
  }

  // The newest checkpoint file alone, not applied to its chain.
  checkpoint_state newest_file() {
    const auto names = checkpoint_files();
    EXPECT_FALSE(names.empty());
    const std::string path = partition_dir() + "/" + names.back();
    std::vector<std::byte> bytes;
    EXPECT_FALSE(annal::testing::read_all(path, bytes));
    return must(decode_checkpoint(bytes, partition_id{0}, path), "decode");
  }
  std::uint64_t newest_file_size() {
    return annal::testing::size_on_disk(partition_dir() + "/" + checkpoint_files().back());
  }

  // What a restart would load: the newest chain, applied.
  checkpoint_state loaded_chain() {
    auto loaded = must(load_newest_checkpoint(posix_file_system(), partition_dir(), partition_id{0}),
                       "load");
    EXPECT_TRUE(loaded.has_value());
    return loaded ? std::move(*loaded) : checkpoint_state{};
  }

  const stream_index& live_index() { return partition_of("any").index(); }

  // One of six kinds of change, by step, each synced.
  void change(int step) {
    auto& p = partition_of("any");
    switch (step % 6) {
      case 0:
        append_synced(fmt::format("s-{}", step % 5), expected_version::any(), fresh_events(3));
        break;
      case 1:  // retention trims s-1 from the front, and drops old segments
        append_synced("s-1", expected_version::any(), fresh_events(4));
        must(p.set_metadata("s-1", {.max_count = 5}), "metadata");
        break;
      case 2:
        append_synced("s-2", expected_version::any(), fresh_events(2));
        must(p.put_snapshot("s-2", stream_version{1}, fmt::format("state-{}", step)), "snapshot");
        break;
      case 3:  // revived (after the first time) and soft-deleted again
        append_synced("s-3", expected_version::any(), fresh_events(2));
        must(p.delete_stream("s-3", expected_version::any(), false), "delete");
        break;
      case 4:
        append_synced(fmt::format("new-{}", step), expected_version::no_stream(), fresh_events(1));
        break;
      case 5:
        append_synced(fmt::format("gone-{}", step), expected_version::any(), fresh_events(2));
        must(p.delete_stream(fmt::format("gone-{}", step), expected_version::any(), true),
             "tombstone");
        break;
    }
    must(st().sync(), "sync");
  }
};

TEST_F(delta_checkpoint_test, a_checkpoint_after_a_small_change_writes_only_that_change) {
  for (int i = 0; i < 40; ++i) {
    append_synced(fmt::format("s-{}", i), expected_version::any(), fresh_events(50));
  }
  must(st().checkpoint_all(), "checkpoint");
  const checkpoint_state full = newest_file();
  EXPECT_EQ(full.extends, 0u);
  EXPECT_EQ(full.index.size(), 40u);
  const std::uint64_t full_bytes = newest_file_size();

  const auto retried = fresh_events(1);
  append_synced("s-7", expected_version::any(), retried);
  must(st().checkpoint_all(), "checkpoint");
  const checkpoint_state delta = newest_file();
  EXPECT_EQ(delta.sequence, full.sequence + 1);
  EXPECT_EQ(delta.extends, full.sequence);
  ASSERT_EQ(delta.index.size(), 1u);
  EXPECT_EQ(delta.index.at(0).id, "s-7");
  EXPECT_EQ(delta.stream_numbers, std::vector<std::uint32_t>{7});
  EXPECT_EQ(delta.locations_from, std::vector<std::uint64_t>{50});
  EXPECT_EQ(delta.index.at(0).locations.size(), 1u);
  EXPECT_EQ(delta.recent_ids.size(), 1u);
  EXPECT_LT(newest_file_size() * 50, full_bytes)
      << "delta " << newest_file_size() << " bytes, full " << full_bytes;

  EXPECT_EQ(describe(loaded_chain().index), describe(live_index()));
  reopen();
  EXPECT_EQ(st().recovery().replayed_records, 0u);
  EXPECT_EQ(read_forward("s-7")->events.size(), 51u);
  // The window came back through the delta: the last append is a retry.
  auto again = must(append("s-7", expected_version::any(), retried), "retry");
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.first_version, stream_version{50});
}

TEST_F(delta_checkpoint_test, the_chain_loads_to_the_partitions_index_after_every_checkpoint) {
  std::size_t full_checkpoints = 0;
  std::size_t delta_checkpoints = 0;
  std::size_t most_files = 0;
  for (int step = 0; step < 60; ++step) {
    change(step);
    must(st().checkpoint_all(), "checkpoint");
    (newest_file().extends == 0 ? full_checkpoints : delta_checkpoints) += 1;
    most_files = std::max(most_files, checkpoint_files().size());
    ASSERT_EQ(describe(loaded_chain().index), describe(live_index())) << "step " << step;

    if (step % 10 == 9) {
      const auto before = describe(live_index());
      crash_and_reopen();
      ASSERT_EQ(describe(live_index()), before) << "after a crash at step " << step;
    }
  }
  EXPECT_GE(delta_checkpoints, 30u);
  EXPECT_GE(full_checkpoints, 60u / (k_max_deltas + 1));
  // The newest chain and the one before it (the fallback), no more.
  EXPECT_LE(most_files, 2 * (k_max_deltas + 1));
  EXPECT_FALSE(segment_files(partition_id{0}).empty());
}

// The partition changes while each checkpoint is written (between
// begin_checkpoint and finish_checkpoint): the chain holds the index as it was
// at the begin, and the next delta picks up what changed meanwhile, new
// streams included.
TEST_F(delta_checkpoint_test, changes_made_while_a_checkpoint_is_written_go_into_the_next) {
  std::size_t delta_checkpoints = 0;
  for (int step = 0; step < 60; ++step) {
    auto& p = partition_of("any");
    auto job = must(p.begin_checkpoint(), "begin");
    // As begin left it: it drops the locations of events past retention.
    const auto begun_with = describe(live_index());
    const std::uint64_t ids_begun_with = next_id() - 1;  // every event so far, in the window
    change(step);
    if (step % 4 == 3) change(step + 601);  // another kind, new names
    must(job.write(), "write");
    delta_checkpoints += job.delta() ? 1 : 0;
    must(p.finish_checkpoint(std::move(job), {}), "finish");
    const auto loaded = loaded_chain();
    ASSERT_EQ(describe(loaded.index), begun_with) << "step " << step;
    ASSERT_EQ(loaded.recent_ids.size(), ids_begun_with) << "step " << step;

    if (step % 10 == 9) {
      const auto before = describe(live_index());
      crash_and_reopen();
      ASSERT_EQ(describe(live_index()), before) << "after a crash at step " << step;
    }
  }
  EXPECT_GE(delta_checkpoints, 30u);
  must(st().checkpoint_all(), "checkpoint");
  EXPECT_EQ(describe(loaded_chain().index), describe(live_index()));
}

// A store created by a build that reads only full checkpoints.
class format_2_store_test : public delta_checkpoint_test {
 protected:
  format_2_store_test() {
    std::filesystem::create_directories(options_.directory);
    std::ofstream(options_.directory + "/store.meta") << "annal-store 2\npartitions 1\n";
  }
};

TEST_F(format_2_store_test, writes_only_full_checkpoints) {
  for (int i = 0; i < 4; ++i) {
    append_synced("s-0", expected_version::any(), fresh_events(2));
    must(st().checkpoint_all(), "checkpoint");
    EXPECT_EQ(newest_file().extends, 0u) << "checkpoint " << i;
    EXPECT_LE(checkpoint_files().size(), 2u);
  }
  reopen();
  EXPECT_EQ(read_forward("s-0")->events.size(), 8u);
}

}  // namespace
