#include "engine/node_log.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "engine/file_names.hpp"
#include "engine/log_format.hpp"
#include "tests/support/byte_damage.hpp"
#include "tests/support/disk_view.hpp"
#include "tests/support/fault_injection_file_system.hpp"
#include "tests/support/frame_salt.hpp"
#include "tests/support/temp_dir.hpp"

using annal::testing::frame_salt_of;

namespace {

using annal::lsn;
using annal::node_log_position;
using annal::partition_id;
using annal::engine::errc;
using annal::engine::file_system;
using annal::engine::fsync_mode;
using annal::engine::node_log;
using annal::engine::node_log_options;
using annal::engine::posix_file_system;
using annal::testing::fault_injection_file_system;
using annal::testing::files_in;
using annal::testing::temp_dir;
using power_loss_mode = fault_injection_file_system::power_loss_mode;
namespace lf = annal::engine::log_format;

constexpr std::size_t k_frame = 64;  // header + 40-byte payload

// A sealed 64-byte frame of `partition` at partition lsn `position`.
std::vector<std::byte> make_frame(std::uint32_t partition, std::uint64_t position) {
  std::vector<std::byte> frame(k_frame);
  for (std::size_t i = lf::k_header_size; i < k_frame; ++i) {
    frame[i] = std::byte(static_cast<std::uint8_t>(partition * 31 + position + i));
  }
  lf::seal_frame(frame, lf::record_type::append_batch, partition_id{partition}, lsn{position});
  return frame;
}

std::string wal(std::uint64_t base) { return node_log::segment_name(node_log_position{base}); }

// The frames of one node-log file, in order, up to the zeros that follow
// them; fails the test on a bad frame or on anything but zeros after them.
std::vector<lf::record_header> frames_in(const std::string& path) {
  std::vector<std::byte> bytes;
  EXPECT_FALSE(annal::testing::read_all(path, bytes));
  std::vector<lf::record_header> headers;
  std::size_t at = 0;
  while (at < bytes.size()) {
    const auto parsed =
        lf::parse_frame(std::span<const std::byte>(bytes).subspan(at), frame_salt_of(path));
    if (parsed.status == lf::frame_status::zero) {
      EXPECT_TRUE(std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(at), bytes.end(),
                              [](std::byte b) { return b == std::byte{0}; }))
          << path << ": data after the zeros at offset " << at;
      break;
    }
    EXPECT_EQ(parsed.status, lf::frame_status::ok) << path << " offset " << at;
    if (parsed.status != lf::frame_status::ok) break;
    headers.push_back(parsed.header);
    at += parsed.header.frame_size();
  }
  return headers;
}

// Bytes of records in a node-log file (the file itself is preallocated).
std::uint64_t written(const std::string& path) { return frames_in(path).size() * k_frame; }

// The node-log segments in `dir` (without the next one being prepared).
std::vector<std::string> wal_files_in(const std::string& dir) {
  auto names = files_in(dir);
  std::erase_if(names, [](const std::string& n) { return !n.ends_with(".wal"); });
  return names;
}

class node_log_test : public ::testing::Test {
 protected:
  std::unique_ptr<node_log> open(node_log_options options = {},
                                 std::vector<node_log::segment> existing = {},
                                 node_log_position end = node_log_position{0},
                                 std::uint32_t partitions = 4) {
    auto log = node_log::open(fs_, dir_.path(), options, std::move(existing), end, partitions);
    EXPECT_TRUE(log.ok()) << log.err().message;
    return log.ok() ? std::move(*log) : nullptr;
  }

  static node_log_options with_mode(fsync_mode mode,
                                    std::chrono::milliseconds interval = std::chrono::milliseconds{100}) {
    node_log_options o;
    o.mode = mode;
    o.sync_interval = interval;
    return o;
  }

  static node_log_position append(node_log& log, std::uint32_t partition, std::uint64_t position) {
    auto r = log.append(make_frame(partition, position));
    EXPECT_TRUE(r.ok()) << r.err().message;
    return r.ok() ? *r : node_log_position{0};
  }

  // Mutating file operations (appends, syncs) one sync() round makes.
  std::uint64_t operations_of_one_round(node_log& log) {
    const auto before = fs_.mutating_operations();
    EXPECT_TRUE(log.sync().ok());
    return fs_.mutating_operations() - before;
  }

  temp_dir dir_;
  fault_injection_file_system fs_{posix_file_system()};
};

