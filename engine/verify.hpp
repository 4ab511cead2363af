#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/file_system.hpp"
#include "engine/types.hpp"

namespace annal::engine {

struct verify_problem {
  enum class severity {
    warning,  // repaired automatically on open (a torn tail after a crash)
    error,    // damage: open refuses the partition, or data is lost
  };
  severity level = severity::error;
  std::string file;
  std::uint64_t offset = 0;
  std::string message;
};

struct verify_report {
  std::vector<verify_problem> problems;
  std::uint64_t partitions = 0;
  std::uint64_t segments = 0;
  std::uint64_t records = 0;
  std::uint64_t events = 0;
  std::uint64_t node_log_records = 0;

  bool ok() const;  // no problem of severity error
};

// Scans a store directory offline, read-only, and reports every problem it
// finds instead of stopping at the first: record frames and checksums, lsn
// continuity, payloads that do not decode, stream versions that are not
// dense, checkpoints that do not match the segment files, node-log damage.
// Requires: no store has the directory open. Never changes a file.
verify_report verify_store(file_system& fs, const std::string& directory);

// The same for one partition directory.
void verify_partition(file_system& fs, const std::string& directory, partition_id id,
                      verify_report& report);

}  // namespace annal::engine
