#include "engine/store.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "engine/file_names.hpp"
#include "engine/frame_stream.hpp"
#include "engine/log_scanner.hpp"
#include "engine/partitioning.hpp"
#include "engine/store_meta.hpp"

namespace annal::engine {
namespace {

// The first `size` bytes of `path`: mapped where the file system offers it
// (no copy), read otherwise. `keep` owns the bytes.
status load_whole_file(file_system& fs, const std::string& path, std::uint64_t size,
                       std::span<const std::byte>& bytes, std::shared_ptr<const void>& keep) {
  bytes = {};
  if (size == 0) return {};
  std::unique_ptr<readable_file> file;
  if (auto ec = fs.open_readable(path, file)) return io_failure("open", path, ec);
  if (!file->map(size, bytes, keep)) return {};
  auto copy = std::make_shared<std::vector<std::byte>>();
  if (auto ec = fs.read_file(path, *copy)) return io_failure("read", path, ec);
  copy->resize(std::min<std::uint64_t>(copy->size(), size));
  bytes = *copy;
  keep = std::move(copy);
  return {};
}

}  // namespace

store::~store() = default;

partition_id store::partition_for(std::string_view stream) const {
  return engine::partition_for(stream, partition_count_);
}

result<std::unique_ptr<store>> store::open(store_options options) {
  std::unique_ptr<store> s(new store());
  s->fs_ = options.fs ? options.fs : &posix_file_system();
  if (!options.clock) options.clock = &system_clock();
  if (options.partition_count == 0) {
    return error{errc::invalid_argument, "partition_count must be at least 1"};
  }
  s->options_ = std::move(options);
  if (auto st = s->recover(); !st) return st.err();
  return s;
}

status store::recover() {
  file_system& fs = *fs_;
  const std::string& root = options_.directory;
  if (auto ec = fs.create_directories(node_log_directory(root))) {
    return io_failure("create directory", root, ec);
  }
  if (auto ec = fs.create_directories(root + "/partitions")) {
    return io_failure("create directory", root, ec);
  }

  // The partition count is fixed at creation: streams hash onto it.
  const std::string meta_path = root + "/" + std::string(k_store_meta_name);
  store_meta meta;
  if (fs.exists(meta_path)) {
    auto parsed = read_store_meta(fs, meta_path);
    if (!parsed) return parsed.err();
    meta = *parsed;
    if (meta.partitions != options_.partition_count) {
      spdlog::info("store {} has {} partitions (asked for {}); using {}", root, meta.partitions,
                   options_.partition_count, meta.partitions);
    }
  } else {
    meta.partitions = options_.partition_count;
    const std::string text = format_store_meta(meta);
    if (auto ec = fs.write_file(meta_path, std::as_bytes(std::span(text)))) {
      return io_failure("write", meta_path, ec);
    }
  }
  partition_count_ = meta.partitions;
  // Format 1 stores keep plain node-log frames: their segments were written so.
  const bool salted = meta.format >= 2;
  options_.node_log.salt_frames = salted;
  // Readers of formats 1 and 2 know only full checkpoints.
  options_.partition.delta_checkpoints = options_.partition.delta_checkpoints && meta.format >= 3;

  partitions_.resize(partition_count_);
  failures_.resize(partition_count_);
  for (std::uint32_t i = 0; i < partition_count_; ++i) {
    const partition_id id{i};
    auto p = partition::open(fs, *options_.clock, nullptr, partition_directory(root, id), id,
                             options_.partition);
    if (p) {
      partitions_[i] = std::move(*p);
    } else {
      spdlog::error("partition {} does not open: {}", i, p.err().message);
      failures_[i] = p.err();
    }
  }

  // Node-log segments, ascending.
  const std::string wal_dir = node_log_directory(root);
  std::vector<std::string> names;
  if (auto ec = fs.list_files(wal_dir, names)) return io_failure("list", wal_dir, ec);
  std::vector<node_log::segment> segments;
  std::vector<std::uint64_t> file_sizes;
  for (const auto& name : names) {
    std::uint64_t base;
    if (!parse_numbered_name(name, k_node_log_suffix, base)) continue;
    std::uint64_t size = 0;
    if (auto ec = fs.file_size(wal_dir + "/" + name, size)) {
      return io_failure("stat", wal_dir + "/" + name, ec);
    }
    segments.push_back({node_log_position{base}, size});
    file_sizes.push_back(size);
  }
  // Segments are preallocated: a file's records are followed by zeros, or
  // (format 2) by whatever an earlier use of the file left, which fails the
  // segment's salt. An older segment's records end where the next segment
  // starts (the log rolls only after syncing them); the last one's end is
  // found by scanning it.
  for (std::size_t si = 0; si + 1 < segments.size(); ++si) {
    segments[si].bytes = std::min(file_sizes[si], segments[si + 1].base.value() -
                                                      segments[si].base.value());
  }

  std::uint64_t replay_from = UINT64_MAX;
  std::uint64_t floor = 0;  // the log never restarts below a position already handed out
  for (const auto& p : partitions_) {
    if (!p) continue;
    replay_from = std::min(replay_from, p->replay_from().value());
    floor = std::max(floor, p->replay_from().value());
  }

  // A partition still needing records at or after `position` cannot be
  // trusted when the node log is damaged there.
  auto fail_from = [&](std::uint64_t position, const error& e) {
    for (std::uint32_t i = 0; i < partition_count_; ++i) {
      if (partitions_[i] && partitions_[i]->replay_from().value() <= position) {
        spdlog::error("partition {} does not open: {}", i, e.message);
        failures_[i] = e;
        partitions_[i].reset();
      }
    }
  };

  std::vector<std::byte> unsalted;  // a replayed frame with its plain CRC
  std::vector<std::byte> frame_buffer;  // reused by visit_valid_frames
  for (std::size_t si = 0; si < segments.size(); ++si) {
    auto& seg = segments[si];
    const bool last = si + 1 == segments.size();
    const std::uint32_t salt = salted ? node_log::crc_salt(seg.base) : 0;
    const auto tail = salted ? segment_tail::marked : segment_tail::zero_filled;
    const std::string path = wal_dir + "/" + node_log::segment_name(seg.base);
    if (si > 0) {
      const auto& prev = segments[si - 1];
      if (prev.base.value() + prev.bytes != seg.base.value()) {
        fail_from(prev.base.value() + prev.bytes,
                  error{errc::lsn_gap, fmt::format("node log: {} starts at {}, but the segment "
                                                   "before it ends at {}",
                                                   path, seg.base.value(),
                                                   prev.base.value() + prev.bytes)});
      }
    }
    if (seg.base.value() + seg.bytes <= replay_from && !last) continue;

    const auto visit = [&](std::span<const std::byte> frame, std::uint64_t offset) -> status {
      ++recovery_.node_log_records;
      const auto header = log_format::decode_header(frame);
      const std::uint32_t p = header.partition.value();
      if (p >= partition_count_) {
        return error{errc::corruption,
                     fmt::format("node log {} at offset {}: record for partition {} of {}", path,
                                 offset, p, partition_count_)};
      }
      auto& target = partitions_[p];
      if (!target || target->replay_from().value() > seg.base.value() + offset) return {};
      const lsn before = target->end();
      if (salt != 0) {
        unsalted.assign(frame.begin(), frame.end());
        log_format::salt_frames(unsalted, salt);
        frame = unsalted;
      }
      auto replayed = target->replay(frame, path, offset);
      if (!replayed) {
        spdlog::error("partition {} does not open: {}", p, replayed.err().message);
        failures_[p] = replayed.err();
        target.reset();
      } else if (target->end() != before) {
        ++recovery_.replayed_records;
      }
      return {};
    };
    const auto first_needed = [&] {
      return replay_from > seg.base.value() ? std::min(replay_from - seg.base.value(), seg.bytes)
                                            : 0;
    };
    std::uint64_t from = 0;
    if (!last) {
      // Read through one buffer while every record is valid; a problem (or
      // the last segment, whose written end is found from its tail) takes the
      // whole-file scan below.
      from = first_needed();
      std::unique_ptr<readable_file> file;
      if (auto ec = fs.open_readable(path, file)) return io_failure("open", path, ec);
      auto valid = visit_valid_frames(*file, seg.bytes, from, salt, frame_buffer, visit);
      if (!valid) {
        fail_from(seg.base.value(), valid.err());
        continue;
      }
      if (*valid == seg.bytes) continue;
      from = *valid;
    }
    std::span<const std::byte> bytes;
    std::shared_ptr<const void> keep_bytes;
    if (auto s = load_whole_file(fs, path, seg.bytes, bytes, keep_bytes); !s) return s;
    if (last) {
      // The last segment's records end where its written bytes do, unless
      // the scan below finds a clean end or a torn tail first.
      seg.bytes = written_end(bytes, 0);
      from = first_needed();
    }
    for (;;) {
      auto outcome = scan_frames(bytes, from, visit, tail, salt);
      if (!outcome) {
        fail_from(seg.base.value(), outcome.err());
        break;
      }
      const auto& o = *outcome;
      if (o.end == scan_outcome::ending::clean) {
        if (last) {
          seg.bytes = o.valid_end;
        } else if (o.valid_end < seg.bytes) {
          fail_from(seg.base.value() + o.valid_end,
                    error{errc::lsn_gap,
                          fmt::format("node log {}: records end at offset {}, but the next "
                                      "segment starts at {}",
                                      path, o.valid_end, seg.base.value() + seg.bytes)});
        }
        break;
      }
      const std::uint64_t problem = seg.base.value() + o.valid_end;
      if (o.end == scan_outcome::ending::torn_tail && last && salted) {
        // Left in place: no frame after valid_end passes this segment's
        // salt (the scan checked every offset), and the next rounds'
        // frames cannot form one with these bytes, as a frame starting in
        // them lies wholly in them. An interrupted write and the frames of
        // the file's earlier use look alike here.
        spdlog::info("node log {}: records end at offset {} ({}); the {} bytes after it are an "
                     "interrupted write or left from the file's earlier use, and are "
                     "overwritten in place",
                     path, o.valid_end, o.reason, o.written_end - o.valid_end);
        recovery_.torn_bytes += o.written_end - o.valid_end;
        seg.bytes = o.valid_end;
        break;
      }
      if (o.end == scan_outcome::ending::torn_tail && last) {
        // Zeroed, not cut: the file keeps its preallocated size, and the
        // next rounds overwrite zeros as everywhere else in it.
        const std::uint64_t dropped = o.written_end - o.valid_end;
        spdlog::warn("node log {}: zeroing a torn tail of {} bytes at offset {} ({})", path,
                     dropped, o.valid_end, o.reason);
        recovery_.torn_bytes += dropped;
        std::unique_ptr<writable_file> file;
        if (auto ec = fs.open_writable_at(path, o.valid_end, file)) {
          return io_failure("open", path, ec);
        }
        const std::vector<std::byte> zeros(static_cast<std::size_t>(dropped));
        if (auto ec = file->append(zeros)) return io_failure("write", path, ec);
        if (auto ec = file->sync()) return io_failure("fdatasync", path, ec);
        seg.bytes = o.valid_end;
        break;
      }
      fail_from(problem, error{errc::checksum_mismatch,
                               fmt::format("node log {} is damaged at offset {}: {}", path,
                                           o.valid_end, o.reason)});
      // The partitions still open checkpointed past the damage and need only
      // the records after their checkpoint position, which is a record
      // boundary: resume there instead of trusting a length past the damage.
      std::uint64_t resume = UINT64_MAX;
      for (const auto& p : partitions_) {
        if (p && p->replay_from().value() > problem) {
          resume = std::min(resume, p->replay_from().value());
        }
      }
      if (resume >= seg.base.value() + seg.bytes) break;
      from = resume - seg.base.value();
    }
  }

  std::uint64_t end = floor;
  if (!segments.empty()) end = std::max(end, segments.back().base.value() + segments.back().bytes);
  auto wal = node_log::open(fs, wal_dir, options_.node_log, segments, node_log_position{end},
                            partition_count_);
  if (!wal) return wal.err();
  wal_ = std::move(*wal);
  for (auto& p : partitions_) {
    if (p) p->attach(wal_.get());
  }
  spdlog::info("store {}: {} partitions, replayed {} of {} node-log records, node log at {}",
               root, partition_count_, recovery_.replayed_records, recovery_.node_log_records,
               end);
  return {};
}

result<partition*> store::get(partition_id id) {
  if (id.value() >= partition_count_) {
    return error{errc::invalid_argument,
                 fmt::format("partition {} does not exist (the store has {})", id.value(),
                             partition_count_)};
  }
  if (auto& p = partitions_[id.value()]) return p.get();
  return error{errc::partition_unavailable,
               fmt::format("partition {} is unavailable: {}", id.value(),
                           failures_[id.value()] ? failures_[id.value()]->message : "not open")};
}

result<node_log_position> store::sync() {
  auto durable = wal_->sync();
  if (!durable) return durable;
  for (auto& p : partitions_) {
    if (p) p->advance_durable(*durable);
  }
  return durable;
}

status store::checkpoint_all() {
  for (auto& p : partitions_) {
    if (!p) continue;
    if (auto s = p->checkpoint(); !s) return s;
  }
  return {};
}

status store::checkpoint_due() {
  for (auto& p : partitions_) {
    if (!p || !p->checkpoint_due()) continue;
    if (auto s = p->checkpoint(); !s) return s;
  }
  return {};
}

status store::close() {
  if (auto d = sync(); !d) return d.err();
  return checkpoint_all();
}

}  // namespace annal::engine
