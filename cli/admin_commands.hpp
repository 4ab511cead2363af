#pragma once

#include <string>

// `annal node ...` and `annal cluster status`: clients of a node's admin
// HTTP API (docs/http-api.md, "Admin"). Output: a table, or the API's JSON
// with --json. Errors: one line "annal: <code>: <message>" on stderr, exit 1.
namespace annal::cli {

struct admin_flags {
  std::string admin = "127.0.0.1:7070";  // any node's HTTP address
  bool json = false;
  std::uint64_t expected_epoch = 0;  // 0: any
  std::uint32_t timeout_ms = 30000;
};

int cluster_status(const admin_flags& flags);
int node_list(const admin_flags& flags);
int node_add(const admin_flags& flags, const std::string& id, const std::string& address,
             const std::string& http_address);
int node_drain(const admin_flags& flags, const std::string& id);
int node_remove(const admin_flags& flags, const std::string& id);
int node_approve(const admin_flags& flags, const std::string& id);
int cluster_require_approval(const admin_flags& flags, bool required);

}  // namespace annal::cli
