#include "engine/verify.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "engine/log_format.hpp"
#include "engine/store.hpp"
#include "tests/support/byte_damage.hpp"
#include "tests/support/event_factory.hpp"
#include "tests/support/frame_salt.hpp"
#include "tests/support/manual_clock.hpp"
#include "tests/support/temp_dir.hpp"

using annal::testing::frame_salt_of;

namespace {

using annal::partition_id;
using annal::engine::expected_version;
using annal::engine::posix_file_system;
using annal::engine::store;
using annal::engine::store_options;
using annal::engine::verify_problem;
using annal::engine::verify_report;
using annal::engine::verify_store;
using annal::testing::make_event;
using annal::testing::temp_dir;
using severity = verify_problem::severity;
namespace lf = annal::engine::log_format;

constexpr std::uint32_t k_partitions = 2;
constexpr int k_appends = 60;

struct frame_at {
  std::uint64_t offset;
  std::uint64_t size;
  std::uint64_t lsn;  // header position
};

// The frames of a segment file, in order (stops at the first bad one).
std::vector<frame_at> frames_in(const std::string& path) {
  std::vector<std::byte> bytes;
  EXPECT_FALSE(annal::testing::read_all(path, bytes)) << path;
  std::vector<frame_at> frames;
  std::uint64_t at = 0;
  while (at < bytes.size()) {
    const auto parsed =
        lf::parse_frame(std::span<const std::byte>(bytes).subspan(at), frame_salt_of(path));
    if (parsed.status != lf::frame_status::ok) break;
    frames.push_back({at, parsed.header.frame_size(), parsed.header.position.value()});
    at += parsed.header.frame_size();
  }
  return frames;
}

std::vector<std::string> files_with_suffix(const std::string& dir, std::string_view suffix) {
  std::vector<std::string> names;
  EXPECT_FALSE(posix_file_system().list_files(dir, names)) << dir;
  std::vector<std::string> paths;
  for (const auto& n : names) {
    if (n.ends_with(suffix)) paths.push_back(dir + "/" + n);
  }
  return paths;
}

std::uint64_t file_size(const std::string& path) {
  std::uint64_t size = 0;
  EXPECT_FALSE(posix_file_system().file_size(path, size)) << path;
  return size;
}

std::string describe(const verify_report& report) {
  std::string out;
  for (const auto& p : report.problems) {
    out += fmt::format("\n  {} {} @{}: {}", p.level == severity::error ? "error" : "warning",
                       p.file, p.offset, p.message);
  }
  return out;
}

class verify_test : public ::testing::Test {
 protected:
  std::string root() const { return dir_.file("store"); }
  std::string node_log_dir() const { return root() + "/node-log"; }
  std::string partition_dir(std::uint32_t p) const {
    return fmt::format("{}/partitions/{:05}", root(), p);
  }

  store_options options() {
    store_options o;
    o.directory = root();
    o.partition_count = k_partitions;
    o.clock = &clock_;
    o.node_log.segment_bytes = 4096;
    o.partition.log.segment_bytes = 2048;
    o.partition.log.write_buffer_bytes = 1;  // every record reaches its file at once
    return o;
  }

  std::unique_ptr<store> open_store() {
    auto s = store::open(options());
    EXPECT_TRUE(s.ok()) << s.err().message;
    return s.ok() ? std::move(*s) : nullptr;
  }

  // Appends `count` one-event batches to streams s-0 .. s-5 (both partitions)
  // and makes them durable.
  void append(store& s, int count) {
    for (int i = 0; i < count; ++i, ++appended_) {
      const std::string stream = fmt::format("s-{}", appended_ % 6);
      auto p = s.get(s.partition_for(stream));
      ASSERT_TRUE(p.ok()) << p.err().message;
      const std::vector<annal::engine::event_input> events{
          make_event(static_cast<std::uint64_t>(appended_), "test-event",
                     fmt::format("{{\"n\":{},\"pad\":\"{:0>120}\"}}", appended_, appended_))};
      auto r = (*p)->append(stream, expected_version::any(), events);
      ASSERT_TRUE(r.ok()) << r.err().message;
      if (i % 5 == 4) {
        ASSERT_TRUE(s.sync().ok());
      }
    }
    ASSERT_TRUE(s.sync().ok());
  }

