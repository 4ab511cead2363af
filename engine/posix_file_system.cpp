#include "engine/file_system.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <limits>
#include <utility>

#include <spdlog/spdlog.h>

namespace annal::engine {
namespace {

// Mode of files we create; the umask still applies.
constexpr mode_t k_file_mode = 0644;
constexpr mode_t k_directory_mode = 0755;
// Chunk size used by read_file when the file grows while it is read.
constexpr std::size_t k_read_chunk = 64 * 1024;

std::error_code errno_code(int e) { return {e, std::generic_category()}; }
std::error_code last_error() { return errno_code(errno); }

// Owns one file descriptor and closes it on destruction.
// Not thread-safe: owned by the object that opened the descriptor.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~unique_fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // Closes the descriptor and reports close(2)'s error. After a successful
  // fsync a close error does not lose data, but callers that have not synced
  // must treat it as a write error (NFS reports deferred write errors here).
  std::error_code close() {
    if (fd_ < 0) return {};
    const int fd = std::exchange(fd_, -1);
    // Linux always releases the descriptor, even when close fails with EINTR,
    // so close must never be retried.
    if (::close(fd) != 0) return last_error();
    return {};
  }

 private:
  void reset() {
    if (auto ec = close()) {
      spdlog::warn("posix_file_system: close failed: {}", ec.message());
    }
  }

  int fd_ = -1;
};

std::error_code open_fd(const std::string& path, int flags, mode_t mode, unique_fd& out) {
  for (;;) {
    const int fd = ::open(path.c_str(), flags, mode);
    if (fd >= 0) {
      out = unique_fd{fd};
      return {};
    }
    if (errno != EINTR) return last_error();
  }
}

// Writes all of `data` at the file offset of `fd`, looping on short writes
// and EINTR. `on_progress` is told about every chunk that reached the file,
// so that a caller tracking the size stays right even when a later chunk
// fails.
template <class OnProgress>
std::error_code write_all(int fd, std::span<const std::byte> data, OnProgress&& on_progress) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    if (n == 0) return std::make_error_code(std::errc::io_error);  // never loop forever
    const auto written = static_cast<std::size_t>(n);
    on_progress(written);
    data = data.subspan(written);
  }
  return {};
}

// Reads up to `out.size()` bytes at `offset`, stopping early only at the end
// of the file.
std::error_code pread_all(int fd, std::uint64_t offset, std::span<std::byte> out,
                          std::size_t& bytes_read) {
  bytes_read = 0;
  if (offset > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  while (bytes_read < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + bytes_read, out.size() - bytes_read,
                              static_cast<off_t>(offset + bytes_read));
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    if (n == 0) break;  // end of file
    bytes_read += static_cast<std::size_t>(n);
  }
  return {};
}

// "a/b/c" -> "a/b", "c" -> ".", "/c" -> "/", "a//b/" -> "a".
std::string parent_directory(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const auto slash = p.find_last_of('/');
  if (slash == std::string::npos) return ".";
  std::string parent = p.substr(0, slash);
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  if (parent.empty()) return "/";
  return parent;
}

std::error_code fsync_directory(const std::string& path) {
  unique_fd fd;
  if (auto ec = open_fd(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, fd)) return ec;
  if (::fsync(fd.get()) != 0) return last_error();
  return fd.close();
}

// Not thread-safe for append (owned by one writer); `sync` and `size` may run
// on another thread concurrently with `append`.
class posix_writable_file final : public writable_file {
 public:
  posix_writable_file(unique_fd fd, std::uint64_t size) : fd_(std::move(fd)), size_(size) {}

  std::error_code append(std::span<const std::byte> data) override {
    return write_all(fd_.get(), data, [this](std::size_t n) { size_.fetch_add(n); });
  }

  std::error_code append_with_mark(std::span<const std::byte> data,
                                   std::size_t mark_bytes) override {
    return append(data.first(data.size() - mark_bytes));
  }

  std::error_code sync() override {
    if (::fdatasync(fd_.get()) != 0) return last_error();
    return {};
  }

  // Counts the bytes in the file when it was opened plus the bytes appended
  // through this handle; appends by other handles are not seen.
  std::uint64_t size() const override { return size_.load(); }

 private:
  unique_fd fd_;
  std::atomic<std::uint64_t> size_;
};

