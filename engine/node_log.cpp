#include "engine/node_log.hpp"

#include "engine/file_names.hpp"
#include "engine/log_format.hpp"

#include <fmt/format.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace annal::engine {
namespace {

// Zero-filling writes and fdatasyncs this much at a time. One fdatasync of
// the whole segment would queue 64 MiB ahead of the rounds' writes on the
// device (tens of ms); a chunk delays a round by a few ms at most.
constexpr std::size_t k_zero_fill_chunk = 1u << 20;
// Released segments kept for reuse; more are deleted. Two cover a checkpoint
// that releases several segments at once without keeping disk space idle.
constexpr std::size_t k_max_spares = 2;

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

std::string node_log::segment_name(node_log_position base) {
  return numbered_name(base.value(), k_node_log_suffix);
}

std::uint32_t node_log::crc_salt(node_log_position base) {
  const auto salt = static_cast<std::uint32_t>(mix64(base.value()) >> 32);
  return salt == 0 ? 1 : salt;
}

node_log::node_log(file_system& fs, std::string dir, node_log_options options,
                   std::uint32_t partition_count)
    : fs_(fs), dir_(std::move(dir)), options_(options), released_(partition_count, 0) {}

node_log::~node_log() {
  {
    std::lock_guard lock(prepare_mu_);
    stopping_ = true;
  }
  abandon_preparation_.store(true, std::memory_order_relaxed);
  prepare_cv_.notify_all();
  if (preparer_.joinable()) preparer_.join();
}

result<std::unique_ptr<node_log>> node_log::open(file_system& fs, std::string dir,
                                                 node_log_options options,
                                                 std::vector<segment> existing,
                                                 node_log_position end,
                                                 std::uint32_t partition_count) {
  std::unique_ptr<node_log> log(new node_log(fs, std::move(dir), options, partition_count));
  if (auto ec = fs.create_directories(log->dir_)) {
    return io_failure("create directory", log->dir_, ec);
  }
  // A segment that was being zero-filled when the process stopped: never
  // used, so never needed. Spares stay spares.
  std::vector<std::string> names;
  if (auto ec = fs.list_files(log->dir_, names)) return io_failure("list", log->dir_, ec);
  for (const auto& name : names) {
    if (!name.ends_with(k_node_log_temp_suffix)) continue;
    const std::string path = log->dir_ + "/" + name;
    if (name.starts_with(k_spare_node_log_prefix)) {
      if (auto s = log->retire(path); !s) return s.err();
      continue;
    }
    spdlog::debug("node log: removing {} (an unfinished preallocation)", path);
    if (auto ec = fs.remove_file(path)) return io_failure("remove", path, ec);
  }
  if (existing.empty() || existing.back().base.value() + existing.back().bytes != end.value()) {
    if (auto s = log->prepare_next_segment(); !s) return s.err();
    const std::string path = log->dir_ + "/" + segment_name(end);
    const std::string next = log->dir_ + "/" + std::string(k_next_node_log_segment);
    if (auto ec = fs.rename_file(next, path)) return io_failure("rename", next, ec);
    existing.push_back({end, 0});
  }
  const segment& active = existing.back();
  const std::string path = log->dir_ + "/" + segment_name(active.base);
  std::unique_ptr<writable_file> writer;
  if (auto ec = fs.open_writable_at(path, active.bytes, writer)) return io_failure("open", path, ec);
  log->writer_ = std::move(writer);
  // Recovery replayed what it found here; make it durable before new appends
  // are acknowledged on top of it.
  if (auto ec = log->writer_->sync()) return io_failure("fdatasync", path, ec);
  if (auto ec = fs.sync_directory(log->dir_)) return io_failure("fsync directory", log->dir_, ec);
  log->segments_ = std::move(existing);
  log->appended_ = end.value();
  log->durable_.store(end.value(), std::memory_order_release);
  log->fdatasynced_.store(end.value(), std::memory_order_release);
  log->last_fdatasync_ = std::chrono::steady_clock::now();
  if (options.prepare_in_background) {
    log->preparer_ = std::thread([raw = log.get()] { raw->run_preparer(); });
  }
  return log;
}

status node_log::prepare_next_segment() {
  const std::string path = dir_ + "/" + std::string(k_next_node_log_segment);
  if (fs_.exists(path)) {
    if (auto ec = fs_.remove_file(path)) return io_failure("remove", path, ec);
  }
  std::string spare;
  {
    std::lock_guard lock(segments_mu_);
    if (!spares_.empty()) {
      spare = std::move(spares_.front());
      spares_.erase(spares_.begin());
    }
  }
  if (!spare.empty()) {
    // Its blocks are written and its size is durable: a round overwrites
    // them in place as it would zeros. Its old frames fail the new salt. An
    // end mark at its start makes it an empty segment until the first round.
    spdlog::debug("node log: reusing {}", spare);
    std::unique_ptr<writable_file> file;
    if (auto ec = fs_.open_writable_at(spare, 0, file)) return io_failure("open", spare, ec);
    const std::vector<std::byte> mark(log_format::k_end_mark_bytes);
    if (auto ec = file->append(mark)) return io_failure("write", spare, ec);
    if (auto ec = file->sync()) return io_failure("fdatasync", spare, ec);
    file.reset();
    if (auto ec = fs_.rename_file(spare, path)) return io_failure("rename", spare, ec);
    return {};
  }
  std::unique_ptr<writable_file> file;
  if (auto ec = fs_.open_writable(path, file)) return io_failure("create", path, ec);
  // Without fdatasyncs nothing gains from preallocation: the zeros would only
  // double the bytes written.
  if (options_.mode == fsync_mode::none) return {};
  // Real zeros, not fallocate: an unwritten extent still changes the block
  // map (and so needs a journal commit) the first time it is written.
  const std::vector<std::byte> zeros(
      static_cast<std::size_t>(std::min<std::uint64_t>(k_zero_fill_chunk, options_.segment_bytes)));
  for (std::uint64_t done = 0; done < options_.segment_bytes;) {
    if (abandon_preparation_.load(std::memory_order_relaxed)) {
      return error{errc::io_error, fmt::format("node log: preparing {} abandoned", path)};
    }
    const auto n =
        static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), options_.segment_bytes - done));
    if (auto ec = file->append(std::span(zeros).first(n))) return io_failure("write", path, ec);
    if (auto ec = file->sync()) return io_failure("fdatasync", path, ec);
    done += n;
  }
  return {};
}

