#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/metrics.hpp"
#include "actors/requests.hpp"

// The HTTP/JSON API of a node without the HTTP transport: routes a parsed
// request (method, raw path, raw query, body) to the request_handler and
// turns its reply into status + JSON. http_server feeds it from RESTinio;
// docs/http-api.md is the user-facing description.
namespace annal::actors {
class cluster_admin;
}

namespace annal::net {

struct http_server_options {
  std::string node_id = "dev";
  std::size_t max_body_bytes = 16u << 20;  // larger bodies: 413 frame_too_large
  std::size_t max_batch_events = 10000;    // more events in one append: 413 batch_too_large
  std::size_t default_page_size = 100;     // read limit when none is given
  std::size_t max_page_size = 10000;       // larger limits are clamped to this
  // Serves /admin/* when set (net/admin_api.hpp); must outlive the server.
  actors::cluster_admin* admin = nullptr;
  // GET /subscribe (server-sent events): a comment line this often keeps
  // proxies and clients from timing the stream out.
  std::chrono::milliseconds sse_heartbeat{15000};
  // Open connections, event streams included. Over the limit a new
  // connection is closed as soon as it is accepted, without a reply.
  std::size_t max_connections = 1024;
};

struct http_request {
  std::string method;  // upper case: GET, POST, PUT, DELETE ...
  std::string path;    // raw (percent-encoded) path, without the query
  std::string query;   // raw query string, without '?'
  std::string body;
};

struct http_response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (e.g. Allow)
};

// The HTTP status of an error code (docs/http-api.md has the table).
int http_status(engine::errc code);

// A JSON response with this status and body.
http_response json_response(int status, std::string body);
// {"error": {...}} with the error's HTTP status.
http_response error_response(const engine::error& e);
// 405 unknown_request with an Allow header.
http_response method_not_allowed(std::string_view allow, std::string_view method);

// Counting: every request in node_metrics::http_requests; errors detected
// here (bad paths, bodies, parameters) in node_metrics::count_error. Errors
// the request_handler reports are counted by the node, not here, so that
// each error is counted once.
//
// Thread-safe. Shared: pending replies keep it alive, so it may be released
// by its owner while requests are in flight.
class http_api : public std::enable_shared_from_this<http_api> {
 public:
  using respond_fn = std::function<void(http_response)>;

  // Runs a task on the network threads.
  using post_fn = std::function<void(std::function<void()>)>;

  // `handler` and `metrics` must outlive every reply the handler delivers.
  // Read pages are turned into JSON by a task given to `post` (when set), not
  // on the thread that delivers the reply (an actor's).
  static std::shared_ptr<http_api> create(actors::request_handler& handler,
                                          actors::node_metrics& metrics,
                                          http_server_options options, post_fn post = {});

  // Serves one request. `respond` is called exactly once, on this thread or
  // on the thread that delivers the handler's reply.
  void handle(http_request request, respond_fn respond);

  const http_server_options& options() const { return options_; }

 private:
  http_api(actors::request_handler& handler, actors::node_metrics& metrics,
           http_server_options options, post_fn post);

  void handle_streams(const http_request& request, std::string stream, std::string_view rest,
                      respond_fn respond);
  void append(std::string stream, const http_request& request, respond_fn respond);
  void read(std::string stream, const http_request& request, respond_fn respond);
  void read_head(std::string stream, const http_request& request, respond_fn respond);
  void delete_stream(std::string stream, const http_request& request, respond_fn respond);
  void get_metadata(std::string stream, respond_fn respond);
  void put_metadata(std::string stream, const http_request& request, respond_fn respond);
  void get_snapshot(std::string stream, const http_request& request, respond_fn respond);
  void put_snapshot(std::string stream, const http_request& request, respond_fn respond);
  void read_all(const http_request& request, respond_fn respond);
  void stats(respond_fn respond);
  void query(const http_request& request, respond_fn respond);

  // An error found by the HTTP layer: counted, then answered.
  void fail(const respond_fn& respond, engine::error error);

  actors::request_handler& handler_;
  actors::node_metrics& metrics_;
  http_server_options options_;
  post_fn post_;
};

}  // namespace annal::net
