// partition::clear: the node that handed a partition to another node deletes
// its copy. Afterwards the partition is empty like a new one (lsn 0, no
// streams, ids, snapshots or segment files) and stays so through recovery;
// it takes appends and a full copy shipped from lsn 0; a write still pending
// makes clear refuse without changing anything; and a crash at any point
// leaves the old partition or the empty one.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/checkpoint.hpp"
#include "engine/file_names.hpp"
#include "engine/store.hpp"
#include "engine/verify.hpp"
#include "tests/support/fault_injection_file_system.hpp"
#include "tests/support/quiet_log.hpp"
#include "tests/support/store_fixture.hpp"
#include "tests/support/stream_dump.hpp"
#include "tests/support/sync_free_file_system.hpp"

namespace annal::testing {
namespace {

using engine::errc;
using engine::expected_version;

constexpr std::size_t k_everything = std::numeric_limits<std::size_t>::max();
constexpr const char* k_home = "clear-home";

// What dump_stream gives for a stream a new, empty partition never saw.
stream_dump never_written() {
  stream_dump d;
  d.read_code = errc::stream_not_found;
  return d;
}

// `count` stream ids of `st` in the partition of k_home, k_home first.
std::vector<std::string> streams_of_home(engine::store& st, std::size_t count) {
  std::vector<std::string> out{k_home};
  const partition_id home = st.partition_for(k_home);
  for (int i = 0; out.size() < count; ++i) {
    std::string s = fmt::format("clear-{}", i);
    if (st.partition_for(s) == home) out.push_back(std::move(s));
  }
  return out;
}

// Writes every kind of record to `streams` (all in partition `p` of `st`):
// appends, stream metadata, a snapshot, a soft delete, a tombstone. Two
// checkpoints on the way, and a last round that only the node log and
// unsynced segment bytes hold. Every write is acknowledged at the end.
// Event ids start at `next_id`, which is advanced.
void write_history(engine::store& st, engine::partition& p, const std::vector<std::string>& streams,
                   manual_clock& clock, std::uint64_t& next_id) {
  for (int round = 0; round < 4; ++round) {
    for (std::size_t i = 0; i < streams.size(); ++i) {
      const auto& s = streams[i];
      clock.advance_seconds(1);
      const auto kind = i % 5;
      if (kind == 4 && round >= 2) {
        if (round == 2) must(p.delete_stream(s, expected_version::any(), true), "tombstone");
        continue;
      }
      if (kind == 3 && round == 2) {
        must(p.delete_stream(s, expected_version::any(), false), "soft delete");
        continue;
      }
      const std::size_t count = 1 + (i + static_cast<std::size_t>(round)) % 3;
      must(p.append(s, expected_version::any(), make_events(next_id, count)), "append " + s);
      next_id += count;
      if (kind == 1 && round == 1) {
        must(p.set_metadata(s, engine::stream_metadata{3, 0, 0}), "set_metadata");
      }
      if (kind == 2 && round == 1) {
        const auto* entry = p.index().find(s);
        must(p.put_snapshot(s, stream_version{entry->next_version - 1}, "snapshot of " + s),
             "put_snapshot");
      }
    }
    must(st.sync(), "sync");
    if (round == 1 || round == 2) must(p.checkpoint(), "checkpoint");
  }
}

// The partition holds nothing, as a new one.
void expect_empty(engine::partition& p, const std::vector<std::string>& streams) {
  EXPECT_EQ(p.end(), lsn{0});
  EXPECT_EQ(p.visible_end(), lsn{0});
  EXPECT_EQ(p.index().size(), 0u);
  EXPECT_TRUE(p.log().segments().empty());
  EXPECT_EQ(p.log().end(), lsn{0});
  for (const auto& s : streams) {
    const auto d = dump_stream(p, s);
    EXPECT_EQ(d, never_written()) << s << ": " << describe(d);
  }
  EXPECT_TRUE(must(p.read_log(lsn{0}, k_everything), "read_log").empty());
  const auto batch = must(p.ship_from(lsn{0}, k_everything), "ship_from");
  EXPECT_TRUE(batch.bytes.empty());
  EXPECT_EQ(batch.next, lsn{0});
  EXPECT_EQ(batch.source_end, lsn{0});
}

std::vector<stream_dump> dump_all(engine::partition& p, const std::vector<std::string>& streams) {
  std::vector<stream_dump> out;
  for (const auto& s : streams) out.push_back(dump_stream(p, s));
  return out;
}

// Files in `dir` with `suffix`, sorted by name.
std::vector<std::string> files_in(const std::string& dir, std::string_view suffix) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (name.ends_with(suffix)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Every checkpoint file of partition `id` in `dir`, decoded, oldest first.
std::vector<engine::checkpoint_state> checkpoints_in(engine::file_system& fs,
                                                     const std::string& dir, partition_id id) {
  std::vector<engine::checkpoint_state> out;
  for (const auto& name : files_in(dir, ".ckpt")) {
    const std::string path = dir + "/" + name;
    std::vector<std::byte> bytes;
    EXPECT_FALSE(fs.read_file(path, bytes)) << path;
    auto state = engine::decode_checkpoint(bytes, id, path);
    EXPECT_TRUE(state.ok()) << path << ": " << (state ? "" : state.err().message);
    if (state) out.push_back(std::move(*state));
  }
  return out;
}

bool is_empty_checkpoint(const engine::checkpoint_state& c) {
  return c.log_end == lsn{0} && c.segments.empty() && c.index.size() == 0 && c.recent_ids.empty();
}

void expect_verified(engine::file_system& fs, const std::string& directory) {
  const auto report = engine::verify_store(fs, directory);
  std::string problems;
  for (const auto& p : report.problems) problems += "\n  " + p.file + ": " + p.message;
  EXPECT_TRUE(report.ok()) << "verify_store:" << problems;
}

class clear_test : public store_fixture {
 protected:
  clear_test() {
    // Small segments: the history spans several segment files, and the
    // node log holds records of the partition from before its checkpoints.
    options_.partition.log.segment_bytes = 4u << 10;
    options_.partition.log.write_buffer_bytes = 1u << 10;
    options_.node_log.segment_bytes = 1u << 20;
  }

  engine::partition& home() { return partition_of(k_home); }
  partition_id home_id() { return st().partition_for(k_home); }
  std::string home_dir() { return engine::partition_directory(options_.directory, home_id()); }

  // History in the home partition; returns its streams.
  std::vector<std::string> write_home_history(std::size_t stream_count = 10) {
    auto streams = streams_of_home(st(), stream_count);
    write_history(st(), home(), streams, clock_, history_id_);
    return streams;
  }

  std::uint64_t history_id_ = 1u << 20;  // apart from fresh_events()
};

TEST_F(clear_test, clear_leaves_an_empty_partition_that_takes_writes) {
  const auto streams = write_home_history();
  const std::string elsewhere = [&] {
    std::string s = "elsewhere";
    while (st().partition_for(s) == home_id()) s += "-";
    return s;
  }();
  append_synced(elsewhere, expected_version::no_stream(), fresh_events(3));
  const auto elsewhere_before = dump_stream(partition_of(elsewhere), elsewhere);
  const auto old_home =
      must(home().read_stream(k_home, stream_version{0}, 1000, engine::read_direction::forward),
           "read home");
  ASSERT_GE(old_home.events.size(), 4u);
  const timestamp_us last_timestamp = [&] {
    timestamp_us t = 0;
    for (const auto& s : streams) {
      for (const auto& e : dump_stream(home(), s).events) t = std::max(t, e.timestamp);
    }
    return t;
  }();
  ASSERT_GT(files_in(home_dir(), ".seg").size(), 2u);
  ASSERT_EQ(dump_stream(home(), streams[4]).read_code, errc::stream_deleted);
  ASSERT_TRUE(dump_stream(home(), streams[2]).snapshot.has_value());
  const auto wal_end = st().wal().appended_position();

  must(home().clear(), "clear");

  expect_empty(home(), streams);
  EXPECT_EQ(files_in(home_dir(), ".seg"), std::vector<std::string>{});
  // Two checkpoints, both of the empty partition, replaying from past every
  // record it had in the node log.
  const auto checkpoints = checkpoints_in(engine::posix_file_system(), home_dir(), home_id());
  ASSERT_EQ(checkpoints.size(), 2u);
  for (const auto& c : checkpoints) {
    EXPECT_TRUE(is_empty_checkpoint(c));
    EXPECT_EQ(c.node_position, wal_end);
    EXPECT_EQ(c.last_timestamp, last_timestamp);
  }
  EXPECT_EQ(checkpoints[1].sequence, checkpoints[0].sequence + 1);
  EXPECT_EQ(home().replay_from(), wal_end);
  // Other partitions are untouched.
  EXPECT_EQ(dump_stream(partition_of(elsewhere), elsewhere), elsewhere_before);

  // The old events' ids are new to the emptied window; versions restart at
  // 0 from lsn 0. The clock went back: the timestamp does not.
  clock_.set(last_timestamp - 1'000'000);
  std::vector<engine::event_input> again;
  for (const auto& e : old_home.events) {
    again.push_back(engine::event_input{e.id, std::string(e.type), std::string(e.data), ""});
  }
  auto r = must(home().append(k_home, expected_version::no_stream(), again), "append");
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.first_version, stream_version{0});
  EXPECT_EQ(r.last_version, stream_version{again.size() - 1});
  EXPECT_EQ(r.position, lsn{0});
  must(home().set_metadata(streams[1], engine::stream_metadata{0, 0, 5}), "set_metadata");
  must(home().put_snapshot(k_home, stream_version{1}, "new snapshot"), "put_snapshot");
  must(st().sync(), "sync");

  const auto home_now = dump_stream(home(), k_home);
  ASSERT_EQ(home_now.read_code, errc::ok);
  ASSERT_EQ(home_now.events.size(), again.size());
  for (std::size_t i = 0; i < again.size(); ++i) {
    EXPECT_EQ(home_now.events[i].version, i);
    EXPECT_EQ(home_now.events[i].id, again[i].id);
    EXPECT_EQ(home_now.events[i].data, again[i].data);
    EXPECT_EQ(home_now.events[i].timestamp, last_timestamp);
  }
  ASSERT_TRUE(home_now.snapshot.has_value());
  EXPECT_EQ(home_now.snapshot->first, 1u);
  EXPECT_EQ(home_now.snapshot->second, "new snapshot");
  const auto metadata_only = dump_stream(home(), streams[1]);
  EXPECT_EQ(metadata_only.read_code, errc::stream_not_found);
  EXPECT_EQ(metadata_only.metadata.truncate_before, 5u);
  // A tombstoned name is free again.
  auto revived = must(home().append(streams[4], expected_version::no_stream(), fresh_events(1)),
                      "append to a formerly tombstoned stream");
  EXPECT_EQ(revived.first_version, stream_version{0});
  EXPECT_EQ(files_in(home_dir(), ".seg"), std::vector<std::string>{"00000000000000000000.seg"});
}

TEST_F(clear_test, cleared_partition_stays_empty_through_recovery) {
  const auto streams = write_home_history();
  must(home().clear(), "clear");

  // A crash right after clear: recovery replays the node log, which still
  // holds the partition's records from before its checkpoints.
  crash_and_reopen();
  EXPECT_EQ(st().recovery().replayed_records, 0u);
  EXPECT_GT(st().recovery().node_log_records, 0u);
  expect_empty(home(), streams);
  EXPECT_EQ(files_in(home_dir(), ".seg"), std::vector<std::string>{});
  for (const auto& c : checkpoints_in(engine::posix_file_system(), home_dir(), home_id())) {
    EXPECT_TRUE(is_empty_checkpoint(c));
  }

  reopen();  // a clean close (checkpoints) and open
  expect_empty(home(), streams);
  store_.reset();
  expect_verified(engine::posix_file_system(), options_.directory);
  open_store();
  expect_empty(home(), streams);
}

TEST_F(clear_test, appends_after_clear_are_all_that_recovery_brings_back) {
  const auto streams = write_home_history();
  must(home().clear(), "clear");

  const auto first = fresh_events(2);
  const auto second = fresh_events(3);
  append_synced(k_home, expected_version::no_stream(), first);
  append_synced(streams[3], expected_version::no_stream(), second);
  auto expect_new_only = [&](const char* when) {
    SCOPED_TRACE(when);
    const auto home_dump = dump_stream(home(), k_home);
    ASSERT_EQ(home_dump.read_code, errc::ok);
    EXPECT_EQ(home_dump.last_version, std::optional<std::uint64_t>{1});
    ASSERT_EQ(home_dump.events.size(), 2u);
    EXPECT_EQ(home_dump.events[0].id, first[0].id);
    EXPECT_EQ(home_dump.events[1].id, first[1].id);
    EXPECT_EQ(home_dump.events[1].data, first[1].data);
    const auto other = dump_stream(home(), streams[3]);
    ASSERT_EQ(other.events.size(), 3u);
    EXPECT_EQ(other.events[0].version, 0u);
    EXPECT_EQ(other.events[2].id, second[2].id);
    for (std::size_t i = 0; i < streams.size(); ++i) {
      if (i == 0 || i == 3) continue;
      EXPECT_EQ(dump_stream(home(), streams[i]), never_written()) << streams[i];
    }
    EXPECT_EQ(home().index().size(), 2u);
  };
  expect_new_only("before the crash");
  const lsn end = home().end();

  crash_and_reopen();
  EXPECT_EQ(st().recovery().replayed_records, 2u);  // the two appends, nothing older
  EXPECT_EQ(home().end(), end);
  expect_new_only("after a crash");

  // A retry of an append made after clear is still caught.
  auto retry = must(home().append(k_home, expected_version::any(), first), "retry");
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.first_version, stream_version{0});

