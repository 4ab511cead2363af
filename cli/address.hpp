#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace annal::cli {

struct host_port {
  std::string host;
  std::uint16_t port = 0;
};

// Parses "HOST:PORT" (IPv4 or a name; "[v6]:PORT" for IPv6). Port 0 is
// allowed (the server picks one). nullopt if malformed.
std::optional<host_port> parse_host_port(std::string_view text);

// "a,b,,c" -> {"a", "b", "c"}: the items of a comma-separated list, empty
// ones dropped.
std::vector<std::string> split_list(std::string_view text);

}  // namespace annal::cli
