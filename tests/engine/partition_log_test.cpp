#include "engine/partition_log.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/log_format.hpp"
#include "tests/support/disk_view.hpp"
#include "tests/support/byte_damage.hpp"
#include "tests/support/fault_injection_file_system.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using annal::lsn;
using annal::partition_id;
using annal::engine::errc;
using annal::engine::file_system;
using annal::engine::partition_log;
using annal::engine::partition_log_options;
using annal::engine::posix_file_system;
using annal::engine::record_ref;
using annal::testing::fault_injection_file_system;
using annal::testing::files_in;
using annal::testing::size_on_disk;
using annal::testing::temp_dir;
namespace lf = annal::engine::log_format;

constexpr partition_id k_partition{5};
// 40-byte payloads make 64-byte frames: four fill a 256-byte segment exactly.
constexpr std::size_t k_payload = 40;
constexpr std::size_t k_frame = lf::k_header_size + k_payload;
constexpr std::uint64_t k_segment_bytes = 4 * k_frame;

std::string seg(std::uint64_t base) { return partition_log::segment_name(lsn{base}); }

// A frame for `position` whose payload bytes are derived from the position,
// so that a record read back can be told from any other.
std::vector<std::byte> make_frame(lsn position, std::size_t payload = k_payload) {
  std::vector<std::byte> frame(lf::k_header_size + payload);
  for (std::size_t i = 0; i < payload; ++i) {
    frame[lf::k_header_size + i] = std::byte(static_cast<std::uint8_t>(position.value() / 8 + i));
  }
  lf::seal_frame(frame, lf::record_type::append_batch, k_partition, position);
  return frame;
}

std::vector<std::byte> bytes_of(const record_ref& r) { return {r.frame.begin(), r.frame.end()}; }

class partition_log_test : public ::testing::Test {
 protected:
  std::unique_ptr<partition_log> open(partition_log_options options, lsn end = lsn{0},
                                      const std::vector<partition_log::segment_info>& segments = {},
                                      file_system* fs = nullptr) {
    auto log = partition_log::open(fs ? *fs : posix_file_system(), dir_.path(), k_partition,
                                   options, end, segments);
    EXPECT_TRUE(log.ok()) << log.err().message;
    return log.ok() ? std::move(*log) : nullptr;
  }

  static partition_log_options small_segments(std::size_t write_buffer = 1 << 20) {
    partition_log_options o;
    o.segment_bytes = k_segment_bytes;
    o.write_buffer_bytes = write_buffer;
    return o;
  }

  // Appends `count` frames at the log's end; returns their lsns.
  static std::vector<lsn> append_frames(partition_log& log, std::size_t count,
                                        std::size_t payload = k_payload) {
    std::vector<lsn> at;
    for (std::size_t i = 0; i < count; ++i) {
      at.push_back(log.end());
      const auto s = log.append(make_frame(log.end(), payload));
      EXPECT_TRUE(s.ok()) << s.err().message;
    }
    return at;
  }

  static void expect_reads_back(partition_log& log, const std::vector<lsn>& at) {
    for (lsn position : at) {
      auto r = log.read(position);
      ASSERT_TRUE(r.ok()) << "lsn " << position.value() << ": " << r.err().message;
      EXPECT_EQ(r->header.position, position);
      EXPECT_EQ(r->header.partition, k_partition);
      EXPECT_EQ(bytes_of(*r), make_frame(position, r->header.payload_size));
      EXPECT_EQ(r->end(), lsn{position.value() + r->frame.size()});
    }
  }

  temp_dir dir_;
};

