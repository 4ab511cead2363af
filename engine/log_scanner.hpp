#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "engine/errors.hpp"
#include "engine/log_format.hpp"

namespace annal::engine {

// What follows the last record of a segment.
enum class segment_tail {
  exact,        // nothing: the file ends with its last record (partition logs)
  zero_filled,  // zeros up to the end of the file (preallocated node-log segments)
  marked,       // an end mark (an all-zero header), then anything: a reused file's
                // old bytes (node-log segments of format 2)
};

// How a scan of one segment's bytes ended.
struct scan_outcome {
  enum class ending {
    clean,      // every byte belongs to a valid record, or (zero_filled) the
                // records are followed by zeros only, or (marked) by an end
                // mark and no valid record
    torn_tail,  // a bad record (or zeros) with nothing valid after it: an interrupted write
    damaged,    // a bad record followed by valid ones: corruption
  };
  ending end = ending::clean;
  std::uint64_t valid_end = 0;    // offset just past the last valid record before the problem
  std::string reason;             // what was wrong at valid_end (frame_status_name)
  std::uint64_t records = 0;
  // Offset just past the last non-zero byte at or after valid_end, rounded up
  // to k_alignment (valid_end if there is none): the bytes a torn tail left
  // behind, which must be zeroed before a zero_filled segment is written
  // again. Equal to the size of `bytes` for an exact tail that is not clean.
  std::uint64_t written_end = 0;
};

// Offset just past the last non-zero byte of `bytes` at or after `from`,
// rounded up to k_alignment; `from` if there is none. Walks back from the
// end, so it costs the length of the zero tail.
std::uint64_t written_end(std::span<const std::byte> bytes, std::uint64_t from);

// Visits every valid frame of `bytes` starting at offset `from`, in order,
// and stops at the first invalid one. Whether that is a torn tail or damage
// is decided by searching the rest of the bytes for any valid frame (at
// 8-byte steps). With segment_tail::zero_filled, an all-zero header followed
// by nothing but zeros is the clean end of the written data; with
// segment_tail::marked, any all-zero header with no valid frame after it.
// `visit` may stop the scan by returning an error, which is returned as is.
// `crc_salt`: the frames' CRCs are salted with it (log_format::salt_frames);
// a frame salted with another value is not valid. `visit` gets the frame as
// stored.
//
// Thread-safe (no state).
result<scan_outcome> scan_frames(
    std::span<const std::byte> bytes, std::uint64_t from,
    const std::function<status(std::span<const std::byte> frame, std::uint64_t offset)>& visit,
    segment_tail tail = segment_tail::exact, std::uint32_t crc_salt = 0);

}  // namespace annal::engine
