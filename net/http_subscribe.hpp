#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "actors/metrics.hpp"
#include "actors/requests.hpp"
#include "actors/subscription.hpp"
#include "net/http_api.hpp"

// GET /subscribe: a subscription as server-sent events (docs/http-api.md,
// "Subscribe"; docs/subscriptions.md). The transport (http_server.cpp,
// RESTinio) supplies an sse_stream; everything else is here.
namespace annal::net {

// The streaming response of one request. Calls are serialized by the caller
// (one strand) and never made from inside the HTTP request handler.
class sse_stream {
 public:
  virtual ~sse_stream() = default;
  // Sends the 200 `text/event-stream` head and `text`; `written(ok)` once
  // the bytes went to the socket (ok) or cannot (the client is gone).
  virtual void open(std::string text, std::function<void(bool ok)> written) = 0;
  // Sends more; same contract. Requires: open() was called.
  virtual void write(std::string text, std::function<void(bool ok)> written) = 0;
  // Ends the response after `text`. Nothing may follow.
  virtual void close(std::string text) = 0;
};

struct sse_options {
  std::chrono::milliseconds heartbeat{15000};
  actors::subscription_options subscription;
};

// Serves GET /subscribe?stream=S|category=C&filter=Q&from=P: bad parameters
// and a start that fails (e.g. a resume position of another cluster) are
// answered through `respond` as a JSON error, before any stream; otherwise
// the stream is opened and events follow until the client goes away or the
// subscription fails (a final `event: error`). `last_event_id` (the
// Last-Event-ID header; empty: none) overrides `from`.
//
// Memory: one page of events is in flight at a time; the next is read
// only once the previous one was written to the socket.
//
// Requires: `io` runs while the stream is open; `handler` and `metrics`
// outlive it (as for any request).
void serve_subscribe(asio::io_context& io, actors::request_handler& handler,
                     actors::node_metrics& metrics, const http_request& request,
                     std::string_view last_event_id, std::shared_ptr<sse_stream> stream,
                     http_api::respond_fn respond, const sse_options& options);

// The text of one server-sent event: `id:` and `event:` lines, then `data`
// as `data:` lines (split at line breaks), then a blank line.
std::string sse_event(std::string_view id, std::string_view event, std::string_view data);

}  // namespace annal::net
