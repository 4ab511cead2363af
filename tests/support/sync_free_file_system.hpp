#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "engine/file_system.hpp"
#include "tests/support/forwarding_file_system.hpp"

// A file system on real files that never calls fsync/fdatasync: every sync
// returns success at once. For long randomized crash and model tests that run
// under fault_injection_file_system: there the fault file system decides what
// a power loss keeps, so a real fsync adds nothing but its latency (thousands
// of them, each milliseconds on a busy disk). Everything else (files, reads,
// writes, renames) is the real thing through `base`, normally
// engine::posix_file_system(). Do not use it where real durability matters.
//
// Header-only so that it needs no build change. Thread-safe like `base`.
// `base` must outlive it.
namespace annal::testing {

class sync_free_file_system final : public forwarding_file_system {
 public:
  explicit sync_free_file_system(engine::file_system& base) : forwarding_file_system(base) {}

  std::error_code open_writable(const std::string& path,
                                std::unique_ptr<engine::writable_file>& out) override {
    std::unique_ptr<engine::writable_file> file;
    if (auto ec = base_.open_writable(path, file)) return ec;
    out = std::make_unique<writable>(std::move(file));
    return {};
  }
  std::error_code open_writable_at(const std::string& path, std::uint64_t offset,
                                   std::unique_ptr<engine::writable_file>& out) override {
    std::unique_ptr<engine::writable_file> file;
    if (auto ec = base_.open_writable_at(path, offset, file)) return ec;
    out = std::make_unique<writable>(std::move(file));
    return {};
  }
  // Replaces the file's content without syncing it or its directory.
  std::error_code write_file(const std::string& path, std::span<const std::byte> data) override {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return {errno, std::generic_category()};
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int e = errno;
        ::close(fd);
        return {e, std::generic_category()};
      }
      done += static_cast<std::size_t>(n);
    }
    if (::close(fd) != 0) return {errno, std::generic_category()};
    return {};
  }
  std::error_code truncate_file(const std::string& path, std::uint64_t size) override {
    std::error_code ec;
    std::filesystem::resize_file(path, size, ec);
    return ec;
  }
  std::error_code rename_file(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return {errno, std::generic_category()};
    return {};
  }
  std::error_code create_directories(const std::string& path) override {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    return ec;
  }
  std::error_code sync_directory(const std::string& path) override {
    return base_.exists(path) ? std::error_code{}
                              : std::make_error_code(std::errc::no_such_file_or_directory);
  }

 private:
  class writable final : public engine::writable_file {
   public:
    explicit writable(std::unique_ptr<engine::writable_file> file) : file_(std::move(file)) {}
    std::error_code append(std::span<const std::byte> data) override {
      return file_->append(data);
    }
    std::error_code append_with_mark(std::span<const std::byte> data,
                                     std::size_t mark_bytes) override {
      return file_->append_with_mark(data, mark_bytes);
    }
    std::error_code sync() override { return {}; }
    std::uint64_t size() const override { return file_->size(); }

   private:
    std::unique_ptr<engine::writable_file> file_;
  };
};

}  // namespace annal::testing
