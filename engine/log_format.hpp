#pragma once

// The record frame shared by partition logs and the node log. Every byte is
// described in docs/log_format.md; change both together and bump
// k_format_version.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "engine/types.hpp"

namespace annal::engine::log_format {

inline constexpr std::uint8_t k_format_version = 1;
inline constexpr std::size_t k_header_size = 24;
// Frames start and end on 8-byte boundaries, so Cap'n Proto payloads can be
// read in place.
inline constexpr std::size_t k_alignment = 8;
// The largest payload a reader accepts; a larger length is corruption.
inline constexpr std::uint32_t k_max_payload_bytes = 64u << 20;

// Byte offsets inside the header (little-endian fields).
inline constexpr std::size_t k_crc_offset = 0;
inline constexpr std::size_t k_length_offset = 4;
inline constexpr std::size_t k_type_offset = 8;
inline constexpr std::size_t k_version_offset = 9;
inline constexpr std::size_t k_flags_offset = 10;
inline constexpr std::size_t k_partition_offset = 12;
inline constexpr std::size_t k_lsn_offset = 16;
// The CRC covers everything after itself: the rest of the header and the payload.
inline constexpr std::size_t k_crc_covered_from = 4;

// An end mark: a zero-filled header after the last record of a write
// (node-log segments of format 2, see docs/log_format.md).
inline constexpr std::size_t k_end_mark_bytes = k_header_size;

// Type 0 is reserved: a zero-filled header is never a record. Types with
// k_ignorable_type_bit set may be skipped by readers that do not know them;
// an unknown type without the bit is corruption.
enum class record_type : std::uint8_t {
  invalid = 0,
  append_batch = 1,
  stream_metadata = 2,
  snapshot = 3,
};
inline constexpr std::uint8_t k_ignorable_type_bit = 0x80;

struct record_header {
  std::uint32_t crc = 0;
  std::uint32_t payload_size = 0;
  record_type type = record_type::invalid;
  std::uint8_t version = 0;
  partition_id partition{};
  lsn position{};  // the record's own lsn in its partition log

  std::size_t frame_size() const { return k_header_size + payload_size; }
};

// Fills the header of a frame whose payload already sits at
// frame[k_header_size, k_header_size + payload_size), including the CRC.
// Requires: frame.size() == k_header_size + payload_size, payload_size % 8 == 0.
void seal_frame(std::span<std::byte> frame, record_type type, partition_id partition,
                lsn position);

enum class frame_status {
  ok,
  incomplete,         // fewer bytes than the header or the length claims
  zero,               // an all-zero header: unused space, not a record
  bad_header,         // impossible length, version or type
  checksum_mismatch,  // CRC32C does not match
};

struct parsed_frame {
  frame_status status = frame_status::incomplete;
  record_header header;
  std::span<const std::byte> payload;  // valid when status == ok
};

// Parses the frame at the start of `bytes`. Never trusts the length before
// the header's fixed fields look sane, and never reads past `bytes`.
// `crc_salt`: the frame's stored CRC is its CRC32C XOR this value (node-log
// segments of format 2, see salt_frames); 0 for plain frames.
parsed_frame parse_frame(std::span<const std::byte> bytes, std::uint32_t crc_salt = 0);

// XORs the stored CRC of every frame in `frames` (whole frames back to back)
// with `crc_salt`: salts plain frames, and unsalts frames salted with the
// same value. Requires: the frames' length fields are intact.
void salt_frames(std::span<std::byte> frames, std::uint32_t crc_salt);

// Reads just the header fields (no CRC check). Requires: bytes.size() >= k_header_size.
record_header decode_header(std::span<const std::byte> bytes);

const char* frame_status_name(frame_status s);

inline constexpr std::size_t align_up(std::size_t n) {
  return (n + k_alignment - 1) & ~(k_alignment - 1);
}

}  // namespace annal::engine::log_format
