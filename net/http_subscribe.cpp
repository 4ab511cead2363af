#include "net/http_subscribe.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <asio/bind_executor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <limits>
#include <optional>

#include "actors/subscription_filter.hpp"
#include "engine/partitioning.hpp"
#include "net/http_query.hpp"
#include "net/json_codec.hpp"
#include "net/read_all_token.hpp"

namespace annal::net {
namespace {

using engine::errc;
using engine::error;

// What a client waits before reconnecting (the `retry:` field), in ms.
constexpr int k_retry_ms = 2000;

bool all_digits(std::string_view text) {
  return !text.empty() && text.size() <= 19 &&
         text.find_first_not_of("0123456789") == std::string_view::npos;
}

// The subscription a request asks for, or why it is malformed.
engine::result<actors::subscription_request> parse_request(const query_params& params,
                                                           std::string_view last_event_id) {
  actors::subscription_request r;
  const std::string* stream = find_param(params, "stream");
  const std::string* category = find_param(params, "category");
  if (stream && category) {
    return error{errc::invalid_argument, "give \"stream\" or \"category\", not both"};
  }
  if (stream) {
    if (!engine::valid_stream_id(*stream)) {
      return error{errc::invalid_stream_id,
                   "a stream id is 1..256 bytes of UTF-8 without control characters"};
    }
    r.target = {actors::subscription_target::kind::stream, *stream};
  } else if (category) {
    if (!engine::valid_stream_id(*category)) {
      return error{errc::invalid_argument,
                   "a category is 1..256 bytes of UTF-8 without control characters"};
    }
    r.target = {actors::subscription_target::kind::category, *category};
  }
  if (const std::string* filter = find_param(params, "filter"); filter && !filter->empty()) {
    auto where = actors::compile_where_filter(*filter);
    if (!where) return where.err();
    r.where = std::move(where).value();
  }
  using start_kind = actors::subscription_start::kind;
  if (!last_event_id.empty()) {
    // A reconnecting client: the id of the last event it got is a position.
    auto positions = decode_read_all_token(last_event_id);
    if (!positions) {
      return error{errc::invalid_argument,
                   fmt::format("Last-Event-ID: {}", positions.err().message)};
    }
    r.from.what = start_kind::position;
    r.from.positions = std::move(positions).value();
    return r;
  }
  const std::string* from = find_param(params, "from");
  if (!from || from->empty() || *from == "start") return r;
  if (*from == "end") {
    r.from.what = start_kind::end;
  } else if (r.target.what == actors::subscription_target::kind::stream && all_digits(*from)) {
    r.from.what = start_kind::version;
    r.from.version = stream_version{std::stoull(*from)};
  } else {
    auto positions = decode_read_all_token(*from);
    if (!positions) return positions.err();
    r.from.what = start_kind::position;
    r.from.positions = std::move(positions).value();
  }
  return r;
}

// One GET /subscribe: the subscription, its stream and the heartbeat.
// Everything runs on strand_. Alive while the stream is open: the heartbeat
// timer and every write in flight hold it.
class sse_session : public std::enable_shared_from_this<sse_session> {
 public:
  sse_session(asio::io_context& io, std::shared_ptr<sse_stream> stream,
              http_api::respond_fn respond, bool base64, std::chrono::milliseconds heartbeat)
      : io_(io),
        strand_(asio::make_strand(io)),
        timer_(strand_),
        stream_(std::move(stream)),
        respond_(std::move(respond)),
        base64_(base64),
        heartbeat_(heartbeat) {}

  ~sse_session() {
    if (sub_) sub_->cancel();
  }

  // Starts the subscription on the strand: its callbacks, posted there too,
  // always find sub_ set.
  void start(actors::request_handler& handler, actors::node_metrics& metrics,
             actors::subscription_request request, actors::subscription_options options) {
    asio::post(strand_, [self = shared_from_this(), &handler, &metrics,
                         request = std::move(request), options]() mutable {
      self->start_here(handler, metrics, std::move(request), options);
    });
  }

 private:
  void start_here(actors::request_handler& handler, actors::node_metrics& metrics,
                  actors::subscription_request request,
                  const actors::subscription_options& options) {
    actors::subscription_callbacks callbacks;
    // Holds the session until the start is decided (released after the call).
    callbacks.started =
        [self = shared_from_this()](engine::result<std::vector<actors::all_position>> r) {
          asio::post(self->strand_,
                     [self, r = std::move(r)]() mutable { self->on_started(std::move(r)); });
        };
    callbacks.events = [weak = weak_from_this()](actors::subscription_batch batch) {
      if (auto self = weak.lock()) {
        asio::post(self->strand_, [self, batch = std::move(batch)]() mutable {
          self->on_events(std::move(batch));
        });
      }
    };
    callbacks.ended = [weak = weak_from_this()](error e) {
      if (auto self = weak.lock()) {
        asio::post(self->strand_, [self, e = std::move(e)] { self->on_ended(e); });
      }
    };
    auto schedule = [&io = io_](std::chrono::milliseconds delay, std::function<void()> task) {
      auto timer = std::make_shared<asio::steady_timer>(io, delay);
      timer->async_wait([timer, task = std::move(task)](asio::error_code ec) {
        if (!ec) task();
      });
    };
    // Credits do not limit an SSE stream; writes do: a batch is taken
    // (ack) only once it is on the socket.
    sub_ = actors::subscription::start(handler, std::move(request), options, std::move(callbacks),
                                       std::move(schedule), &metrics,
                                       std::numeric_limits<std::uint64_t>::max());
  }

