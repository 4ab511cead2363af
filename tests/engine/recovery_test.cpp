// Recovery of a store: a clean close and reopen gives the same state; a crash
// after sync (the store destroyed without close) replays the node log and
// keeps every synced write; opening twice in a row gives the same state; the
// partition count is fixed by the first open.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/log_format.hpp"
#include "engine/verify.hpp"
#include "tests/support/byte_damage.hpp"
#include "tests/support/store_fixture.hpp"

namespace {

using annal::stream_version;
using annal::timestamp_us;
using annal::engine::errc;
using annal::engine::expected_version;
using annal::engine::stream_metadata;
using annal::testing::data_for;
using annal::testing::must;
using annal::testing::store_fixture;

// What a reader can observe of one stream.
struct stream_state {
  errc read_error = errc::ok;
  std::vector<std::uint64_t> versions;
  std::vector<std::string> data;
  std::vector<timestamp_us> timestamps;
  std::optional<std::uint64_t> last_version;
  stream_metadata metadata;
  bool deleted = false;
  bool tombstoned = false;
  std::optional<std::pair<std::uint64_t, std::string>> snapshot;

  friend bool operator==(const stream_state&, const stream_state&) = default;
};

void PrintTo(const stream_state& s, std::ostream* os) {
  *os << "{error " << annal::engine::errc_name(s.read_error) << ", versions [";
  for (auto v : s.versions) *os << v << ' ';
  *os << "], last " << (s.last_version ? std::to_string(*s.last_version) : "none")
      << ", deleted " << s.deleted << ", tombstoned " << s.tombstoned << ", snapshot "
      << (s.snapshot ? std::to_string(s.snapshot->first) : "none") << "}";
}

class recovery_test : public store_fixture {
 protected:
  const std::vector<std::string> streams_ = {"orders-1", "orders-2", "orders-3",
                                             "orders-4", "orders-5", "payments-1"};

  stream_state observe(const std::string& stream) {
    stream_state s;
    auto& p = partition_of(stream);
    auto page = p.read_stream(stream, stream_version{0}, 10000,
                              annal::engine::read_direction::forward);
    if (page) {
      for (const auto& e : page->events) {
        s.versions.push_back(e.version.value());
        s.data.emplace_back(e.data);
        s.timestamps.push_back(e.timestamp);
      }
    } else {
      s.read_error = page.err().code;
    }
    const auto i = info(stream);
    s.last_version = i.last_version ? std::optional(i.last_version->value()) : std::nullopt;
    s.metadata = i.metadata;
    s.deleted = i.deleted;
    s.tombstoned = i.tombstoned;
    auto snap = must(p.get_snapshot(stream), "get_snapshot");
    if (snap) s.snapshot = std::pair(snap->version.value(), std::string(snap->payload));
    return s;
  }
  std::map<std::string, stream_state> observe_all() {
    std::map<std::string, stream_state> all;
    for (const auto& s : streams_) all[s] = observe(s);
    return all;
  }

