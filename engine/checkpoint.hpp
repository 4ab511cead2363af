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
inline constexpr std::size_t k_checkpoints_kept = 2;

// What a partition checkpoint holds, decoded.
struct checkpoint_state {
  std::uint64_t sequence = 0;
  lsn log_end{};
  node_log_position node_position{};
  timestamp_us last_timestamp = 0;
  std::vector<partition_log::segment_info> segments;
  stream_index index;
  std::vector<std::pair<event_id, event_id_window::entry>> recent_ids;  // oldest first
};

// Serializes a checkpoint of the given partition state.
std::vector<std::byte> encode_checkpoint(partition_id partition, std::uint64_t sequence,
                                         lsn log_end, node_log_position node_position,
                                         timestamp_us last_timestamp,
                                         std::span<const partition_log::segment_info> segments,
                                         const stream_index& index,
                                         const event_id_window& recent_ids);

// Decodes and checks one checkpoint file's bytes; errors name `path`.
result<checkpoint_state> decode_checkpoint(std::span<const std::byte> bytes,
                                           partition_id partition, const std::string& path);

// Writes checkpoint `sequence` durably (temporary name, sync, rename) and
// removes all but the newest k_checkpoints_kept. Blocking.
status store_checkpoint(file_system& fs, const std::string& dir, std::uint64_t sequence,
                        std::span<const std::byte> bytes);

// The newest checkpoint in `dir` that decodes and checks out (an older one if
// the newest is damaged, logged as an error); nullopt if there is none;
// errc::checksum_mismatch if there are checkpoints but every one is damaged.
result<std::optional<checkpoint_state>> load_newest_checkpoint(file_system& fs,
                                                               const std::string& dir,
                                                               partition_id partition);

std::string checkpoint_name(std::uint64_t sequence);

}  // namespace annal::engine
