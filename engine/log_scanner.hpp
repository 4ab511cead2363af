#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "engine/errors.hpp"
#include "engine/log_format.hpp"

namespace annal::engine {

// How a scan of one segment's bytes ended.
struct scan_outcome {
  enum class ending {
    clean,      // every byte belongs to a valid record
    torn_tail,  // a bad record (or zeros) with nothing valid after it: an interrupted write
    damaged,    // a bad record followed by valid ones: corruption
  };
  ending end = ending::clean;
  std::uint64_t valid_end = 0;    // offset just past the last valid record before the problem
  std::string reason;             // what was wrong at valid_end (frame_status_name)
  std::uint64_t records = 0;
};

// Visits every valid frame of `bytes` starting at offset `from`, in order,
// and stops at the first invalid one. Whether that is a torn tail or damage
// is decided by searching the rest of the bytes for any valid frame (at
// 8-byte steps). `visit` may stop the scan by returning an error, which is
// returned as is.
//
// Thread-safe (no state).
result<scan_outcome> scan_frames(
    std::span<const std::byte> bytes, std::uint64_t from,
    const std::function<status(std::span<const std::byte> frame, std::uint64_t offset)>& visit);

}  // namespace annal::engine
