#include "engine/file_names.hpp"

#include <fmt/format.h>

#include <charconv>

namespace annal::engine {
namespace {

constexpr std::size_t k_digits = 20;

}  // namespace

std::string numbered_name(std::uint64_t position, std::string_view suffix) {
  return fmt::format("{:020}{}", position, suffix);
}

bool parse_numbered_name(const std::string& name, std::string_view suffix,
                         std::uint64_t& position) {
  if (name.size() != k_digits + suffix.size() || !name.ends_with(suffix)) return false;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + k_digits, position);
  return ec == std::errc{} && ptr == name.data() + k_digits;
}

std::string node_log_directory(const std::string& root) { return root + "/node-log"; }

std::string partition_directory(const std::string& root, partition_id id) {
  return fmt::format("{}/partitions/{:05}", root, id.value());
}

}  // namespace annal::engine
