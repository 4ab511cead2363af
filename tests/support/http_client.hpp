#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>

// A small blocking HTTP/1.1 client for tests: one keep-alive connection,
// responses parsed by Debian's http_parser (never by hand). Every operation
// has a deadline, so a server that never answers fails the test instead of
// hanging it.
//
// Not thread-safe: one client per test thread.
namespace annal::testing {

struct http_reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  bool keep_alive = true;  // whether the server keeps the connection open

  // The header's value, or "" if absent. `name` in lower case.
  std::string header(const std::string& name) const;
};

class http_client {
 public:
  explicit http_client(asio::ip::tcp::endpoint server,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~http_client();

  // Sends one request (Content-Length body, Host header) and reads the whole
  // response. Reconnects first if the server closed the connection. Throws
  // std::runtime_error on a connection failure, a timeout or a response
  // http_parser rejects.
  http_reply request(std::string_view method, std::string_view target, std::string_view body = {},
                     std::string_view content_type = "application/json");

  http_reply get(std::string_view target) { return request("GET", target); }
  http_reply post(std::string_view target, std::string_view body) {
    return request("POST", target, body);
  }
  http_reply put(std::string_view target, std::string_view body) {
    return request("PUT", target, body);
  }
  http_reply del(std::string_view target) { return request("DELETE", target); }

 private:
  void connect();
  void close();
  // Runs the io_context until `done` or the deadline; throws on timeout.
  template <class Done>
  void run_until(Done&& done, const char* what);

  asio::io_context io_;
  asio::ip::tcp::endpoint server_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<asio::ip::tcp::socket> socket_;
};

}  // namespace annal::testing