void node_log::run_preparer() {
  pthread_setname_np(pthread_self(), "annal-logprep");
  std::unique_lock lock(prepare_mu_);
  for (;;) {
    prepare_cv_.wait(lock, [&] { return stopping_ || next_ == preparation::requested; });
    if (stopping_) return;
    next_ = preparation::running;
    lock.unlock();
    auto s = prepare_next_segment();
    lock.lock();
    if (s) {
      next_ = preparation::ready;
    } else {
      if (!abandon_preparation_.load(std::memory_order_relaxed)) {
        spdlog::error("node log: preparing the next segment failed: {}", s.err().message);
      }
      next_ = preparation::failed;
      prepare_failure_ = s.err();
    }
    prepare_cv_.notify_all();
  }
}

result<node_log_position> node_log::append(std::span<const std::byte> frame) {
  std::lock_guard lock(append_mu_);
  if (failure_) return *failure_;
  pending_.insert(pending_.end(), frame.begin(), frame.end());
  appended_ += frame.size();
  return node_log_position{appended_};
}

node_log_position node_log::appended_position() const {
  std::lock_guard lock(append_mu_);
  return node_log_position{appended_};
}

bool node_log::has_pending() const {
  std::lock_guard lock(append_mu_);
  return !pending_.empty();
}

std::optional<error> node_log::failure() const {
  std::lock_guard lock(append_mu_);
  return failure_;
}