TEST_F(partition_log_test, empty_log_has_no_segments_and_reads_nothing) {
  auto log = open(small_segments());
  EXPECT_EQ(log->end(), lsn{0});
  EXPECT_EQ(log->begin(), lsn{0});
  EXPECT_TRUE(log->segments().empty());
  auto r = log->read(lsn{0});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  auto all = log->read_from(lsn{0}, 1 << 20);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST_F(partition_log_test, rolling_names_segments_by_their_first_lsn) {
  auto log = open(small_segments());
  append_frames(*log, 10);
  ASSERT_TRUE(log->sync().ok());

  EXPECT_EQ(log->end(), lsn{10 * k_frame});
  EXPECT_EQ(log->segment_bases(), (std::vector<std::uint64_t>{0, 256, 512}));
  ASSERT_EQ(log->segments().size(), 3u);
  EXPECT_EQ(log->segments()[0].bytes, 256u);
  EXPECT_EQ(log->segments()[1].bytes, 256u);
  EXPECT_EQ(log->segments()[2].bytes, 128u);

  EXPECT_EQ(files_in(dir_.path()), (std::vector<std::string>{
                                       "00000000000000000000.seg",
                                       "00000000000000000256.seg",
                                       "00000000000000000512.seg",
                                   }));
  EXPECT_EQ(size_on_disk(dir_.file(seg(0))), 256u);
  EXPECT_EQ(size_on_disk(dir_.file(seg(256))), 256u);
  EXPECT_EQ(size_on_disk(dir_.file(seg(512))), 128u);
}

TEST_F(partition_log_test, record_larger_than_a_segment_gets_a_segment_of_its_own) {
  auto log = open(small_segments());
  append_frames(*log, 1);
  append_frames(*log, 1, 400);  // 424-byte frame > 256-byte segments
  append_frames(*log, 1);
  ASSERT_TRUE(log->sync().ok());
  EXPECT_EQ(log->segment_bases(), (std::vector<std::uint64_t>{0, 64, 488}));
  expect_reads_back(*log, {lsn{0}, lsn{64}, lsn{488}});
}

TEST_F(partition_log_test, buffered_records_are_read_from_memory_before_they_reach_the_file) {
  auto log = open(small_segments(/*write_buffer=*/1 << 20));
  const auto at = append_frames(*log, 3);
  // Nothing written to the OS yet: the file exists but is empty.
  EXPECT_EQ(size_on_disk(dir_.file(seg(0))), 0u);
  expect_reads_back(*log, at);

  ASSERT_TRUE(log->flush().ok());
  EXPECT_EQ(size_on_disk(dir_.file(seg(0))), 3 * k_frame);
  expect_reads_back(*log, at);
}

TEST_F(partition_log_test, sealed_segments_are_read_from_files_and_the_active_one_from_the_buffer) {
  auto log = open(small_segments(/*write_buffer=*/1 << 20));
  const auto at = append_frames(*log, 10);
  // Rolling wrote the sealed segments out; the active one is still buffered.
  EXPECT_EQ(size_on_disk(dir_.file(seg(0))), 256u);
  EXPECT_EQ(size_on_disk(dir_.file(seg(256))), 256u);
  EXPECT_EQ(size_on_disk(dir_.file(seg(512))), 0u);
  expect_reads_back(*log, at);
}

TEST_F(partition_log_test, small_write_buffer_writes_every_record_and_reads_come_from_files) {
  auto log = open(small_segments(/*write_buffer=*/1));
  const auto at = append_frames(*log, 10);
  EXPECT_EQ(size_on_disk(dir_.file(seg(512))), 128u);
  expect_reads_back(*log, at);
  // Backwards too, so that the read-ahead cache is missed every time.
  for (auto it = at.rbegin(); it != at.rend(); ++it) {
    auto r = log->read(*it);
    ASSERT_TRUE(r.ok()) << r.err().message;
    EXPECT_EQ(bytes_of(*r), make_frame(*it));
  }
}

TEST_F(partition_log_test, record_larger_than_the_read_ahead_is_read_whole) {
  auto options = small_segments(1);
  options.segment_bytes = 1 << 20;
  options.read_ahead_bytes = 32;  // smaller than even a header plus payload
  auto log = open(options);
  const auto at = append_frames(*log, 4, 1000);
  expect_reads_back(*log, at);
}

TEST_F(partition_log_test, record_ref_keeps_its_bytes_after_later_reads_replace_the_cache) {
  auto options = small_segments(1);
  options.read_ahead_bytes = 64;  // one record per read
  auto log = open(options);
  append_frames(*log, 10);
  auto first = log->read(lsn{0});
  ASSERT_TRUE(first.ok());
  for (std::uint64_t at = 64; at < 640; at += 64) ASSERT_TRUE(log->read(lsn{at}).ok());
  EXPECT_EQ(bytes_of(*first), make_frame(lsn{0}));
}

TEST_F(partition_log_test, read_from_returns_records_until_max_bytes_is_reached) {
  auto log = open(small_segments(1));
  append_frames(*log, 10);

  auto two = log->read_from(lsn{0}, 100);  // the second record crosses 100 bytes
  ASSERT_TRUE(two.ok()) << two.err().message;
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].header.position, lsn{0});
  EXPECT_EQ((*two)[1].header.position, lsn{64});

  auto at_least_one = log->read_from(lsn{128}, 0);
  ASSERT_TRUE(at_least_one.ok());
  ASSERT_EQ(at_least_one->size(), 1u);
  EXPECT_EQ((*at_least_one)[0].header.position, lsn{128});

  auto across_segments = log->read_from(lsn{192}, 256);
  ASSERT_TRUE(across_segments.ok());
  std::vector<std::uint64_t> positions;
  for (const auto& r : *across_segments) positions.push_back(r.header.position.value());
  EXPECT_EQ(positions, (std::vector<std::uint64_t>{192, 256, 320, 384}));

  auto rest = log->read_from(lsn{384}, 1 << 20);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 4u);
  EXPECT_EQ(rest->back().end(), log->end());
  for (const auto& r : *rest) EXPECT_EQ(bytes_of(r), make_frame(r.header.position));

  auto none = log->read_from(log->end(), 1 << 20);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(partition_log_test, read_from_spans_written_and_buffered_records) {
  auto log = open(small_segments(/*write_buffer=*/1 << 20));
  append_frames(*log, 10);  // 0..511 in files, 512..639 buffered
  auto all = log->read_from(lsn{0}, 1 << 20);
  ASSERT_TRUE(all.ok()) << all.err().message;
  ASSERT_EQ(all->size(), 10u);
  for (std::size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].header.position, lsn{i * k_frame});
    EXPECT_EQ(bytes_of((*all)[i]), make_frame(lsn{i * k_frame}));
  }
}

