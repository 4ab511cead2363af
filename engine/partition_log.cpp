#include "engine/partition_log.hpp"

#include "engine/file_names.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace annal::engine {
namespace {

constexpr std::size_t k_npos = static_cast<std::size_t>(-1);
// The smallest read of a record from a segment file.
constexpr std::size_t k_min_read_bytes = 4096;

}  // namespace

std::string partition_log::segment_name(lsn base) {
  return numbered_name(base.value(), k_segment_suffix);
}

partition_log::partition_log(file_system& fs, std::string dir, partition_id partition,
                             partition_log_options options)
    : fs_(fs), dir_(std::move(dir)), partition_(partition), options_(options) {}

std::string partition_log::path_of(lsn base) const {
  return dir_ + "/" + segment_name(base);
}

result<std::unique_ptr<partition_log>> partition_log::open(
    file_system& fs, std::string dir, partition_id partition, partition_log_options options,
    lsn end, const std::vector<segment_info>& live_segments) {
  std::unique_ptr<partition_log> log(new partition_log(fs, std::move(dir), partition, options));
  if (auto ec = fs.create_directories(log->dir_)) {
    return io_failure("create directory", log->dir_, ec);
  }
  std::vector<std::string> names;
  if (auto ec = fs.list_files(log->dir_, names)) return io_failure("list", log->dir_, ec);

  std::vector<std::uint64_t> on_disk;
  for (const auto& name : names) {
    std::uint64_t base;
    if (parse_numbered_name(name, k_segment_suffix, base)) on_disk.push_back(base);
  }
  auto listed = [&](std::uint64_t base) {
    return std::any_of(live_segments.begin(), live_segments.end(),
                       [&](const segment_info& s) { return s.base.value() == base; });
  };
  // Files that the checkpoint does not list: segments created after it (so
  // never synced) or removed by retention but not yet deleted.
  for (std::uint64_t base : on_disk) {
    if (listed(base)) continue;
    const std::string path = log->path_of(lsn{base});
    spdlog::info("partition {}: removing segment {} not covered by the checkpoint",
                 partition.value(), path);
    if (auto ec = fs.remove_file(path)) return io_failure("remove", path, ec);
  }

  for (std::size_t i = 0; i < live_segments.size(); ++i) {
    const auto& listed_segment = live_segments[i];
    const std::string path = log->path_of(listed_segment.base);
    std::uint64_t size = 0;
    if (auto ec = fs.file_size(path, size)) {
      return error{errc::corruption,
                   fmt::format("partition {}: segment {} listed in the checkpoint: {}",
                               partition.value(), path, ec.message())};
    }
    const bool last = i + 1 == live_segments.size();
    if (size < listed_segment.bytes) {
      return error{errc::corruption,
                   fmt::format("partition {}: segment {} holds {} bytes, the checkpoint "
                               "needs {}",
                               partition.value(), path, size, listed_segment.bytes)};
    }
    if (size > listed_segment.bytes) {
      if (!last) {
        return error{errc::corruption,
                     fmt::format("partition {}: sealed segment {} holds {} bytes, the "
                                 "checkpoint says {}",
                                 partition.value(), path, size, listed_segment.bytes)};
      }
      spdlog::warn("partition {}: dropping {} unsynced bytes after lsn {} from {} "
                   "(the node log replays what was durable)",
                   partition.value(), size - listed_segment.bytes, end.value(), path);
      if (auto ec = fs.truncate_file(path, listed_segment.bytes)) {
        return io_failure("truncate", path, ec);
      }
    }
    log->segments_.push_back(listed_segment);
  }
  log->readers_.resize(log->segments_.size());
  log->end_ = end;
  log->written_end_ = end;
  if (!log->segments_.empty()) {
    const std::string path = log->path_of(log->segments_.back().base);
    std::unique_ptr<writable_file> writer;
    if (auto ec = fs.open_writable(path, writer)) return io_failure("open", path, ec);
    log->writer_ = std::move(writer);
  }
  return log;
}