  // A mix of every kind of write, all synced.
  void write_everything() {
    append_synced("orders-1", expected_version::no_stream(), fresh_events(3));
    clock_.advance_seconds(1);
    append_synced("orders-1", expected_version::exact(2), fresh_events(2));
    append_synced("orders-2", expected_version::any(), fresh_events(4));
    must(partition_of("orders-2").set_metadata("orders-2", {.max_count = 2}), "metadata");
    append_synced("orders-3", expected_version::any(), fresh_events(2));
    must(partition_of("orders-3").delete_stream("orders-3", expected_version::any(), false),
         "delete");
    append_synced("orders-4", expected_version::any(), fresh_events(2));
    must(partition_of("orders-4").delete_stream("orders-4", expected_version::any(), true),
         "tombstone");
    append_synced("payments-1", expected_version::any(), fresh_events(5));
    must(partition_of("payments-1").put_snapshot("payments-1", stream_version{2}, "paid-2"),
         "snapshot");
    clock_.advance_seconds(1);
    append_synced("orders-3", expected_version::no_stream(), fresh_events(1));  // revives it
    must(st().sync(), "sync");
  }
};

TEST_F(recovery_test, close_and_reopen_gives_the_same_state) {
  write_everything();
  const auto before = observe_all();
  EXPECT_EQ(before.at("orders-1").versions, (std::vector<std::uint64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(before.at("orders-3").versions, (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(before.at("orders-4").read_error, errc::stream_deleted);
  EXPECT_EQ(before.at("orders-5").read_error, errc::stream_not_found);
  reopen();
  EXPECT_EQ(st().recovery().replayed_records, 0u);  // the checkpoint covers everything
  EXPECT_EQ(observe_all(), before);
}

TEST_F(recovery_test, crash_after_sync_replays_node_log_and_keeps_every_synced_write) {
  write_everything();
  const auto before = observe_all();
  crash_and_reopen();
  EXPECT_GT(st().recovery().node_log_records, 0u);
  EXPECT_GT(st().recovery().replayed_records, 0u);
  EXPECT_EQ(st().recovery().torn_bytes, 0u);
  EXPECT_EQ(observe_all(), before);
}

TEST_F(recovery_test, crash_after_checkpoint_replays_only_later_records) {
  append_synced("orders-1", expected_version::any(), fresh_events(3));
  must(st().checkpoint_all(), "checkpoint");
  for (int i = 0; i < 3; ++i) {
    append_synced("orders-1", expected_version::any(), fresh_events(1));
  }
  const auto before = observe("orders-1");
  crash_and_reopen();
  EXPECT_EQ(st().recovery().replayed_records, 3u);
  EXPECT_EQ(observe("orders-1"), before);
  EXPECT_EQ(before.versions, (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5}));
}

TEST_F(recovery_test, opening_twice_in_a_row_gives_the_same_state) {
  write_everything();
  const auto before = observe_all();
  crash_and_reopen();
  crash_and_reopen();  // recovery itself wrote nothing that a second one trips on
  EXPECT_EQ(observe_all(), before);
  reopen();
  reopen();
  EXPECT_EQ(observe_all(), before);
}

TEST_F(recovery_test, crash_between_checkpoints_keeps_writes_on_both_sides) {
  const std::uint64_t id = next_id();
  append_synced("orders-1", expected_version::any(), fresh_events(2));
  must(st().checkpoint_all(), "checkpoint");
  append_synced("orders-1", expected_version::any(), fresh_events(2));
  must(st().checkpoint_all(), "checkpoint");
  append_synced("orders-1", expected_version::any(), fresh_events(2));
  crash_and_reopen();
  const auto s = observe("orders-1");
  EXPECT_EQ(s.versions, (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5}));
  for (std::uint64_t v = 0; v < 6; ++v) EXPECT_EQ(s.data[v], data_for(id + v));
}

TEST_F(recovery_test, writes_after_recovery_continue_versions_and_timestamps) {
  append_synced("orders-1", expected_version::any(), fresh_events(3));
  const timestamp_us written_at = clock_.now_us();
  crash_and_reopen();
  clock_.set(written_at - 3'600'000'000);  // the restarted node's clock is an hour behind
  auto r = append("orders-1", expected_version::exact(2), fresh_events(1));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), 3u);
  must(st().sync(), "sync");
  auto s = observe("orders-1");
  ASSERT_EQ(s.timestamps.size(), 4u);
  EXPECT_EQ(s.timestamps[3], written_at);

  reopen();
  clock_.set(written_at - 7'200'000'000);
  append_synced("orders-1", expected_version::exact(3), fresh_events(1));
  s = observe("orders-1");
  ASSERT_EQ(s.timestamps.size(), 5u);
  EXPECT_EQ(s.timestamps[4], written_at);
}

TEST_F(recovery_test, unsynced_write_is_all_or_nothing_after_crash) {
  append_synced("orders-1", expected_version::any(), fresh_events(2));
  ASSERT_TRUE(append("orders-1", expected_version::any(), fresh_events(3)));  // never synced
  crash_and_reopen();
  const auto s = observe("orders-1");
  ASSERT_TRUE(s.last_version.has_value());
  // Either the whole batch or none of it, and reads agree with the version.
  EXPECT_TRUE(*s.last_version == 1 || *s.last_version == 4) << *s.last_version;
  EXPECT_EQ(s.versions.size(), *s.last_version + 1);
  auto r = append("orders-1", expected_version::exact(*s.last_version), fresh_events(1));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), *s.last_version + 1);
}

TEST_F(recovery_test, checkpoint_with_unsynced_writes_survives_repeated_crashes) {
  // One partition checkpoints while the node log still holds its unsynced
  // write; another partition has never checkpointed and relies on the node
  // log from its start. Crashing, reopening and crashing again must keep both.
  const std::string a = "orders-1";
  std::string b = "orders-2";
  for (int i = 3; st().partition_for(b) == st().partition_for(a); ++i) {
    b = "orders-" + std::to_string(i);
  }
  append_synced(b, expected_version::any(), fresh_events(2));
  append_synced(a, expected_version::any(), fresh_events(1));
  ASSERT_TRUE(append(a, expected_version::any(), fresh_events(1)));  // not synced
  must(partition_of(a).checkpoint(), "checkpoint a");
  crash_and_reopen();
  ASSERT_TRUE(st().get(st().partition_for(b))) << st().get(st().partition_for(b)).err().message;
  const auto state_a = observe(a);
  const auto state_b = observe(b);
  EXPECT_EQ(state_b.versions, (std::vector<std::uint64_t>{0, 1}));
  EXPECT_GE(state_a.versions.size(), 1u);

  crash_and_reopen();  // recovery wrote nothing a second one trips on
  ASSERT_TRUE(st().get(st().partition_for(a))) << st().get(st().partition_for(a)).err().message;
  ASSERT_TRUE(st().get(st().partition_for(b))) << st().get(st().partition_for(b)).err().message;
  EXPECT_EQ(observe(a), state_a);
  EXPECT_EQ(observe(b), state_b);

  append_synced(b, expected_version::exact(1), fresh_events(1));
  crash_and_reopen();
  ASSERT_TRUE(st().get(st().partition_for(b))) << st().get(st().partition_for(b)).err().message;
  EXPECT_EQ(observe(b).versions, (std::vector<std::uint64_t>{0, 1, 2}));
  EXPECT_EQ(observe(a), state_a);
}

TEST_F(recovery_test, partition_count_is_fixed_by_the_first_open) {
  write_everything();
  const auto before = observe_all();
  std::map<std::string, std::uint32_t> placement;
  for (const auto& s : streams_) placement[s] = st().partition_for(s).value();
  must(st().close(), "close");
  store_.reset();

  options_.partition_count = 9;
  open_store();
  EXPECT_EQ(st().partition_count(), 4u);
  for (const auto& s : streams_) EXPECT_EQ(st().partition_for(s).value(), placement[s]) << s;
  EXPECT_EQ(observe_all(), before);
  auto beyond = st().get(annal::partition_id{4});
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.err().code, errc::invalid_argument);
}