TEST_F(node_log_test, fresh_log_starts_an_empty_segment_at_its_end) {
  auto log = open({}, {}, node_log_position{0});
  EXPECT_EQ(log->durable_position(), node_log_position{0});
  EXPECT_EQ(log->appended_position(), node_log_position{0});
  EXPECT_FALSE(log->has_pending());
  EXPECT_FALSE(log->failure().has_value());
  ASSERT_EQ(log->segments().size(), 1u);
  EXPECT_EQ(log->segments()[0].base, node_log_position{0});
  EXPECT_EQ(log->segments()[0].bytes, 0u);
  EXPECT_EQ(wal_files_in(dir_.path()), std::vector<std::string>{"00000000000000000000.wal"});
}

TEST_F(node_log_test, append_returns_increasing_positions_just_past_each_frame) {
  auto log = open();
  EXPECT_EQ(append(*log, 0, 0), node_log_position{64});
  EXPECT_EQ(append(*log, 1, 0), node_log_position{128});
  EXPECT_EQ(append(*log, 0, 64), node_log_position{192});
  EXPECT_EQ(log->appended_position(), node_log_position{192});
  EXPECT_TRUE(log->has_pending());
}

TEST_F(node_log_test, durable_position_only_advances_after_sync) {
  auto log = open();
  const auto first = append(*log, 0, 0);
  const auto second = append(*log, 2, 0);
  EXPECT_EQ(log->durable_position(), node_log_position{0});
  EXPECT_EQ(written(dir_.file(wal(0))), 0u) << "nothing is written before a round";

  auto synced = log->sync();
  ASSERT_TRUE(synced.ok()) << synced.err().message;
  EXPECT_EQ(*synced, second);
  EXPECT_EQ(log->durable_position(), second);
  EXPECT_FALSE(log->has_pending());
  EXPECT_EQ(written(dir_.file(wal(0))), 128u);

  const auto third = append(*log, 1, 0);
  EXPECT_EQ(log->durable_position(), second) << "a new append is not durable yet";
  EXPECT_GT(third, first);
  ASSERT_TRUE(log->sync().ok());
  EXPECT_EQ(log->durable_position(), third);

  const auto headers = frames_in(dir_.file(wal(0)));
  ASSERT_EQ(headers.size(), 3u);
  EXPECT_EQ(headers[0].partition, partition_id{0});
  EXPECT_EQ(headers[1].partition, partition_id{2});
  EXPECT_EQ(headers[2].partition, partition_id{1});
}

TEST_F(node_log_test, synced_bytes_survive_a_power_loss_under_fsync_always) {
  {
    auto log = open(with_mode(fsync_mode::always));
    append(*log, 0, 0);
    append(*log, 0, 64);
    ASSERT_TRUE(log->sync().ok());
    append(*log, 0, 128);  // never synced
  }
  ASSERT_FALSE(fs_.power_loss(power_loss_mode::drop_unsynced));
  EXPECT_EQ(written(dir_.file(wal(0))), 128u);
  EXPECT_EQ(frames_in(dir_.file(wal(0))).size(), 2u);
}

TEST_F(node_log_test, overlapping_sync_rounds_acknowledge_only_what_is_on_disk) {
  // Rounds from several threads fdatasync concurrently; whatever any of them
  // reports durable must survive a power loss.
  std::uint64_t acknowledged = 0;
  {
    auto log = open(with_mode(fsync_mode::always));
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> highest{0};
    std::vector<std::thread> syncers;
    for (int t = 0; t < 3; ++t) {
      syncers.emplace_back([&] {
        while (!stop.load()) {
          auto d = log->sync();
          ASSERT_TRUE(d.ok()) << d.err().message;
          node_log::raise(highest, d->value());
        }
      });
    }
    for (int i = 0; i < 2000; ++i) append(*log, 0, static_cast<std::uint64_t>(i) * k_frame);
    // Let the sync threads acknowledge everything (deadline, not a sleep).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (highest.load() < 2000 * k_frame && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    stop = true;
    for (auto& t : syncers) t.join();
    acknowledged = highest.load();
    append(*log, 0, 2000 * k_frame);  // never synced
  }
  ASSERT_EQ(acknowledged, 2000 * k_frame);
  ASSERT_FALSE(fs_.power_loss(power_loss_mode::drop_unsynced));
  EXPECT_GE(written(dir_.file(wal(0))), acknowledged);
  EXPECT_EQ(frames_in(dir_.file(wal(0))).size() * k_frame, written(dir_.file(wal(0))));
}

TEST_F(node_log_test, fsync_none_acknowledges_written_bytes_that_a_power_loss_drops) {
  {
    auto log = open(with_mode(fsync_mode::none));
    const auto end = append(*log, 0, 0);
    ASSERT_TRUE(log->sync().ok());
    EXPECT_EQ(log->durable_position(), end) << "acknowledged once written";
    EXPECT_EQ(written(dir_.file(wal(0))), 64u);
  }
  ASSERT_FALSE(fs_.power_loss(power_loss_mode::drop_unsynced));
  EXPECT_EQ(written(dir_.file(wal(0))), 0u) << "never fdatasynced";
}

