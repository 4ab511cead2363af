#pragma once

#include <http_parser.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

// A blocking client of one server-sent-events response (GET /subscribe) for
// tests: the HTTP response (chunked or not) is parsed by Debian's
// http_parser, the event stream by the rules of the SSE specification
// (fields id / event / data / retry, comments, events ended by a blank
// line). Every wait has a deadline.
//
// Not thread-safe: owned by one test thread.
namespace annal::testing {

struct sse_event {
  std::string id;  // the last `id` seen so far (SSE's "last event ID")
  std::string event;
  std::string data;  // data lines joined with '\n'
};

class sse_client {
 public:
  // Connects, sends `GET target` (with Last-Event-ID when not empty) and
  // reads the response head. Throws std::runtime_error if that fails.
  sse_client(asio::ip::tcp::endpoint server, const std::string& target,
             const std::string& last_event_id = {},
             std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~sse_client();

  int status() const { return status_; }
  // A response header (name in lower case), "" if absent.
  std::string header(const std::string& name) const;
  // The whole body of a response that is not an event stream (an error).
  std::string read_body();

  // The next event; nullopt if none came within `timeout` or the response
  // ended (then closed() is true).
  std::optional<sse_event> next(std::chrono::milliseconds timeout);
  bool closed() const { return closed_; }
  std::size_t comments() const { return comments_; }
  // The last event ID parsed so far (also from an `id` field without
  // data), which may belong to an event next() has not returned yet.
  const std::string& last_id() const { return last_id_; }

  // Stops reading: the server's writes back up (the socket stays open).
  // Reading resumes with the next next().
  void close();

 private:
  // Reads from the socket (at most until `deadline`) and feeds the parser;
  // false on timeout or end.
  bool read_some(std::chrono::steady_clock::time_point deadline);
  void parse_events();

  static int on_header_field(http_parser* p, const char* at, std::size_t length);
  static int on_header_value(http_parser* p, const char* at, std::size_t length);
  static int on_headers_complete(http_parser* p);
  static int on_body(http_parser* p, const char* at, std::size_t length);
  static int on_message_complete(http_parser* p);

  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  http_parser parser_{};
  http_parser_settings settings_{};
  int status_ = 0;
  bool head_done_ = false;
  bool closed_ = false;
  std::map<std::string, std::string> headers_;
  std::string field_;
  bool in_value_ = false;
  std::string body_;      // decoded body bytes not yet parsed as events
  std::string all_body_;  // for read_body()
  std::deque<sse_event> ready_;
  sse_event building_;
  bool has_data_ = false;
  std::string last_id_;
  std::size_t comments_ = 0;
};

}  // namespace annal::testing