lsn partition_log::begin() const { return segments_.empty() ? end_ : segments_.front().base; }

std::vector<std::uint64_t> partition_log::segment_bases() const {
  std::vector<std::uint64_t> bases;
  bases.reserve(segments_.size());
  for (const auto& s : segments_) bases.push_back(s.base.value());
  return bases;
}

status partition_log::fail(error e) {
  failure_ = e;
  spdlog::error("partition {}: {}", partition_.value(), e.message);
  return e;
}

status partition_log::start_segment(lsn base) {
  if (auto s = flush(); !s) return s;
  if (writer_) unsynced_.push_back({std::move(writer_), path_of(segments_.back().base)});
  const std::string path = path_of(base);
  std::unique_ptr<writable_file> created;
  if (auto ec = fs_.open_writable(path, created)) return fail(io_failure("create", path, ec));
  writer_ = std::move(created);
  segments_.push_back({base, 0});
  readers_.emplace_back();
  directory_dirty_ = true;
  return {};
}

status partition_log::append(std::span<const std::byte> frame) {
  if (failure_) return *failure_;
  const bool roll = segments_.empty() ||
                    (segments_.back().bytes > 0 &&
                     segments_.back().bytes + frame.size() > options_.segment_bytes);
  if (roll) {
    if (auto s = start_segment(end_); !s) return s;
  }
  buffer_.insert(buffer_.end(), frame.begin(), frame.end());
  segments_.back().bytes += frame.size();
  end_ = lsn{end_.value() + frame.size()};
  if (buffer_.size() >= options_.write_buffer_bytes) return flush();
  return {};
}

status partition_log::flush() {
  if (failure_) return *failure_;
  if (buffer_.empty()) return {};
  if (auto ec = writer_->append(buffer_)) {
    return fail(io_failure("write", path_of(segments_.back().base), ec));
  }
  written_end_ = lsn{written_end_.value() + buffer_.size()};
  buffer_.clear();
  return {};
}

status partition_log::sync() {
  auto pending = begin_sync();
  if (!pending) return pending.err();
  if (auto s = pending->run(); !s) return fail(s.err());
  return {};
}

result<partition_log::pending_sync> partition_log::begin_sync() {
  if (auto s = flush(); !s) return s.err();
  pending_sync pending;
  pending.fs_ = &fs_;
  pending.dir_ = dir_;
  pending.files_ = std::move(unsynced_);
  unsynced_.clear();
  if (writer_) pending.files_.push_back({writer_, path_of(segments_.back().base)});
  pending.directory_ = std::exchange(directory_dirty_, false);
  return pending;
}

status partition_log::pending_sync::run() const {
  for (const auto& f : files_) {
    if (auto ec = f.file->sync()) return io_failure("fdatasync", f.path, ec);
  }
  if (directory_) {
    if (auto ec = fs_->sync_directory(dir_)) return io_failure("fsync directory", dir_, ec);
  }
  return {};
}

std::size_t partition_log::segment_index(lsn at) const {
  auto it = std::upper_bound(segments_.begin(), segments_.end(), at,
                             [](lsn v, const segment_info& s) { return v < s.base; });
  if (it == segments_.begin()) return k_npos;
  --it;
  if (at.value() >= it->base.value() + it->bytes) return k_npos;
  return static_cast<std::size_t>(it - segments_.begin());
}

error partition_log::damaged(lsn at, std::string_view what) const {
  const std::size_t i = segment_index(at);
  return error{errc::checksum_mismatch,
               fmt::format("partition {}: {} in {} at offset {} (lsn {})", partition_.value(),
                           what, path_of(segments_[i].base), at.value() - segments_[i].base.value(),
                           at.value())};
}

result<record_ref> partition_log::read(lsn at) {
  if (at >= end_ || segment_index(at) == k_npos) {
    return error{errc::invalid_argument,
                 fmt::format("partition {}: lsn {} is not in the log (first {}, end {}, "
                             "or removed by retention)",
                             partition_.value(), at.value(), begin().value(), end_.value())};
  }
  return at >= written_end_ ? read_from_buffer(at) : read_from_file(at);
}