TEST_F(partition_log_test, read_past_the_end_is_invalid_argument) {
  auto log = open(small_segments());
  append_frames(*log, 2);
  auto r = log->read(lsn{128});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  EXPECT_NE(r.err().message.find("lsn 128"), std::string::npos) << r.err().message;
}

TEST_F(partition_log_test, read_between_record_boundaries_is_refused) {
  auto log = open(small_segments(1));
  append_frames(*log, 3);
  auto r = log->read(lsn{72});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().message.find(seg(0)), std::string::npos) << r.err().message;
}

TEST_F(partition_log_test, sync_then_reopen_with_the_segment_list_gives_the_same_records) {
  std::vector<partition_log::segment_info> listed;
  lsn end;
  std::vector<lsn> at;
  {
    auto log = open(small_segments());
    at = append_frames(*log, 10);
    ASSERT_TRUE(log->sync().ok());
    listed = log->segments();
    end = log->end();
  }
  auto log = open(small_segments(), end, listed);
  EXPECT_EQ(log->end(), lsn{640});
  EXPECT_EQ(log->segment_bases(), (std::vector<std::uint64_t>{0, 256, 512}));
  expect_reads_back(*log, at);

  // Appending continues in the last segment until it is full.
  const auto more = append_frames(*log, 3);
  EXPECT_EQ(more, (std::vector<lsn>{lsn{640}, lsn{704}, lsn{768}}));
  EXPECT_EQ(log->segment_bases(), (std::vector<std::uint64_t>{0, 256, 512, 768}));
  ASSERT_TRUE(log->sync().ok());
  EXPECT_EQ(size_on_disk(dir_.file(seg(512))), 256u);
  EXPECT_EQ(size_on_disk(dir_.file(seg(768))), 64u);
  expect_reads_back(*log, more);
}

