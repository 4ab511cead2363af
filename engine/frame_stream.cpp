#include "engine/frame_stream.hpp"

#include <algorithm>
#include <cstring>

#include "engine/log_format.hpp"

namespace annal::engine {
namespace {

// Bytes read per pread at least: large enough that the syscall is rare, small
// enough to stay in the caches.
constexpr std::size_t k_read_chunk = 1u << 20;

}  // namespace

result<std::uint64_t> visit_valid_frames(
    const readable_file& file, std::uint64_t size, std::uint64_t from, std::uint32_t crc_salt,
    std::vector<std::byte>& buffer,
    const std::function<status(std::span<const std::byte> frame, std::uint64_t offset)>& visit) {
  if (buffer.size() < k_read_chunk) buffer.resize(k_read_chunk);
  std::uint64_t at = from;      // the next frame
  std::uint64_t base = from;    // file offset of buffer[0]; frame boundaries keep it 8-aligned
  std::size_t filled = 0;       // bytes of buffer holding file data
  // Makes the buffer hold [at, at + need), need <= size - at; false if the
  // file cannot give them.
  auto hold = [&](std::size_t need) {
    const std::size_t skip = static_cast<std::size_t>(at - base);
    if (filled - skip >= need) return true;
    std::memmove(buffer.data(), buffer.data() + skip, filled - skip);
    filled -= skip;
    base = at;
    if (buffer.size() < need) buffer.resize(need);
    while (filled < need) {
      const auto want = static_cast<std::size_t>(
          std::min<std::uint64_t>(buffer.size() - filled, size - (base + filled)));
      std::size_t got = 0;
      if (file.read(base + filled, std::span(buffer).subspan(filled, want), got) || got == 0) {
        return false;
      }
      filled += got;
    }
    return true;
  };
  while (at < size) {
    const std::uint64_t left = size - at;
    if (!hold(static_cast<std::size_t>(std::min<std::uint64_t>(left, log_format::k_header_size)))) {
      return at;
    }
    auto window = std::span<const std::byte>(buffer).subspan(static_cast<std::size_t>(at - base),
                                                              filled - (at - base));
    if (window.size() > left) window = window.first(static_cast<std::size_t>(left));
    auto parsed = log_format::parse_frame(window, crc_salt);
    if (parsed.status == log_format::frame_status::incomplete &&
        window.size() >= log_format::k_header_size && window.size() < left &&
        parsed.header.frame_size() <= left) {
      // The frame runs past what the buffer holds.
      if (!hold(parsed.header.frame_size())) return at;
      window = std::span<const std::byte>(buffer).subspan(static_cast<std::size_t>(at - base),
                                                         parsed.header.frame_size());
      parsed = log_format::parse_frame(window, crc_salt);
    }
    if (parsed.status != log_format::frame_status::ok) return at;
    const std::size_t frame_size = parsed.header.frame_size();
    if (auto s = visit(window.first(frame_size), at); !s) return s.err();
    at += frame_size;
  }
  return at;
}

}  // namespace annal::engine
