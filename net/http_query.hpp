#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "engine/errors.hpp"

// Parsing of URL parts for the HTTP APIs (streams and admin).
namespace annal::net {

// Decodes %XX escapes (and '+' as a space when `plus_is_space`, for query
// strings). nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

using query_params = std::map<std::string, std::string, std::less<>>;

// "a=1&b=x%20y" -> {a: "1", b: "x y"}; errc::invalid_argument on a bad escape.
engine::result<query_params> parse_query(std::string_view query);

// nullptr when absent.
const std::string* find_param(const query_params& params, std::string_view name);
// nullopt when absent; errc::invalid_argument when not a non-negative integer.
engine::result<std::optional<std::uint64_t>> unsigned_param(const query_params& params,
                                                            std::string_view name);
// Absent, "false", "0": false; "", "true", "1": true; else errc::invalid_argument.
engine::result<bool> bool_param(const query_params& params, std::string_view name);

}  // namespace annal::net
