#include "engine/log_scanner.hpp"

#include <algorithm>
#include <cstring>

namespace annal::engine {
namespace {

}  // namespace

std::uint64_t written_end(std::span<const std::byte> bytes, std::uint64_t from) {
  constexpr std::size_t k_word = sizeof(std::uint64_t);
  std::uint64_t end = bytes.size();
  while (end > from) {
    if (end % k_word == 0 && end - from >= k_word) {
      std::uint64_t word;
      std::memcpy(&word, bytes.data() + end - k_word, k_word);
      if (word == 0) {
        end -= k_word;
        continue;
      }
    }
    if (bytes[end - 1] != std::byte{0}) break;
    --end;
  }
  if (end == from) return from;
  return std::min<std::uint64_t>(log_format::align_up(end), bytes.size());
}

namespace {

// Searches the 8-byte offsets in [from, limit) for the start of a valid
// frame. A valid header has a non-zero byte (the version), so zero headers
// are skipped without parsing.
bool valid_frame_after(std::span<const std::byte> bytes, std::uint64_t from, std::uint64_t limit,
                       std::uint32_t crc_salt) {
  for (std::uint64_t at = log_format::align_up(from);
       at < limit && at + log_format::k_header_size <= bytes.size();
       at += log_format::k_alignment) {
    std::uint64_t head[log_format::k_header_size / sizeof(std::uint64_t)];
    std::memcpy(head, bytes.data() + at, sizeof(head));
    if ((head[0] | head[1] | head[2]) == 0) continue;
    if (log_format::parse_frame(bytes.subspan(at), crc_salt).status ==
        log_format::frame_status::ok) {
      return true;
    }
  }
  return false;
}

}  // namespace

result<scan_outcome> scan_frames(
    std::span<const std::byte> bytes, std::uint64_t from,
    const std::function<status(std::span<const std::byte> frame, std::uint64_t offset)>& visit,
    segment_tail tail, std::uint32_t crc_salt) {
  scan_outcome out;
  std::uint64_t at = from;
  while (at < bytes.size()) {
    const auto parsed = log_format::parse_frame(bytes.subspan(at), crc_salt);
    if (parsed.status != log_format::frame_status::ok) {
      out.valid_end = at;
      out.reason = log_format::frame_status_name(parsed.status);
      if (tail == segment_tail::exact) {
        out.written_end = bytes.size();
        out.end = valid_frame_after(bytes, at + log_format::k_alignment, bytes.size(), crc_salt)
                      ? scan_outcome::ending::damaged
                      : scan_outcome::ending::torn_tail;
        return out;
      }
      // No valid frame can lie past the last non-zero byte.
      out.written_end = written_end(bytes, at);
      const bool zero = parsed.status == log_format::frame_status::zero;
      if (zero && out.written_end == at) {
        out.reason.clear();
        out.end = scan_outcome::ending::clean;
      } else if (valid_frame_after(bytes, at + log_format::k_alignment, out.written_end,
                                   crc_salt)) {
        out.end = scan_outcome::ending::damaged;
      } else if (zero && tail == segment_tail::marked) {
        out.reason.clear();
        out.end = scan_outcome::ending::clean;
      } else {
        out.end = scan_outcome::ending::torn_tail;
      }
      return out;
    }
    const std::size_t size = parsed.header.frame_size();
    if (auto s = visit(bytes.subspan(at, size), at); !s) return s.err();
    ++out.records;
    at += size;
  }
  out.valid_end = at;
  out.written_end = at;
  return out;
}

}  // namespace annal::engine
