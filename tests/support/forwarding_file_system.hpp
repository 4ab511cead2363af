#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "engine/file_system.hpp"

// A file system that passes every call to `base`: tests derive from it and
// override the calls they want to delay or fail. Header-only. Thread-safe like
// `base`, which must outlive it.
namespace annal::testing {

class forwarding_file_system : public engine::file_system {
 public:
  explicit forwarding_file_system(engine::file_system& base) : base_(base) {}

  std::error_code open_writable(const std::string& path,
                                std::unique_ptr<engine::writable_file>& out) override {
    return base_.open_writable(path, out);
  }
  std::error_code open_writable_at(const std::string& path, std::uint64_t offset,
                                   std::unique_ptr<engine::writable_file>& out) override {
    return base_.open_writable_at(path, offset, out);
  }
  std::error_code open_readable(const std::string& path,
                                std::unique_ptr<engine::readable_file>& out) override {
    return base_.open_readable(path, out);
  }
  std::error_code write_file(const std::string& path, std::span<const std::byte> data) override {
    return base_.write_file(path, data);
  }
  std::error_code read_file(const std::string& path, std::vector<std::byte>& out) override {
    return base_.read_file(path, out);
  }
  std::error_code truncate_file(const std::string& path, std::uint64_t size) override {
    return base_.truncate_file(path, size);
  }
  std::error_code remove_file(const std::string& path) override { return base_.remove_file(path); }
  std::error_code rename_file(const std::string& from, const std::string& to) override {
    return base_.rename_file(from, to);
  }
  std::error_code create_directories(const std::string& path) override {
    return base_.create_directories(path);
  }
  std::error_code list_files(const std::string& path, std::vector<std::string>& names) override {
    return base_.list_files(path, names);
  }
  bool exists(const std::string& path) override { return base_.exists(path); }
  std::error_code file_size(const std::string& path, std::uint64_t& size) override {
    return base_.file_size(path, size);
  }
  std::error_code sync_directory(const std::string& path) override {
    return base_.sync_directory(path);
  }

 protected:
  engine::file_system& base_;
};

}  // namespace annal::testing
