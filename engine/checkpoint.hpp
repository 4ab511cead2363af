#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/errors.hpp"
#include "engine/event_id_window.hpp"
#include "engine/file_system.hpp"
#include "engine/partition_log.hpp"
#include "engine/stream_index.hpp"
#include "engine/types.hpp"

namespace annal::engine {

// Checkpoint file framing (docs/log_format.md, "Checkpoint files"):
// magic, CRC32C, flags, payload length, then a PartitionCheckpoint message.
inline constexpr char k_checkpoint_magic[8] = {'A', 'N', 'N', 'A', 'L', 'C', 'K', '1'};
inline constexpr std::size_t k_checkpoint_header_size = 24;

// A chain of checkpoint files: one full checkpoint (the base) and the delta
// checkpoints that extend it, each the one before (docs/storage.md,
// "Delta checkpoints").
struct checkpoint_chain {
  std::uint64_t base = 0;         // sequence of the full checkpoint
  std::uint32_t newest_crc = 0;   // header CRC of the newest file; a delta of it names it
  std::size_t deltas = 0;         // delta checkpoints after the base
  std::uint64_t base_bytes = 0;   // size of the base file
  std::uint64_t delta_bytes = 0;  // sizes of the delta files, summed
};

// What a partition checkpoint holds, decoded.
struct checkpoint_state {
  std::uint64_t sequence = 0;
  lsn log_end{};
  node_log_position node_position{};
  timestamp_us last_timestamp = 0;
  std::vector<partition_log::segment_info> segments;
  stream_index index;
  std::vector<std::pair<event_id, event_id_window::entry>> recent_ids;  // oldest first
  checkpoint_chain chain;  // set by load_newest_checkpoint

  // A delta as decoded from its file, before it is applied: the checkpoint
  // it extends (0: a full one), and per entry of `index` its stream number
  // and the version of its first listed location.
  std::uint64_t extends = 0;
  std::uint32_t extends_crc = 0;
  std::vector<std::uint32_t> stream_numbers;
  std::vector<std::uint64_t> locations_from;
};

// What a delta checkpoint lists besides the fields every checkpoint has.
struct checkpoint_delta {
  std::uint64_t extends = 0;      // sequence of the checkpoint it extends (sequence - 1)
  std::uint32_t extends_crc = 0;  // that file's header CRC
  struct stream_change {
    std::uint32_t number;          // stream number in the index
    std::uint64_t locations_from;  // first version whose location is listed
  };
  std::vector<stream_change> streams;  // ascending numbers
  std::size_t new_ids = 0;             // the newest ids of the window, recorded since
};

// Serializes a full checkpoint of the given partition state.
std::vector<std::byte> encode_checkpoint(partition_id partition, std::uint64_t sequence,
                                         lsn log_end, node_log_position node_position,
                                         timestamp_us last_timestamp,
                                         std::span<const partition_log::segment_info> segments,
                                         const stream_index& index,
                                         const event_id_window& recent_ids);

// Serializes a delta checkpoint: the complete fields, and of the index and
// the window only what `delta` names.
std::vector<std::byte> encode_delta_checkpoint(
    partition_id partition, std::uint64_t sequence, lsn log_end, node_log_position node_position,
    timestamp_us last_timestamp, std::span<const partition_log::segment_info> segments,
    const stream_index& index, const event_id_window& recent_ids, const checkpoint_delta& delta);

// Decodes and checks one checkpoint file's bytes; errors name `path`. A delta
// comes back unapplied (see checkpoint_state).
result<checkpoint_state> decode_checkpoint(std::span<const std::byte> bytes,
                                           partition_id partition, const std::string& path);

// Applies `delta` (decoded from `path`) to `state`, the checkpoint it
// extends. errc::checksum_mismatch if they do not fit together.
status apply_delta_checkpoint(checkpoint_state& state, checkpoint_state delta,
                              const std::string& path);

// The header CRC of checkpoint file bytes. Requires: the bytes decode.
std::uint32_t checkpoint_crc(std::span<const std::byte> bytes);

// Writes checkpoint `sequence` durably (temporary name, sync, rename) and
// removes every checkpoint older than `keep_from`. Blocking.
status store_checkpoint(file_system& fs, const std::string& dir, std::uint64_t sequence,
                        std::span<const std::byte> bytes, std::uint64_t keep_from);

// Checkpoint `sequence` in `dir` with the deltas of its chain applied.
// errc::checksum_mismatch if a file of the chain is damaged or missing, or
// the files do not link up; io_error if one cannot be read. Reads only.
result<checkpoint_state> load_checkpoint_chain(file_system& fs, const std::string& dir,
                                               partition_id partition, std::uint64_t sequence);

// The newest checkpoint in `dir` whose chain decodes, links up and checks out
// (an older one if not, logged as an error), with its deltas applied; nullopt
// if there is none; errc::checksum_mismatch if there are checkpoints but none
// loads.
result<std::optional<checkpoint_state>> load_newest_checkpoint(file_system& fs,
                                                               const std::string& dir,
                                                               partition_id partition);

std::string checkpoint_name(std::uint64_t sequence);
// The sequence of a checkpoint file name; false if `name` is not one.
bool parse_checkpoint_name(const std::string& name, std::uint64_t& sequence);

}  // namespace annal::engine