  void on_started(engine::result<std::vector<actors::all_position>> r) {
    if (done_) return;
    if (!r) {
      done_ = true;
      if (sub_) sub_->cancel();
      sub_.reset();
      stream_.reset();
      return respond_(error_response(r.err()));
    }
    respond_ = nullptr;
    // The start position as the stream's first id: a client reconnecting
    // before any event resumes here, not at a later end.
    write(fmt::format(": subscribed\nretry: {}\nid: {}\n\n", k_retry_ms,
                      encode_read_all_token(r.value())),
          /*ack=*/false, /*first=*/true);
    arm_heartbeat();
  }

  void on_events(actors::subscription_batch batch) {
    if (done_ || !stream_) return;
    std::string text;
    batch.for_each([&](const actors::all_event& e, const std::vector<actors::all_position>& at) {
      text +=
          sse_event(encode_read_all_token(at), e.event.type, json::encode_all_event(e, base64_));
    });
    write(std::move(text), /*ack=*/true, /*first=*/false);
  }

  void on_ended(const error& e) {
    if (done_ || !stream_) return;
    spdlog::debug("http: subscription ended: {}: {}", engine::errc_name(e.code), e.message);
    stream_->close(sse_event({}, "error", json::encode_error(e)));
    finish();
  }

  void write(std::string text, bool ack, bool first) {
    ++writes_;
    auto written = [self = shared_from_this(), ack](bool ok) {
      asio::post(self->strand_, [self, ack, ok] { self->on_written(ok, ack); });
    };
    if (first) {
      stream_->open(std::move(text), std::move(written));
    } else {
      stream_->write(std::move(text), std::move(written));
    }
  }

  void on_written(bool ok, bool ack) {
    --writes_;
    if (done_) return;
    if (!ok) {
      spdlog::debug("http: subscription stream closed by the client");
      if (stream_) stream_->close({});
      return finish();
    }
    if (ack && sub_) sub_->ack();
  }

  void arm_heartbeat() {
    timer_.expires_after(heartbeat_);
    timer_.async_wait([self = shared_from_this()](asio::error_code ec) {
      if (ec || self->done_) return;
      // Only when idle: a heartbeat never queues behind a page.
      if (self->writes_ == 0 && self->stream_) {
        self->write(": keep-alive\n\n", /*ack=*/false, /*first=*/false);
      }
      self->arm_heartbeat();
    });
  }

  void finish() {
    done_ = true;
    timer_.cancel();
    if (sub_) sub_->cancel();
    sub_.reset();
    stream_.reset();
  }

  asio::io_context& io_;
  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer timer_;
  std::shared_ptr<sse_stream> stream_;
  http_api::respond_fn respond_;  // until the start is decided
  const bool base64_;
  const std::chrono::milliseconds heartbeat_;
  std::shared_ptr<actors::subscription> sub_;
  std::size_t writes_ = 0;  // in flight
  bool done_ = false;
};

}  // namespace

std::string sse_event(std::string_view id, std::string_view event, std::string_view data) {
  std::string out;
  out.reserve(id.size() + event.size() + data.size() + 32);
  if (!id.empty()) {
    out += "id: ";
    out += id;
    out += '\n';
  }
  out += "event: ";
  out += event;
  out += '\n';
  // Every line break (CR, LF, CRLF) ends a data line; the client joins the
  // lines with LF.
  std::size_t start = 0;
  while (true) {
    const auto end = data.find_first_of("\r\n", start);
    out += "data: ";
    out += data.substr(start, end == std::string_view::npos ? end : end - start);
    out += '\n';
    if (end == std::string_view::npos) break;
    start = end + (data[end] == '\r' && end + 1 < data.size() && data[end + 1] == '\n' ? 2 : 1);
  }
  out += '\n';
  return out;
}

void serve_subscribe(asio::io_context& io, actors::request_handler& handler,
                     actors::node_metrics& metrics, const http_request& request,
                     std::string_view last_event_id, std::shared_ptr<sse_stream> stream,
                     http_api::respond_fn respond, const sse_options& options) {
  metrics.http_requests.fetch_add(1, std::memory_order_relaxed);
  auto fail = [&](error e) {
    metrics.count_error(e.code);
    respond(error_response(e));
  };
  if (request.method != "GET") {
    metrics.count_error(errc::unknown_request);
    return respond(method_not_allowed("GET", request.method));
  }
  auto params = parse_query(request.query);
  if (!params) return fail(params.err());
  bool base64 = false;
  if (const std::string* encoding = find_param(*params, "dataEncoding")) {
    if (*encoding == "base64") {
      base64 = true;
    } else if (*encoding != "json") {
      return fail(error{errc::invalid_argument, "\"dataEncoding\" must be json or base64"});
    }
  }
  auto parsed = parse_request(*params, last_event_id);
  if (!parsed) return fail(parsed.err());
  auto session = std::make_shared<sse_session>(io, std::move(stream), std::move(respond), base64,
                                               options.heartbeat);
  session->start(handler, metrics, std::move(parsed).value(), options.subscription);
}

}  // namespace annal::net
