#include "engine/log_format.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include <gtest/gtest.h>

#include "engine/crc32c.hpp"

namespace {

using annal::lsn;
using annal::partition_id;
using annal::engine::crc32c;
namespace lf = annal::engine::log_format;
using lf::frame_status;
using lf::record_type;

constexpr partition_id k_partition{7};
constexpr lsn k_position{4096};

// A sealed frame whose payload is `payload_size` bytes counting up from `seed`.
std::vector<std::byte> make_frame(std::size_t payload_size, std::uint8_t seed = 1,
                                  record_type type = record_type::append_batch,
                                  partition_id partition = k_partition, lsn position = k_position) {
  std::vector<std::byte> frame(lf::k_header_size + payload_size);
  for (std::size_t i = 0; i < payload_size; ++i) {
    frame[lf::k_header_size + i] = std::byte(static_cast<std::uint8_t>(seed + i));
  }
  lf::seal_frame(frame, type, partition, position);
  return frame;
}

// Recomputes the CRC after a header field was changed on purpose, so that a
// test reaches the check it means to exercise and not the checksum.
void reseal_crc(std::vector<std::byte>& frame) {
  const std::uint32_t crc = crc32c(std::span<const std::byte>(frame).subspan(lf::k_crc_covered_from));
  std::memcpy(frame.data() + lf::k_crc_offset, &crc, sizeof crc);
}

template <class T>
void poke(std::vector<std::byte>& frame, std::size_t offset, T value) {
  std::memcpy(frame.data() + offset, &value, sizeof value);
}

template <class T>
T peek(const std::vector<std::byte>& frame, std::size_t offset) {
  T value;
  std::memcpy(&value, frame.data() + offset, sizeof value);
  return value;
}

TEST(log_format_test, sealed_frame_parses_back_with_its_header_and_payload) {
  const auto frame = make_frame(40);
  const auto parsed = lf::parse_frame(frame);
  ASSERT_EQ(parsed.status, frame_status::ok);
  EXPECT_EQ(parsed.header.payload_size, 40u);
  EXPECT_EQ(parsed.header.type, record_type::append_batch);
  EXPECT_EQ(parsed.header.version, lf::k_format_version);
  EXPECT_EQ(parsed.header.partition, k_partition);
  EXPECT_EQ(parsed.header.position, k_position);
  EXPECT_EQ(parsed.header.frame_size(), 64u);
  EXPECT_EQ(parsed.header.crc, crc32c(std::span<const std::byte>(frame).subspan(4)));
  ASSERT_EQ(parsed.payload.size(), 40u);
  EXPECT_EQ(parsed.payload.data(), frame.data() + lf::k_header_size) << "parsed in place";
  EXPECT_EQ(parsed.payload[0], std::byte{1});
  EXPECT_EQ(parsed.payload[39], std::byte{40});
}

TEST(log_format_test, header_fields_sit_at_their_documented_offsets) {
  const auto frame = make_frame(16, 1, record_type::snapshot, partition_id{0x01020304},
                                lsn{0x1122334455667788ull});
  EXPECT_EQ(peek<std::uint32_t>(frame, lf::k_length_offset), 16u);
  EXPECT_EQ(peek<std::uint8_t>(frame, lf::k_type_offset), 3u);
  EXPECT_EQ(peek<std::uint8_t>(frame, lf::k_version_offset), 1u);
  EXPECT_EQ(peek<std::uint16_t>(frame, lf::k_flags_offset), 0u);
  EXPECT_EQ(peek<std::uint32_t>(frame, lf::k_partition_offset), 0x01020304u);
  EXPECT_EQ(peek<std::uint64_t>(frame, lf::k_lsn_offset), 0x1122334455667788ull);
  EXPECT_EQ(peek<std::uint32_t>(frame, lf::k_crc_offset),
            crc32c(std::span<const std::byte>(frame).subspan(lf::k_crc_covered_from)));

  const auto header = lf::decode_header(frame);
  EXPECT_EQ(header.payload_size, 16u);
  EXPECT_EQ(header.type, record_type::snapshot);
  EXPECT_EQ(header.partition, partition_id{0x01020304});
  EXPECT_EQ(header.position, lsn{0x1122334455667788ull});
}

TEST(log_format_test, empty_payload_round_trips) {
  const auto frame = make_frame(0, 1, record_type::stream_metadata);
  const auto parsed = lf::parse_frame(frame);
  ASSERT_EQ(parsed.status, frame_status::ok);
  EXPECT_EQ(parsed.header.payload_size, 0u);
  EXPECT_EQ(parsed.header.type, record_type::stream_metadata);
  EXPECT_TRUE(parsed.payload.empty());
}

TEST(log_format_test, parse_stops_at_the_first_frame_of_several) {
  auto bytes = make_frame(16, 1, record_type::append_batch, k_partition, lsn{0});
  const auto second = make_frame(32, 9, record_type::snapshot, k_partition, lsn{40});
  bytes.insert(bytes.end(), second.begin(), second.end());

  const auto first = lf::parse_frame(bytes);
  ASSERT_EQ(first.status, frame_status::ok);
  EXPECT_EQ(first.header.position, lsn{0});
  EXPECT_EQ(first.payload.size(), 16u);

  const auto next = lf::parse_frame(std::span<const std::byte>(bytes).subspan(first.header.frame_size()));
  ASSERT_EQ(next.status, frame_status::ok);
  EXPECT_EQ(next.header.position, lsn{40});
  EXPECT_EQ(next.header.type, record_type::snapshot);
  EXPECT_EQ(next.payload.size(), 32u);
}

TEST(log_format_test, fewer_bytes_than_a_header_is_incomplete) {
  const auto frame = make_frame(16);
  for (std::size_t n = 0; n < lf::k_header_size; ++n) {
    EXPECT_EQ(lf::parse_frame(std::span<const std::byte>(frame).first(n)).status,
              frame_status::incomplete)
        << n << " bytes";
  }
}

TEST(log_format_test, fewer_bytes_than_the_length_claims_is_incomplete) {
  const auto frame = make_frame(64);
  for (std::size_t n = lf::k_header_size; n < frame.size(); ++n) {
    EXPECT_EQ(lf::parse_frame(std::span<const std::byte>(frame).first(n)).status,
              frame_status::incomplete)
        << n << " bytes";
  }
  EXPECT_EQ(lf::parse_frame(frame).status, frame_status::ok);
}

TEST(log_format_test, all_zero_header_is_unused_space_not_a_record) {
  const std::vector<std::byte> zeros(lf::k_header_size + 64);
  EXPECT_EQ(lf::parse_frame(zeros).status, frame_status::zero);
  EXPECT_EQ(lf::parse_frame(std::span<const std::byte>(zeros).first(lf::k_header_size)).status,
            frame_status::zero);
}

TEST(log_format_test, unknown_format_version_is_a_bad_header_even_with_a_matching_crc) {
  auto frame = make_frame(16);
  poke<std::uint8_t>(frame, lf::k_version_offset, lf::k_format_version + 1);
  reseal_crc(frame);
  EXPECT_EQ(lf::parse_frame(frame).status, frame_status::bad_header);
  poke<std::uint8_t>(frame, lf::k_version_offset, 0);
  reseal_crc(frame);
  EXPECT_EQ(lf::parse_frame(frame).status, frame_status::bad_header);
}

TEST(log_format_test, nonzero_flags_are_a_bad_header) {
  auto frame = make_frame(16);
  poke<std::uint16_t>(frame, lf::k_flags_offset, 0x0100);
  reseal_crc(frame);
  EXPECT_EQ(lf::parse_frame(frame).status, frame_status::bad_header);
}

TEST(log_format_test, unaligned_length_is_a_bad_header) {
  auto frame = make_frame(16);
  poke<std::uint32_t>(frame, lf::k_length_offset, 12);
  reseal_crc(frame);
  EXPECT_EQ(lf::parse_frame(frame).status, frame_status::bad_header);
}

TEST(log_format_test, length_past_the_maximum_is_a_bad_header_not_incomplete) {
  // A reader must not wait for (or allocate) 4 GiB because of one bad field.
  auto frame = make_frame(16);
  poke<std::uint32_t>(frame, lf::k_length_offset, lf::k_max_payload_bytes + 8);
  reseal_crc(frame);
  EXPECT_EQ(lf::parse_frame(frame).status, frame_status::bad_header);
  poke<std::uint32_t>(frame, lf::k_length_offset, 0xfffffff8u);
  reseal_crc(frame);
  EXPECT_EQ(lf::parse_frame(frame).status, frame_status::bad_header);
}

TEST(log_format_test, reserved_type_zero_is_a_bad_header) {
  auto frame = make_frame(16);
  poke<std::uint8_t>(frame, lf::k_type_offset, 0);
  reseal_crc(frame);
  EXPECT_EQ(lf::parse_frame(frame).status, frame_status::bad_header);
}

TEST(log_format_test, unknown_type_without_the_ignorable_bit_is_a_bad_header) {
  for (std::uint8_t type : {std::uint8_t{4}, std::uint8_t{0x7f}}) {
    auto frame = make_frame(16);
    poke<std::uint8_t>(frame, lf::k_type_offset, type);
    reseal_crc(frame);
    EXPECT_EQ(lf::parse_frame(frame).status, frame_status::bad_header) << int(type);
  }
}

TEST(log_format_test, unknown_type_with_the_ignorable_bit_parses_ok) {
  const auto type = static_cast<record_type>(lf::k_ignorable_type_bit | 0x05);
  const auto frame = make_frame(24, 3, type);
  const auto parsed = lf::parse_frame(frame);
  ASSERT_EQ(parsed.status, frame_status::ok);
  EXPECT_EQ(static_cast<std::uint8_t>(parsed.header.type), 0x85u);
  EXPECT_EQ(parsed.payload.size(), 24u);
}

TEST(log_format_test, bit_flip_in_the_payload_is_a_checksum_mismatch) {
  auto frame = make_frame(40);
  frame[lf::k_header_size + 17] ^= std::byte{0x10};
  EXPECT_EQ(lf::parse_frame(frame).status, frame_status::checksum_mismatch);
}

TEST(log_format_test, bit_flip_in_the_crc_itself_is_a_checksum_mismatch) {
  auto frame = make_frame(40);
  frame[lf::k_crc_offset + 2] ^= std::byte{0x01};
  EXPECT_EQ(lf::parse_frame(frame).status, frame_status::checksum_mismatch);
}

TEST(log_format_test, bit_flip_in_the_lsn_or_partition_is_a_checksum_mismatch) {
  auto frame = make_frame(40);
  frame[lf::k_lsn_offset] ^= std::byte{0x08};
  EXPECT_EQ(lf::parse_frame(frame).status, frame_status::checksum_mismatch);

  frame = make_frame(40);
  frame[lf::k_partition_offset] ^= std::byte{0x01};
  EXPECT_EQ(lf::parse_frame(frame).status, frame_status::checksum_mismatch);
}

TEST(log_format_test, bit_flip_shrinking_the_length_is_caught_by_the_crc) {
  // 24 -> 16: still aligned and plausible, and the bytes are all there, so
  // only the CRC (which covers the length) can tell.
  auto frame = make_frame(24);
  frame[lf::k_length_offset] ^= std::byte{0x08};
  ASSERT_EQ(peek<std::uint32_t>(frame, lf::k_length_offset), 16u);
  EXPECT_EQ(lf::parse_frame(frame).status, frame_status::checksum_mismatch);
}

TEST(log_format_test, bit_flip_growing_the_length_into_the_next_frame_is_caught_by_the_crc) {
  auto bytes = make_frame(16);  // 16 -> 24 with bit 3
  const auto next = make_frame(16, 50, record_type::append_batch, k_partition, lsn{4136});
  bytes.insert(bytes.end(), next.begin(), next.end());
  bytes[lf::k_length_offset] ^= std::byte{0x08};
  ASSERT_EQ(peek<std::uint32_t>(bytes, lf::k_length_offset), 24u);
  EXPECT_EQ(lf::parse_frame(bytes).status, frame_status::checksum_mismatch);
}

TEST(log_format_test, every_single_bit_flip_in_a_frame_is_detected) {
  const auto original = make_frame(32);
  for (std::size_t byte = 0; byte < original.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      auto frame = original;
      frame[byte] ^= std::byte(1u << bit);
      const auto status = lf::parse_frame(frame).status;
      EXPECT_NE(status, frame_status::ok) << "byte " << byte << " bit " << bit;
    }
  }
}

