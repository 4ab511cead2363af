#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace annal::client {

// Where and how a client connects (binary protocol, docs/protocol.md).
struct client_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7071;
  std::string client_name;  // sent in Hello, for the node's logs
  // Resolve + TCP connect + handshake.
  std::chrono::milliseconds connect_timeout{5000};
  // Per request, from submission to reply: errc::timeout after it.
  std::chrono::milliseconds request_timeout{30000};
};

// What the node said in its HelloReply.
struct server_info {
  std::uint32_t protocol_version = 0;
  std::string node_id;
  std::uint32_t partition_count = 0;
  std::uint32_t max_frame_bytes = 0;
  std::uint32_t max_batch_events = 0;
};

}  // namespace annal::client