  reopen();
  EXPECT_EQ(home().end(), end);
  expect_new_only("after a clean reopen");
  store_.reset();
  expect_verified(engine::posix_file_system(), options_.directory);
}

TEST_F(clear_test, clear_with_a_pending_write_fails_and_changes_nothing) {
  const auto streams = write_home_history();
  const auto pending = fresh_events(2);
  must(append(k_home, expected_version::any(), pending), "append");  // not synced
  const lsn end = home().end();
  const lsn visible = home().visible_end();
  ASSERT_GT(end, visible);
  const auto dumps = dump_all(home(), streams);
  const auto segments = files_in(home_dir(), ".seg");
  const auto checkpoint_names = files_in(home_dir(), ".ckpt");
  const auto wal_appended = st().wal().appended_position();
  const auto wal_durable = st().wal().durable_position();
  const auto index_size = home().index().size();

  auto refused = home().clear();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.err().code, errc::invalid_argument);
  EXPECT_NE(refused.err().message.find("pending"), std::string::npos) << refused.err().message;

  EXPECT_EQ(home().end(), end);
  EXPECT_EQ(home().visible_end(), visible);
  EXPECT_EQ(home().index().size(), index_size);
  EXPECT_EQ(dump_all(home(), streams), dumps);
  EXPECT_EQ(files_in(home_dir(), ".seg"), segments);
  EXPECT_EQ(files_in(home_dir(), ".ckpt"), checkpoint_names);
  EXPECT_EQ(st().wal().appended_position(), wal_appended);
  EXPECT_EQ(st().wal().durable_position(), wal_durable);