result<record_ref> partition_log::read_from_buffer(lsn at) {
  const auto bytes = std::span<const std::byte>(buffer_).subspan(at.value() - written_end_.value());
  const auto parsed = log_format::parse_frame(bytes);
  if (parsed.status != log_format::frame_status::ok || parsed.header.position != at) {
    return damaged(at, log_format::frame_status_name(parsed.status));
  }
  const std::size_t size = parsed.header.frame_size();
  auto copy = std::make_shared<std::vector<std::byte>>(bytes.begin(), bytes.begin() + size);
  record_ref ref;
  ref.frame = std::span<const std::byte>(*copy);
  ref.header = parsed.header;
  ref.owner = std::move(copy);
  return ref;
}

result<record_ref> partition_log::read_from_mapping(lsn at, std::size_t i) {
  const auto& seg = segments_[i];
  const auto bytes = readers_[i].mapped.subspan(at.value() - seg.base.value());
  const auto parsed = log_format::parse_frame(bytes);
  if (parsed.status != log_format::frame_status::ok) {
    return damaged(at, log_format::frame_status_name(parsed.status));
  }
  if (parsed.header.position != at || parsed.header.partition != partition_) {
    return damaged(at, fmt::format("record claims partition {} lsn {}",
                                   parsed.header.partition.value(),
                                   parsed.header.position.value()));
  }
  record_ref ref;
  ref.owner = readers_[i].mapping;
  ref.frame = bytes.first(parsed.header.frame_size());
  ref.header = parsed.header;
  return ref;
}

result<record_ref> partition_log::read_from_file(lsn at) {
  // Sealed segments no longer change: map them once and read in place.
  if (const std::size_t i = segment_index(at); i + 1 < segments_.size()) {
    auto& open = readers_[i];
    if (!open.map_tried) {
      open.map_tried = true;
      if (!open.file) {
        if (auto ec = fs_.open_readable(path_of(segments_[i].base), open.file)) {
          return io_failure("open", path_of(segments_[i].base), ec);
        }
      }
      if (segments_[i].bytes > 0) {
        (void)open.file->map(segments_[i].bytes, open.mapped, open.mapping);
      }
    }
    if (open.mapping) return read_from_mapping(at, i);
  }

  const auto& cached = last_chunk_;
  auto from_chunk = [&](const chunk& c) -> std::optional<log_format::parsed_frame> {
    if (!c.bytes || at < c.base || at.value() >= c.base.value() + c.bytes->size) {
      return std::nullopt;
    }
    const auto bytes = std::span<const std::byte>(c.bytes->view()).subspan(at.value() - c.base.value());
    auto parsed = log_format::parse_frame(bytes);
    if (parsed.status == log_format::frame_status::incomplete) return std::nullopt;
    return parsed;
  };

  auto parsed = from_chunk(cached);
  if (!parsed) {
    const std::size_t i = segment_index(at);
    const auto& seg = segments_[i];
    const std::uint64_t offset = at.value() - seg.base.value();
    const std::uint64_t segment_written =
        std::min(seg.base.value() + seg.bytes, written_end_.value()) - seg.base.value();
    auto& reader = readers_[i].file;
    if (!reader) {
      if (auto ec = fs_.open_readable(path_of(seg.base), reader)) {
        return io_failure("open", path_of(seg.base), ec);
      }
    }
    // Sequential reads (the log from an lsn) read ahead; a jump (a stream's
    // records are spread over the log) reads about one record, sized like the
    // last one. A record longer than what was read is read again whole.
    const bool sequential = last_chunk_.bytes &&
                            at.value() == last_chunk_.base.value() + last_chunk_.bytes->size;
    const std::size_t guess = sequential
                                  ? options_.read_ahead_bytes
                                  : std::max<std::size_t>(last_record_bytes_, k_min_read_bytes);
    std::size_t want = static_cast<std::size_t>(
        std::min<std::uint64_t>(guess, segment_written - offset));
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto bytes = std::make_shared<read_buffer>();
      bytes->data = std::make_unique_for_overwrite<std::byte[]>(want);
      std::size_t got = 0;
      if (auto ec = reader->read(offset, {bytes->data.get(), want}, got)) {
        return io_failure("read", path_of(seg.base), ec);
      }
      bytes->size = got;
      last_chunk_ = chunk{std::move(bytes), at};
      parsed = from_chunk(last_chunk_);
      if (parsed) break;
      if (got >= log_format::k_header_size) {
        const auto header = log_format::decode_header(last_chunk_.bytes->view());
        if (header.payload_size <= log_format::k_max_payload_bytes &&
            header.frame_size() <= segment_written - offset && header.frame_size() > want) {
          want = header.frame_size();
          continue;
        }
      }
      break;
    }
    if (!parsed) return damaged(at, "truncated record");
  }
  last_record_bytes_ = parsed->header.frame_size();
  if (parsed->status != log_format::frame_status::ok) {
    return damaged(at, log_format::frame_status_name(parsed->status));
  }
  if (parsed->header.position != at || parsed->header.partition != partition_) {
    return damaged(at, fmt::format("record claims partition {} lsn {}",
                                   parsed->header.partition.value(),
                                   parsed->header.position.value()));
  }
  record_ref ref;
  ref.owner = last_chunk_.bytes;
  ref.frame = std::span<const std::byte>(last_chunk_.bytes->view())
                  .subspan(at.value() - last_chunk_.base.value(), parsed->header.frame_size());
  ref.header = parsed->header;
  return ref;
}

