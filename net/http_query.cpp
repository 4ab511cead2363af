#include "net/http_query.hpp"

#include <fmt/format.h>

#include <charconv>

namespace annal::net {

using engine::errc;
using engine::error;

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int high = hex_digit(text[i + 1]);
      const int low = hex_digit(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out += static_cast<char>(high << 4 | low);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

engine::result<query_params> parse_query(std::string_view query) {
  query_params params;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(
        eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
    if (!key || !value)
      return error{errc::invalid_argument, "the query string has a malformed %-escape"};
    params[std::move(*key)] = std::move(*value);
  }
  return params;
}

const std::string* find_param(const query_params& params, std::string_view name) {
  const auto it = params.find(name);
  return it == params.end() ? nullptr : &it->second;
}

engine::result<std::optional<std::uint64_t>> unsigned_param(const query_params& params,
                                                            std::string_view name) {
  const std::string* text = find_param(params, name);
  if (!text) return std::optional<std::uint64_t>{};
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || ec != std::errc{} || end != text->data() + text->size()) {
    return error{errc::invalid_argument,
                 fmt::format("\"{}\" must be a non-negative integer", name)};
  }
  return std::optional<std::uint64_t>{value};
}

engine::result<bool> bool_param(const query_params& params, std::string_view name) {
  const std::string* text = find_param(params, name);
  if (!text || *text == "false" || *text == "0") return false;
  if (text->empty() || *text == "true" || *text == "1") return true;
  return error{errc::invalid_argument, fmt::format("\"{}\" must be true or false", name)};
}

}  // namespace annal::net
