#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/errors.hpp"
#include "engine/file_system.hpp"
#include "engine/log_format.hpp"
#include "engine/types.hpp"

namespace annal::engine {

// A record read from a log. `owner` keeps the bytes alive; views into the
// payload stay valid as long as some copy of the record_ref does.
struct record_ref {
  std::shared_ptr<const void> owner;
  std::span<const std::byte> frame;  // header + payload, CRC checked
  log_format::record_header header;

  std::span<const std::byte> payload() const { return frame.subspan(log_format::k_header_size); }
  lsn end() const { return lsn{header.position.value() + frame.size()}; }
};

struct partition_log_options {
  std::uint64_t segment_bytes = 64u << 20;      // roll to a new segment past this
  std::size_t write_buffer_bytes = 256u << 10;  // write() to the file past this
  std::size_t read_ahead_bytes = 256u << 10;    // bytes fetched per file read
};

// The segmented log of one partition: segment files named by their first lsn
// (20 decimal digits + ".seg"), records framed per log_format.hpp, lsn = byte
// position in the concatenation of all segments.
//
// Appends are buffered and written to the OS without waiting for a sync; the
// node log makes them durable, and sync() (run by the checkpoint) makes the
// segment files themselves durable. Reads see every appended record: the
// unwritten tail is served from the buffer.
//
// Not thread-safe: owned by one partition. Blocking (file I/O).
class partition_log {
 public:
  struct segment_info {
    lsn base;
    std::uint64_t bytes = 0;  // including buffered bytes for the active segment
  };

  // Opens the log in `dir` (created if missing). `live_segments` and `end`
  // come from the partition checkpoint: listed segments must exist with at
  // least their listed size; bytes past that (only the last segment may have
  // them) were never synced and are cut (the node log replays what was
  // durable); unlisted segment files are leftovers and are removed. Logs what
  // it drops. Segments need not be contiguous: retention removes whole ones.
  static result<std::unique_ptr<partition_log>> open(file_system& fs, std::string dir,
                                                     partition_id partition,
                                                     partition_log_options options, lsn end,
                                                     const std::vector<segment_info>& live_segments);

  lsn end() const { return end_; }
  // The first lsn still stored (segments before it were removed by retention).
  lsn begin() const;
  const std::vector<segment_info>& segments() const { return segments_; }
  std::vector<std::uint64_t> segment_bases() const;
  const std::string& directory() const { return dir_; }

  // Appends one sealed frame. Requires: its header lsn == end() and
  // partition == this partition. A failed write makes the log refuse all
  // later appends (sticky).
  status append(std::span<const std::byte> frame);
  // The syncs that make a log durable up to a point, detached from it so
  // that another thread can run them while the owner keeps appending
  // (writable_file::sync allows that).
  class pending_sync {
   public:
    // fdatasyncs the files, then the directory if it changed. Blocking; any
    // thread. Errors name the file.
    status run() const;

   private:
    friend class partition_log;
    struct file_to_sync {
      std::shared_ptr<writable_file> file;
      std::string path;
    };
    file_system* fs_ = nullptr;
    std::string dir_;
    std::vector<file_to_sync> files_;
    bool directory_ = false;
  };

  // Writes buffered bytes to the OS (no sync).
  status flush();
  // Flushes, fdatasyncs every segment written since the last sync, and syncs
  // the directory if segments were created. On return everything below end()
  // is durable in the segment files.
  status sync();
  // sync() in two halves: flushes and returns what sync() would sync, which
  // makes everything below end() (as of this call) durable once run. The log
  // counts it as synced from here on: if the run fails, the owner must call
  // fail_sync() with its error.
  result<pending_sync> begin_sync();
  // A detached sync failed: the log refuses all later appends (sticky).
  status fail_sync(error e) { return fail(std::move(e)); }

  // The record at `at`, checksum- and lsn-checked. Errors name file and offset.
  // An lsn in a segment removed by retention is errc::invalid_argument.
  result<record_ref> read(lsn at);
  // Records from `from` (a record boundary) until about `max_bytes` (at least
  // one record unless `from` == end()). Skips over removed segments: the
  // first record returned may start after `from`.
  result<std::vector<record_ref>> read_from(lsn from, std::size_t max_bytes);

  // Drops the sealed segment starting at `base` from the log; its file stays
  // for the caller to remove (a checkpoint job does, off the owner's thread).
  // The next begin_sync() syncs the directory. Requires: it is not the
  // segment that end() lies in.
  status forget_segment(lsn base);
  // The file of the segment starting at `base`.
  std::string path_of(lsn base) const;

  // Drops every record: afterwards the log is empty at lsn 0, like a new one,
  // and the next append starts a segment at lsn 0. Removes every segment file
  // in the directory (listed or not) and syncs the directory, so that no old
  // file survives a power loss under a name a new segment will take. Records
  // read before stay readable through their record_refs. A failed removal is
  // sticky, like a failed write; an earlier sticky failure stays.
  // Requires: no checkpoint a restart may load lists a segment (it would no
  // longer load).
  status clear();

  // File name of the segment starting at `base`.
  static std::string segment_name(lsn base);

 private:
  struct open_segment {
    std::unique_ptr<readable_file> file;
    // A sealed segment mapped whole (when the file system offers mapping).
    std::span<const std::byte> mapped;
    std::shared_ptr<const void> mapping;
    bool map_tried = false;
  };
  // Bytes read from a file, not zero-filled first (reads are hot).
  struct read_buffer {
    std::unique_ptr<std::byte[]> data;
    std::size_t size = 0;
    std::span<std::byte> view() const { return {data.get(), size}; }
  };
  struct chunk {
    std::shared_ptr<const read_buffer> bytes;
    lsn base{};  // lsn of bytes->data[0]
  };

  partition_log(file_system& fs, std::string dir, partition_id partition,
                partition_log_options options);

  // Index of the segment holding `at`, or npos if `at` is in a removed range.
  std::size_t segment_index(lsn at) const;
  status start_segment(lsn base);
  status fail(error e);
  error damaged(lsn at, std::string_view what) const;
  result<record_ref> read_from_buffer(lsn at);
  result<record_ref> read_from_file(lsn at);
  result<record_ref> read_from_mapping(lsn at, std::size_t segment);

  file_system& fs_;
  std::string dir_;
  partition_id partition_;
  partition_log_options options_;

  std::vector<segment_info> segments_;          // ascending by base; last is active
  std::vector<open_segment> readers_;           // parallel to segments_, opened lazily
  std::shared_ptr<writable_file> writer_;  // the active segment
  // Sealed and written, not yet synced.
  std::vector<pending_sync::file_to_sync> unsynced_;
  bool directory_dirty_ = false;
  std::vector<std::byte> buffer_;  // appended, not yet written; starts at written_end_
  lsn written_end_{};              // end of what the OS has
  lsn end_{};
  chunk last_chunk_;               // read-ahead cache
  std::size_t last_record_bytes_ = 0;  // size of the last record read from a file
  std::optional<error> failure_;   // sticky
};

}  // namespace annal::engine