  // The write goes on as if nothing happened, and then clear works.
  must(st().sync(), "sync");
  const auto home_dump = dump_stream(home(), k_home);
  ASSERT_GE(home_dump.events.size(), 2u);
  EXPECT_EQ(home_dump.events.back().id, pending.back().id);
  must(home().clear(), "clear");
  expect_empty(home(), streams);
}

class clear_copy_test : public clear_test {
 protected:
  clear_copy_test() {
    copy_options_ = options_;
    copy_options_.directory = dir_.path() + "/copy";
    copy_options_.clock = &copy_clock_;
  }
  void SetUp() override {
    clear_test::SetUp();
    copy_store_ = must(engine::store::open(copy_options_), "open copy");
  }
  engine::partition& copy() {
    return *must(copy_store_->get(copy_store_->partition_for(k_home)), "get copy partition");
  }
  // Ships the home partition from the copy's end until it has caught up.
  void ship_all(std::size_t budget) {
    for (int guard = 0; guard < 100000; ++guard) {
      auto batch = must(home().ship_from(copy().end(), budget), "ship_from");
      if (batch.bytes.empty()) break;
      must(copy().apply_shipped(batch), "apply_shipped");
    }
    must(copy_store_->sync(), "sync copy");
  }
  void expect_same(const std::vector<std::string>& streams) {
    for (const auto& s : streams) {
      const auto want = dump_stream(home(), s);
      const auto got = dump_stream(copy(), s);
      EXPECT_TRUE(want.failure.empty()) << s << ": " << want.failure;
      EXPECT_EQ(got, want) << s << "\n  source: " << describe(want)
                           << "\n  copy:   " << describe(got);
    }
    EXPECT_EQ(copy().end(), home().end());
    EXPECT_EQ(copy().visible_end(), home().visible_end());
    EXPECT_EQ(copy().index().size(), home().index().size());
    const auto want = must(home().ship_from(lsn{0}, k_everything), "ship source");
    const auto got = must(copy().ship_from(lsn{0}, k_everything), "ship copy");
    EXPECT_EQ(got.bytes, want.bytes);
  }

