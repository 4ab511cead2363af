#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "engine/file_system.hpp"

// Looks at files on the real disk from tests; a failed look fails the test.
// Thread-safe as functions (no state).
namespace annal::testing {

inline std::uint64_t size_on_disk(const std::string& path) {
  std::uint64_t size = 0;
  EXPECT_FALSE(engine::posix_file_system().file_size(path, size)) << path;
  return size;
}

// Names of the regular files in `dir`, sorted.
inline std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  EXPECT_FALSE(engine::posix_file_system().list_files(dir, names)) << dir;
  return names;
}

}  // namespace annal::testing
