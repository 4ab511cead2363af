#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "engine/file_system.hpp"

namespace annal::testing {

// A file_system for crash and failure tests, after leveldb's
// FaultInjectionTestEnv. It forwards every call to a base file system (in
// tests posix_file_system() on a temp_dir, so the files are real) and keeps a
// model of what a power loss would keep:
//
// - per file, how many leading bytes are durable. Appended bytes become
//   durable when writable_file::sync returns; write_file and truncate_file
//   are durable on return (interface contract). Files that existed before
//   this object was created, or before the last power_loss, are fully durable.
// - per file, the in-place writes (open_writable_at) not yet synced, in write
//   order, each with the bytes it overwrote. A sync of any handle of the file
//   makes every one written before the sync started durable, as fdatasync
//   does.
// - which directory entries were created (open_writable on a missing file),
//   removed or renamed since their directory was last synced, in order. A
//   directory is synced by sync_directory, and implicitly by write_file
//   (the file's directory), rename_file (both directories) and
//   create_directories (each parent it changed), as the interface promises.
//
// Paths are compared as strings after collapsing repeated '/' and dropping a
// trailing '/': use one spelling per file (no "." or ".." tricks).
//
// Thread-safe. Metadata operations run under mutex_ including their base
// call, so they are serialised; appends and syncs of open files do their I/O
// outside mutex_, so a group-commit thread can sync while the owner appends.
//
// Owned by the test. It must outlive every file opened through it, and `base`
// must outlive it.
class fault_injection_file_system final : public engine::file_system {
 public:
  enum class power_loss_mode {
    // Every file is cut back to its durable size.
    drop_unsynced,
    // Every file keeps its durable bytes plus a prefix of its unsynced bytes
    // of a length chosen per file from the seed: a torn last write.
    tear_unsynced,
  };

  explicit fault_injection_file_system(engine::file_system& base);

  fault_injection_file_system(const fault_injection_file_system&) = delete;
  fault_injection_file_system& operator=(const fault_injection_file_system&) = delete;

  // Every later append and write_file fails with `e` without writing anything,
  // until clear_failures() or power_loss().
  void fail_writes(std::errc e);

  // Every later operation that syncs fails with `e`, as a failed fsync does:
  // - writable_file::sync: nothing more becomes durable.
  // - sync_directory: the directory's pending entries stay pending.
  // - write_file, rename_file, truncate_file: the change is made (and is
  //   visible) but is not durable; power_loss undoes what it can (see there).
  // - create_directories: fails without creating anything, because a
  //   directory cannot be removed through engine::file_system and so a
  //   non-durable creation could not be undone.
  // Lasts until clear_failures() or power_loss().
  void fail_syncs(std::errc e);

  // Clears fail_writes, fail_syncs and the crash point (a "restarted process"
  // after crash_after, without a power loss).
  void clear_failures();

  // After `n` more mutating operations (append, writable_file::sync,
  // write_file, truncate_file, remove_file, rename_file, create_directories,
  // sync_directory), every mutating operation fails with EIO and changes
  // nothing: the process died there. open_writable fails with EIO too once
  // crashed but is not counted. Reads keep working.
  void crash_after(std::uint64_t n);

  // Mutating operations attempted so far, including those that failed.
  std::uint64_t mutating_operations() const;
  // The most bytes one writable_file::sync has made durable past the file's
  // durable size so far (appended bytes; in-place writes do not count).
  std::uint64_t largest_sync_growth() const;

  // Simulates a power loss, in this order:
  // 1. Undoes the directory changes not yet durable, newest first: a created
  //    file is removed; a removed file is written back with the bytes that
  //    were durable when it was removed; a renamed file is renamed back if the
  //    target did not exist before (if it did, the rename is kept, which is
  //    the other outcome a real file system allows: the old target content
  //    cannot be restored).
  // 2. Cuts every tracked file back to its durable size (drop_unsynced) or to
  //    its durable size plus a prefix of its unsynced bytes (tear_unsynced).
  //    For a file written in place, the unsynced in-place writes are undone
  //    instead (their old bytes are written back, newest first), all of them
  //    (drop_unsynced) or all but a prefix of them in write order
  //    (tear_unsynced); bytes they added past the durable size are cut.
  //    The prefix lengths are drawn from `seed` in sorted path order, so the
  //    same scenario replayed in another temp_dir tears the same way.
  // 3. Clears fail_writes, fail_syncs and the crash point; everything then on
  //    disk counts as durable.
  // Not modelled: torn writes that leave zeros or garbage instead of a prefix,
  // reordering of durable bytes, the old content of a file replaced by a
  // write_file whose sync failed (it comes back empty or as a prefix of the
  // new content), bytes cut by a truncate_file whose sync failed (they do not
  // come back), and metadata (mode, times).
  // Requires: no writable_file or readable_file from this object is in use any
  // more (the store using it has been destroyed). Files opened before the
  // power loss are stale afterwards: every operation on them fails with EIO
  // (readable_file::size still reports the current size). Using one
  // concurrently with power_loss is a data race on the real file.
  // Returns the first error of the base file system; it still does the rest.
  std::error_code power_loss(power_loss_mode mode, std::uint64_t seed = 0);

