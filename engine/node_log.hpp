#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/errors.hpp"
#include "engine/file_system.hpp"
#include "engine/types.hpp"

namespace annal::engine {

enum class fsync_mode {
  always,    // an append is acknowledged after the fdatasync that covers it
  interval,  // acknowledged once written; fdatasync at most every sync_interval
  none,      // acknowledged once written; the OS decides when to write back
};

struct node_log_options {
  // Segments are created this large, zero-filled and synced (not under
  // fsync_mode::none); a new one starts once the active one holds at least
  // this much.
  std::uint64_t segment_bytes = 64u << 20;
  fsync_mode mode = fsync_mode::always;
  std::chrono::milliseconds sync_interval{100};
  // Zero-fill the next segment on a thread of the node log once the active
  // one is half full. false: the sync round that finds it half full does it
  // (deterministic file operations, for crash tests).
  bool prepare_in_background = true;
  // Format 2 (docs/log_format.md, "Node log"): each segment salts the CRCs
  // of its frames with crc_salt(its base), and released segments are reused
  // instead of deleted (not under fsync_mode::none). false: format 1, for
  // stores created before it: plain frames, and every segment zero-filled.
  bool salt_frames = true;
};

// The node-wide write-ahead log: every partition's records go here, and one
// fdatasync per round (group commit) makes every record appended before the
// round durable. Segment files are named by their first node-log position
// (20 decimal digits + ".wal") and hold whole frames back to back, followed
// by zeros: a segment is created at segment_bytes, zero-filled and synced
// before it is used, so that a round only overwrites zeros in place and its
// fdatasync changes neither the file size nor the block map (no file-system
// journal commit). The next segment is zero-filled as "next.wal.tmp" while
// the active one fills up, and renamed into place when the log rolls. Under
// fsync_mode::none segments are not preallocated: they grow as written.
// With salt_frames, a released segment is kept as a spare ("spare-*.wal.tmp")
// and becomes the next segment without zero-filling: its old records stay
// behind the new ones, and the salt tells them apart.
//
// Thread-safe: partitions append from their own threads while one thread
// runs sync() rounds. A failed write or fdatasync is sticky: every later
// append and sync fails with errc::io_error; nothing is retried. Owns a
// thread that prepares the next segment (prepare_in_background), joined by
// the destructor.
class node_log {
 public:
  struct segment {
    node_log_position base;
    std::uint64_t bytes = 0;  // of records, not the file size (zeros follow)
  };

  // Opens for appending at `end` of the last of `existing` segments (as left
  // by recovery), or at a new segment starting at `end` if there are none.
  // Deletes a leftover "next.wal.tmp"; keeps spares (salt_frames).
  // Requires: the bytes of the last segment from `end` on hold no frame that
  // is valid under its salt (without salt_frames: are zeros).
  // Partitions release segments with release().
  static result<std::unique_ptr<node_log>> open(file_system& fs, std::string dir,
                                                node_log_options options,
                                                std::vector<segment> existing,
                                                node_log_position end,
                                                std::uint32_t partition_count);

  // Copies one sealed frame into the pending round. Returns the position just
  // past it: the frame is acknowledged (durable under fsync=always) once
  // durable_position() >= that position.
  result<node_log_position> append(std::span<const std::byte> frame);

  // One group-commit round: writes every pending frame and, per the fsync
  // mode, fdatasyncs. Writes are serialized; fdatasyncs of concurrent rounds
  // overlap (several sync threads raise throughput: the device serves
  // several syncs at once). Appends continue meanwhile. Returns the durable
  // position, which never moves back. Blocking.
  result<node_log_position> sync();
  // A round that fdatasyncs whatever the mode: on return everything
  // appended before the call is on disk. Checkpoints use it, so that the
  // node-log position they record never lies past what a power loss keeps.
  result<node_log_position> sync_to_disk();

  // Everything below this position is acknowledged.
  node_log_position durable_position() const {
    return node_log_position{durable_.load(std::memory_order_acquire)};
  }
  // Position the next appended frame will start at.
  node_log_position appended_position() const;
  bool has_pending() const;
  // The sticky failure, if any.
  std::optional<error> failure() const;

