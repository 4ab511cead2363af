#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/metrics.hpp"
#include "actors/requests.hpp"
#include "net/http_api.hpp"

// The HTTP/JSON API served over HTTP/1.1 (RESTinio) on a caller's
// io_context. Routes, bodies and errors: net/http_api.hpp and
// docs/http-api.md.
namespace annal::net {

// Owned by the process that runs the node; lives until after stop(). The
// caller runs the io_context on any number of threads (each connection has
// its own strand). listen() and stop() may be called from any thread, but
// not concurrently with each other. Replies from the request_handler may
// come on any thread: RESTinio posts the response to the connection's
// strand.
//
// Requires: the request_handler delivers no reply after the io_context is
// destroyed (stop the node before destroying the io_context).
class http_server {
 public:
  http_server(asio::io_context& io, actors::request_handler& handler,
              actors::node_metrics& metrics, http_server_options options);
  ~http_server();  // stop()

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Binds and starts accepting. Port 0 picks a free port; the result is the
  // bound endpoint. errc::io_error if the address cannot be bound,
  // errc::invalid_argument if it is not an IP address, or if already listening.
  engine::result<asio::ip::tcp::endpoint> listen(const std::string& host, std::uint16_t port);

  // Stops accepting; requests that arrive afterwards on open keep-alive
  // connections get 503 shutting_down. Idempotent. Call it before the
  // io_context stops (it also works once the io_context has stopped).
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace annal::net