TEST_F(recovery_test, zero_partition_count_is_invalid_argument) {
  options_.directory = dir_.path() + "/other";
  options_.partition_count = 0;
  auto s = annal::engine::store::open(options_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.err().code, errc::invalid_argument);
}

TEST_F(recovery_test, store_is_usable_after_close) {
  append_synced("orders-1", expected_version::any(), fresh_events(1));
  must(st().close(), "close");
  append_synced("orders-1", expected_version::exact(0), fresh_events(1));
  crash_and_reopen();
  EXPECT_EQ(observe("orders-1").versions, (std::vector<std::uint64_t>{0, 1}));
}

// ------------------------------------------ the node log's preallocated tail

class node_log_tail_test : public recovery_test {
 protected:
  node_log_tail_test() { options_.node_log.segment_bytes = 1u << 20; }

  std::string wal_file() const {
    return options_.directory + "/node-log/" +
           annal::engine::node_log::segment_name(annal::node_log_position{0});
  }
  static void write_at(const std::string& path, std::uint64_t offset,
                       std::span<const std::byte> bytes) {
    std::unique_ptr<annal::engine::writable_file> file;
    ASSERT_FALSE(annal::engine::posix_file_system().open_writable_at(path, offset, file));
    ASSERT_FALSE(file->append(bytes));
  }
  std::vector<std::byte> wal_bytes() const {
    std::vector<std::byte> bytes;
    EXPECT_FALSE(annal::testing::read_all(wal_file(), bytes));
    return bytes;
  }
  static bool zeros_from(const std::vector<std::byte>& bytes, std::uint64_t offset) {
    return std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(offset), bytes.end(),
                       [](std::byte b) { return b == std::byte{0}; });
  }
};