  // A store with k_appends records, cleanly closed.
  void build() {
    auto s = open_store();
    ASSERT_NE(s, nullptr);
    append(*s, k_appends);
    ASSERT_TRUE(s->close().ok());
  }

  verify_report verify() { return verify_store(posix_file_system(), root()); }

  // The partition whose segment files include at least `n`.
  std::uint32_t partition_with_segments(std::size_t n) {
    for (std::uint32_t p = 0; p < k_partitions; ++p) {
      if (files_with_suffix(partition_dir(p), ".seg").size() >= n) return p;
    }
    ADD_FAILURE() << "no partition has " << n << " segments";
    return 0;
  }

  temp_dir dir_;
  annal::testing::manual_clock clock_;
  int appended_ = 0;
};

TEST_F(verify_test, clean_store_reports_ok_with_its_counts) {
  build();
  const auto report = verify();
  EXPECT_TRUE(report.ok());
  EXPECT_TRUE(report.problems.empty()) << describe(report);
  EXPECT_EQ(report.partitions, k_partitions);
  EXPECT_EQ(report.records, static_cast<std::uint64_t>(k_appends));
  EXPECT_EQ(report.events, static_cast<std::uint64_t>(k_appends));
  EXPECT_EQ(report.node_log_records, static_cast<std::uint64_t>(k_appends));
  std::size_t segments = 0;
  for (std::uint32_t p = 0; p < k_partitions; ++p) {
    segments += files_with_suffix(partition_dir(p), ".seg").size();
  }
  EXPECT_EQ(report.segments, segments);
  // The scenario needs several segments everywhere to mean anything.
  ASSERT_GE(files_with_suffix(node_log_dir(), ".wal").size(), 3u);
  ASSERT_GE(files_with_suffix(partition_dir(partition_with_segments(3)), ".seg").size(), 3u);
}

TEST_F(verify_test, verify_changes_no_file) {
  build();
  // Damage that open would repair (a torn node-log tail): verify only reports it.
  const std::string tail = files_with_suffix(node_log_dir(), ".wal").back();
  ASSERT_FALSE(annal::testing::shrink_file(tail, file_size(tail) - 3));
  auto snapshot = [&] {
    std::vector<std::pair<std::string, std::vector<std::byte>>> files;
    for (const auto& dir : {node_log_dir(), partition_dir(0), partition_dir(1)}) {
      for (const auto& f : files_with_suffix(dir, "")) {
        std::vector<std::byte> bytes;
        EXPECT_FALSE(annal::testing::read_all(f, bytes)) << f;
        files.emplace_back(f, std::move(bytes));
      }
    }
    return files;
  };
  const auto before = snapshot();
  const auto report = verify();
  ASSERT_EQ(report.problems.size(), 1u) << describe(report);
  EXPECT_EQ(report.problems[0].level, severity::warning);
  EXPECT_TRUE(snapshot() == before) << "verify changed a file";
}

TEST_F(verify_test, bit_flip_mid_last_partition_segment_is_an_error_naming_file_and_offset) {
  build();
  const std::uint32_t p = partition_with_segments(1);
  const std::string path = files_with_suffix(partition_dir(p), ".seg").back();
  const auto frames = frames_in(path);
  ASSERT_GE(frames.size(), 3u);
  const auto& victim = frames[frames.size() / 2];
  ASSERT_FALSE(annal::testing::flip_bit(path, victim.offset + lf::k_header_size + 20, 4));

  const auto report = verify();
  EXPECT_FALSE(report.ok());
  ASSERT_EQ(report.problems.size(), 1u) << describe(report);
  const auto& problem = report.problems[0];
  EXPECT_EQ(problem.level, severity::error);
  EXPECT_EQ(problem.file, path);
  EXPECT_EQ(problem.offset, victim.offset);
  EXPECT_EQ(problem.message, fmt::format("checksum mismatch at lsn {}", victim.lsn));
}

TEST_F(verify_test, bit_flip_mid_first_partition_segment_reports_that_damage_only) {
  build();
  const std::uint32_t p = partition_with_segments(3);
  const std::string path = files_with_suffix(partition_dir(p), ".seg").front();
  const auto frames = frames_in(path);
  ASSERT_GE(frames.size(), 3u);
  const auto& victim = frames[frames.size() / 2];
  ASSERT_FALSE(annal::testing::flip_bit(path, victim.offset + lf::k_header_size + 20, 4));

  const auto report = verify();
  EXPECT_FALSE(report.ok());
  ASSERT_EQ(report.problems.size(), 1u)
      << "the records skipped by the damage must not be reported again as version gaps"
      << describe(report);
  const auto& problem = report.problems[0];
  EXPECT_EQ(problem.level, severity::error);
  EXPECT_EQ(problem.file, path);
  EXPECT_EQ(problem.offset, victim.offset);
  EXPECT_EQ(problem.message, fmt::format("checksum mismatch at lsn {}", victim.lsn));
}

TEST_F(verify_test, bit_flip_mid_node_log_segment_is_an_error_naming_file_and_offset) {
  build();
  const auto segments = files_with_suffix(node_log_dir(), ".wal");
  ASSERT_GE(segments.size(), 3u);
  const std::string path = segments[1];
  const auto frames = frames_in(path);
  ASSERT_GE(frames.size(), 3u);
  const auto& victim = frames[frames.size() / 2];
  ASSERT_FALSE(annal::testing::flip_bit(path, victim.offset + lf::k_header_size + 8, 0));

  const auto report = verify();
  EXPECT_FALSE(report.ok());
  ASSERT_EQ(report.problems.size(), 1u) << describe(report);
  const auto& problem = report.problems[0];
  EXPECT_EQ(problem.level, severity::error);
  EXPECT_EQ(problem.file, path);
  EXPECT_EQ(problem.offset, victim.offset);
  EXPECT_EQ(problem.message, "checksum mismatch");
}

TEST_F(verify_test, bit_flip_mid_last_node_log_segment_is_an_error_not_a_torn_tail) {
  build();
  const std::string path = files_with_suffix(node_log_dir(), ".wal").back();
  const auto frames = frames_in(path);
  ASSERT_GE(frames.size(), 3u);
  const auto& victim = frames[1];  // valid records follow it
  ASSERT_FALSE(annal::testing::flip_bit(path, victim.offset + lf::k_header_size + 8, 0));

  const auto report = verify();
  EXPECT_FALSE(report.ok());
  ASSERT_EQ(report.problems.size(), 1u) << describe(report);
  EXPECT_EQ(report.problems[0].level, severity::error);
  EXPECT_EQ(report.problems[0].file, path);
  EXPECT_EQ(report.problems[0].offset, victim.offset);
  EXPECT_EQ(report.problems[0].message, "checksum mismatch");
}

TEST_F(verify_test, truncated_node_log_tail_is_a_warning) {
  build();
  const std::string path = files_with_suffix(node_log_dir(), ".wal").back();
  const auto frames = frames_in(path);
  ASSERT_FALSE(frames.empty());
  const auto& last = frames.back();
  // The last write's end mark follows the records.
  ASSERT_EQ(last.offset + last.size + lf::k_end_mark_bytes, file_size(path));
  ASSERT_FALSE(annal::testing::shrink_file(path, last.offset + last.size - 5));

  const auto report = verify();
  EXPECT_TRUE(report.ok()) << describe(report);
  ASSERT_EQ(report.problems.size(), 1u) << describe(report);
  const auto& problem = report.problems[0];
  EXPECT_EQ(problem.level, severity::warning);
  EXPECT_EQ(problem.file, path);
  EXPECT_EQ(problem.offset, last.offset);
  EXPECT_EQ(problem.message,
            fmt::format("records end here (incomplete record); the {} bytes after them are an "
                        "interrupted write or left from the file's earlier use, and are ignored "
                        "on open",
                        last.size - 5));
  EXPECT_EQ(report.node_log_records, static_cast<std::uint64_t>(k_appends - 1));
}

TEST_F(verify_test, zero_filled_node_log_tail_is_a_clean_end) {
  // Node-log segments are preallocated: zeros after the records are where
  // the next round will write, not a torn write.
  build();
  const std::string path = files_with_suffix(node_log_dir(), ".wal").back();
  ASSERT_FALSE(annal::testing::append_bytes(path, std::vector<std::byte>(4096)));

  const auto report = verify();
  EXPECT_TRUE(report.ok()) << describe(report);
  EXPECT_TRUE(report.problems.empty()) << describe(report);
  EXPECT_EQ(report.node_log_records, static_cast<std::uint64_t>(k_appends));
}

TEST_F(verify_test, truncated_tail_of_an_older_node_log_segment_is_an_error) {
  build();
  const auto segments = files_with_suffix(node_log_dir(), ".wal");
  ASSERT_GE(segments.size(), 2u);
  const std::string path = segments[0];
  const auto frames = frames_in(path);
  ASSERT_FALSE(frames.empty());
  ASSERT_FALSE(annal::testing::shrink_file(path, frames.back().offset + frames.back().size - 5));

  const auto report = verify();
  EXPECT_FALSE(report.ok());
  // The cut itself, and the next segment no longer starting where it ends.
  ASSERT_EQ(report.problems.size(), 2u) << describe(report);
  EXPECT_EQ(report.problems[0].level, severity::error);
  EXPECT_EQ(report.problems[0].file, path);
  EXPECT_EQ(report.problems[0].offset, frames.back().offset);
  EXPECT_EQ(report.problems[0].message, "incomplete record");
  EXPECT_EQ(report.problems[1].level, severity::error);
  EXPECT_EQ(report.problems[1].file, segments[1]);
  EXPECT_EQ(report.problems[1].offset, 0u);
}

TEST_F(verify_test, deleted_listed_segment_is_an_error) {
  build();
  const std::uint32_t p = partition_with_segments(3);
  const auto segments = files_with_suffix(partition_dir(p), ".seg");
  const std::string victim = segments[1];
  const std::string name = victim.substr(victim.size() - 24);
  const std::uint64_t base = std::stoull(name.substr(0, 20));
  ASSERT_FALSE(posix_file_system().remove_file(victim));

  const auto report = verify();
  EXPECT_FALSE(report.ok());
  ASSERT_GE(report.problems.size(), 1u) << describe(report);
  const auto& problem = report.problems[0];
  EXPECT_EQ(problem.level, severity::error);
  EXPECT_EQ(problem.file, partition_dir(p));
  EXPECT_EQ(problem.offset, base);
  EXPECT_EQ(problem.message,
            fmt::format("segment {} listed by the checkpoint is missing", base));
  EXPECT_EQ(report.problems.size(), 1u)
      << "the events of the missing segment must not be reported again as version gaps"
      << describe(report);
}

TEST_F(verify_test, segments_removed_by_retention_are_not_reported) {
  {
    auto s = open_store();
    ASSERT_NE(s, nullptr);
    const partition_id p = s->partition_for("s-0");
    // A stream without retention keeps the first segment; every s-* stream
    // keeps only its last event, so the segments between go.
    std::string keep;
    for (int i = 0; keep.empty(); ++i) {
      if (s->partition_for(fmt::format("keep-{}", i)) == p) keep = fmt::format("keep-{}", i);
    }
    auto partition = s->get(p);
    ASSERT_TRUE(partition.ok());
    const std::vector<annal::engine::event_input> first{make_event(1000, "kept")};
    ASSERT_TRUE((*partition)->append(keep, expected_version::any(), first).ok());
    for (int i = 0; i < 6; ++i) {
      const std::string stream = fmt::format("s-{}", i);
      auto owner = s->get(s->partition_for(stream));
      ASSERT_TRUE(owner.ok());
      ASSERT_TRUE((*owner)->set_metadata(stream, {.max_count = 1}).ok());
    }
    append(*s, k_appends);
    ASSERT_TRUE(s->close().ok());
    ASSERT_TRUE(s->close().ok());  // a second checkpoint deletes what the first kept
  }
  const std::uint32_t p = partition_with_segments(2);
  const auto segments = files_with_suffix(partition_dir(p), ".seg");
  ASSERT_EQ(segments.front().substr(segments.front().size() - 24), "00000000000000000000.seg");
  // The scenario: a gap after the first segment.
  const auto first_frames = frames_in(segments.front());
  const std::uint64_t first_end = first_frames.back().offset + first_frames.back().size;
  ASSERT_NE(segments[1].substr(segments[1].size() - 24),
            annal::engine::partition_log::segment_name(annal::lsn{first_end}));

  const auto report = verify();
  EXPECT_TRUE(report.ok()) << describe(report);
  EXPECT_TRUE(report.problems.empty()) << describe(report);
}

TEST_F(verify_test, torn_partition_tail_after_the_checkpoint_is_a_warning) {
  build();
  {
    // More records after the checkpoint: durable in the node log, written
    // (not synced) to the partition segments.
    auto s = open_store();
    ASSERT_NE(s, nullptr);
    append(*s, 10);
  }
  const std::uint32_t p = partition_with_segments(1);
  const std::string path = files_with_suffix(partition_dir(p), ".seg").back();
  const auto frames = frames_in(path);
  ASSERT_GE(frames.size(), 2u);
  const auto& last = frames.back();
  ASSERT_FALSE(annal::testing::shrink_file(path, last.offset + 10));

  const auto report = verify();
  EXPECT_TRUE(report.ok()) << describe(report);
  ASSERT_EQ(report.problems.size(), 1u) << describe(report);
  EXPECT_EQ(report.problems[0].level, severity::warning);
  EXPECT_EQ(report.problems[0].file, path);
  EXPECT_EQ(report.problems[0].offset, last.offset);
  EXPECT_EQ(report.problems[0].message,
            "torn tail of 10 bytes after the checkpoint (incomplete record); cut on open");
}

TEST_F(verify_test, partition_segment_cut_below_the_checkpoint_is_an_error) {
  build();
  const std::uint32_t p = partition_with_segments(1);
  const std::string path = files_with_suffix(partition_dir(p), ".seg").back();
  const auto frames = frames_in(path);
  ASSERT_GE(frames.size(), 2u);
  const auto& last = frames.back();
  const std::uint64_t listed = file_size(path);
  ASSERT_FALSE(annal::testing::shrink_file(path, last.offset + 10));

  const auto report = verify();
  EXPECT_FALSE(report.ok());
  ASSERT_EQ(report.problems.size(), 2u) << describe(report);
  EXPECT_EQ(report.problems[0].level, severity::error);
  EXPECT_EQ(report.problems[0].file, path);
  EXPECT_EQ(report.problems[0].offset, last.offset + 10);
  EXPECT_EQ(report.problems[0].message,
            fmt::format("segment holds {} bytes, the checkpoint says {}", last.offset + 10, listed));
  EXPECT_EQ(report.problems[1].level, severity::error);
  EXPECT_EQ(report.problems[1].file, path);
  EXPECT_EQ(report.problems[1].offset, last.offset);
  EXPECT_EQ(report.problems[1].message, fmt::format("incomplete record at lsn {}", last.lsn));
}

TEST_F(verify_test, damaged_newest_checkpoint_is_reported_with_its_path) {
  build();
  const std::uint32_t p = 0;
  const auto checkpoints = files_with_suffix(partition_dir(p), ".ckpt");
  ASSERT_EQ(checkpoints.size(), 1u);
  ASSERT_FALSE(annal::testing::flip_bit(checkpoints[0], 40, 1));

  const auto report = verify();
  EXPECT_FALSE(report.ok());
  ASSERT_GE(report.problems.size(), 1u) << describe(report);
  EXPECT_EQ(report.problems[0].level, severity::error);
  EXPECT_EQ(report.problems[0].file, checkpoints[0]);
  EXPECT_EQ(report.problems[0].offset, 0u);
  EXPECT_NE(report.problems[0].message.find("checksum mismatch"), std::string::npos)
      << report.problems[0].message;
}

}  // namespace
