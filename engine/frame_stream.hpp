#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "engine/errors.hpp"
#include "engine/file_system.hpp"

namespace annal::engine {

// Visits the valid frames among the first `size` bytes of `file`, from offset
// `from` (a frame boundary) on, in order, reading through `buffer` (reused
// between calls, grown to the largest frame). Stops at the first frame that
// does not parse as valid and whole within those bytes, or where a read comes
// up short or fails, and returns its offset; `size` when every frame was
// valid. What lies at that offset (a clean end, a torn tail, damage) is for
// scan_frames over the whole segment to decide. Returns `visit`'s first error
// as is. `crc_salt` as for scan_frames. The span `visit` gets is valid only
// during the call.
//
// Why not map the segment: in this VM the first touch of each newly mapped
// page costs a hypervisor exit, so checking a mapped segment runs at about
// 2.5 GB/s, while pread into a buffer that stays mapped runs at about 14 GB/s
// (docs/storage.md, "Recovery").
result<std::uint64_t> visit_valid_frames(
    const readable_file& file, std::uint64_t size, std::uint64_t from, std::uint32_t crc_salt,
    std::vector<std::byte>& buffer,
    const std::function<status(std::span<const std::byte> frame, std::uint64_t offset)>& visit);

}  // namespace annal::engine
