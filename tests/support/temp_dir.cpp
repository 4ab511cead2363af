#include "tests/support/temp_dir.hpp"

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

namespace annal::testing {

namespace {
constexpr std::string_view k_template = "/tmp/annal-test-XXXXXX";
}  // namespace

temp_dir::temp_dir() {
  // mkdtemp rewrites the X's in place, so it needs a mutable, NUL-ended buffer.
  std::vector<char> buffer(k_template.begin(), k_template.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp");
  }
  path_ = buffer.data();
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) spdlog::warn("temp_dir: cannot remove {}: {}", path_, ec.message());
}

std::string temp_dir::file(std::string_view name) const {
  std::string result = path_;
  result += '/';
  result += name;
  return result;
}

}  // namespace annal::testing