TEST_F(node_log_tail_test, zero_tail_is_a_clean_end) {
  write_everything();
  const auto before = observe_all();
  const std::uint64_t end = st().wal().durable_position().value();
  crash_and_reopen();
  EXPECT_EQ(st().recovery().torn_bytes, 0u);
  EXPECT_GT(st().recovery().replayed_records, 0u);
  EXPECT_EQ(observe_all(), before);
  EXPECT_EQ(st().wal().appended_position().value(), end) << "the log continues where records end";
  EXPECT_EQ(wal_bytes().size(), options_.node_log.segment_bytes) << "the file keeps its size";
  EXPECT_TRUE(annal::engine::verify_store(annal::engine::posix_file_system(), options_.directory).ok());
}

TEST_F(node_log_tail_test, torn_record_followed_by_zeros_is_a_torn_tail_and_overwritten) {
  write_everything();
  const auto before = observe_all();
  const std::uint64_t end = st().wal().durable_position().value();
  store_.reset();  // crash
  // The start of a record whose write never finished: the first 40 bytes of
  // the log's first record, at its end.
  auto bytes = wal_bytes();
  const std::vector<std::byte> torn(bytes.begin(), bytes.begin() + 40);
  write_at(wal_file(), end, torn);
  const auto report = annal::engine::verify_store(annal::engine::posix_file_system(), options_.directory);
  EXPECT_TRUE(report.ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].offset, end);

  open_store();
  EXPECT_EQ(st().recovery().torn_bytes, 40u);
  EXPECT_EQ(observe_all(), before);
  EXPECT_EQ(st().wal().appended_position().value(), end) << "the log continues where records end";
  bytes = wal_bytes();
  EXPECT_EQ(bytes.size(), options_.node_log.segment_bytes);
  EXPECT_TRUE(std::equal(torn.begin(), torn.end(), bytes.begin() + static_cast<std::ptrdiff_t>(end)))
      << "format 2 leaves torn bytes for new records to overwrite";
  // New records go where the torn one was, and survive another crash.
  append_synced("orders-5", expected_version::any(), fresh_events(1));
  const auto after = observe_all();
  crash_and_reopen();
  EXPECT_EQ(observe_all(), after);
}

// Stores created before format 2 keep plain node-log frames and zero a torn
// tail before writing over it.
TEST_F(node_log_tail_test, format_1_store_zeroes_a_torn_tail) {
  store_.reset();  // SetUp created a format-2 store: start over as format 1
  std::filesystem::remove_all(options_.directory);
  ASSERT_FALSE(annal::engine::posix_file_system().create_directories(options_.directory));
  const std::string meta = "annal-store 1\npartitions 4\n";
  ASSERT_FALSE(annal::engine::posix_file_system().write_file(options_.directory + "/store.meta",
                                                           std::as_bytes(std::span(meta))));
  open_store();
  write_everything();
  const auto before = observe_all();
  const std::uint64_t end = st().wal().durable_position().value();
  store_.reset();  // crash
  auto bytes = wal_bytes();
  ASSERT_EQ(annal::engine::log_format::parse_frame(bytes).status,
            annal::engine::log_format::frame_status::ok)
      << "format 1 frames are plain";
  write_at(wal_file(), end, std::span(bytes).first(40));

  open_store();
  EXPECT_EQ(st().recovery().torn_bytes, 40u);
  EXPECT_EQ(observe_all(), before);
  bytes = wal_bytes();
  EXPECT_TRUE(zeros_from(bytes, end)) << "the torn bytes are zeroed before new records go there";
  append_synced("orders-5", expected_version::any(), fresh_events(1));
  const auto after = observe_all();
  crash_and_reopen();
  EXPECT_EQ(st().recovery().torn_bytes, 0u);
  EXPECT_EQ(observe_all(), after);
}