TEST_F(node_log_test, fsync_always_writes_and_syncs_every_round) {
  auto log = open(with_mode(fsync_mode::always));
  append(*log, 0, 0);
  append(*log, 1, 0);
  EXPECT_EQ(operations_of_one_round(*log), 2u) << "one write and one fdatasync for both frames";
  append(*log, 0, 64);
  EXPECT_EQ(operations_of_one_round(*log), 2u);
  EXPECT_EQ(operations_of_one_round(*log), 0u) << "an empty round touches nothing";
}

TEST_F(node_log_test, fsync_none_writes_without_syncing) {
  auto log = open(with_mode(fsync_mode::none));
  for (int round = 0; round < 3; ++round) {
    append(*log, 0, round * k_frame);
    EXPECT_EQ(operations_of_one_round(*log), 1u) << "round " << round;
  }
}

TEST_F(node_log_test, fsync_interval_syncs_only_once_the_interval_has_passed) {
  {
    // An hour has not passed since open: write, no fdatasync.
    auto log = open(with_mode(fsync_mode::interval, std::chrono::hours{1}));
    append(*log, 0, 0);
    EXPECT_EQ(operations_of_one_round(*log), 1u);
    append(*log, 0, 64);
    EXPECT_EQ(operations_of_one_round(*log), 1u);
  }
  temp_dir other;
  auto log = node_log::open(fs_, other.path(), with_mode(fsync_mode::interval, std::chrono::milliseconds{0}),
                            {}, node_log_position{0}, 1);
  ASSERT_TRUE(log.ok());
  // A zero interval has always passed: every round syncs.
  append(**log, 0, 0);
  EXPECT_EQ(operations_of_one_round(**log), 2u);
  append(**log, 0, 64);
  EXPECT_EQ(operations_of_one_round(**log), 2u);
}

TEST_F(node_log_test, interval_fsync_after_a_roll_makes_the_new_segment_survive_a_power_loss) {
  using namespace std::chrono_literals;
  constexpr auto k_interval = 100ms;
  node_log_options options = with_mode(fsync_mode::interval, k_interval);
  options.segment_bytes = 128;
  {
    auto log = open(options);
    append(*log, 0, 0);
    append(*log, 0, 64);
    ASSERT_TRUE(log->sync().ok());  // fills 0.wal
    append(*log, 0, 128);
    ASSERT_TRUE(log->sync().ok());  // rolls to 128.wal, usually without an fdatasync
    ASSERT_EQ(log->segments().size(), 2u);
    // Let the interval pass (a poll with a deadline, not a sleep: the
    // interval is what is under test), so that the next round fdatasyncs.
    const auto due = std::chrono::steady_clock::now() + k_interval;
    while (std::chrono::steady_clock::now() < due) std::this_thread::yield();
    append(*log, 0, 192);
    const auto before = fs_.mutating_operations();
    ASSERT_TRUE(log->sync().ok());
    ASSERT_GE(fs_.mutating_operations() - before, 2u) << "this round must fdatasync";
  }
  ASSERT_FALSE(fs_.power_loss(power_loss_mode::drop_unsynced));
  // Everything before the interval fdatasync is durable, including the name
  // of the segment it went into.
  ASSERT_TRUE(posix_file_system().exists(dir_.file(wal(128))));
  EXPECT_EQ(written(dir_.file(wal(128))), 128u);
  EXPECT_EQ(frames_in(dir_.file(wal(128))).size(), 2u);
}

TEST_F(node_log_test, failed_fsync_is_sticky) {
  auto log = open(with_mode(fsync_mode::always));
  append(*log, 0, 0);
  ASSERT_TRUE(log->sync().ok());
  const auto durable = log->durable_position();
  const auto unacknowledged = append(*log, 0, 64);

  fs_.fail_syncs(std::errc::io_error);
  auto failed = log->sync();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.err().code, errc::io_error);
  EXPECT_NE(failed.err().message.find("fdatasync"), std::string::npos) << failed.err().message;
  EXPECT_NE(failed.err().message.find(dir_.file(wal(0))), std::string::npos)
      << failed.err().message;
  EXPECT_EQ(log->durable_position(), durable) << "the failed round acknowledges nothing";
  EXPECT_LT(log->durable_position(), unacknowledged);

  // The disk is fine again, but the log must not retry and pretend.
  fs_.clear_failures();
  auto appended = log->append(make_frame(0, 128));
  ASSERT_FALSE(appended.ok());
  EXPECT_EQ(appended.err().code, errc::io_error);
  auto again = log->sync();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.err().code, errc::io_error);
  EXPECT_EQ(log->durable_position(), durable);
  ASSERT_TRUE(log->failure().has_value());
  EXPECT_EQ(log->failure()->code, errc::io_error);
  EXPECT_EQ(log->failure()->message, failed.err().message) << "the first failure is kept";
}