TEST_F(partition_log_test, unsynced_bytes_past_checkpoint_are_cut_on_open) {
  std::vector<partition_log::segment_info> listed;
  lsn end;
  {
    auto log = open(small_segments());
    append_frames(*log, 3);
    ASSERT_TRUE(log->sync().ok());
    listed = log->segments();  // the "checkpoint": one segment of 192 bytes
    end = log->end();
    append_frames(*log, 1);  // same segment, written but never synced
    ASSERT_TRUE(log->flush().ok());
    ASSERT_EQ(size_on_disk(dir_.file(seg(0))), 256u);
  }
  auto log = open(small_segments(), end, listed);
  EXPECT_EQ(log->end(), lsn{192});
  EXPECT_EQ(size_on_disk(dir_.file(seg(0))), 192u);
  auto cut = log->read(lsn{192});
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.err().code, errc::invalid_argument);

  // The log continues where the checkpoint ended, over the cut bytes.
  EXPECT_EQ(append_frames(*log, 1), std::vector<lsn>{lsn{192}});
  ASSERT_TRUE(log->sync().ok());
  EXPECT_EQ(size_on_disk(dir_.file(seg(0))), 256u);
  expect_reads_back(*log, {lsn{0}, lsn{64}, lsn{128}, lsn{192}});
}

TEST_F(partition_log_test, segment_files_the_checkpoint_does_not_list_are_removed_on_open) {
  std::vector<partition_log::segment_info> listed;
  lsn end;
  {
    auto log = open(small_segments());
    append_frames(*log, 4);
    ASSERT_TRUE(log->sync().ok());
    listed = log->segments();
    end = log->end();
    append_frames(*log, 3);  // rolls into 256.seg, never checkpointed
    ASSERT_TRUE(log->flush().ok());
  }
  ASSERT_EQ(files_in(dir_.path()).size(), 2u);
  // Not a segment name: must be left alone.
  ASSERT_FALSE(annal::testing::write_all(dir_.file("notes.txt"), annal::testing::bytes_of("x")));

  auto log = open(small_segments(), end, listed);
  EXPECT_EQ(files_in(dir_.path()),
            (std::vector<std::string>{"00000000000000000000.seg", "notes.txt"}));
  EXPECT_EQ(log->end(), lsn{256});
  EXPECT_EQ(log->segment_bases(), std::vector<std::uint64_t>{0});
}

TEST_F(partition_log_test, listed_segment_missing_is_corruption) {
  std::vector<partition_log::segment_info> listed;
  lsn end;
  {
    auto log = open(small_segments());
    append_frames(*log, 10);
    ASSERT_TRUE(log->sync().ok());
    listed = log->segments();
    end = log->end();
  }
  ASSERT_FALSE(posix_file_system().remove_file(dir_.file(seg(256))));
  auto log = partition_log::open(posix_file_system(), dir_.path(), k_partition, small_segments(),
                                 end, listed);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.err().code, errc::corruption);
  EXPECT_NE(log.err().message.find(dir_.file(seg(256))), std::string::npos) << log.err().message;
}

TEST_F(partition_log_test, listed_segment_shorter_than_the_checkpoint_says_is_corruption) {
  std::vector<partition_log::segment_info> listed;
  lsn end;
  {
    auto log = open(small_segments());
    append_frames(*log, 10);
    ASSERT_TRUE(log->sync().ok());
    listed = log->segments();
    end = log->end();
  }
  for (std::uint64_t base : {std::uint64_t{256}, std::uint64_t{512}}) {
    SCOPED_TRACE(base);
    temp_dir copy;
    for (const auto& name : files_in(dir_.path())) {
      std::vector<std::byte> bytes;
      ASSERT_FALSE(annal::testing::read_all(dir_.file(name), bytes));
      ASSERT_FALSE(annal::testing::write_all(copy.file(name), bytes));
    }
    const std::uint64_t size = size_on_disk(copy.file(seg(base)));
    ASSERT_FALSE(annal::testing::shrink_file(copy.file(seg(base)), size - 8));
    auto log = partition_log::open(posix_file_system(), copy.path(), k_partition,
                                   small_segments(), end, listed);
    ASSERT_FALSE(log.ok());
    EXPECT_EQ(log.err().code, errc::corruption);
    EXPECT_NE(log.err().message.find(copy.file(seg(base))), std::string::npos)
        << log.err().message;
    EXPECT_NE(log.err().message.find(std::to_string(size - 8) + " bytes"), std::string::npos)
        << log.err().message;
  }
}

