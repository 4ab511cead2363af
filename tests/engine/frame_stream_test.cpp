#include "engine/frame_stream.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/log_format.hpp"
#include "engine/log_scanner.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_rng.hpp"

namespace {

using annal::lsn;
using annal::partition_id;
using annal::engine::error;
using annal::engine::errc;
using annal::engine::posix_file_system;
using annal::engine::readable_file;
using annal::engine::scan_frames;
using annal::engine::segment_tail;
using annal::engine::status;
using annal::engine::visit_valid_frames;
using annal::testing::temp_dir;
using annal::testing::test_rng;
namespace lf = annal::engine::log_format;

// A segment's bytes and where each frame starts.
struct segment_bytes {
  std::vector<std::byte> bytes;
  std::vector<std::uint64_t> starts;
};

// Frames with payloads of the given sizes (multiples of 8), back to back, each
// payload filled from its frame's index.
segment_bytes make_segment(const std::vector<std::size_t>& payload_sizes) {
  segment_bytes s;
  for (std::size_t i = 0; i < payload_sizes.size(); ++i) {
    std::vector<std::byte> frame(lf::k_header_size + payload_sizes[i]);
    for (std::size_t b = lf::k_header_size; b < frame.size(); ++b) {
      frame[b] = std::byte(static_cast<std::uint8_t>(i * 31 + b));
    }
    lf::seal_frame(frame, lf::record_type::append_batch, partition_id{1}, lsn{s.bytes.size()});
    s.starts.push_back(s.bytes.size());
    s.bytes.insert(s.bytes.end(), frame.begin(), frame.end());
  }
  return s;
}

std::unique_ptr<readable_file> write_file(const temp_dir& dir, std::span<const std::byte> bytes) {
  const std::string path = dir.file("segment");
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  std::unique_ptr<readable_file> file;
  EXPECT_FALSE(posix_file_system().open_readable(path, file));
  return file;
}

// A frame as visited: its offset and bytes.
struct visited {
  std::uint64_t offset;
  std::vector<std::byte> bytes;
  bool operator==(const visited&) const = default;
};

struct stream_run {
  std::uint64_t stopped = 0;
  std::vector<visited> frames;
};

stream_run stream(const readable_file& file, std::uint64_t size, std::uint64_t from,
                  std::uint32_t salt = 0) {
  stream_run run;
  std::vector<std::byte> buffer;
  const auto record = [&](std::span<const std::byte> frame, std::uint64_t offset) -> status {
    run.frames.push_back({offset, {frame.begin(), frame.end()}});
    return {};
  };
  auto r = visit_valid_frames(file, size, from, salt, buffer, record);
  EXPECT_TRUE(r.ok()) << r.err().message;
  if (r) run.stopped = *r;
  return run;
}

stream_run scan(std::span<const std::byte> bytes, std::uint64_t from, std::uint32_t salt = 0) {
  stream_run run;
  auto r = scan_frames(
      bytes, from,
      [&](std::span<const std::byte> frame, std::uint64_t offset) -> status {
        run.frames.push_back({offset, {frame.begin(), frame.end()}});
        return {};
      },
      segment_tail::exact, salt);
  EXPECT_TRUE(r.ok());
  if (r) run.stopped = r->valid_end;
  return run;
}

TEST(frame_stream, visits_every_frame_across_reads_and_frames_larger_than_the_buffer) {
  // 1 MiB reads: frames straddle read boundaries, and one of 3 MiB is larger
  // than the buffer starts out.
  std::vector<std::size_t> sizes;
  for (int i = 0; i < 300; ++i) sizes.push_back(8 * (1 + (i * 977) % 2000));
  sizes.insert(sizes.begin() + 150, std::size_t{3} << 20);
  const auto seg = make_segment(sizes);
  temp_dir dir;
  auto file = write_file(dir, seg.bytes);

  const auto run = stream(*file, seg.bytes.size(), 0);
  EXPECT_EQ(run.stopped, seg.bytes.size());
  ASSERT_EQ(run.frames.size(), sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(run.frames[i].offset, seg.starts[i]);
    ASSERT_EQ(run.frames[i].bytes.size(), lf::k_header_size + sizes[i]);
    EXPECT_EQ(std::memcmp(run.frames[i].bytes.data(), seg.bytes.data() + seg.starts[i],
                          run.frames[i].bytes.size()),
              0);
  }
  EXPECT_EQ(run.frames, scan(seg.bytes, 0).frames);
}

TEST(frame_stream, starts_at_the_given_frame) {
  const auto seg = make_segment({64, 128, 256, 512});
  temp_dir dir;
  auto file = write_file(dir, seg.bytes);
  const auto run = stream(*file, seg.bytes.size(), seg.starts[2]);
  EXPECT_EQ(run.stopped, seg.bytes.size());
  ASSERT_EQ(run.frames.size(), 2u);
  EXPECT_EQ(run.frames[0].offset, seg.starts[2]);
  EXPECT_EQ(run.frames[1].offset, seg.starts[3]);
}

TEST(frame_stream, stops_at_a_damaged_frame) {
  auto seg = make_segment({64, 4096, 64, 64});
  seg.bytes[seg.starts[2] + lf::k_header_size + 5] ^= std::byte{0x10};
  temp_dir dir;
  auto file = write_file(dir, seg.bytes);
  const auto run = stream(*file, seg.bytes.size(), 0);
  EXPECT_EQ(run.stopped, seg.starts[2]);
  EXPECT_EQ(run.frames.size(), 2u);
}

TEST(frame_stream, stops_at_a_frame_cut_by_the_size_or_the_file) {
  const auto seg = make_segment({64, 2u << 20, 64});
  temp_dir dir;
  auto file = write_file(dir, seg.bytes);
  // `size` ends inside the large frame.
  const auto cut = stream(*file, seg.starts[1] + 1000, 0);
  EXPECT_EQ(cut.stopped, seg.starts[1]);
  EXPECT_EQ(cut.frames.size(), 1u);
  // `size` claims more than the file holds: a short read stops there too.
  auto short_file = write_file(dir, std::span(seg.bytes).first(seg.starts[2] + 40));
  const auto shorter = stream(*short_file, seg.bytes.size(), 0);
  EXPECT_EQ(shorter.stopped, seg.starts[2]);
  EXPECT_EQ(shorter.frames.size(), 2u);
}

TEST(frame_stream, stops_at_zeros_after_the_records) {
  auto seg = make_segment({64, 64});
  const std::uint64_t records_end = seg.bytes.size();
  seg.bytes.resize(records_end + 8192, std::byte{0});
  temp_dir dir;
  auto file = write_file(dir, seg.bytes);
  const auto run = stream(*file, seg.bytes.size(), 0);
  EXPECT_EQ(run.stopped, records_end);
  EXPECT_EQ(run.frames.size(), 2u);
}

TEST(frame_stream, checks_the_salt) {
  auto seg = make_segment({64, 640, 64});
  const std::uint32_t salt = 0x5a17u;
  lf::salt_frames(seg.bytes, salt);
  temp_dir dir;
  auto file = write_file(dir, seg.bytes);
  EXPECT_EQ(stream(*file, seg.bytes.size(), 0, salt).frames.size(), 3u);
  const auto unsalted = stream(*file, seg.bytes.size(), 0, 0);
  EXPECT_EQ(unsalted.stopped, 0u);
  EXPECT_TRUE(unsalted.frames.empty());
}

TEST(frame_stream, returns_the_visitors_error) {
  const auto seg = make_segment({64, 64, 64});
  temp_dir dir;
  auto file = write_file(dir, seg.bytes);
  std::vector<std::byte> buffer;
  int calls = 0;
  const auto stop_at_second = [&](std::span<const std::byte>, std::uint64_t offset) -> status {
    ++calls;
    if (offset == seg.starts[1]) return error{errc::corruption, "stop here"};
    return {};
  };
  auto r = visit_valid_frames(*file, seg.bytes.size(), 0, 0, buffer, stop_at_second);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::corruption);
  EXPECT_EQ(r.err().message, "stop here");
  EXPECT_EQ(calls, 2);
}

