#pragma once

// store.meta, the description of a data directory (docs/log_format.md,
// "Directory layout"). Stateless.

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/errors.hpp"
#include "engine/file_system.hpp"

namespace annal::engine {

inline constexpr std::string_view k_store_meta_name = "store.meta";

// Format 1: node-log frames are plain. Format 2: node-log segments salt their
// frames' CRCs and are reused (node_log_options::salt_frames). Format 3:
// partition checkpoints may be deltas (partition_options::delta_checkpoints).
inline constexpr std::uint32_t k_oldest_store_format = 1;
inline constexpr std::uint32_t k_store_format = 3;

struct store_meta {
  std::uint32_t format = k_store_format;
  std::uint32_t partitions = 0;
};

// errc::corruption for text that is not a store description, and for a
// format this build does not read. `path` names the file in errors.
result<store_meta> parse_store_meta(std::string_view text, const std::string& path);
std::string format_store_meta(const store_meta& meta);
// Reads and parses the file at `path`: io_error if it cannot be read.
result<store_meta> read_store_meta(file_system& fs, const std::string& path);

}  // namespace annal::engine
