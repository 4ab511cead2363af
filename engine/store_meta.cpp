#include "engine/store_meta.hpp"

#include <fmt/format.h>

#include <charconv>
#include <vector>

namespace annal::engine {
namespace {

constexpr std::string_view k_magic = "annal-store ";
constexpr std::string_view k_partitions = "\npartitions ";

// Parses a decimal number at the start of `text` and drops it from `text`.
bool take_number(std::string_view& text, std::uint32_t& value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{}) return false;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  return true;
}

}  // namespace

result<store_meta> parse_store_meta(std::string_view text, const std::string& path) {
  store_meta meta;
  if (!text.starts_with(k_magic)) {
    return error{errc::corruption, fmt::format("{}: not an Annal store description", path)};
  }
  text.remove_prefix(k_magic.size());
  if (!take_number(text, meta.format) || !text.starts_with(k_partitions)) {
    return error{errc::corruption, fmt::format("{}: not an Annal store description", path)};
  }
  text.remove_prefix(k_partitions.size());
  if (!take_number(text, meta.partitions) || meta.partitions == 0) {
    return error{errc::corruption, fmt::format("{}: not an Annal store description", path)};
  }
  if (meta.format < k_oldest_store_format || meta.format > k_store_format) {
    return error{errc::corruption,
                 fmt::format("{}: store format {}, but this build reads formats {} to {}", path,
                             meta.format, k_oldest_store_format, k_store_format)};
  }
  return meta;
}

std::string format_store_meta(const store_meta& meta) {
  return fmt::format("{}{}{}{}\n", k_magic, meta.format, k_partitions, meta.partitions);
}

result<store_meta> read_store_meta(file_system& fs, const std::string& path) {
  std::vector<std::byte> bytes;
  if (auto ec = fs.read_file(path, bytes)) return io_failure("read", path, ec);
  return parse_store_meta(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path);
}

}  // namespace annal::engine
