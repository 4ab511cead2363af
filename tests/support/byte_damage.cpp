#include "tests/support/byte_damage.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <limits>

namespace annal::testing {
namespace {

constexpr mode_t k_file_mode = 0644;
constexpr std::size_t k_read_chunk = 64 * 1024;

std::error_code last_error() { return {errno, std::generic_category()}; }

// Owns a descriptor for the length of one helper call.
// Not thread-safe: local to one call.
class fd_guard {
 public:
  explicit fd_guard(int fd) : fd_(fd) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::error_code write_fd(int fd, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    if (n == 0) return std::make_error_code(std::errc::io_error);
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return {};
}

std::error_code write_with_flags(const std::string& path, int flags,
                                 std::span<const std::byte> bytes) {
  const fd_guard fd(::open(path.c_str(), flags | O_WRONLY | O_CREAT | O_CLOEXEC, k_file_mode));
  if (fd.get() < 0) return last_error();
  return write_fd(fd.get(), bytes);
}

bool fits_off_t(std::uint64_t value) {
  return value <= static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());
}

}  // namespace

std::error_code flip_bit(const std::string& path, std::uint64_t offset, int bit) {
  if (bit < 0 || bit > 7 || !fits_off_t(offset)) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  const fd_guard fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) return last_error();
  unsigned char byte = 0;
  ssize_t n = 0;
  do {
    n = ::pread(fd.get(), &byte, 1, static_cast<off_t>(offset));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return last_error();
  if (n == 0) return std::make_error_code(std::errc::invalid_argument);  // past the end
  byte = static_cast<unsigned char>(byte ^ (1u << bit));
  do {
    n = ::pwrite(fd.get(), &byte, 1, static_cast<off_t>(offset));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return last_error();
  if (n != 1) return std::make_error_code(std::errc::io_error);
  return {};
}

std::error_code shrink_file(const std::string& path, std::uint64_t new_size) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return last_error();
  if (new_size > static_cast<std::uint64_t>(st.st_size)) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  if (::truncate(path.c_str(), static_cast<off_t>(new_size)) != 0) return last_error();
  return {};
}

std::error_code append_bytes(const std::string& path, std::span<const std::byte> bytes) {
  return write_with_flags(path, O_APPEND, bytes);
}

std::error_code write_all(const std::string& path, std::span<const std::byte> bytes) {
  return write_with_flags(path, O_TRUNC, bytes);
}

std::error_code read_all(const std::string& path, std::vector<std::byte>& out) {
  out.clear();
  const fd_guard fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return last_error();
  std::size_t filled = 0;
  for (;;) {
    out.resize(filled + k_read_chunk);
    const ssize_t n = ::read(fd.get(), out.data() + filled, k_read_chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      const auto ec = last_error();
      out.clear();
      return ec;
    }
    if (n == 0) break;
    filled += static_cast<std::size_t>(n);
  }
  out.resize(filled);
  return {};
}

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto* first = reinterpret_cast<const std::byte*>(text.data());
  return {first, first + text.size()};
}

std::string string_of(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace annal::testing