result<std::vector<record_ref>> partition_log::read_from(lsn from, std::size_t max_bytes) {
  std::vector<record_ref> records;
  std::size_t bytes = 0;
  lsn at = from;
  while (at < end_ && (records.empty() || bytes < max_bytes)) {
    if (segment_index(at) == k_npos) {
      // Inside a removed range: continue at the next stored segment.
      auto next = std::upper_bound(segments_.begin(), segments_.end(), at,
                                   [](lsn v, const segment_info& s) { return v < s.base; });
      if (next == segments_.end()) break;
      at = next->base;
      continue;
    }
    auto record = read(at);
    if (!record) return record.err();
    bytes += record->frame.size();
    at = record->end();
    records.push_back(std::move(*record));
  }
  return records;
}

status partition_log::forget_segment(lsn base) {
  auto it = std::find_if(segments_.begin(), segments_.end(),
                         [&](const segment_info& s) { return s.base == base; });
  if (it == segments_.end() || it + 1 == segments_.end()) {
    return error{errc::invalid_argument,
                 fmt::format("partition {}: segment {} is not a sealed segment",
                             partition_.value(), base.value())};
  }
  const auto index = static_cast<std::size_t>(it - segments_.begin());
  if (last_chunk_.bytes && last_chunk_.base >= base && last_chunk_.base < (it + 1)->base) {
    last_chunk_ = {};
  }
  segments_.erase(it);
  readers_.erase(readers_.begin() + static_cast<std::ptrdiff_t>(index));
  directory_dirty_ = true;
  return {};
}

status partition_log::clear() {
  // Forget the old segments first: whatever fails below, no later append may
  // land in an old file.
  writer_.reset();
  unsynced_.clear();
  readers_.clear();
  segments_.clear();
  buffer_.clear();
  last_chunk_ = {};
  last_record_bytes_ = 0;
  end_ = lsn{};
  written_end_ = lsn{};
  directory_dirty_ = false;

  std::vector<std::string> names;
  if (auto ec = fs_.list_files(dir_, names)) return fail(io_failure("list", dir_, ec));
  for (const auto& name : names) {
    std::uint64_t base;
    if (!parse_numbered_name(name, k_segment_suffix, base)) continue;
    const std::string path = path_of(lsn{base});
    if (auto ec = fs_.remove_file(path)) return fail(io_failure("remove", path, ec));
  }
  if (auto ec = fs_.sync_directory(dir_)) return fail(io_failure("fsync directory", dir_, ec));
  return {};
}

}  // namespace annal::engine