TEST_F(node_log_test, failed_write_with_no_space_is_sticky) {
  auto log = open(with_mode(fsync_mode::always));
  append(*log, 0, 0);
  fs_.fail_writes(std::errc::no_space_on_device);
  auto failed = log->sync();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.err().code, errc::io_error);
  EXPECT_NE(failed.err().message.find(std::make_error_code(std::errc::no_space_on_device).message()),
            std::string::npos)
      << failed.err().message;
  EXPECT_EQ(log->durable_position(), node_log_position{0});

  fs_.clear_failures();
  auto appended = log->append(make_frame(0, 64));
  ASSERT_FALSE(appended.ok());
  EXPECT_EQ(appended.err().code, errc::io_error);
  ASSERT_FALSE(log->sync().ok());
  EXPECT_EQ(log->durable_position(), node_log_position{0});
}

TEST_F(node_log_test, failed_write_under_fsync_none_is_sticky_too) {
  auto log = open(with_mode(fsync_mode::none));
  append(*log, 0, 0);
  fs_.fail_writes(std::errc::io_error);
  ASSERT_FALSE(log->sync().ok());
  fs_.clear_failures();
  auto appended = log->append(make_frame(0, 64));
  ASSERT_FALSE(appended.ok());
  EXPECT_EQ(appended.err().code, errc::io_error);
}

TEST_F(node_log_test, sync_covers_every_append_made_before_it_from_several_threads) {
  auto log = open(with_mode(fsync_mode::always), {}, node_log_position{0}, 4);
  constexpr int k_threads = 4;
  constexpr int k_per_thread = 400;

  std::atomic<int> appenders_left{k_threads};
  std::atomic<int> violations{0};
  std::vector<std::vector<node_log_position>> positions(k_threads);

  std::thread syncer([&] {
    std::uint64_t last = 0;
    while (appenders_left.load() > 0) {
      auto d = log->sync();
      if (!d.ok() || d->value() < last) ++violations;
      if (d.ok()) last = d->value();
    }
  });
  std::vector<std::thread> appenders;
  for (int t = 0; t < k_threads; ++t) {
    appenders.emplace_back([&, t] {
      for (int i = 0; i < k_per_thread; ++i) {
        auto p = log->append(make_frame(static_cast<std::uint32_t>(t), i * k_frame));
        if (!p.ok()) {
          ++violations;
          continue;
        }
        positions[t].push_back(*p);
        // Every tenth append waits for a round of its own: the round that
        // returns must cover it, whoever else is syncing.
        if (i % 10 == 9) {
          auto d = log->sync();
          if (!d.ok() || *d < *p || log->durable_position() < *p) ++violations;
        }
      }
      --appenders_left;
    });
  }
  for (auto& a : appenders) a.join();
  syncer.join();
  EXPECT_EQ(violations.load(), 0);

  auto final_sync = log->sync();
  ASSERT_TRUE(final_sync.ok());
  const std::uint64_t total = k_threads * k_per_thread * k_frame;
  EXPECT_EQ(final_sync->value(), total);
  EXPECT_EQ(log->durable_position().value(), total);

  std::vector<std::uint64_t> all;
  for (int t = 0; t < k_threads; ++t) {
    ASSERT_EQ(positions[t].size(), static_cast<std::size_t>(k_per_thread));
    EXPECT_TRUE(std::is_sorted(positions[t].begin(), positions[t].end())) << "thread " << t;
    for (auto p : positions[t]) {
      EXPECT_LE(p, log->durable_position());
      all.push_back(p.value());
    }
  }
  // Positions are distinct frame ends: 64, 128, ... total.
  std::sort(all.begin(), all.end());
  for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], (i + 1) * k_frame);

  // On disk: every frame once, each thread's frames in its own order.
  const auto headers = frames_in(dir_.file(wal(0)));
  ASSERT_EQ(headers.size(), static_cast<std::size_t>(k_threads * k_per_thread));
  std::vector<std::uint64_t> next(k_threads, 0);
  for (const auto& h : headers) {
    const auto t = h.partition.value();
    ASSERT_LT(t, static_cast<std::uint32_t>(k_threads));
    EXPECT_EQ(h.position.value(), next[t]) << "thread " << t;
    next[t] = h.position.value() + k_frame;
  }
}