  manual_clock copy_clock_{1'600'000'000'000'000};
  engine::store_options copy_options_;
  std::unique_ptr<engine::store> copy_store_;
};

TEST_F(clear_copy_test, full_copy_shipped_after_clear_reproduces_the_source) {
  // The copy had its own, different history of the partition (with more
  // streams than the source), as a node that held it earlier would.
  auto copy_streams = streams_of_home(*copy_store_, 14);
  std::uint64_t copy_ids = 1u << 30;
  write_history(*copy_store_, copy(), copy_streams, copy_clock_, copy_ids);
  const auto source_streams = write_home_history(8);
  ASSERT_GT(copy().end(), home().end());

  // The old copy does not take a copy from lsn 0; the cleared one does.
  const auto first = must(home().ship_from(lsn{0}, 600), "ship first");
  auto gap = copy().apply_shipped(first);
  ASSERT_FALSE(gap.ok());
  EXPECT_EQ(gap.err().code, errc::lsn_gap) << gap.err().message;
  must(copy().clear(), "clear");
  expect_empty(copy(), copy_streams);
  must(copy().apply_shipped(first), "apply first");
  // A shipped batch not yet synced is a pending write.
  auto refused = copy().clear();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.err().code, errc::invalid_argument);
  EXPECT_EQ(copy().end(), first.next);
  EXPECT_EQ(copy().visible_end(), lsn{0});
  // Synced, a half copy can be cleared and shipped again from lsn 0.
  must(copy_store_->sync(), "sync copy");
  EXPECT_EQ(copy().visible_end(), first.next);
  must(copy().clear(), "clear a half copy");
  expect_empty(copy(), copy_streams);

