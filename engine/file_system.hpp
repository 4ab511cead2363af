#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace annal::engine {

// All file I/O of the engine goes through these interfaces, so that tests can
// swap in a file system that drops unsynced bytes, tears writes or fails
// (see tests/support/fault_injection_file_system.hpp).
//
// Errors are std::error_code values in std::generic_category() (EIO, ENOSPC,
// ENOENT ...), never exceptions.

// A file opened for appending (open_writable), or for writing in place from
// a given offset on (open_writable_at). Owned by one writer; `sync` may run on
// another thread concurrently with `append` (the group-commit thread syncs
// while the owner keeps appending). `size` is safe from either thread.
class writable_file {
 public:
  virtual ~writable_file() = default;

  // Writes all of `data` at the write position, which is the end of the file
  // for open_writable, and moves the position past it (a short write is an
  // error). In place, the bytes there are overwritten; the file grows only by
  // what lands past its end.
  virtual std::error_code append(std::span<const std::byte> data) = 0;
  // Like append, but the last `mark_bytes` of `data` are an end mark: they
  // are written in the same write as the rest, and the position moves only
  // past the bytes before them, so the next append overwrites the mark. A
  // file opened with open_writable writes no mark: its end is where the data
  // ends. Requires: mark_bytes <= data.size().
  virtual std::error_code append_with_mark(std::span<const std::byte> data,
                                           std::size_t mark_bytes) = 0;
  // fdatasync: every byte appended before the call is durable on return.
  virtual std::error_code sync() = 0;
  // The write position: for open_writable the bytes in the file, including
  // bytes not yet synced.
  virtual std::uint64_t size() const = 0;
};

// A file opened for positional reads. Thread-safe.
class readable_file {
 public:
  virtual ~readable_file() = default;

  // Reads up to `out.size()` bytes at `offset`; returns the count read, which
  // is shorter than requested only at the end of the file.
  virtual std::error_code read(std::uint64_t offset, std::span<std::byte> out,
                               std::size_t& bytes_read) const = 0;
  virtual std::uint64_t size() const = 0;

  // Maps the first `size` bytes read-only: `view` stays valid while some
  // copy of `keep_alive` lives. Only for files that no longer change (sealed
  // segments). ENOTSUP where mapping is not offered; callers then read().
  virtual std::error_code map(std::uint64_t size, std::span<const std::byte>& view,
                              std::shared_ptr<const void>& keep_alive) const {
    return std::make_error_code(std::errc::not_supported);
  }
};

// Thread-safe. Paths are plain strings joined with '/'.
class file_system {
 public:
  virtual ~file_system() = default;

  // Opens `path` for appending at its end, creating it if missing.
  virtual std::error_code open_writable(const std::string& path,
                                        std::unique_ptr<writable_file>& out) = 0;
  // Opens the existing file `path` for writing in place at `offset` and on
  // (pwrite, no O_APPEND): the node log overwrites the zeros of a segment it
  // preallocated, so that an fdatasync changes no file size or block map.
  // ENOENT if the file is missing.
  virtual std::error_code open_writable_at(const std::string& path, std::uint64_t offset,
                                           std::unique_ptr<writable_file>& out) = 0;
  virtual std::error_code open_readable(const std::string& path,
                                        std::unique_ptr<readable_file>& out) = 0;

  // Writes `data` to `path` (replacing it), syncs it, and syncs the parent
  // directory: on return the file is durable under that name. Used for
  // checkpoints via a temporary name + rename_file.
  virtual std::error_code write_file(const std::string& path,
                                     std::span<const std::byte> data) = 0;
  // Reads the whole file.
  virtual std::error_code read_file(const std::string& path,
                                    std::vector<std::byte>& out) = 0;

  // Shrinks `path` to `size` bytes and syncs it.
  virtual std::error_code truncate_file(const std::string& path, std::uint64_t size) = 0;
  virtual std::error_code remove_file(const std::string& path) = 0;
  // Renames and syncs the directory, so the rename is durable on return.
  virtual std::error_code rename_file(const std::string& from, const std::string& to) = 0;
  // Creates `path` and missing parents; syncs each parent it changed.
  virtual std::error_code create_directories(const std::string& path) = 0;
  // Names (not paths) of the regular files in `path`, sorted.
  virtual std::error_code list_files(const std::string& path,
                                     std::vector<std::string>& names) = 0;
  virtual bool exists(const std::string& path) = 0;
  virtual std::error_code file_size(const std::string& path, std::uint64_t& size) = 0;
  // fsync of a directory, making created or removed entries durable.
  virtual std::error_code sync_directory(const std::string& path) = 0;
};

// The process-wide POSIX file system. Stateless; the returned reference lives
// for the whole program.
file_system& posix_file_system();

}  // namespace annal::engine