  // Flips one bit of a file on disk (see byte_damage.hpp). Neither counted
  // nor affected by injected failures; the durable-size model is unchanged.
  std::error_code flip_bit(const std::string& path, std::uint64_t offset, int bit);

  // engine::file_system
  std::error_code open_writable(const std::string& path,
                                std::unique_ptr<engine::writable_file>& out) override;
  std::error_code open_writable_at(const std::string& path, std::uint64_t offset,
                                   std::unique_ptr<engine::writable_file>& out) override;
  std::error_code open_readable(const std::string& path,
                                std::unique_ptr<engine::readable_file>& out) override;
  std::error_code write_file(const std::string& path, std::span<const std::byte> data) override;
  std::error_code read_file(const std::string& path, std::vector<std::byte>& out) override;
  std::error_code truncate_file(const std::string& path, std::uint64_t size) override;
  std::error_code remove_file(const std::string& path) override;
  std::error_code rename_file(const std::string& from, const std::string& to) override;
  std::error_code create_directories(const std::string& path) override;
  std::error_code list_files(const std::string& path, std::vector<std::string>& names) override;
  bool exists(const std::string& path) override;
  std::error_code file_size(const std::string& path, std::uint64_t& size) override;
  std::error_code sync_directory(const std::string& path) override;

 private:
  class writable;
  class readable;

  // An in-place write not yet synced: `length` bytes at `offset`, which held
  // `old` before (shorter than `length` where the write went past the end).
  struct overwrite {
    std::uint64_t sequence = 0;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    std::vector<std::byte> old{};
  };

  // Durable state of one tracked file. Shared with the writable files open on
  // it, so that it follows the file through renames. Guarded by mutex_.
  struct file_state {
    std::uint64_t synced_size = 0;
    std::vector<overwrite> overwrites{};  // unsynced in-place writes, oldest first
    std::uint64_t next_sequence = 0;      // of the next overwrite
  };

  // A directory change not yet durable.
  struct pending_entry {
    enum class kind { created, removed, renamed };
    kind what = kind::created;
    std::string directory{};  // whose sync makes the change durable
    std::string path{};       // created / removed file; rename source
    std::string to{};         // rename target
    bool target_existed = false;             // renamed: `to` existed before
    std::vector<std::byte> durable_bytes{};  // removed: content to bring back
  };

  // The *_locked helpers require mutex_ held.
  // Counts one mutating operation; EIO if the process has "died".
  std::error_code begin_mutation_locked();
  bool crashed_locked() const;
  // Drops the pending entries that a sync of `directory` made durable.
  void directory_synced_locked(const std::string& directory);
  bool pending_creation_locked(const std::string& path) const;
  // Moves the durable-size state of `from` (if tracked) to `to`; an untracked
  // `from` leaves `to` untracked, that is fully durable. Paths normalised.
  void move_tracking_locked(const std::string& from, const std::string& to);

  // Hooks for writable / readable.
  std::error_code before_append(std::uint64_t generation);
  std::error_code before_sync(std::uint64_t generation);
  void after_sync(file_state& state, std::uint64_t durable_size, std::uint64_t sequence);
  // The sequence number the next in-place write to `state` will get.
  std::uint64_t sync_mark(const file_state& state) const;
  void record_overwrite(file_state& state, std::uint64_t offset, std::uint64_t length,
                        std::vector<std::byte> old);
  // Undoes the unsynced in-place writes of the file at `path` but a prefix of
  // `keep` bytes of them (in write order); returns how far the kept ones reach.
  std::error_code undo_overwrites_locked(const std::string& path, const file_state& state,
                                         std::uint64_t keep, std::uint64_t& kept_end);
  std::error_code check_generation(std::uint64_t generation) const;

  engine::file_system& base_;

  mutable std::mutex mutex_;
  // Tracked files by normalised path; an untracked file is fully durable.
  std::map<std::string, std::shared_ptr<file_state>> files_;  // guarded by mutex_
  std::vector<pending_entry> pending_;                         // guarded by mutex_, oldest first
  std::optional<std::errc> write_failure_;                     // guarded by mutex_
  std::optional<std::errc> sync_failure_;                      // guarded by mutex_
  std::optional<std::uint64_t> crash_at_;                      // guarded by mutex_
  std::uint64_t mutating_operations_ = 0;                      // guarded by mutex_
  std::uint64_t largest_sync_growth_ = 0;                      // guarded by mutex_
  // Bumped by power_loss; files opened under an older generation are stale.
  std::uint64_t generation_ = 0;  // guarded by mutex_
};

}  // namespace annal::testing
