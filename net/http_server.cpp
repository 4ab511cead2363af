// The only translation unit that includes RESTinio (25 s to compile): keep
// everything that does not need it in http_api.cpp / json_codec.cpp.
#include "net/http_server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <restinio/all.hpp>
#include <unordered_set>

#include "net/http_subscribe.hpp"
#include "net/json_codec.hpp"

namespace annal::net {
namespace {

// RESTinio's log calls routed to spdlog. Its `info` messages are per
// connection and accept, so they go to debug.
struct spdlog_logger {
  template <class Builder>
  void trace(Builder&& build) {
    if (spdlog::should_log(spdlog::level::trace)) spdlog::trace("http: {}", build());
  }
  template <class Builder>
  void info(Builder&& build) {
    if (spdlog::should_log(spdlog::level::debug)) spdlog::debug("http: {}", build());
  }
  template <class Builder>
  void warn(Builder&& build) {
    if (!spdlog::should_log(spdlog::level::warn)) return;
    auto message = build();
    // An event-stream client that went away: its next write says so. Normal.
    if (message.find("while socket is closed") != std::string::npos) {
      spdlog::debug("http: {}", message);
    } else {
      spdlog::warn("http: {}", message);
    }
  }
  template <class Builder>
  void error(Builder&& build) {
    if (spdlog::should_log(spdlog::level::err)) spdlog::error("http: {}", build());
  }
};

// Open connections, counted by RESTinio's connection-state notices and
// checked for each accepted socket: over the limit it is closed at once.
// (RESTinio's own connection-count limiter pauses accepting instead, but its
// connections point back at it, and those abandoned in the io_context when
// it stops outlive it.) Shared by every connection: it lives until the last.
struct connection_gate {
  explicit connection_gate(std::size_t limit) : limit(limit) {}

  // The ip_blocker.
  restinio::ip_blocker::inspection_result_t inspect(
      const restinio::ip_blocker::incoming_info_t& incoming) noexcept {
    {
      std::lock_guard lock(mu);
      if (open.size() < limit) return restinio::ip_blocker::allow();
    }
    spdlog::debug("http: {} connections open: closing the one from {}", limit,
                  incoming.remote_endpoint().address().to_string());
    return restinio::ip_blocker::deny();
  }
  // The connection-state listener. By connection id, so that a connection
  // reported closed twice is not counted out twice.
  void state_changed(const restinio::connection_state::notice_t& notice) noexcept {
    const auto& cause = notice.cause();
    std::lock_guard lock(mu);
    if (restinio::holds_alternative<restinio::connection_state::accepted_t>(cause)) {
      open.insert(notice.connection_id());
    } else if (restinio::holds_alternative<restinio::connection_state::closed_t>(cause)) {
      open.erase(notice.connection_id());
    }
  }

  const std::size_t limit;
  std::mutex mu;
  std::unordered_set<restinio::connection_id_t> open;  // guarded by mu
};

struct traits : restinio::traits_t<restinio::asio_timer_manager_t, spdlog_logger> {
  using ip_blocker_t = connection_gate;
  using connection_state_listener_t = connection_gate;
};
using restinio_server = restinio::http_server_t<traits>;

// RESTinio refuses bodies over its own limit by closing the connection
// without an answer. It is set above ours so that bodies up to this much
// over the limit get a proper 413.
constexpr std::size_t k_body_slack = 1u << 20;
// How long stop() waits for the io_context to run the acceptor's close.
constexpr auto k_stop_wait = std::chrono::seconds(5);

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
  }
  return "Unknown";
}

// Sends `response` on the connection of `request`. Thread-safe: RESTinio
// dispatches the write to the connection's strand.
void send(const restinio::request_handle_t& request, http_response response) noexcept {
  try {
    auto builder = request->create_response(restinio::http_status_line_t{
        restinio::http_status_code_t{static_cast<std::uint16_t>(response.status)},
        reason_phrase(response.status)});
    builder.append_header(restinio::http_field::content_type, std::move(response.content_type));
    for (auto& [name, value] : response.headers) {
      // RESTinio writes the Connection header itself.
      if (name == "Connection") {
        if (value == "close") builder.connection_close();
        continue;
      }
      builder.append_header(name, std::move(value));
    }
    builder.set_body(std::move(response.body));
    builder.done();
  } catch (const std::exception& e) {
    spdlog::warn("http: could not send a response: {}", e.what());
  }
}