TEST_F(node_log_test, segments_roll_at_segment_bytes_and_are_named_by_first_position) {
  node_log_options options;
  options.segment_bytes = 256;
  auto log = open(options);
  for (int i = 0; i < 10; ++i) {
    append(*log, 0, i * k_frame);
    ASSERT_TRUE(log->sync().ok());
  }
  const auto segments = log->segments();
  ASSERT_EQ(segments.size(), 3u);
  EXPECT_EQ(segments[0].base, node_log_position{0});
  EXPECT_EQ(segments[0].bytes, 256u);
  EXPECT_EQ(segments[1].base, node_log_position{256});
  EXPECT_EQ(segments[1].bytes, 256u);
  EXPECT_EQ(segments[2].base, node_log_position{512});
  EXPECT_EQ(segments[2].bytes, 128u);
  EXPECT_EQ(wal_files_in(dir_.path()), (std::vector<std::string>{
                                       "00000000000000000000.wal",
                                       "00000000000000000256.wal",
                                       "00000000000000000512.wal",
                                   }));
  EXPECT_EQ(written(dir_.file(wal(0))), 256u);
  EXPECT_EQ(written(dir_.file(wal(256))), 256u);
  EXPECT_EQ(written(dir_.file(wal(512))), 128u);
  // Each file holds whole frames.
  EXPECT_EQ(frames_in(dir_.file(wal(256))).front().position, lsn{256});
}

TEST_F(node_log_test, one_round_never_splits_across_segments) {
  node_log_options options;
  options.segment_bytes = 256;
  auto log = open(options);
  for (int i = 0; i < 6; ++i) append(*log, 0, i * k_frame);
  ASSERT_TRUE(log->sync().ok());
  append(*log, 0, 6 * k_frame);
  ASSERT_TRUE(log->sync().ok());
  const auto segments = log->segments();
  ASSERT_EQ(segments.size(), 2u);
  EXPECT_EQ(segments[0].bytes, 384u) << "the limit is exceeded by one round";
  EXPECT_EQ(segments[1].base, node_log_position{384});
  EXPECT_EQ(frames_in(dir_.file(wal(0))).size(), 6u);
  EXPECT_EQ(frames_in(dir_.file(wal(384))).size(), 1u);
}

TEST_F(node_log_test, release_deletes_only_segments_every_partition_released) {
  node_log_options options;
  options.segment_bytes = 256;
  auto log = open(options, {}, node_log_position{0}, /*partitions=*/2);
  for (int i = 0; i < 10; ++i) {
    append(*log, i % 2, i * k_frame);
    ASSERT_TRUE(log->sync().ok());
  }
  ASSERT_EQ(wal_files_in(dir_.path()).size(), 3u);  // [0,256) [256,512) [512,640)

  // Partition 0 is past everything, partition 1 still needs all of it.
  ASSERT_TRUE(log->release(partition_id{0}, node_log_position{640}).ok());
  EXPECT_EQ(wal_files_in(dir_.path()).size(), 3u);

  // Partition 1 needs records from 300: only [0,256) can go.
  ASSERT_TRUE(log->release(partition_id{1}, node_log_position{300}).ok());
  EXPECT_EQ(wal_files_in(dir_.path()), (std::vector<std::string>{
                                       "00000000000000000256.wal",
                                       "00000000000000000512.wal",
                                   }));
  ASSERT_EQ(log->segments().size(), 2u);
  EXPECT_EQ(log->segments()[0].base, node_log_position{256});

  // Releasing less than before changes nothing.
  ASSERT_TRUE(log->release(partition_id{1}, node_log_position{0}).ok());
  EXPECT_EQ(wal_files_in(dir_.path()).size(), 2u);

  // A segment that ends exactly at the floor can go; the active one never.
  ASSERT_TRUE(log->release(partition_id{1}, node_log_position{10000}).ok());
  ASSERT_TRUE(log->release(partition_id{0}, node_log_position{10000}).ok());
  EXPECT_EQ(wal_files_in(dir_.path()), std::vector<std::string>{"00000000000000000512.wal"});
  ASSERT_EQ(log->segments().size(), 1u);

  // And appending carries on in it.
  const auto p = append(*log, 1, 640);
  ASSERT_TRUE(log->sync().ok());
  EXPECT_EQ(p, node_log_position{704});
  EXPECT_EQ(written(dir_.file(wal(512))), 192u);
}