  ship_all(600);
  expect_same(copy_streams);  // a superset of the source's streams
  EXPECT_EQ(dump_stream(copy(), copy_streams.back()), never_written());

  // The copy recovers the shipped partition, not its own old history.
  copy_store_.reset();
  copy_store_ = must(engine::store::open(copy_options_), "reopen copy");
  expect_same(copy_streams);
  must(copy_store_->close(), "close copy");
  copy_store_.reset();
  expect_verified(engine::posix_file_system(), copy_options_.directory);
  copy_store_ = must(engine::store::open(copy_options_), "reopen copy");
  expect_same(copy_streams);
  EXPECT_EQ(dump_stream(copy(), source_streams[0]).read_code, errc::ok);
}

// ------------------------------------------------------------ crash safety

engine::store_options crash_options(const std::string& dir, engine::file_system& fs,
                                    engine::clock& clock) {
  engine::store_options o;
  o.directory = dir + "/store";
  o.partition_count = 4;
  o.fs = &fs;
  o.clock = &clock;
  o.node_log.segment_bytes = 4u << 10;
  o.node_log.prepare_in_background = false;  // the same file operations every run
  o.partition.log.segment_bytes = 4u << 10;
  o.partition.log.write_buffer_bytes = 1u << 10;
  return o;
}

constexpr std::uint64_t k_probe_id = 1u << 30;

