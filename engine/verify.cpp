#include "engine/verify.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <unordered_map>

#include "engine/checkpoint.hpp"
#include "engine/file_names.hpp"
#include "engine/log_scanner.hpp"
#include "engine/node_log.hpp"
#include "engine/partitioning.hpp"
#include "engine/record_codec.hpp"
#include "engine/store_meta.hpp"

namespace annal::engine {
namespace {

using severity = verify_problem::severity;

void add(verify_report& report, severity level, std::string file, std::uint64_t offset,
         std::string message) {
  report.problems.push_back({level, std::move(file), offset, std::move(message)});
}

// Per-stream version continuity across a partition's records.
struct stream_tracker {
  std::unordered_map<std::string, std::uint64_t> next_version;
  bool complete_history = true;  // false once a segment was removed by retention
};

void check_record(std::span<const std::byte> frame, const std::string& path, std::uint64_t offset,
                  stream_tracker& streams, verify_report& report) {
  const auto header = log_format::decode_header(frame);
  const auto payload = frame.subspan(log_format::k_header_size);
  auto s = guard_decode(
      [&] {
        record_reader reader(payload);
        switch (header.type) {
          case log_format::record_type::append_batch: {
            auto batch = reader.append_batch();
            const std::string stream(to_view(batch.getStreamId()));
            const auto events = batch.getEvents();
            auto [it, first_sighting] = streams.next_version.try_emplace(stream, 0);
            if (first_sighting && !streams.complete_history) it->second = batch.getFirstVersion();
            if (batch.getFirstVersion() != it->second) {
              add(report, severity::error, path, offset,
                  fmt::format("stream '{}' continues at version {}, expected {}", stream,
                              batch.getFirstVersion(), it->second));
            }
            it->second = batch.getFirstVersion() + events.size();
            for (auto e : events) {
              if (!valid_event_type(to_view(e.getType()))) {
                add(report, severity::error, path, offset,
                    fmt::format("stream '{}': an event with an invalid type", stream));
              }
            }
            report.events += events.size();
            break;
          }
          case log_format::record_type::stream_metadata:
            (void)reader.stream_metadata().getStreamId();
            break;
          case log_format::record_type::snapshot:
            (void)reader.snapshot().getPayload();
            break;
          default:
            break;
        }
      },
      path);
  if (!s) add(report, severity::error, path, offset, s.err().message);
}

}  // namespace

bool verify_report::ok() const {
  return std::none_of(problems.begin(), problems.end(),
                      [](const verify_problem& p) { return p.level == severity::error; });
}

void verify_partition(file_system& fs, const std::string& dir, partition_id id,
                      verify_report& report) {
  ++report.partitions;
  std::vector<std::string> names;
  if (auto ec = fs.list_files(dir, names)) {
    add(report, severity::error, dir, 0, fmt::format("cannot list: {}", ec.message()));
    return;
  }
  // Checkpoints: every damaged one is reported; the newest whose chain
  // loads tells which segments must exist and how much of them was synced.
  std::optional<checkpoint_state> newest;
  std::vector<std::uint64_t> checkpoints;
  for (const auto& name : names) {
    std::uint64_t sequence;
    if (parse_checkpoint_name(name, sequence)) checkpoints.push_back(sequence);
  }
  std::sort(checkpoints.rbegin(), checkpoints.rend());
  for (std::uint64_t sequence : checkpoints) {
    const std::string path = dir + "/" + checkpoint_name(sequence);
    std::vector<std::byte> bytes;
    if (auto ec = fs.read_file(path, bytes)) {
      add(report, severity::error, path, 0, fmt::format("cannot read: {}", ec.message()));
      continue;
    }
    auto state = decode_checkpoint(bytes, id, path);
    if (!state) {
      add(report, newest ? severity::warning : severity::error, path, 0, state.err().message);
    } else if (!newest) {
      if (auto chain = load_checkpoint_chain(fs, dir, id, sequence)) {
        newest = std::move(*chain);
      } else {
        add(report, severity::error, path, 0, chain.err().message);
      }
    }
  }

  std::map<std::uint64_t, std::string> segment_files;
  for (const auto& name : names) {
    std::uint64_t base;
    if (parse_numbered_name(name, k_segment_suffix, base)) segment_files.emplace(base, dir + "/" + name);
  }
  const std::uint64_t synced_end = newest ? newest->log_end.value() : 0;
  if (newest) {
    for (const auto& s : newest->segments) {
      auto it = segment_files.find(s.base.value());
      std::uint64_t size = 0;
      if (it == segment_files.end() || fs.file_size(it->second, size)) {
        add(report, severity::error, dir, s.base.value(),
            fmt::format("segment {} listed by the checkpoint is missing", s.base.value()));
      } else if (size < s.bytes) {
        add(report, severity::error, it->second, size,
            fmt::format("segment holds {} bytes, the checkpoint says {}", size, s.bytes));
      }
    }
  }

  stream_tracker streams;
  streams.complete_history = segment_files.empty() || segment_files.begin()->first == 0;
  std::uint64_t expected_base = segment_files.empty() ? 0 : segment_files.begin()->first;
  for (auto it = segment_files.begin(); it != segment_files.end(); ++it) {
    const auto& [base, path] = *it;
    const bool last = std::next(it) == segment_files.end();
    ++report.segments;
    if (base < expected_base) {
      add(report, severity::error, path, 0,
          fmt::format("segment starts at lsn {} inside the previous one (ends at {})", base,
                      expected_base));
    } else if (base > expected_base) {
      // A segment removed by retention: the versions it held are gone, so a
      // stream may continue past them; continuity restarts after the gap.
      streams.complete_history = false;
      streams.next_version.clear();
    }
    std::vector<std::byte> bytes;
    if (auto ec = fs.read_file(path, bytes)) {
      add(report, severity::error, path, 0, fmt::format("cannot read: {}", ec.message()));
      continue;
    }
    auto outcome = scan_frames(bytes, 0, [&](std::span<const std::byte> frame,
                                             std::uint64_t offset) -> status {
      ++report.records;
      const auto header = log_format::decode_header(frame);
      if (header.partition != id) {
        add(report, severity::error, path, offset,
            fmt::format("record of partition {} in partition {}", header.partition.value(),
                        id.value()));
      }
      if (header.position.value() != base + offset) {
        add(report, severity::error, path, offset,
            fmt::format("record claims lsn {} at lsn {}", header.position.value(), base + offset));
      }
      check_record(frame, path, offset, streams, report);
      return {};
    });
    expected_base = base + bytes.size();
    if (!outcome) continue;
    if (outcome->end == scan_outcome::ending::clean) continue;
    // The records past the problem were not checked: continuity restarts at
    // the next segment, as after a gap, instead of reporting them as missing.
    streams.complete_history = false;
    streams.next_version.clear();
    const std::uint64_t at = base + outcome->valid_end;
    const bool after_sync = last && at >= synced_end;
    if (outcome->end == scan_outcome::ending::torn_tail && after_sync) {
      add(report, severity::warning, path, outcome->valid_end,
          fmt::format("torn tail of {} bytes after the checkpoint ({}); cut on open",
                      bytes.size() - outcome->valid_end, outcome->reason));
    } else {
      add(report, severity::error, path, outcome->valid_end,
          fmt::format("{} at lsn {}", outcome->reason, at));
    }
  }
}

verify_report verify_store(file_system& fs, const std::string& directory) {
  verify_report report;
  // Format 2 salts node-log frames; without a readable store.meta, assume it.
  bool salted = true;
  const std::string meta_path = directory + "/" + std::string(k_store_meta_name);
  if (auto meta = read_store_meta(fs, meta_path); !meta) {
    add(report, severity::error, meta_path, 0, meta.err().message);
  } else {
    salted = meta->format >= 2;
  }
  const std::string wal_dir = node_log_directory(directory);
  std::vector<std::string> names;
  if (auto ec = fs.list_files(wal_dir, names)) {
    add(report, severity::error, wal_dir, 0, fmt::format("cannot list: {}", ec.message()));
  }
  std::vector<std::pair<std::uint64_t, std::string>> wal_segments;
  for (const auto& name : names) {
    std::uint64_t base;
    if (parse_numbered_name(name, k_node_log_suffix, base)) wal_segments.emplace_back(base, wal_dir + "/" + name);
  }
  std::sort(wal_segments.begin(), wal_segments.end());
  std::optional<std::uint64_t> expected;
  for (std::size_t i = 0; i < wal_segments.size(); ++i) {
    const auto& [base, path] = wal_segments[i];
    const bool last = i + 1 == wal_segments.size();
    if (expected && *expected != base) {
      add(report, severity::error, path, 0,
          fmt::format("node-log segment starts at {}, the previous one ends at {}", base,
                      *expected));
    }
    std::vector<std::byte> bytes;
    if (auto ec = fs.read_file(path, bytes)) {
      add(report, severity::error, path, 0, fmt::format("cannot read: {}", ec.message()));
      continue;
    }
    // An older segment's records end where the next segment starts; what a
    // reused file holds after that is not read.
    if (!last && wal_segments[i + 1].first > base &&
        wal_segments[i + 1].first - base < bytes.size()) {
      bytes.resize(wal_segments[i + 1].first - base);
    }
    // Segments are preallocated: the records end at the first all-zero
    // header that only zeros follow (format 2: at the first all-zero header,
    // the end mark of the last write), and the next segment starts there.
    const std::uint32_t salt = salted ? node_log::crc_salt(node_log_position{base}) : 0;
    auto outcome = scan_frames(
        bytes, 0,
        [&](std::span<const std::byte>, std::uint64_t) {
          ++report.node_log_records;
          return status{};
        },
        salted ? segment_tail::marked : segment_tail::zero_filled, salt);
    expected = base + (outcome && outcome->end == scan_outcome::ending::clean
                           ? outcome->valid_end
                           : bytes.size());
    if (!outcome || outcome->end == scan_outcome::ending::clean) continue;
    const bool torn = outcome->end == scan_outcome::ending::torn_tail && last;
    const std::uint64_t tail = outcome->written_end - outcome->valid_end;
    std::string message = outcome->reason;
    if (torn && salted) {
      message = fmt::format("records end here ({}); the {} bytes after them are an interrupted "
                            "write or left from the file's earlier use, and are ignored on open",
                            outcome->reason, tail);
    } else if (torn) {
      message = fmt::format("torn tail of {} bytes ({}); zeroed on open", tail, outcome->reason);
    }
    add(report, torn ? severity::warning : severity::error, path, outcome->valid_end,
        std::move(message));
  }

  // list_files returns regular files only; partition directories are numbered
  // 00000.. so probe them in order until one is missing.
  for (std::uint32_t i = 0;; ++i) {
    const std::string dir = partition_directory(directory, partition_id{i});
    if (!fs.exists(dir)) break;
    verify_partition(fs, dir, partition_id{i}, report);
  }
  return report;
}

}  // namespace annal::engine