TEST(log_format_test, frame_status_names_are_distinct_and_descriptive) {
  EXPECT_STREQ(lf::frame_status_name(frame_status::ok), "ok");
  EXPECT_STREQ(lf::frame_status_name(frame_status::incomplete), "incomplete record");
  EXPECT_STREQ(lf::frame_status_name(frame_status::zero), "zero-filled header");
  EXPECT_STREQ(lf::frame_status_name(frame_status::bad_header), "bad record header");
  EXPECT_STREQ(lf::frame_status_name(frame_status::checksum_mismatch), "checksum mismatch");
}

TEST(log_format_test, align_up_rounds_to_eight_bytes) {
  EXPECT_EQ(lf::align_up(0), 0u);
  EXPECT_EQ(lf::align_up(1), 8u);
  EXPECT_EQ(lf::align_up(8), 8u);
  EXPECT_EQ(lf::align_up(9), 16u);
  EXPECT_EQ(lf::align_up(23), 24u);
}

TEST(log_format_test, salted_frames_parse_only_under_their_salt) {
  auto bytes = make_frame(16, 1, record_type::append_batch, k_partition, lsn{0});
  const auto second = make_frame(32, 9, record_type::snapshot, k_partition, lsn{40});
  bytes.insert(bytes.end(), second.begin(), second.end());
  const auto plain = bytes;
  const std::uint32_t salt = 0x5a17c0de;

  lf::salt_frames(bytes, salt);
  const std::span<const std::byte> all(bytes);
  const std::size_t first_size = lf::k_header_size + 16;
  EXPECT_EQ(peek<std::uint32_t>(bytes, lf::k_crc_offset),
            peek<std::uint32_t>(plain, lf::k_crc_offset) ^ salt);
  EXPECT_EQ(peek<std::uint32_t>(bytes, first_size + lf::k_crc_offset),
            peek<std::uint32_t>(plain, first_size + lf::k_crc_offset) ^ salt)
      << "every frame is salted, not only the first";
  EXPECT_TRUE(std::equal(bytes.begin() + lf::k_crc_covered_from, bytes.begin() + first_size,
                         plain.begin() + lf::k_crc_covered_from))
      << "only the CRC field changes";

  EXPECT_EQ(lf::parse_frame(all).status, frame_status::checksum_mismatch);
  EXPECT_EQ(lf::parse_frame(all, salt ^ 1).status, frame_status::checksum_mismatch);
  EXPECT_EQ(lf::parse_frame(all, salt).status, frame_status::ok);
  EXPECT_EQ(lf::parse_frame(all.subspan(first_size), salt).status, frame_status::ok);

  lf::salt_frames(bytes, salt);
  EXPECT_EQ(bytes, plain) << "salting twice with one salt restores the plain frames";
  EXPECT_EQ(lf::parse_frame(std::span<const std::byte>(bytes)).status, frame_status::ok);
}

}  // namespace