TEST_F(partition_log_test, sealed_segment_longer_than_listed_is_corruption) {
  std::vector<partition_log::segment_info> listed;
  lsn end;
  {
    auto log = open(small_segments());
    append_frames(*log, 10);
    ASSERT_TRUE(log->sync().ok());
    listed = log->segments();
    end = log->end();
  }
  ASSERT_FALSE(annal::testing::append_bytes(dir_.file(seg(256)), make_frame(lsn{256})));
  auto log = partition_log::open(posix_file_system(), dir_.path(), k_partition, small_segments(),
                                 end, listed);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.err().code, errc::corruption);
  EXPECT_NE(log.err().message.find(dir_.file(seg(256))), std::string::npos) << log.err().message;
  // Nothing was cut: a sealed segment is never truncated by open.
  EXPECT_EQ(size_on_disk(dir_.file(seg(256))), 256u + k_frame);
}

TEST_F(partition_log_test, bit_flip_in_a_segment_fails_read_with_checksum_mismatch_naming_file_and_offset) {
  std::vector<partition_log::segment_info> listed;
  lsn end;
  {
    auto log = open(small_segments());
    append_frames(*log, 10);
    ASSERT_TRUE(log->sync().ok());
    listed = log->segments();
    end = log->end();
  }
  // Record at lsn 320 = offset 64 of 256.seg; flip a payload bit.
  ASSERT_FALSE(annal::testing::flip_bit(dir_.file(seg(256)), 64 + lf::k_header_size + 5, 2));

  auto log = open(small_segments(), end, listed);
  auto r = log->read(lsn{320});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::checksum_mismatch);
  EXPECT_NE(r.err().message.find(dir_.file(seg(256))), std::string::npos) << r.err().message;
  EXPECT_NE(r.err().message.find("offset 64"), std::string::npos) << r.err().message;
  EXPECT_NE(r.err().message.find("lsn 320"), std::string::npos) << r.err().message;

  // Its neighbours are intact.
  expect_reads_back(*log, {lsn{256}, lsn{384}, lsn{0}, lsn{576}});

  // A scan over the damaged record fails the same way instead of skipping it.
  auto scan = log->read_from(lsn{0}, 1 << 20);
  ASSERT_FALSE(scan.ok());
  EXPECT_EQ(scan.err().code, errc::checksum_mismatch);
  EXPECT_NE(scan.err().message.find("offset 64"), std::string::npos) << scan.err().message;
}

TEST_F(partition_log_test, bit_flip_in_a_length_field_is_reported_not_trusted) {
  std::vector<partition_log::segment_info> listed;
  lsn end;
  {
    auto log = open(small_segments());
    append_frames(*log, 10);
    ASSERT_TRUE(log->sync().ok());
    listed = log->segments();
    end = log->end();
  }
  // The length of the record at offset 128 of 0.seg: 40 -> 32.
  ASSERT_FALSE(annal::testing::flip_bit(dir_.file(seg(0)), 128 + lf::k_length_offset, 3));
  auto log = open(small_segments(), end, listed);
  auto r = log->read(lsn{128});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::checksum_mismatch);
  EXPECT_NE(r.err().message.find("offset 128"), std::string::npos) << r.err().message;
}

TEST_F(partition_log_test, forget_segment_leaves_its_file_and_reads_in_it_are_invalid_argument) {
  auto log = open(small_segments(1));
  append_frames(*log, 10);
  ASSERT_TRUE(log->sync().ok());

  EXPECT_EQ(log->path_of(lsn{256}), dir_.file(seg(256)));
  ASSERT_TRUE(log->forget_segment(lsn{256}).ok());
  EXPECT_EQ(log->segment_bases(), (std::vector<std::uint64_t>{0, 512}));
  EXPECT_TRUE(posix_file_system().exists(dir_.file(seg(256))))
      << "the caller removes the file (a checkpoint job, off the owner's thread)";
  EXPECT_EQ(log->begin(), lsn{0});
  EXPECT_EQ(log->end(), lsn{640});

  for (std::uint64_t at : {256, 320, 448}) {
    auto r = log->read(lsn{at});
    ASSERT_FALSE(r.ok()) << at;
    EXPECT_EQ(r.err().code, errc::invalid_argument) << at;
  }
  expect_reads_back(*log, {lsn{0}, lsn{192}, lsn{512}, lsn{576}});

  // read_from skips the removed range.
  auto all = log->read_from(lsn{0}, 1 << 20);
  ASSERT_TRUE(all.ok()) << all.err().message;
  std::vector<std::uint64_t> positions;
  for (const auto& r : *all) positions.push_back(r.header.position.value());
  EXPECT_EQ(positions, (std::vector<std::uint64_t>{0, 64, 128, 192, 512, 576}));

  auto from_gap = log->read_from(lsn{320}, 1);
  ASSERT_TRUE(from_gap.ok()) << from_gap.err().message;
  ASSERT_EQ(from_gap->size(), 1u);
  EXPECT_EQ((*from_gap)[0].header.position, lsn{512}) << "the first record after the gap";

  ASSERT_TRUE(log->forget_segment(lsn{0}).ok());
  EXPECT_EQ(log->begin(), lsn{512});
  EXPECT_EQ(log->segment_bases(), (std::vector<std::uint64_t>{512}));
}

