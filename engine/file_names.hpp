#pragma once

// File and directory names of a data directory (docs/log_format.md,
// "Directory layout"). Stateless.

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/types.hpp"

namespace annal::engine {

inline constexpr std::string_view k_segment_suffix = ".seg";
inline constexpr std::string_view k_node_log_suffix = ".wal";
// A node-log segment being zero-filled: "next.wal.tmp". Never read; deleted
// when the node log opens.
inline constexpr std::string_view k_node_log_temp_suffix = ".wal.tmp";
inline constexpr std::string_view k_next_node_log_segment = "next.wal.tmp";
// A released node-log segment kept for reuse: "spare-<its name>.tmp".
inline constexpr std::string_view k_spare_node_log_prefix = "spare-";

// "<20 decimal digits><suffix>" for segment files named by a position.
std::string numbered_name(std::uint64_t position, std::string_view suffix);
// Parses a numbered_name with this suffix; false for any other name.
bool parse_numbered_name(const std::string& name, std::string_view suffix,
                         std::uint64_t& position);

std::string node_log_directory(const std::string& root);
std::string partition_directory(const std::string& root, partition_id id);

}  // namespace annal::engine
