#include "tests/support/fault_injection_file_system.hpp"

#include <algorithm>
#include <utility>

#include "tests/support/byte_damage.hpp"

namespace annal::testing {
namespace {

std::error_code io_error() { return std::make_error_code(std::errc::io_error); }

// Collapses repeated '/' and drops a trailing '/', so that "d//f" and "d/f"
// name the same tracked file.
std::string normalize(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (const char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out.push_back(c);
  }
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// Requires: `path` normalised.
std::string parent_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// splitmix64: a small, fully specified generator, so a seed tears the same
// way with every standard library.
std::uint64_t next_random(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

// Not thread-safe for append (owned by one writer); sync and size may run
// concurrently with append, as engine::writable_file allows. Lives no longer
// than the fault_injection_file_system that opened it.
class fault_injection_file_system::writable final : public engine::writable_file {
 public:
  // `reader` is set for a file written in place: it reads the bytes each
  // write is about to overwrite.
  writable(fault_injection_file_system& fs, std::shared_ptr<file_state> state,
           std::unique_ptr<engine::writable_file> base, std::uint64_t generation,
           std::unique_ptr<engine::readable_file> reader = nullptr)
      : fs_(fs),
        state_(std::move(state)),
        base_(std::move(base)),
        generation_(generation),
        reader_(std::move(reader)) {}

  std::error_code append(std::span<const std::byte> data) override {
    return append_with_mark(data, 0);
  }

  // The mark counts as written like the rest; once a later fdatasync covers
  // the write, a power loss keeps it.
  std::error_code append_with_mark(std::span<const std::byte> data,
                                   std::size_t mark_bytes) override {
    if (auto ec = fs_.before_append(generation_)) return ec;
    if (reader_) {
      const std::uint64_t at = base_->size();
      std::vector<std::byte> old(data.size());
      std::size_t n = 0;
      if (auto ec = reader_->read(at, old, n)) return ec;
      old.resize(n);
      fs_.record_overwrite(*state_, at, data.size(), std::move(old));
    }
    return base_->append_with_mark(data, mark_bytes);
  }

  std::error_code sync() override {
    if (auto ec = fs_.before_sync(generation_)) return ec;
    // Every byte counted here was written before fdatasync starts, so it is
    // durable when the sync succeeds; bytes appended meanwhile may not be.
    const std::uint64_t covered = base_->size();
    const std::uint64_t sequence = fs_.sync_mark(*state_);
    if (auto ec = base_->sync()) return ec;
    fs_.after_sync(*state_, covered, sequence);
    return {};
  }

  std::uint64_t size() const override { return base_->size(); }

 private:
  fault_injection_file_system& fs_;
  const std::shared_ptr<file_state> state_;
  const std::unique_ptr<engine::writable_file> base_;
  const std::uint64_t generation_;
  const std::unique_ptr<engine::readable_file> reader_;
};

// Thread-safe, like the base readable_file. Lives no longer than the
// fault_injection_file_system that opened it.
class fault_injection_file_system::readable final : public engine::readable_file {
 public:
  readable(const fault_injection_file_system& fs, std::unique_ptr<engine::readable_file> base,
           std::uint64_t generation)
      : fs_(fs), base_(std::move(base)), generation_(generation) {}

  std::error_code read(std::uint64_t offset, std::span<std::byte> out,
                       std::size_t& bytes_read) const override {
    bytes_read = 0;
    if (auto ec = fs_.check_generation(generation_)) return ec;
    return base_->read(offset, out, bytes_read);
  }

  std::uint64_t size() const override { return base_->size(); }

 private:
  const fault_injection_file_system& fs_;
  const std::unique_ptr<engine::readable_file> base_;
  const std::uint64_t generation_;
};

fault_injection_file_system::fault_injection_file_system(engine::file_system& base)
    : base_(base) {}

void fault_injection_file_system::fail_writes(std::errc e) {
  const std::lock_guard lock(mutex_);
  write_failure_ = e;
}

void fault_injection_file_system::fail_syncs(std::errc e) {
  const std::lock_guard lock(mutex_);
  sync_failure_ = e;
}

void fault_injection_file_system::clear_failures() {
  const std::lock_guard lock(mutex_);
  write_failure_.reset();
  sync_failure_.reset();
  crash_at_.reset();
}

void fault_injection_file_system::crash_after(std::uint64_t n) {
  const std::lock_guard lock(mutex_);
  crash_at_ = mutating_operations_ + n;
}

std::uint64_t fault_injection_file_system::mutating_operations() const {
  const std::lock_guard lock(mutex_);
  return mutating_operations_;
}

std::uint64_t fault_injection_file_system::largest_sync_growth() const {
  const std::lock_guard lock(mutex_);
  return largest_sync_growth_;
}

std::error_code fault_injection_file_system::power_loss(power_loss_mode mode, std::uint64_t seed) {
  const std::lock_guard lock(mutex_);
  std::error_code first_error;
  const auto note = [&first_error](std::error_code ec) {
    if (ec && !first_error) first_error = ec;
  };

  // 1. Undo directory changes that were not durable, newest first, so that a
  // file created, removed and created again ends as it was before all three.
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
    switch (it->what) {
      case pending_entry::kind::created:
        if (base_.exists(it->path)) note(base_.remove_file(it->path));
        files_.erase(it->path);
        break;
      case pending_entry::kind::removed:
        if (!base_.exists(it->path)) note(base_.write_file(it->path, it->durable_bytes));
        files_.erase(it->path);  // written back durably
        break;
      case pending_entry::kind::renamed:
        if (it->target_existed || !base_.exists(it->to) || base_.exists(it->path)) break;
        if (auto ec = base_.rename_file(it->to, it->path)) {
          note(ec);
          break;
        }
        move_tracking_locked(it->to, it->path);
        break;
    }
  }
  pending_.clear();

  // 2. Cut every tracked file back. One draw per tracked file in path order,
  // whether or not it has unsynced bytes, keeps the draws of the others stable.
  std::uint64_t random_state = seed;
  for (const auto& [path, state] : files_) {
    const std::uint64_t draw = next_random(random_state);
    std::uint64_t size = 0;
    if (base_.file_size(path, size)) continue;  // gone: nothing to cut
    if (!state->overwrites.empty()) {
      std::uint64_t unsynced = 0;
      for (const auto& o : state->overwrites) unsynced += o.length;
      const std::uint64_t keep =
          mode == power_loss_mode::tear_unsynced ? draw % (unsynced + 1) : 0;
      std::uint64_t kept_end = 0;
      note(undo_overwrites_locked(path, *state, keep, kept_end));
      const std::uint64_t new_size = std::max(state->synced_size, kept_end);
      if (new_size < size) note(base_.truncate_file(path, new_size));
      continue;
    }
    if (size <= state->synced_size) continue;
    std::uint64_t keep = state->synced_size;
    if (mode == power_loss_mode::tear_unsynced) {
      const std::uint64_t unsynced = size - state->synced_size;
      keep += draw % (unsynced + 1);
    }
    if (keep < size) note(base_.truncate_file(path, keep));
  }
  files_.clear();

  // 3. A fresh machine: no injected failures, and stale handles fail.
  write_failure_.reset();
  sync_failure_.reset();
  crash_at_.reset();
  ++generation_;
  return first_error;
}

std::error_code fault_injection_file_system::flip_bit(const std::string& path,
                                                      std::uint64_t offset, int bit) {
  const std::lock_guard lock(mutex_);
  return annal::testing::flip_bit(path, offset, bit);
}

std::error_code fault_injection_file_system::open_writable(
    const std::string& path, std::unique_ptr<engine::writable_file>& out) {
  const std::lock_guard lock(mutex_);
  if (crashed_locked()) return io_error();
  const std::string key = normalize(path);
  const bool existed = base_.exists(path);
  std::unique_ptr<engine::writable_file> file;
  if (auto ec = base_.open_writable(path, file)) return ec;
  auto& state = files_[key];
  if (!existed) {
    state = std::make_shared<file_state>();
    pending_.push_back({.what = pending_entry::kind::created, .directory = parent_of(key), .path = key});
  } else if (!state) {
    state = std::make_shared<file_state>(file_state{.synced_size = file->size()});
  }
  out = std::make_unique<writable>(*this, state, std::move(file), generation_);
  return {};
}

std::error_code fault_injection_file_system::open_writable_at(
    const std::string& path, std::uint64_t offset, std::unique_ptr<engine::writable_file>& out) {
  const std::lock_guard lock(mutex_);
  if (crashed_locked()) return io_error();
  const std::string key = normalize(path);
  std::unique_ptr<engine::writable_file> file;
  if (auto ec = base_.open_writable_at(path, offset, file)) return ec;
  std::unique_ptr<engine::readable_file> reader;
  if (auto ec = base_.open_readable(path, reader)) return ec;
  auto& state = files_[key];
  if (!state) {
    std::uint64_t size = 0;
    if (auto ec = base_.file_size(path, size)) return ec;
    state = std::make_shared<file_state>(file_state{.synced_size = size});
  }
  out = std::make_unique<writable>(*this, state, std::move(file), generation_, std::move(reader));
  return {};
}

std::error_code fault_injection_file_system::open_readable(
    const std::string& path, std::unique_ptr<engine::readable_file>& out) {
  std::uint64_t generation = 0;
  {
    const std::lock_guard lock(mutex_);
    generation = generation_;
  }
  std::unique_ptr<engine::readable_file> file;
  if (auto ec = base_.open_readable(path, file)) return ec;
  out = std::make_unique<readable>(*this, std::move(file), generation);
  return {};
}

std::error_code fault_injection_file_system::write_file(const std::string& path,
                                                        std::span<const std::byte> data) {
  const std::lock_guard lock(mutex_);
  if (auto ec = begin_mutation_locked()) return ec;
  if (write_failure_) return std::make_error_code(*write_failure_);
  const std::string key = normalize(path);
  const bool existed = base_.exists(path);
  if (auto ec = base_.write_file(path, data)) return ec;
  if (sync_failure_) {
    // Written and visible, but neither the bytes nor a new name is durable.
    auto& state = files_[key];
    if (!state) state = std::make_shared<file_state>();
    state->synced_size = 0;
    if (!existed) {
      pending_.push_back({.what = pending_entry::kind::created, .directory = parent_of(key), .path = key});
    }
    return std::make_error_code(*sync_failure_);
  }
  if (auto it = files_.find(key); it != files_.end()) it->second->synced_size = data.size();
  directory_synced_locked(parent_of(key));
  return {};
}

std::error_code fault_injection_file_system::read_file(const std::string& path,
                                                       std::vector<std::byte>& out) {
  return base_.read_file(path, out);
}

std::error_code fault_injection_file_system::truncate_file(const std::string& path,
                                                           std::uint64_t size) {
  const std::lock_guard lock(mutex_);
  if (auto ec = begin_mutation_locked()) return ec;
  if (auto ec = base_.truncate_file(path, size)) return ec;
  const auto it = files_.find(normalize(path));
  if (sync_failure_) {
    // The cut is kept (the bytes are gone from the base), but bytes below
    // `size` that were not durable stay so.
    if (it != files_.end()) it->second->synced_size = std::min(it->second->synced_size, size);
    return std::make_error_code(*sync_failure_);
  }
  if (it != files_.end()) it->second->synced_size = size;
  return {};
}

std::error_code fault_injection_file_system::remove_file(const std::string& path) {
  const std::lock_guard lock(mutex_);
  if (auto ec = begin_mutation_locked()) return ec;
  const std::string key = normalize(path);
  // Keep the durable bytes so that power_loss can bring the file back, unless
  // the file itself is not yet durable (then undoing its creation suffices).
  std::optional<pending_entry> entry;
  if (!pending_creation_locked(key)) {
    std::vector<std::byte> content;
    if (!base_.read_file(path, content)) {
      if (auto it = files_.find(key); it != files_.end()) {
        // Only what a power loss would keep: unsynced in-place writes undone,
        // unsynced appends cut.
        const auto& overwrites = it->second->overwrites;
        for (auto o = overwrites.rbegin(); o != overwrites.rend(); ++o) {
          for (std::size_t i = 0; i < o->old.size() && o->offset + i < content.size(); ++i) {
            content[o->offset + i] = o->old[i];
          }
        }
        content.resize(std::min<std::uint64_t>(content.size(), it->second->synced_size));
      }
      entry = pending_entry{.what = pending_entry::kind::removed,
                            .directory = parent_of(key),
                            .path = key,
                            .durable_bytes = std::move(content)};
    }
  }
  if (auto ec = base_.remove_file(path)) return ec;
  files_.erase(key);
  if (entry) pending_.push_back(std::move(*entry));
  return {};
}

std::error_code fault_injection_file_system::rename_file(const std::string& from,
                                                         const std::string& to) {
  const std::lock_guard lock(mutex_);
  if (auto ec = begin_mutation_locked()) return ec;
  const std::string from_key = normalize(from);
  const std::string to_key = normalize(to);
  const bool target_existed = base_.exists(to);
  if (auto ec = base_.rename_file(from, to)) return ec;
  // The durable-size state travels with the file; an untracked source is
  // fully durable, and so is the target now.
  move_tracking_locked(from_key, to_key);
  if (sync_failure_) {
    pending_.push_back({.what = pending_entry::kind::renamed,
                        .directory = parent_of(to_key),
                        .path = from_key,
                        .to = to_key,
                        .target_existed = target_existed});
    return std::make_error_code(*sync_failure_);
  }
  directory_synced_locked(parent_of(to_key));
  directory_synced_locked(parent_of(from_key));
  return {};
}

std::error_code fault_injection_file_system::create_directories(const std::string& path) {
  const std::lock_guard lock(mutex_);
  if (auto ec = begin_mutation_locked()) return ec;
  if (sync_failure_) return std::make_error_code(*sync_failure_);
  const std::string key = normalize(path);
  std::vector<std::string> missing;
  for (std::size_t slash = key.find('/', 1); ; slash = key.find('/', slash + 1)) {
    const std::string prefix = key.substr(0, slash);
    if (!base_.exists(prefix)) missing.push_back(prefix);
    if (slash == std::string::npos) break;
  }
  const auto ec = base_.create_directories(path);
  for (const auto& directory : missing) {
    if (base_.exists(directory)) directory_synced_locked(parent_of(directory));
  }
  return ec;
}

std::error_code fault_injection_file_system::list_files(const std::string& path,
                                                        std::vector<std::string>& names) {
  return base_.list_files(path, names);
}

bool fault_injection_file_system::exists(const std::string& path) { return base_.exists(path); }

std::error_code fault_injection_file_system::file_size(const std::string& path,
                                                       std::uint64_t& size) {
  return base_.file_size(path, size);
}

std::error_code fault_injection_file_system::sync_directory(const std::string& path) {
  const std::lock_guard lock(mutex_);
  if (auto ec = begin_mutation_locked()) return ec;
  if (sync_failure_) return std::make_error_code(*sync_failure_);
  if (auto ec = base_.sync_directory(path)) return ec;
  directory_synced_locked(normalize(path));
  return {};
}

std::error_code fault_injection_file_system::begin_mutation_locked() {
  const std::uint64_t index = mutating_operations_++;
  if (crash_at_ && index >= *crash_at_) return io_error();
  return {};
}

bool fault_injection_file_system::crashed_locked() const {
  return crash_at_ && mutating_operations_ >= *crash_at_;
}

void fault_injection_file_system::directory_synced_locked(const std::string& directory) {
  std::erase_if(pending_, [&](const pending_entry& e) { return e.directory == directory; });
}

void fault_injection_file_system::move_tracking_locked(const std::string& from,
                                                       const std::string& to) {
  auto node = files_.extract(from);
  files_.erase(to);
  if (node) {
    node.key() = to;
    files_.insert(std::move(node));
  }
}

bool fault_injection_file_system::pending_creation_locked(const std::string& path) const {
  return std::any_of(pending_.begin(), pending_.end(), [&](const pending_entry& e) {
    return e.what == pending_entry::kind::created && e.path == path;
  });
}

std::error_code fault_injection_file_system::before_append(std::uint64_t generation) {
  const std::lock_guard lock(mutex_);
  if (generation != generation_) return io_error();
  if (auto ec = begin_mutation_locked()) return ec;
  if (write_failure_) return std::make_error_code(*write_failure_);
  return {};
}

std::error_code fault_injection_file_system::before_sync(std::uint64_t generation) {
  const std::lock_guard lock(mutex_);
  if (generation != generation_) return io_error();
  if (auto ec = begin_mutation_locked()) return ec;
  if (sync_failure_) return std::make_error_code(*sync_failure_);
  return {};
}

void fault_injection_file_system::after_sync(file_state& state, std::uint64_t durable_size,
                                             std::uint64_t sequence) {
  const std::lock_guard lock(mutex_);
  if (durable_size > state.synced_size) {
    largest_sync_growth_ = std::max(largest_sync_growth_, durable_size - state.synced_size);
  }
  state.synced_size = std::max(state.synced_size, durable_size);
  std::erase_if(state.overwrites, [&](const overwrite& o) { return o.sequence < sequence; });
}

std::uint64_t fault_injection_file_system::sync_mark(const file_state& state) const {
  const std::lock_guard lock(mutex_);
  return state.next_sequence;
}

void fault_injection_file_system::record_overwrite(file_state& state, std::uint64_t offset,
                                                   std::uint64_t length,
                                                   std::vector<std::byte> old) {
  const std::lock_guard lock(mutex_);
  state.overwrites.push_back(
      {.sequence = state.next_sequence++, .offset = offset, .length = length, .old = std::move(old)});
}

std::error_code fault_injection_file_system::undo_overwrites_locked(const std::string& path,
                                                                    const file_state& state,
                                                                    std::uint64_t keep,
                                                                    std::uint64_t& kept_end) {
  // How much of each write the kept prefix covers, in write order.
  std::vector<std::uint64_t> kept(state.overwrites.size(), 0);
  kept_end = 0;
  for (std::size_t i = 0; i < state.overwrites.size() && keep > 0; ++i) {
    kept[i] = std::min(keep, state.overwrites[i].length);
    keep -= kept[i];
    kept_end = std::max(kept_end, state.overwrites[i].offset + kept[i]);
  }
  std::error_code first_error;
  for (std::size_t i = state.overwrites.size(); i-- > 0;) {
    const auto& o = state.overwrites[i];
    if (kept[i] >= o.old.size()) continue;  // nothing it overwrote to bring back
    std::unique_ptr<engine::writable_file> file;
    auto ec = base_.open_writable_at(path, o.offset + kept[i], file);
    if (!ec) ec = file->append(std::span(o.old).subspan(kept[i]));
    if (ec && !first_error) first_error = ec;
  }
  return first_error;
}

std::error_code fault_injection_file_system::check_generation(std::uint64_t generation) const {
  const std::lock_guard lock(mutex_);
  if (generation != generation_) return io_error();
  return {};
}

}  // namespace annal::testing
