#include "engine/log_scanner.hpp"

namespace annal::engine {
namespace {

bool valid_frame_after(std::span<const std::byte> bytes, std::uint64_t from) {
  for (std::uint64_t at = log_format::align_up(from); at + log_format::k_header_size <= bytes.size();
       at += log_format::k_alignment) {
    if (log_format::parse_frame(bytes.subspan(at)).status == log_format::frame_status::ok) {
      return true;
    }
  }
  return false;
}

}  // namespace

result<scan_outcome> scan_frames(
    std::span<const std::byte> bytes, std::uint64_t from,
    const std::function<status(std::span<const std::byte> frame, std::uint64_t offset)>& visit) {
  scan_outcome out;
  std::uint64_t at = from;
  while (at < bytes.size()) {
    const auto parsed = log_format::parse_frame(bytes.subspan(at));
    if (parsed.status != log_format::frame_status::ok) {
      out.valid_end = at;
      out.reason = log_format::frame_status_name(parsed.status);
      out.end = valid_frame_after(bytes, at + log_format::k_alignment)
                    ? scan_outcome::ending::damaged
                    : scan_outcome::ending::torn_tail;
      return out;
    }
    const std::size_t size = parsed.header.frame_size();
    if (auto s = visit(bytes.subspan(at, size), at); !s) return s.err();
    ++out.records;
    at += size;
  }
  out.valid_end = at;
  return out;
}

}  // namespace annal::engine