TEST_F(node_log_test, released_segments_are_reused_without_zero_filling) {
  node_log_options options;
  options.segment_bytes = 256;
  options.prepare_in_background = false;  // the same file operations every run
  auto log = open(options, {}, node_log_position{0}, /*partitions=*/1);
  for (int i = 0; i < 10; ++i) {
    append(*log, 0, i * k_frame);
    ASSERT_TRUE(log->sync().ok());
  }
  // [0,256) [256,512) [512,640); the next segment is zero-filled already.
  ASSERT_TRUE(log->release(partition_id{0}, node_log_position{512}).ok());
  EXPECT_EQ(wal_files_in(dir_.path()), std::vector<std::string>{wal(512)});
  EXPECT_EQ(log->spares(), (std::vector<std::string>{dir_.file("spare-" + wal(0) + ".tmp"),
                                                     dir_.file("spare-" + wal(256) + ".tmp")}));

  // Rolls to the zero-filled segment at 768, then to the first spare at 1024.
  for (int i = 10; i < 17; ++i) {
    append(*log, 0, i * k_frame);
    ASSERT_TRUE(log->sync().ok());
  }
  EXPECT_EQ(wal_files_in(dir_.path()), (std::vector<std::string>{wal(512), wal(768), wal(1024)}));
  EXPECT_EQ(log->spares(), std::vector<std::string>{dir_.file("spare-" + wal(256) + ".tmp")});
  EXPECT_FALSE(fs_.exists(dir_.file("spare-" + wal(0) + ".tmp")));

  // 1024.wal is the old 0.wal (four frames and the end mark of its last
  // round): one new frame, its end mark over the old second frame's header,
  // then the rest of that frame.
  std::vector<std::byte> bytes;
  ASSERT_FALSE(annal::testing::read_all(dir_.file(wal(1024)), bytes));
  ASSERT_EQ(bytes.size(), 4 * k_frame + lf::k_end_mark_bytes);
  const auto first = lf::parse_frame(bytes, node_log::crc_salt(node_log_position{1024}));
  ASSERT_EQ(first.status, lf::frame_status::ok);
  EXPECT_EQ(first.header.position, lsn{16 * k_frame});
  const auto rest = std::span<const std::byte>(bytes).subspan(k_frame);
  EXPECT_EQ(lf::parse_frame(rest, node_log::crc_salt(node_log_position{1024})).status,
            lf::frame_status::zero);
  const auto old_payload = rest.subspan(lf::k_end_mark_bytes, k_frame - lf::k_end_mark_bytes);
  EXPECT_NE(std::count(old_payload.begin(), old_payload.end(), std::byte{0}),
            static_cast<std::ptrdiff_t>(old_payload.size()))
      << "the spare was not zero-filled";

  // 1024.wal half full: the next segment is prepared from the other spare,
  // which starts with an end mark until a round writes to it.
  append(*log, 0, 17 * k_frame);
  ASSERT_TRUE(log->sync().ok());
  EXPECT_TRUE(log->spares().empty());
  std::vector<std::byte> next;
  ASSERT_FALSE(annal::testing::read_all(
      dir_.file(std::string(annal::engine::k_next_node_log_segment)), next));
  ASSERT_EQ(next.size(), 4 * k_frame + lf::k_end_mark_bytes) << "the old 256.wal";
  EXPECT_EQ(lf::parse_frame(next).status, lf::frame_status::zero);
}

TEST_F(node_log_test, format_1_deletes_released_segments_and_writes_plain_frames) {
  node_log_options options;
  options.segment_bytes = 256;
  options.salt_frames = false;
  auto log = open(options, {}, node_log_position{0}, /*partitions=*/1);
  for (int i = 0; i < 10; ++i) {
    append(*log, 0, i * k_frame);
    ASSERT_TRUE(log->sync().ok());
  }
  ASSERT_TRUE(log->release(partition_id{0}, node_log_position{512}).ok());
  EXPECT_TRUE(log->spares().empty());
  auto names = files_in(dir_.path());
  std::erase(names, "next.wal.tmp");
  EXPECT_EQ(names, std::vector<std::string>{wal(512)});
  std::vector<std::byte> bytes;
  ASSERT_FALSE(annal::testing::read_all(dir_.file(wal(512)), bytes));
  EXPECT_EQ(lf::parse_frame(bytes).status, lf::frame_status::ok);
}

TEST_F(node_log_test, spares_survive_a_reopen) {
  node_log_options options;
  options.segment_bytes = 256;
  options.prepare_in_background = false;
  std::vector<node_log::segment> segments;
  {
    auto log = open(options, {}, node_log_position{0}, /*partitions=*/1);
    for (int i = 0; i < 10; ++i) {
      append(*log, 0, i * k_frame);
      ASSERT_TRUE(log->sync().ok());
    }
    ASSERT_TRUE(log->release(partition_id{0}, node_log_position{512}).ok());
    segments = log->segments();
  }
  auto log = open(options, segments, node_log_position{640}, /*partitions=*/1);
  EXPECT_EQ(log->spares(), (std::vector<std::string>{dir_.file("spare-" + wal(0) + ".tmp"),
                                                     dir_.file("spare-" + wal(256) + ".tmp")}));
  EXPECT_FALSE(fs_.exists(dir_.file("next.wal.tmp"))) << "an unfinished preparation is dropped";
}