// Small node-log segments that checkpoints release quickly, so that the log
// soon writes into a reused file.
class recycled_segment_test : public recovery_test {
 protected:
  recycled_segment_test() { options_.node_log.segment_bytes = 4u << 10; }

  // Whether the active node-log segment holds non-zero bytes after its
  // records: a reused file, with frames of its earlier use there.
  bool active_segment_was_reused() {
    const auto active = st().wal().segments().back();
    std::vector<std::byte> bytes;
    EXPECT_FALSE(annal::testing::read_all(
        options_.directory + "/node-log/" + annal::engine::node_log::segment_name(active.base),
        bytes));
    return std::any_of(bytes.begin() + static_cast<std::ptrdiff_t>(active.bytes), bytes.end(),
                       [](std::byte b) { return b != std::byte{0}; });
  }
};

TEST_F(recycled_segment_test, crash_in_a_reused_segment_recovers_exactly_its_new_records) {
  std::size_t appends = 0;
  while (!active_segment_was_reused() && appends < 2000) {
    append_synced(streams_[appends % streams_.size()], expected_version::any(), fresh_events(3));
    if (++appends % 8 == 0) must(st().checkpoint_all(), "checkpoint");
  }
  ASSERT_TRUE(active_segment_was_reused()) << "no reused segment after " << appends << " appends";
  // Records that only the node log holds: recovery must read them there.
  append_synced("orders-2", expected_version::any(), fresh_events(1));
  append_synced("payments-1", expected_version::any(), fresh_events(1));
  ASSERT_TRUE(active_segment_was_reused());
  const auto before = observe_all();
  const std::uint64_t end = st().wal().durable_position().value();

  crash_and_reopen();
  EXPECT_EQ(observe_all(), before) << "no frame of the file's earlier use came back";
  EXPECT_EQ(st().wal().appended_position().value(), end) << "the log continues where records end";
  // The end mark after the last round ends the records: the earlier use's
  // bytes after it are neither a torn tail nor a warning.
  EXPECT_EQ(st().recovery().torn_bytes, 0u);
  const auto report =
      annal::engine::verify_store(annal::engine::posix_file_system(), options_.directory);
  EXPECT_TRUE(report.ok());
  EXPECT_TRUE(report.problems.empty())
      << report.problems.front().file << ": " << report.problems.front().message;

  // Writing on over the old frames, then another crash.
  append_synced("orders-1", expected_version::any(), fresh_events(1));
  const auto after = observe_all();
  crash_and_reopen();
  EXPECT_EQ(observe_all(), after);
  EXPECT_EQ(st().recovery().torn_bytes, 0u);
}

TEST_F(node_log_tail_test, zeroed_record_followed_by_records_is_refused) {
  write_everything();
  store_.reset();  // crash
  // Zero the header of the log's first record: zeros, then valid records.
  write_at(wal_file(), 0, std::vector<std::byte>(annal::engine::log_format::k_header_size));
  auto st = annal::engine::store::open(options_);
  ASSERT_TRUE(st) << st.err().message;
  bool refused = false;
  for (std::uint32_t p = 0; p < (*st)->partition_count(); ++p) {
    auto got = (*st)->get(annal::partition_id{p});
    if (got) continue;
    refused = true;
    EXPECT_NE(got.err().message.find(wal_file()), std::string::npos) << got.err().message;
    EXPECT_NE(got.err().message.find("offset 0"), std::string::npos) << got.err().message;
  }
  EXPECT_TRUE(refused) << "a hole of zeros before valid records is damage, not an end";
  EXPECT_FALSE(annal::engine::verify_store(annal::engine::posix_file_system(), options_.directory).ok());
}

}  // namespace