struct crash_outcome {
  std::uint64_t clear_operations = 0;  // mutating file operations clear() made
  bool clear_ok = false;
  bool sticky = false;              // clear failed with the partition refusing writes
  bool probe_acknowledged = false;  // an append after a failed clear was acknowledged
  bool emptied = false;             // recovery found the empty partition
  bool interrupted = false;         // on disk: an empty checkpoint next to a full one
};

// History, clear with a crash after `crash_point` of its mutating file
// operations, a power loss, recovery; then the partition must be the old one
// or the empty one and take writes.
crash_outcome run_crash(std::optional<std::uint64_t> crash_point) {
  crash_outcome out;
  temp_dir dir;
  sync_free_file_system files(engine::posix_file_system());
  fault_injection_file_system fs(files);
  manual_clock clock;
  const auto options = crash_options(dir.path(), fs, clock);
  std::vector<std::string> streams;
  std::vector<stream_dump> before;
  lsn old_end{};
  partition_id id{};
  {
    auto st = must(engine::store::open(options), "open");
    streams = streams_of_home(*st, 8);
    id = st->partition_for(k_home);
    auto& p = *must(st->get(id), "get");
    std::uint64_t next_id = 1;
    write_history(*st, p, streams, clock, next_id);
    before = dump_all(p, streams);
    old_end = p.end();

    const std::uint64_t start = fs.mutating_operations();
    if (crash_point) fs.crash_after(*crash_point);
    auto cleared = p.clear();
    out.clear_operations = fs.mutating_operations() - start;
    out.clear_ok = cleared.ok();
    if (!cleared) {
      EXPECT_TRUE(crash_point.has_value()) << cleared.err().message;
      EXPECT_EQ(cleared.err().code, errc::io_error) << cleared.err().message;
      // The process lives on: a write it acknowledges must survive the
      // restart, whichever partition the restart finds.
      fs.clear_failures();
      auto probe = p.append(k_home, expected_version::any(), make_events(k_probe_id, 1));
      if (!probe) {
        out.sticky = probe.err().message.find("clear did not finish") != std::string::npos;
      } else {
        out.probe_acknowledged = st->sync().ok();
      }
      if (out.sticky) {
        const lsn end = p.end();
        auto checkpoint = p.checkpoint();
        EXPECT_FALSE(checkpoint.ok());
        if (!checkpoint) {
          EXPECT_EQ(checkpoint.err().code, cleared.err().code);
        }
        auto again = p.clear();
        EXPECT_FALSE(again.ok());
        if (!again) {
          EXPECT_EQ(again.err().code, cleared.err().code);
        }
        EXPECT_EQ(p.end(), end);
      }
    }
  }  // destroyed without close: a crash
  EXPECT_FALSE(fs.power_loss(fault_injection_file_system::power_loss_mode::drop_unsynced));

  const std::string pdir = engine::partition_directory(options.directory, id);
  {
    const auto on_disk = checkpoints_in(fs, pdir, id);
    out.interrupted = !on_disk.empty() && is_empty_checkpoint(on_disk.back()) &&
                      std::any_of(on_disk.begin(), on_disk.end(),
                                  [](const auto& c) { return !is_empty_checkpoint(c); });
  }
  {
    auto st = must(engine::store::open(options), "recover");
    for (std::uint32_t i = 0; i < st->partition_count(); ++i) {
      EXPECT_TRUE(st->get(partition_id{i}).ok()) << "partition " << i << " does not open";
    }
    auto& p = *must(st->get(id), "get");
    // streams[1] was written and never deleted: only a clear removes it.
    out.emptied = dump_stream(p, streams[1]) == never_written();
    if (out.clear_ok) {
      EXPECT_TRUE(out.emptied) << "an acknowledged clear was undone";
    }
    const auto now = dump_all(p, streams);
    std::vector<dumped_event> home_events =
        out.emptied ? std::vector<dumped_event>{} : before[0].events;
    if (out.probe_acknowledged) {
      EXPECT_EQ(now[0].read_code, errc::ok);
      if (now[0].events.empty() || now[0].events.back().id != make_event_id(k_probe_id)) {
        ADD_FAILURE() << "the acknowledged append is gone: " << describe(now[0]);
        return out;
      }
      home_events.push_back(now[0].events.back());
      EXPECT_EQ(home_events.back().version, home_events.size() - 1);
    }
    EXPECT_EQ(now[0].events, home_events) << describe(now[0]);
    if (out.emptied && !out.probe_acknowledged) expect_empty(p, streams);
    for (std::size_t i = 1; i < streams.size(); ++i) {
      EXPECT_EQ(now[i], out.emptied ? never_written() : before[i]) << describe(now[i]);
    }
    if (out.emptied) {
      EXPECT_EQ(files_in(pdir, ".seg").size(), out.probe_acknowledged ? 1u : 0u);
      // The fallback checkpoint is empty too: none lists deleted segments.
      for (const auto& c : checkpoints_in(fs, pdir, id)) {
        EXPECT_TRUE(is_empty_checkpoint(c));
      }
    } else {
      if (out.probe_acknowledged) {
        EXPECT_GT(p.end(), old_end);
      } else {
        EXPECT_EQ(p.end(), old_end);
      }
    }
    // Writable, and what is written stays.
    must(p.append(k_home, expected_version::any(), make_events(1u << 31, 2)), "append");
    must(st->close(), "close");
  }
  expect_verified(fs, options.directory);
  {
    auto st = must(engine::store::open(options), "reopen");
    auto& p = *must(st->get(id), "get");
    const auto home = dump_stream(p, k_home);
    EXPECT_EQ(home.read_code, errc::ok) << describe(home);
    if (home.events.size() < 2) {
      ADD_FAILURE() << "the appends after recovery are gone: " << describe(home);
      return out;
    }
    EXPECT_EQ(home.events.back().id, make_event_id((1u << 31) + 1));
    const std::size_t probe = out.probe_acknowledged ? 1 : 0;
    if (out.emptied) {
      EXPECT_EQ(home.events.size(), 2u + probe);
      for (std::size_t i = 1; i < streams.size(); ++i) {
        EXPECT_EQ(dump_stream(p, streams[i]), never_written()) << streams[i];
      }
    } else {
      EXPECT_EQ(home.events.size(), before[0].events.size() + probe + 2);
    }
  }
  return out;
}