TEST_F(node_log_test, reopen_continues_at_the_end_of_the_last_segment) {
  std::vector<node_log::segment> segments;
  node_log_options options;
  options.segment_bytes = 256;
  {
    auto log = open(options);
    for (int i = 0; i < 6; ++i) {
      append(*log, 0, i * k_frame);
      ASSERT_TRUE(log->sync().ok());
    }
    segments = log->segments();
  }
  ASSERT_EQ(segments.size(), 2u);
  auto log = open(options, segments, node_log_position{384});
  EXPECT_EQ(log->durable_position(), node_log_position{384});
  EXPECT_EQ(log->appended_position(), node_log_position{384});
  EXPECT_EQ(append(*log, 0, 384), node_log_position{448});
  ASSERT_TRUE(log->sync().ok());
  EXPECT_EQ(written(dir_.file(wal(256))), 192u);
  EXPECT_EQ(frames_in(dir_.file(wal(256))).back().position, lsn{384});
  EXPECT_EQ(wal_files_in(dir_.path()).size(), 2u);
}

TEST_F(node_log_test, reopen_past_the_last_segment_starts_a_new_one_at_end) {
  std::vector<node_log::segment> segments;
  {
    auto log = open();
    append(*log, 0, 0);
    ASSERT_TRUE(log->sync().ok());
    segments = log->segments();
  }
  // Recovery may put the end past what the files hold (a partition's
  // checkpoint already covered a later position).
  auto log = open({}, segments, node_log_position{1024});
  ASSERT_EQ(log->segments().size(), 2u);
  EXPECT_EQ(log->segments()[1].base, node_log_position{1024});
  EXPECT_EQ(append(*log, 0, 64), node_log_position{1088});
  ASSERT_TRUE(log->sync().ok());
  EXPECT_EQ(written(dir_.file(wal(0))), 64u);
  EXPECT_EQ(written(dir_.file(wal(1024))), 64u);
}

// ------------------------------------------------ preallocated segments

bool all_zero_from(const std::string& path, std::uint64_t offset) {
  std::vector<std::byte> bytes;
  EXPECT_FALSE(annal::testing::read_all(path, bytes));
  return offset <= bytes.size() &&
         std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(offset), bytes.end(),
                     [](std::byte b) { return b == std::byte{0}; });
}

TEST_F(node_log_test, segments_are_created_full_size_and_zero_filled) {
  node_log_options options;
  options.segment_bytes = 4096;
  auto log = open(options);
  EXPECT_EQ(annal::testing::size_on_disk(dir_.file(wal(0))), 4096u);
  EXPECT_TRUE(all_zero_from(dir_.file(wal(0)), 0));
  append(*log, 0, 0);
  ASSERT_TRUE(log->sync().ok());
  EXPECT_EQ(annal::testing::size_on_disk(dir_.file(wal(0))), 4096u) << "a round writes in place";
  EXPECT_EQ(written(dir_.file(wal(0))), 64u);
  EXPECT_TRUE(all_zero_from(dir_.file(wal(0)), 64));
}

// A round's fdatasync never waits behind a whole segment of zeros on the
// device: preparing a segment syncs its zeros 1 MiB at a time.
TEST_F(node_log_test, zero_fill_syncs_a_new_segment_a_chunk_at_a_time) {
  node_log_options options;
  options.segment_bytes = (3u << 20) + 4096;
  options.prepare_in_background = false;
  auto log = open(options);
  EXPECT_EQ(annal::testing::size_on_disk(dir_.file(wal(0))), options.segment_bytes);
  EXPECT_TRUE(all_zero_from(dir_.file(wal(0)), 0));
  EXPECT_GT(fs_.largest_sync_growth(), 0u);
  EXPECT_LE(fs_.largest_sync_growth(), 1u << 20);
}

TEST_F(node_log_test, leftover_temp_segments_are_removed_on_open) {
  ASSERT_FALSE(annal::testing::append_bytes(dir_.file("next.wal.tmp"), std::vector<std::byte>(100)));
  ASSERT_FALSE(annal::testing::append_bytes(dir_.file(wal(64) + ".tmp"), std::vector<std::byte>(8)));
  auto log = open();
  EXPECT_EQ(files_in(dir_.path()), std::vector<std::string>{wal(0)});
}