// Random segments with random damage: the frames visited and the stopping
// point agree with scan_frames over the whole bytes.
TEST(frame_stream, agrees_with_scan_frames) {
  test_rng rng(20261125);
  temp_dir dir;
  for (int round = 0; round < 40; ++round) {
    std::vector<std::size_t> sizes;
    const auto count = rng.between(1, 60);
    for (std::uint64_t i = 0; i < count; ++i) {
      sizes.push_back(8 * (rng.percent(10) ? rng.between(20'000, 200'000) : rng.between(0, 3000)));
    }
    auto seg = make_segment(sizes);
    if (rng.percent(70)) {
      // A flipped bit, a zeroed stretch or a cut anywhere.
      const auto at = rng.below(seg.bytes.size());
      switch (rng.below(3)) {
        case 0: seg.bytes[at] ^= std::byte{1}; break;
        case 1:
          std::memset(seg.bytes.data() + at, 0, std::min<std::size_t>(64, seg.bytes.size() - at));
          break;
        default: seg.bytes.resize(at); break;
      }
    }
    auto file = write_file(dir, seg.bytes);
    const std::uint64_t from = seg.starts[rng.below(seg.starts.size())];
    const auto expected = scan(seg.bytes, std::min<std::uint64_t>(from, seg.bytes.size()));
    const auto run =
        stream(*file, seg.bytes.size(), std::min<std::uint64_t>(from, seg.bytes.size()));
    EXPECT_EQ(run.stopped, expected.stopped) << "round " << round;
    EXPECT_EQ(run.frames, expected.frames) << "round " << round;
  }
}

}  // namespace