  // Partition `p` no longer needs records before `pos` (its checkpoint covers
  // them). Segments that end at or before every partition's released position
  // are deleted, or kept as spares (salt_frames).
  status release(partition_id p, node_log_position pos);

  std::vector<segment> segments() const;
  // Paths of the released segments kept for reuse, oldest first.
  std::vector<std::string> spares() const;
  const std::string& directory() const { return dir_; }
  static std::string segment_name(node_log_position base);
  // The CRC salt of the frames of the segment starting at `base` (format 2):
  // never 0, and different for different bases but with odds of 2^-32.
  static std::uint32_t crc_salt(node_log_position base);

  ~node_log();
  node_log(const node_log&) = delete;
  node_log& operator=(const node_log&) = delete;

  // Atomically raises `position` to `to` if it is below (for publishing
  // durable positions from several sync threads).
  static void raise(std::atomic<std::uint64_t>& position, std::uint64_t to);

 private:
  node_log(file_system& fs, std::string dir, node_log_options options,
           std::uint32_t partition_count);
  status fail_locked(error e);  // Requires: append_mu_ held.
  result<node_log_position> round(bool force_fdatasync);
  // Salts and writes `records` (whole frames) at the end, rolling to a new
  // segment first if the active one is full. With salted frames an end mark
  // follows them in the same write (a zero header, overwritten by the next
  // round): after it, a reused file's old bytes are told apart from an
  // interrupted write (docs/log_format.md). Grows `records` by the mark.
  // Requires: io_mu_ held.
  status write_round(std::vector<std::byte>& records, std::uint64_t round_start);
  // Starts a new active segment at `base` from the prepared next segment,
  // preparing it first if it is not ready. Requires: io_mu_ held.
  status roll(node_log_position base);
  // Creates next.wal.tmp at segment_bytes of zeros and fdatasyncs it (empty
  // under fsync_mode::none), or renames a spare to it. Its name becomes
  // durable with the rename that puts it in place.
  status prepare_next_segment();
  // Whether released segments become spares.
  bool recycles() const {
    return options_.salt_frames && options_.mode != fsync_mode::none;
  }
  // Keeps the released segment file `path` as a spare, or deletes it.
  status retire(const std::string& path);
  void run_preparer();

  enum class preparation { idle, requested, running, ready, failed };
  file_system& fs_;
  const std::string dir_;
  const node_log_options options_;

  mutable std::mutex append_mu_;
  std::vector<std::byte> pending_;     // guarded by append_mu_
  std::uint64_t appended_ = 0;         // guarded by append_mu_
  std::optional<error> failure_;       // guarded by append_mu_

  std::mutex io_mu_;                   // one sync round at a time
  std::vector<std::byte> writing_;     // guarded by io_mu_
  // Shared so a round can fdatasync it outside io_mu_ while a roll replaces it.
  std::shared_ptr<writable_file> writer_;  // guarded by io_mu_
  std::chrono::steady_clock::time_point last_fdatasync_;  // guarded by io_mu_
  std::atomic<std::uint64_t> fdatasynced_{0};  // position fdatasyncs have covered

  mutable std::mutex segments_mu_;
  std::vector<segment> segments_;           // guarded by segments_mu_; last is active
  std::vector<std::uint64_t> released_;     // guarded by segments_mu_; per partition
  std::vector<std::string> spares_;         // guarded by segments_mu_

  std::atomic<std::uint64_t> durable_{0};

  std::mutex prepare_mu_;
  std::condition_variable prepare_cv_;
  preparation next_ = preparation::idle;  // guarded by prepare_mu_
  std::optional<error> prepare_failure_;  // guarded by prepare_mu_
  bool stopping_ = false;                 // guarded by prepare_mu_
  std::atomic<bool> abandon_preparation_{false};  // set by the destructor
  std::thread preparer_;                  // when prepare_in_background
};

}  // namespace annal::engine