status node_log::fail_locked(error e) {
  if (!failure_) {
    spdlog::error("node log failed, refusing all further writes: {}", e.message);
    failure_ = e;
  }
  return *failure_;
}

status node_log::roll(node_log_position base) {
  bool prepared = false;
  {
    std::unique_lock lock(prepare_mu_);
    prepare_cv_.wait(lock, [&] {
      return next_ != preparation::requested && next_ != preparation::running;
    });
    if (next_ == preparation::failed) return *prepare_failure_;
    prepared = next_ == preparation::ready;
    next_ = preparation::idle;
  }
  // Not prepared ahead (a round filled more than half a segment at once):
  // this round waits for it.
  if (!prepared) {
    if (auto s = prepare_next_segment(); !s) return s;
  }
  const std::string old_path = dir_ + "/" + segment_name(segments().back().base);
  // The old segment's records are durable before a segment after it exists:
  // recovery takes each segment's end to be where the next one starts.
  if (auto ec = writer_->sync()) return io_failure("fdatasync", old_path, ec);
  // rename_file syncs the directory: the new name is durable under every
  // mode, as a later interval fdatasync of the new file would not cover it.
  const std::string next = dir_ + "/" + std::string(k_next_node_log_segment);
  const std::string path = dir_ + "/" + segment_name(base);
  if (auto ec = fs_.rename_file(next, path)) return io_failure("rename", next, ec);
  std::unique_ptr<writable_file> writer;
  if (auto ec = fs_.open_writable_at(path, 0, writer)) return io_failure("open", path, ec);
  writer_ = std::move(writer);
  std::lock_guard lock(segments_mu_);
  segments_.push_back({base, 0});
  return {};
}

status node_log::write_round(std::vector<std::byte>& records, std::uint64_t round_start) {
  segment active;
  {
    std::lock_guard lock(segments_mu_);
    active = segments_.back();
  }
  if (active.bytes >= options_.segment_bytes) {
    // Roll between rounds: a segment may exceed the limit by one round.
    if (auto s = roll(node_log_position{round_start}); !s) return s;
    active = {node_log_position{round_start}, 0};
  }
  const std::string path = dir_ + "/" + segment_name(active.base);
  const std::size_t size = records.size();
  if (options_.salt_frames) {
    log_format::salt_frames(records, crc_salt(active.base));
    records.resize(size + log_format::k_end_mark_bytes, std::byte{0});
    if (auto ec = writer_->append_with_mark(records, log_format::k_end_mark_bytes)) {
      return io_failure("write", path, ec);
    }
  } else if (auto ec = writer_->append(records)) {
    return io_failure("write", path, ec);
  }
  std::uint64_t filled;
  {
    std::lock_guard lock(segments_mu_);
    segments_.back().bytes += size;
    filled = segments_.back().bytes;
  }
  if (filled >= options_.segment_bytes / 2) {
    std::unique_lock lock(prepare_mu_);
    if (next_ == preparation::idle) {
      if (options_.prepare_in_background) {
        next_ = preparation::requested;
        prepare_cv_.notify_all();
      } else {
        next_ = preparation::running;
        lock.unlock();
        auto s = prepare_next_segment();
        lock.lock();
        next_ = s ? preparation::ready : preparation::failed;
        if (!s) prepare_failure_ = s.err();
      }
    }
  }
  return {};
}

result<node_log_position> node_log::sync() { return round(false); }

result<node_log_position> node_log::sync_to_disk() { return round(true); }