TEST_F(partition_log_test, forgetting_the_active_or_an_unknown_segment_is_refused) {
  auto log = open(small_segments(1));
  append_frames(*log, 10);
  for (std::uint64_t base : {512, 100, 1024}) {
    const auto s = log->forget_segment(lsn{base});
    ASSERT_FALSE(s.ok()) << base;
    EXPECT_EQ(s.err().code, errc::invalid_argument) << base;
  }
  EXPECT_EQ(log->segment_bases(), (std::vector<std::uint64_t>{0, 256, 512}));
  EXPECT_TRUE(posix_file_system().exists(dir_.file(seg(512))));
}

TEST_F(partition_log_test, reopen_with_a_gap_left_by_retention_reads_around_it) {
  std::vector<partition_log::segment_info> listed;
  lsn end;
  {
    auto log = open(small_segments(1));
    append_frames(*log, 10);
    ASSERT_TRUE(log->forget_segment(lsn{0}).ok());
    ASSERT_TRUE(log->forget_segment(lsn{256}).ok());
    ASSERT_TRUE(log->sync().ok());
    listed = log->segments();
    end = log->end();
  }
  auto log = open(small_segments(1), end, listed);
  EXPECT_EQ(log->begin(), lsn{512});
  EXPECT_EQ(files_in(dir_.path()), std::vector<std::string>{"00000000000000000512.seg"})
      << "open removes the files of forgotten segments that were left behind";
  auto all = log->read_from(lsn{0}, 1 << 20);
  ASSERT_TRUE(all.ok()) << all.err().message;
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].header.position, lsn{512});
  EXPECT_EQ(bytes_of((*all)[1]), make_frame(lsn{576}));
}

TEST_F(partition_log_test, failed_write_is_sticky) {
  fault_injection_file_system fs(posix_file_system());
  auto log = open(small_segments(1 << 20), lsn{0}, {}, &fs);
  append_frames(*log, 2);
  fs.fail_writes(std::errc::no_space_on_device);
  const auto flushed = log->flush();
  ASSERT_FALSE(flushed.ok());
  EXPECT_EQ(flushed.err().code, errc::io_error);
  EXPECT_NE(flushed.err().message.find(dir_.file(seg(0))), std::string::npos)
      << flushed.err().message;

  fs.clear_failures();
  const auto appended = log->append(make_frame(log->end()));
  ASSERT_FALSE(appended.ok());
  EXPECT_EQ(appended.err().code, errc::io_error);
  const auto synced = log->sync();
  ASSERT_FALSE(synced.ok());
  EXPECT_EQ(synced.err().code, errc::io_error);
}

TEST_F(partition_log_test, failed_sync_is_sticky) {
  fault_injection_file_system fs(posix_file_system());
  auto log = open(small_segments(1), lsn{0}, {}, &fs);
  append_frames(*log, 2);
  fs.fail_syncs(std::errc::io_error);
  const auto synced = log->sync();
  ASSERT_FALSE(synced.ok());
  EXPECT_EQ(synced.err().code, errc::io_error);
  fs.clear_failures();
  const auto appended = log->append(make_frame(log->end()));
  ASSERT_FALSE(appended.ok());
  EXPECT_EQ(appended.err().code, errc::io_error);
}

}  // namespace