TEST(clear_crash_test, crash_at_any_point_leaves_the_old_or_the_empty_partition) {
  const quiet_log quiet;
  const auto reference = run_crash(std::nullopt);
  ASSERT_TRUE(reference.clear_ok);
  ASSERT_TRUE(reference.emptied);
  // Node-log round (nothing to write), two checkpoints (write, rename, remove
  // the oldest), segment removals, a directory sync.
  ASSERT_GT(reference.clear_operations, 8u);

  int old_kept = 0, emptied = 0, sticky = 0, interrupted = 0, acknowledged = 0;
  for (std::uint64_t c = 0; c <= reference.clear_operations; ++c) {
    SCOPED_TRACE(
        fmt::format("crash after {} of {} operations of clear", c, reference.clear_operations));
    const auto run = run_crash(c);
    if (HasFailure()) return;
    EXPECT_EQ(run.clear_ok, c == reference.clear_operations);
    (run.emptied ? emptied : old_kept) += 1;
    sticky += run.sticky ? 1 : 0;
    interrupted += run.interrupted ? 1 : 0;
    acknowledged += run.probe_acknowledged ? 1 : 0;
  }
  std::printf(
      "%llu crash points: %d kept the old partition, %d emptied it; %d failed with the "
      "partition refusing writes, %d stopped between the two checkpoints, %d took an "
      "append after the failure\n",
      static_cast<unsigned long long>(reference.clear_operations + 1), old_kept, emptied, sticky,
      interrupted, acknowledged);
  // Every kind of ending happened: before the first empty checkpoint, after
  // it, failing with the partition refusing writes, and between the two
  // checkpoints (finished by open).
  EXPECT_GT(old_kept, 0);
  EXPECT_GT(emptied, 1);
  EXPECT_GT(sticky, 0);
  EXPECT_GT(interrupted, 0);
  EXPECT_GT(acknowledged, 0);
}

}  // namespace
}  // namespace annal::testing
