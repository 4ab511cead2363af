#include "engine/log_format.hpp"

#include <bit>
#include <cstring>

#include "engine/crc32c.hpp"

namespace annal::engine::log_format {
namespace {

template <class T>
void store_le(std::byte* at, T value) {
  static_assert(std::endian::native == std::endian::little, "Annal stores little-endian");
  std::memcpy(at, &value, sizeof(T));
}

template <class T>
T load_le(const std::byte* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

bool known_type(std::uint8_t type) {
  return type == static_cast<std::uint8_t>(record_type::append_batch) ||
         type == static_cast<std::uint8_t>(record_type::stream_metadata) ||
         type == static_cast<std::uint8_t>(record_type::snapshot);
}

}  // namespace

void seal_frame(std::span<std::byte> frame, record_type type, partition_id partition,
                lsn position) {
  std::byte* h = frame.data();
  store_le<std::uint32_t>(h + k_length_offset,
                          static_cast<std::uint32_t>(frame.size() - k_header_size));
  store_le<std::uint8_t>(h + k_type_offset, static_cast<std::uint8_t>(type));
  store_le<std::uint8_t>(h + k_version_offset, k_format_version);
  store_le<std::uint16_t>(h + k_flags_offset, 0);
  store_le<std::uint32_t>(h + k_partition_offset, partition.value());
  store_le<std::uint64_t>(h + k_lsn_offset, position.value());
  store_le<std::uint32_t>(h + k_crc_offset, crc32c(frame.subspan(k_crc_covered_from)));
}

record_header decode_header(std::span<const std::byte> bytes) {
  const std::byte* h = bytes.data();
  record_header header;
  header.crc = load_le<std::uint32_t>(h + k_crc_offset);
  header.payload_size = load_le<std::uint32_t>(h + k_length_offset);
  header.type = static_cast<record_type>(load_le<std::uint8_t>(h + k_type_offset));
  header.version = load_le<std::uint8_t>(h + k_version_offset);
  header.partition = partition_id{load_le<std::uint32_t>(h + k_partition_offset)};
  header.position = lsn{load_le<std::uint64_t>(h + k_lsn_offset)};
  return header;
}

parsed_frame parse_frame(std::span<const std::byte> bytes, std::uint32_t crc_salt) {
  parsed_frame out;
  if (bytes.size() < k_header_size) {
    out.status = frame_status::incomplete;
    return out;
  }
  out.header = decode_header(bytes);
  const auto& h = out.header;
  if (h.crc == 0 && h.payload_size == 0 && h.type == record_type::invalid && h.version == 0) {
    out.status = frame_status::zero;
    return out;
  }
  const auto raw_type = static_cast<std::uint8_t>(h.type);
  const std::uint16_t flags = load_le<std::uint16_t>(bytes.data() + k_flags_offset);
  if (h.version != k_format_version || flags != 0 || h.payload_size > k_max_payload_bytes ||
      h.payload_size % k_alignment != 0 || h.type == record_type::invalid ||
      (!known_type(raw_type) && (raw_type & k_ignorable_type_bit) == 0)) {
    out.status = frame_status::bad_header;
    return out;
  }
  if (bytes.size() < h.frame_size()) {
    out.status = frame_status::incomplete;
    return out;
  }
  const auto frame = bytes.first(h.frame_size());
  if ((crc32c(frame.subspan(k_crc_covered_from)) ^ crc_salt) != h.crc) {
    out.status = frame_status::checksum_mismatch;
    return out;
  }
  out.payload = frame.subspan(k_header_size);
  out.status = frame_status::ok;
  return out;
}

void salt_frames(std::span<std::byte> frames, std::uint32_t crc_salt) {
  if (crc_salt == 0) return;
  for (std::size_t at = 0; at + k_header_size <= frames.size();) {
    std::byte* h = frames.data() + at;
    store_le<std::uint32_t>(h + k_crc_offset, load_le<std::uint32_t>(h + k_crc_offset) ^ crc_salt);
    at += k_header_size + load_le<std::uint32_t>(h + k_length_offset);
  }
}

const char* frame_status_name(frame_status s) {
  switch (s) {
    case frame_status::ok: return "ok";
    case frame_status::incomplete: return "incomplete record";
    case frame_status::zero: return "zero-filled header";
    case frame_status::bad_header: return "bad record header";
    case frame_status::checksum_mismatch: return "checksum mismatch";
  }
  return "unknown";
}

}  // namespace annal::engine::log_format
