#pragma once

#include <cstdint>
#include <string>

#include "engine/file_names.hpp"
#include "engine/node_log.hpp"

namespace annal::testing {

// The CRC salt of the frames in the file at `path`: that of a node-log
// segment of a format-2 store ("<20 digits>.wal"), 0 for any other file.
inline std::uint32_t frame_salt_of(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  std::uint64_t base = 0;
  if (!engine::parse_numbered_name(name, engine::k_node_log_suffix, base)) return 0;
  return engine::node_log::crc_salt(node_log_position{base});
}

}  // namespace annal::testing