// Writes in place from a start offset on (pwrite). Not thread-safe for append
// (owned by one writer); `sync` and `size` may run on another thread
// concurrently with `append`.
class posix_positioned_file final : public writable_file {
 public:
  posix_positioned_file(unique_fd fd, std::uint64_t offset) : fd_(std::move(fd)), position_(offset) {}

  std::error_code append(std::span<const std::byte> data) override {
    return append_with_mark(data, 0);
  }

  std::error_code append_with_mark(std::span<const std::byte> data,
                                   std::size_t mark_bytes) override {
    std::uint64_t at = position_.load();
    const std::uint64_t end = at + (data.size() - mark_bytes);
    while (!data.empty()) {
      if (at > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) {
        return std::make_error_code(std::errc::invalid_argument);
      }
      const ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), static_cast<off_t>(at));
      if (n < 0) {
        if (errno == EINTR) continue;
        return last_error();
      }
      if (n == 0) return std::make_error_code(std::errc::io_error);  // never loop forever
      at += static_cast<std::uint64_t>(n);
      position_.store(std::min(at, end));
      data = data.subspan(static_cast<std::size_t>(n));
    }
    return {};
  }

  std::error_code sync() override {
    if (::fdatasync(fd_.get()) != 0) return last_error();
    return {};
  }

  // The write position (start offset plus the bytes written through this
  // handle), not the file size.
  std::uint64_t size() const override { return position_.load(); }

 private:
  unique_fd fd_;
  std::atomic<std::uint64_t> position_;
};

// Thread-safe: only positional reads and fstat on an immutable descriptor.
class posix_readable_file final : public readable_file {
 public:
  explicit posix_readable_file(unique_fd fd) : fd_(std::move(fd)) {}

  std::error_code read(std::uint64_t offset, std::span<std::byte> out,
                       std::size_t& bytes_read) const override {
    return pread_all(fd_.get(), offset, out, bytes_read);
  }

  // The current size (fstat), so a reader sees a file that is still being
  // appended to grow. fstat on an open descriptor does not fail in practice;
  // if it does, the failure is logged and 0 is returned.
  std::uint64_t size() const override {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) {
      spdlog::error("posix_file_system: fstat failed: {}", last_error().message());
      return 0;
    }
    return static_cast<std::uint64_t>(st.st_size);
  }

  std::error_code map(std::uint64_t size, std::span<const std::byte>& view,
                      std::shared_ptr<const void>& keep_alive) const override {
    if (size == 0) return std::make_error_code(std::errc::invalid_argument);
    void* base = ::mmap(nullptr, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd_.get(), 0);
    if (base == MAP_FAILED) return last_error();
    view = {static_cast<const std::byte*>(base), static_cast<std::size_t>(size)};
    keep_alive = std::shared_ptr<const void>(base, [size](const void* p) {
      ::munmap(const_cast<void*>(p), size);
    });
    return {};
  }

 private:
  unique_fd fd_;
};