// GET /subscribe's streaming response: a chunked response, each write
// flushed with an after-write notificator. Calls come serialized from the
// SSE session's strand (net/http_subscribe.hpp).
class restinio_sse_stream final : public sse_stream {
 public:
  explicit restinio_sse_stream(restinio::request_handle_t request)
      : request_(std::move(request)) {}

  void open(std::string text, std::function<void(bool)> written) override {
    try {
      response_.emplace(request_->create_response<restinio::chunked_output_t>());
      response_->append_header(restinio::http_field::content_type,
                               "text/event-stream; charset=utf-8");
      response_->append_header(restinio::http_field::cache_control, "no-cache");
      response_->append_header("X-Accel-Buffering", "no");  // proxies: do not buffer
    } catch (const std::exception& e) {
      spdlog::debug("http: cannot start an event stream: {}", e.what());
      response_.reset();
      return written(false);
    }
    write(std::move(text), std::move(written));
  }

  void write(std::string text, std::function<void(bool)> written) override {
    if (!response_) return written(false);
    try {
      response_->append_chunk(std::move(text));
      response_->flush([written](const asio::error_code& ec) { written(!ec); });
    } catch (const std::exception& e) {
      spdlog::debug("http: event stream write failed: {}", e.what());
      response_.reset();
      written(false);
    }
  }

  void close(std::string text) override {
    if (!response_) return;
    try {
      if (!text.empty()) response_->append_chunk(std::move(text));
      response_->done();
    } catch (const std::exception& e) {
      spdlog::debug("http: event stream close failed: {}", e.what());
    }
    response_.reset();
  }

 private:
  restinio::request_handle_t request_;
  std::optional<restinio::response_builder_t<restinio::chunked_output_t>> response_;
};

// The RESTinio server, shared with a close posted to the io_context so
// that a late close never touches a destroyed object.
struct server_holder {
  std::mutex mu;
  std::unique_ptr<restinio_server> server;  // guarded by mu
  bool closed = false;                      // guarded by mu

  void close() {
    std::lock_guard lock(mu);
    if (closed) return;
    closed = true;
    server->close_sync();
  }
};

}  // namespace

struct http_server::impl {
  impl(asio::io_context& io, actors::request_handler& handler, actors::node_metrics& metrics,
       http_server_options options)
      : io(io), handler(handler), metrics(metrics), api(http_api::create(handler, metrics, std::move(options),
                            [&io](std::function<void()> task) { asio::post(io, std::move(task)); })) {}

  asio::io_context& io;
  actors::request_handler& handler;  // GET /subscribe; the rest goes through api
  actors::node_metrics& metrics;
  std::shared_ptr<http_api> api;
  // Shared with the request handler, which may outlive stop() on open
  // connections.
  std::shared_ptr<std::atomic<bool>> stopping = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<server_holder> holder;  // set by listen()
  bool stopped = false;
};

http_server::http_server(asio::io_context& io, actors::request_handler& handler,
                         actors::node_metrics& metrics, http_server_options options)
    : impl_(std::make_unique<impl>(io, handler, metrics, std::move(options))) {}

http_server::~http_server() { stop(); }