// Rolls through many segments under each way of preparing the next one; the
// node log reads back whole and in order, from files that keep their
// preallocated size unless the round that crossed the limit ran past it.
TEST_F(node_log_test, rollover_across_preallocated_segments_keeps_every_frame_in_order) {
  for (const bool background : {true, false}) {
    SCOPED_TRACE(background ? "prepared in the background" : "prepared by the sync round");
    temp_dir dir;
    node_log_options options;
    options.segment_bytes = 512;  // 8 frames
    options.prepare_in_background = background;
    std::vector<node_log::segment> segments;
    std::uint64_t position = 0;
    {
      auto log = node_log::open(fs_, dir.path(), options, {}, node_log_position{0}, 1);
      ASSERT_TRUE(log.ok()) << log.err().message;
      for (int round = 0; round < 40; ++round) {
        const int frames = 1 + round % 3;
        for (int f = 0; f < frames; ++f) {
          ASSERT_TRUE((*log)->append(make_frame(0, position)).ok());
          position += k_frame;
        }
        auto d = (*log)->sync();
        ASSERT_TRUE(d.ok()) << d.err().message;
        ASSERT_EQ(d->value(), position);
      }
      segments = (*log)->segments();
    }
    ASSERT_GE(segments.size(), 5u);
    std::uint64_t expected = 0;
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const std::string path = dir.file(wal(segments[i].base.value()));
      ASSERT_EQ(segments[i].base.value(), expected);
      const auto headers = frames_in(path);
      ASSERT_EQ(headers.size() * k_frame, segments[i].bytes) << path;
      for (const auto& h : headers) {
        EXPECT_EQ(h.position.value(), expected) << path;
        expected += k_frame;
      }
      // Preallocated, or grown by the last round and its end mark.
      EXPECT_EQ(annal::testing::size_on_disk(path),
                std::max<std::uint64_t>(512, segments[i].bytes + lf::k_end_mark_bytes))
          << path;
    }
    EXPECT_EQ(expected, position);
    // Reopening continues in the last segment, over its zeros.
    auto log = node_log::open(fs_, dir.path(), options, segments, node_log_position{position}, 1);
    ASSERT_TRUE(log.ok()) << log.err().message;
    ASSERT_TRUE((*log)->append(make_frame(0, position)).ok());
    ASSERT_TRUE((*log)->sync().ok());
    const auto last = (*log)->segments().back();
    EXPECT_EQ(frames_in(dir.file(wal(last.base.value()))).back().position.value(), position);
  }
}

TEST_F(node_log_test, segments_are_not_preallocated_without_fdatasyncs) {
  node_log_options options = with_mode(fsync_mode::none);
  options.segment_bytes = 4096;
  options.prepare_in_background = false;
  auto log = open(options);
  EXPECT_EQ(annal::testing::size_on_disk(dir_.file(wal(0))), 0u);
  std::uint64_t position = 0;
  for (; position < 4096 + 64; position += 64) append(*log, 0, position);
  ASSERT_TRUE(log->sync().ok());
  append(*log, 0, position);
  ASSERT_TRUE(log->sync().ok());  // rolls: the first segment is full
  // Each file ends with the end mark of its last round.
  EXPECT_EQ(annal::testing::size_on_disk(dir_.file(wal(0))), 4096u + 64 + lf::k_end_mark_bytes);
  EXPECT_EQ(written(dir_.file(wal(0))), 4096u + 64);
  EXPECT_EQ(annal::testing::size_on_disk(dir_.file(wal(4096 + 64))), 64u + lf::k_end_mark_bytes);
}

TEST_F(node_log_test, unsynced_rounds_over_zeros_revert_to_zeros_on_power_loss) {
  // Preallocated (fdatasyncs are due, just not yet), and no round fdatasyncs.
  node_log_options options = with_mode(fsync_mode::interval, std::chrono::hours{1});
  options.segment_bytes = 4096;
  {
    auto log = open(options);
    append(*log, 0, 0);
    ASSERT_TRUE(log->sync_to_disk().ok());
    append(*log, 0, 64);
    append(*log, 0, 128);
    ASSERT_TRUE(log->sync().ok());  // written, never fdatasynced
    EXPECT_EQ(written(dir_.file(wal(0))), 192u);
  }
  ASSERT_FALSE(fs_.power_loss(power_loss_mode::drop_unsynced));
  EXPECT_EQ(annal::testing::size_on_disk(dir_.file(wal(0))), 4096u);
  EXPECT_EQ(written(dir_.file(wal(0))), 64u);
  EXPECT_TRUE(all_zero_from(dir_.file(wal(0)), 64));
}

}  // namespace