// Thread-safe: stateless, every call works on its own descriptors.
class posix_fs final : public file_system {
 public:
  std::error_code open_writable(const std::string& path,
                                std::unique_ptr<writable_file>& out) override {
    unique_fd fd;
    if (auto ec = open_fd(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, k_file_mode, fd)) {
      return ec;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return last_error();
    out = std::make_unique<posix_writable_file>(std::move(fd),
                                                static_cast<std::uint64_t>(st.st_size));
    return {};
  }

  std::error_code open_writable_at(const std::string& path, std::uint64_t offset,
                                   std::unique_ptr<writable_file>& out) override {
    unique_fd fd;
    if (auto ec = open_fd(path, O_WRONLY | O_CLOEXEC, 0, fd)) return ec;
    out = std::make_unique<posix_positioned_file>(std::move(fd), offset);
    return {};
  }

  std::error_code open_readable(const std::string& path,
                                std::unique_ptr<readable_file>& out) override {
    unique_fd fd;
    if (auto ec = open_fd(path, O_RDONLY | O_CLOEXEC, 0, fd)) return ec;
    out = std::make_unique<posix_readable_file>(std::move(fd));
    return {};
  }

  std::error_code write_file(const std::string& path, std::span<const std::byte> data) override {
    unique_fd fd;
    if (auto ec = open_fd(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, k_file_mode, fd)) {
      return ec;
    }
    if (auto ec = write_all(fd.get(), data, [](std::size_t) {})) return ec;
    if (::fsync(fd.get()) != 0) return last_error();
    if (auto ec = fd.close()) return ec;
    return fsync_directory(parent_directory(path));
  }

  std::error_code read_file(const std::string& path, std::vector<std::byte>& out) override {
    out.clear();
    unique_fd fd;
    if (auto ec = open_fd(path, O_RDONLY | O_CLOEXEC, 0, fd)) return ec;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return last_error();
    // The size is only a hint: read until end of file in case the file grows.
    std::size_t filled = 0;
    out.resize(static_cast<std::size_t>(st.st_size) + 1);
    for (;;) {
      if (filled == out.size()) out.resize(out.size() + k_read_chunk);
      std::size_t n = 0;
      auto ec = pread_all(fd.get(), filled, std::span(out).subspan(filled), n);
      if (ec) {
        out.clear();
        return ec;
      }
      filled += n;
      if (filled < out.size()) break;  // short read: end of file
    }
    out.resize(filled);
    return {};
  }

  // A `size` beyond the end extends the file with zeros, as ftruncate does;
  // the engine only ever shrinks.
  std::error_code truncate_file(const std::string& path, std::uint64_t size) override {
    if (size > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) {
      return std::make_error_code(std::errc::invalid_argument);
    }
    unique_fd fd;
    if (auto ec = open_fd(path, O_WRONLY | O_CLOEXEC, 0, fd)) return ec;
    while (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
      if (errno != EINTR) return last_error();
    }
    if (::fsync(fd.get()) != 0) return last_error();
    return fd.close();
  }

  std::error_code remove_file(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return last_error();
    return {};
  }

  // Syncs the destination's directory and, for a move between directories,
  // the source's directory too, so that neither entry can come back.
  std::error_code rename_file(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return last_error();
    const std::string to_dir = parent_directory(to);
    if (auto ec = fsync_directory(to_dir)) return ec;
    const std::string from_dir = parent_directory(from);
    if (from_dir != to_dir) return fsync_directory(from_dir);
    return {};
  }

  std::error_code create_directories(const std::string& path) override {
    if (path.empty()) return std::make_error_code(std::errc::invalid_argument);
    // Walk the prefixes "a", "a/b", "a/b/c" and create the missing ones in
    // order, syncing the parent of each directory we create so that the whole
    // chain is durable.
    std::size_t pos = 0;
    while (pos < path.size()) {
      std::size_t end = path.find('/', pos);
      if (end == std::string::npos) end = path.size();
      if (end == pos) {  // leading or repeated '/'
        ++pos;
        continue;
      }
      const std::string prefix = path.substr(0, end);
      if (::mkdir(prefix.c_str(), k_directory_mode) == 0) {
        if (auto ec = fsync_directory(parent_directory(prefix))) return ec;
      } else if (errno == EEXIST) {
        struct stat st {};
        if (::stat(prefix.c_str(), &st) != 0) return last_error();
        if (!S_ISDIR(st.st_mode)) return std::make_error_code(std::errc::not_a_directory);
      } else {
        return last_error();
      }
      pos = end + 1;
    }
    return {};
  }

  std::error_code list_files(const std::string& path, std::vector<std::string>& names) override {
    names.clear();
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return last_error();
    const std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, &::closedir);
    for (;;) {
      errno = 0;
      const dirent* entry = ::readdir(dir);
      if (entry == nullptr) {
        if (errno != 0) {
          names.clear();
          return last_error();
        }
        break;
      }
      bool regular = entry->d_type == DT_REG;
      if (entry->d_type == DT_UNKNOWN) {  // some file systems do not fill d_type
        struct stat st {};
        if (::fstatat(::dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
          if (errno == ENOENT) continue;  // removed while we list
          names.clear();
          return last_error();
        }
        regular = S_ISREG(st.st_mode);
      }
      if (regular) names.emplace_back(entry->d_name);
    }
    std::sort(names.begin(), names.end());
    return {};
  }

  bool exists(const std::string& path) override {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
  }

  std::error_code file_size(const std::string& path, std::uint64_t& size) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return last_error();
    size = static_cast<std::uint64_t>(st.st_size);
    return {};
  }

  std::error_code sync_directory(const std::string& path) override { return fsync_directory(path); }
};

}  // namespace

file_system& posix_file_system() {
  static posix_fs instance;
  return instance;
}

}  // namespace annal::engine