engine::result<asio::ip::tcp::endpoint> http_server::listen(const std::string& host,
                                                             std::uint16_t port) {
  if (impl_->stopped) return engine::error{engine::errc::shutting_down, "http: the server is stopped"};
  if (impl_->holder) return engine::error{engine::errc::invalid_argument, "http: already listening"};
  std::error_code ec;
  auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) {
    return engine::error{engine::errc::invalid_argument,
                         fmt::format("http: {:?} is not an IP address", host)};
  }

  auto bound = std::make_shared<asio::ip::tcp::endpoint>();
  auto api = impl_->api;
  auto stopping = impl_->stopping;
  sse_options sse;
  sse.heartbeat = api->options().sse_heartbeat;
  auto* handler = &impl_->handler;
  auto* metrics = &impl_->metrics;
  const std::size_t body_limit = api->options().max_body_bytes + k_body_slack;
  auto gate =
      std::make_shared<connection_gate>(std::max<std::size_t>(api->options().max_connections, 1));
  auto settings =
      restinio::server_settings_t<traits>{}
          .address(address)
          .port(port)
          .handle_request_timeout(std::chrono::seconds(60))
          .ip_blocker(gate)
          .connection_state_listener(gate)
          .incoming_http_msg_limits(restinio::incoming_http_msg_limits_t{}.max_body_size(body_limit))
          .acceptor_post_bind_hook(
              [bound](asio::ip::tcp::acceptor& acceptor) { *bound = acceptor.local_endpoint(); })
          .request_handler([api, stopping, io = &impl_->io, sse, handler,
                            metrics](restinio::request_handle_t request) {
            // An answer sent from inside this handler makes RESTinio start
            // reading the next request twice (once here, once after the
            // write), which can reset its parser in the middle of the next
            // request. Answers given before the handler returns are posted.
            auto handler_running = std::make_shared<std::atomic<bool>>(true);
            auto respond = [request, handler_running, io](http_response response) {
              if (handler_running->load(std::memory_order_acquire)) {
                asio::post(*io, [request, response = std::move(response)]() mutable {
                  send(request, std::move(response));
                });
              } else {
                send(request, std::move(response));
              }
            };
            if (stopping->load(std::memory_order_acquire)) {
              http_response response;
              response.status = 503;
              response.body = json::encode_error(
                  engine::error{engine::errc::shutting_down, "the node is stopping"});
              response.headers.emplace_back("Connection", "close");
              respond(std::move(response));
            } else if (request->header().path() == "/subscribe") {
              http_request parsed;
              parsed.method = request->header().method().c_str();
              parsed.path = "/subscribe";
              parsed.query = std::string(request->header().query());
              const auto last_event_id = request->header().get_field_or("Last-Event-ID", "");
              serve_subscribe(*io, *handler, *metrics, parsed,
                              std::string_view(last_event_id.data(), last_event_id.size()),
                              std::make_shared<restinio_sse_stream>(request), respond, sse);
            } else {
              http_request parsed;
              parsed.method = request->header().method().c_str();
              parsed.path = std::string(request->header().path());
              parsed.query = std::string(request->header().query());
              parsed.body = request->body();
              api->handle(std::move(parsed), respond);
            }
            handler_running->store(false, std::memory_order_release);
            return restinio::request_accepted();
          });
  try {
    auto server = std::make_unique<restinio_server>(restinio::external_io_context(impl_->io),
                                                    std::move(settings));
    server->open_sync();
    impl_->holder = std::make_shared<server_holder>();
    impl_->holder->server = std::move(server);
  } catch (const std::exception& e) {
    return engine::error{engine::errc::io_error,
                         fmt::format("http: cannot listen on {}:{}: {}", host, port, e.what())};
  }
  spdlog::info("http: listening on {}:{}", bound->address().to_string(), bound->port());
  return *bound;
}

void http_server::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->stopping->store(true, std::memory_order_release);
  if (!impl_->holder) return;
  auto holder = impl_->holder;
  // The acceptor belongs to the io_context's threads: close it there, unless
  // no thread runs the io_context (then nothing else touches it).
  if (impl_->io.stopped() || impl_->io.get_executor().running_in_this_thread()) {
    holder->close();
  } else {
    auto closed = std::make_shared<std::promise<void>>();
    auto done = closed->get_future();
    asio::post(impl_->io, [holder, closed] {
      holder->close();
      closed->set_value();
    });
    if (done.wait_for(k_stop_wait) != std::future_status::ready) {
      spdlog::warn("http: no thread ran the close of the acceptor; closing it here");
      holder->close();
    }
  }
  spdlog::info("http: stopped");
}

}  // namespace annal::net