result<node_log_position> node_log::round(bool force_fdatasync) {
  std::shared_ptr<writable_file> writer;
  std::string path;
  std::uint64_t round_end;
  auto fail = [&](error e) -> result<node_log_position> {
    std::lock_guard lock(append_mu_);
    return fail_locked(std::move(e)).err();
  };
  {
    // Write phase: one round at a time, so bytes land in append order.
    std::lock_guard io_lock(io_mu_);
    std::uint64_t round_start;
    {
      std::lock_guard lock(append_mu_);
      if (failure_) return *failure_;
      writing_.swap(pending_);
      round_end = appended_;
      round_start = appended_ - writing_.size();
    }
    if (!writing_.empty()) {
      if (auto s = write_round(writing_, round_start); !s) return fail(s.err());
      writing_.clear();
    }
    const auto now = std::chrono::steady_clock::now();
    const bool fdatasync_now =
        force_fdatasync || options_.mode == fsync_mode::always ||
        (options_.mode == fsync_mode::interval && now - last_fdatasync_ >= options_.sync_interval);
    if (fdatasync_now && fdatasynced_.load(std::memory_order_acquire) < round_end) {
      writer = writer_;
      path = dir_ + "/" + segment_name(segments().back().base);
      last_fdatasync_ = now;
    }
  }
  // Sync phase, outside the lock: rounds overlap, and the device serves
  // several fdatasyncs at once. Each covers every byte written before it
  // started, including earlier rounds still syncing.
  if (writer) {
    if (auto ec = writer->sync()) return fail(io_failure("fdatasync", path, ec));
  }
  std::lock_guard lock(append_mu_);
  // After any failure nothing more is acknowledged, even by a round whose
  // own fdatasync succeeded.
  if (failure_) return *failure_;
  if (writer) raise(fdatasynced_, round_end);
  raise(durable_, round_end);
  return node_log_position{durable_.load(std::memory_order_acquire)};
}

void node_log::raise(std::atomic<std::uint64_t>& position, std::uint64_t to) {
  std::uint64_t seen = position.load(std::memory_order_acquire);
  while (seen < to && !position.compare_exchange_weak(seen, to, std::memory_order_acq_rel)) {
  }
}

status node_log::release(partition_id p, node_log_position pos) {
  std::vector<node_log_position> doomed;
  {
    std::lock_guard lock(segments_mu_);
    if (p.value() >= released_.size()) {
      return error{errc::invalid_argument,
                   fmt::format("node log: release by partition {} of {}", p.value(),
                               released_.size())};
    }
    auto& released = released_[p.value()];
    released = std::max(released, pos.value());
    const std::uint64_t floor = *std::min_element(released_.begin(), released_.end());
    // Never the active (last) segment.
    while (segments_.size() > 1 && segments_[1].base.value() <= floor) {
      doomed.push_back(segments_.front().base);
      segments_.erase(segments_.begin());
    }
  }
  for (auto base : doomed) {
    if (auto s = retire(dir_ + "/" + segment_name(base)); !s) return s;
  }
  return {};
}

status node_log::retire(const std::string& path) {
  const bool spare = path.ends_with(k_node_log_temp_suffix);
  std::uint64_t size = 0;
  bool keep = recycles() && !fs_.file_size(path, size) && size >= options_.segment_bytes;
  if (keep) {
    std::lock_guard lock(segments_mu_);
    keep = spares_.size() < k_max_spares;
  }
  if (!keep) {
    spdlog::debug("node log: removing the released segment {}", path);
    if (auto ec = fs_.remove_file(path)) return io_failure("remove", path, ec);
    return {};
  }
  std::string to = path;
  if (!spare) {
    // The name keeps the segment's base, so that spares never collide.
    const auto slash = path.rfind('/');
    to = path.substr(0, slash + 1) + std::string(k_spare_node_log_prefix) +
         path.substr(slash + 1) + ".tmp";
    spdlog::debug("node log: keeping {} as a spare", path);
    if (auto ec = fs_.rename_file(path, to)) return io_failure("rename", path, ec);
  }
  std::lock_guard lock(segments_mu_);
  spares_.push_back(std::move(to));
  return {};
}

std::vector<std::string> node_log::spares() const {
  std::lock_guard lock(segments_mu_);
  return spares_;
}

std::vector<node_log::segment> node_log::segments() const {
  std::lock_guard lock(segments_mu_);
  return segments_;
}

}  // namespace annal::engine
