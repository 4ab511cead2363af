#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actors/node.hpp"

namespace annal::cli {

struct server_options {
  actors::node_options node;
  std::string http_address = "127.0.0.1:7070";    // HTTP/JSON API
  std::string listen_address = "127.0.0.1:7071";  // binary protocol
  std::size_t io_threads = 1;                     // asio threads for both servers
  std::uint64_t idle_timeout_seconds = 300;
  std::size_t max_connections = 1024;       // binary protocol
  std::size_t http_max_connections = 1024;  // HTTP, event streams included

  // Cluster (docs/cluster.md). No etcd endpoints: a one-node cluster with an
  // in-process metadata store (dev mode).
  std::vector<std::string> etcd_endpoints;
  std::string advertise_address;  // empty: the bound binary-protocol address
  std::uint32_t bootstrap_expect = 1;
};

// Runs a node with its binary protocol and HTTP servers until SIGINT or
// SIGTERM, then stops cleanly: stop accepting, answer what is in flight,
// final sync and checkpoint. Prints the bound addresses and "ready" on
// stdout once both listen. Returns the process exit code.
int run_server(const server_options& options);

}  // namespace annal::cli
