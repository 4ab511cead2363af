#include "net/http_api.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <string_view>

#include "engine/partitioning.hpp"
#include "net/admin_api.hpp"
#include "net/http_query.hpp"
#include "engine/clock.hpp"
#include "engine/query/plan.hpp"
#include "net/json_codec.hpp"
#include "net/query_json.hpp"
#include "net/query_wire.hpp"
#include "net/prometheus.hpp"
#include "net/read_all_token.hpp"

namespace annal::net {
namespace {

using engine::errc;
using engine::error;

constexpr std::string_view k_streams_prefix = "/streams/";

// Whether reads must return payloads as base64 (?dataEncoding=base64).
engine::result<bool> force_base64_param(const query_params& params) {
  const std::string* text = find_param(params, "dataEncoding");
  if (!text || *text == "json") return false;
  if (*text == "base64") return true;
  return error{errc::invalid_argument, "\"dataEncoding\" must be json or base64"};
}

// Answers an error the request_handler reported (the node counted it).
void respond_error(const http_api::respond_fn& respond, const error& e) {
  respond(error_response(e));
}

}  // namespace

http_response json_response(int status, std::string body) {
  http_response response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

http_response error_response(const engine::error& e) {
  return json_response(http_status(e.code), json::encode_error(e));
}

http_response method_not_allowed(std::string_view allow, std::string_view method) {
  auto response = json_response(
      405, json::encode_error(error{errc::unknown_request,
                                    fmt::format("method {} is not allowed here; allowed: {}",
                                                method, allow)}));
  response.headers.emplace_back("Allow", std::string(allow));
  return response;
}

int http_status(errc code) {
  switch (code) {
    case errc::ok: return 200;
    case errc::wrong_expected_version:
    case errc::full_copy_needed:
    case errc::conflict:
    case errc::idempotency_conflict: return 409;
    case errc::stream_not_found:
    case errc::not_found: return 404;
    case errc::stream_deleted: return 410;
    case errc::invalid_stream_id:
    case errc::invalid_event:
    case errc::invalid_argument:
    case errc::malformed_request:
    case errc::unknown_request:
    case errc::unsupported_version:
    case errc::query_syntax: return 400;
    case errc::query_too_large: return 422;
    case errc::query_timeout: return 504;
    case errc::batch_too_large:
    case errc::frame_too_large: return 413;
    case errc::too_many_connections:
    case errc::overloaded: return 429;
    case errc::shutting_down:
    case errc::node_unavailable:
    case errc::metadata_unavailable:
    case errc::partition_unavailable: return 503;
    case errc::not_owner: return 421;
    case errc::timeout: return 504;
    case errc::checksum_mismatch:
    case errc::lsn_gap:
    case errc::corruption:
    case errc::io_error: return 500;
    // Proxied, and the owner's connection dropped with it in flight: done or
    // not, nobody knows.
    case errc::connection_lost: return 502;
  }
  return 500;
}

std::shared_ptr<http_api> http_api::create(actors::request_handler& handler,
                                           actors::node_metrics& metrics,
                                           http_server_options options, post_fn post) {
  return std::shared_ptr<http_api>(
      new http_api(handler, metrics, std::move(options), std::move(post)));
}

http_api::http_api(actors::request_handler& handler, actors::node_metrics& metrics,
                   http_server_options options, post_fn post)
    : handler_(handler), metrics_(metrics), options_(std::move(options)), post_(std::move(post)) {}

void http_api::fail(const respond_fn& respond, error e) {
  metrics_.count_error(e.code);
  spdlog::debug("http: {} {}", engine::errc_name(e.code), e.message);
  respond(error_response(e));
}

void http_api::handle(http_request request, respond_fn respond) {
  metrics_.http_requests.fetch_add(1, std::memory_order_relaxed);
  if (request.body.size() > options_.max_body_bytes) {
    return fail(respond, error{errc::frame_too_large,
                               fmt::format("the body has {} bytes; the limit is {}",
                                           request.body.size(), options_.max_body_bytes)});
  }
  const std::string_view path = request.path;
  if (path == "/health") {
    if (request.method != "GET") {
      metrics_.count_error(errc::unknown_request);
      return respond(method_not_allowed("GET", request.method));
    }
    return respond(json_response(
        200, fmt::format(R"({{"status":"ok","node":{}}})", json::quote(options_.node_id))));
  }
  if (path == "/metrics") {
    if (request.method != "GET") {
      metrics_.count_error(errc::unknown_request);
      return respond(method_not_allowed("GET", request.method));
    }
    http_response response;
    response.content_type = std::string(k_prometheus_content_type);
    response.body = render_prometheus(metrics_, options_.node_id);
    return respond(std::move(response));
  }
  if (path == "/all" || path == "/stats") {
    if (request.method != "GET") {
      metrics_.count_error(errc::unknown_request);
      return respond(method_not_allowed("GET", request.method));
    }
    if (path == "/all") return read_all(request, std::move(respond));
    return stats(std::move(respond));
  }
  if (path == "/query") {
    if (request.method != "POST") {
      metrics_.count_error(errc::unknown_request);
      return respond(method_not_allowed("POST", request.method));
    }
    return query(request, std::move(respond));
  }
  if (path.starts_with("/admin/")) {
    if (!options_.admin) {
      return fail(respond, error{errc::not_found, "this node has no admin API"});
    }
    return handle_admin(*options_.admin, request, std::move(respond));
  }
  if (path.starts_with(k_streams_prefix)) {
    const std::string_view tail = path.substr(k_streams_prefix.size());
    const auto slash = tail.find('/');
    const std::string_view raw_stream = tail.substr(0, slash);
    const std::string_view rest =
        slash == std::string_view::npos ? std::string_view{} : tail.substr(slash);
    auto stream = percent_decode(raw_stream, false);
    if (!stream || !engine::valid_stream_id(*stream)) {
      return fail(respond, error{errc::invalid_stream_id,
                                 "a stream id is 1..256 bytes of UTF-8 without control "
                                 "characters, percent-encoded in the path"});
    }
    return handle_streams(request, std::move(*stream), rest, std::move(respond));
  }
  fail(respond, error{errc::not_found, fmt::format("no route for {}", path)});
}

void http_api::handle_streams(const http_request& request, std::string stream,
                              std::string_view rest, respond_fn respond) {
  const std::string& method = request.method;
  auto not_allowed = [&](std::string_view allow) {
    metrics_.count_error(errc::unknown_request);
    respond(method_not_allowed(allow, method));
  };
  if (rest.empty()) {
    if (method == "POST") return append(std::move(stream), request, std::move(respond));
    if (method == "GET") return read(std::move(stream), request, std::move(respond));
    if (method == "DELETE") return delete_stream(std::move(stream), request, std::move(respond));
    return not_allowed("GET, POST, DELETE");
  }
  if (rest == "/head") {
    if (method == "GET") return read_head(std::move(stream), request, std::move(respond));
    return not_allowed("GET");
  }
  if (rest == "/metadata") {
    if (method == "GET") return get_metadata(std::move(stream), std::move(respond));
    if (method == "PUT") return put_metadata(std::move(stream), request, std::move(respond));
    return not_allowed("GET, PUT");
  }
  if (rest == "/snapshot") {
    if (method == "GET") return get_snapshot(std::move(stream), request, std::move(respond));
    if (method == "PUT") return put_snapshot(std::move(stream), request, std::move(respond));
    return not_allowed("GET, PUT");
  }
  fail(respond, error{errc::not_found, fmt::format("no route for {}", request.path)});
}

void http_api::append(std::string stream, const http_request& request, respond_fn respond) {
  auto decoded = json::decode_append(std::move(stream), request.body, options_.max_batch_events);
  if (!decoded) return fail(respond, decoded.err());
  handler_.append(std::move(*decoded),
                  [respond = std::move(respond)](engine::result<actors::append_reply> r) {
                    if (!r) return respond_error(respond, r.err());
                    respond(json_response(201, json::encode_append_reply(*r)));
                  });
}

void http_api::read(std::string stream, const http_request& request, respond_fn respond) {
  auto params = parse_query(request.query);
  if (!params) return fail(respond, params.err());
  auto from = unsigned_param(*params, "from");
  if (!from) return fail(respond, from.err());
  auto limit = unsigned_param(*params, "limit");
  if (!limit) return fail(respond, limit.err());
  auto force_base64 = force_base64_param(*params);
  if (!force_base64) return fail(respond, force_base64.err());

  actors::read_request read;
  read.stream = std::move(stream);
  if (const std::string* direction = find_param(*params, "direction")) {
    if (*direction == "backward") {
      read.direction = engine::read_direction::backward;
    } else if (*direction != "forward") {
      return fail(respond, error{errc::invalid_argument, "\"direction\" must be forward or backward"});
    }
  }
  if (*limit && **limit == 0) {
    return fail(respond, error{errc::invalid_argument, "\"limit\" must be at least 1"});
  }
  read.limit = std::min<std::uint64_t>(limit->value_or(options_.default_page_size),
                                       options_.max_page_size);
  read.from = stream_version{from->value_or(0)};
  read.from_end = !*from && read.direction == engine::read_direction::backward;
  handler_.read(std::move(read), [post = post_, respond = std::move(respond),
                                  base64 = *force_base64](engine::result<engine::read_page> page) {
    if (!page) return respond_error(respond, page.err());
    auto encode = [respond, base64, page = std::move(page).value()] {
      respond(json_response(200, json::encode_read_page(page, base64)));
    };
    if (post) return post(std::move(encode));
    encode();
  });
}

void http_api::read_head(std::string stream, const http_request& request, respond_fn respond) {
  auto params = parse_query(request.query);
  if (!params) return fail(respond, params.err());
  auto force_base64 = force_base64_param(*params);
  if (!force_base64) return fail(respond, force_base64.err());
  handler_.read_last(
      std::move(stream), [self = shared_from_this(), respond = std::move(respond),
                          base64 = *force_base64](engine::result<engine::read_page> page) {
        if (!page) return respond_error(respond, page.err());
        if (page->events.empty()) {
          return self->fail(respond, error{errc::not_found, "the stream has no readable events"});
        }
        respond(json_response(200, json::encode_event(page->events.front(), base64)));
      });
}

void http_api::delete_stream(std::string stream, const http_request& request, respond_fn respond) {
  auto params = parse_query(request.query);
  if (!params) return fail(respond, params.err());
  auto tombstone = bool_param(*params, "tombstone");
  if (!tombstone) return fail(respond, tombstone.err());
  auto expected = engine::expected_version::any();
  if (const std::string* text = find_param(*params, "expectedVersion")) {
    auto parsed = json::parse_expected_version(*text);
    if (!parsed) return fail(respond, parsed.err());
    expected = *parsed;
  }
  handler_.delete_stream(std::move(stream), expected, *tombstone,
                         [respond = std::move(respond)](engine::result<actors::write_reply> r) {
                           if (!r) return respond_error(respond, r.err());
                           respond(json_response(200, json::encode_write_reply(*r)));
                         });
}

void http_api::get_metadata(std::string stream, respond_fn respond) {
  handler_.get_stream_info(std::move(stream),
                           [respond = std::move(respond)](engine::result<engine::stream_info> r) {
                             if (!r) return respond_error(respond, r.err());
                             respond(json_response(200, json::encode_stream_info(*r)));
                           });
}

void http_api::put_metadata(std::string stream, const http_request& request, respond_fn respond) {
  auto metadata = json::decode_metadata(request.body);
  if (!metadata) return fail(respond, metadata.err());
  handler_.set_metadata(std::move(stream), *metadata,
                        [respond = std::move(respond)](engine::result<actors::write_reply> r) {
                          if (!r) return respond_error(respond, r.err());
                          respond(json_response(200, json::encode_write_reply(*r)));
                        });
}

void http_api::get_snapshot(std::string stream, const http_request& request, respond_fn respond) {
  auto params = parse_query(request.query);
  if (!params) return fail(respond, params.err());
  auto force_base64 = force_base64_param(*params);
  if (!force_base64) return fail(respond, force_base64.err());
  handler_.get_snapshot(
      std::move(stream),
      [self = shared_from_this(), respond = std::move(respond),
       base64 = *force_base64](engine::result<std::optional<engine::snapshot_read>> r) {
        if (!r) return respond_error(respond, r.err());
        if (!r->has_value()) {
          return self->fail(respond, error{errc::not_found, "the stream has no snapshot"});
        }
        respond(json_response(200, json::encode_snapshot(**r, base64)));
      });
}

void http_api::put_snapshot(std::string stream, const http_request& request, respond_fn respond) {
  auto snapshot = json::decode_snapshot(request.body);
  if (!snapshot) return fail(respond, snapshot.err());
  handler_.put_snapshot(std::move(stream), snapshot->version, std::move(snapshot->payload),
                        [respond = std::move(respond)](engine::result<actors::write_reply> r) {
                          if (!r) return respond_error(respond, r.err());
                          respond(json_response(200, json::encode_write_reply(*r)));
                        });
}

void http_api::read_all(const http_request& request, respond_fn respond) {
  auto params = parse_query(request.query);
  if (!params) return fail(respond, params.err());
  auto limit = unsigned_param(*params, "limit");
  if (!limit) return fail(respond, limit.err());
  auto force_base64 = force_base64_param(*params);
  if (!force_base64) return fail(respond, force_base64.err());
  if (*limit && **limit == 0) {
    return fail(respond, error{errc::invalid_argument, "\"limit\" must be at least 1"});
  }
  actors::read_all_request read;
  read.limit =
      std::min<std::uint64_t>(limit->value_or(options_.default_page_size), options_.max_page_size);
  if (const std::string* from = find_param(*params, "from"); from && !from->empty()) {
    auto positions = decode_read_all_token(*from);
    if (!positions) return fail(respond, positions.err());
    read.from = std::move(positions).value();
  }
  handler_.read_all(
      std::move(read), [post = post_, respond = std::move(respond),
                        base64 = *force_base64](engine::result<actors::read_all_page> page) {
        if (!page) return respond_error(respond, page.err());
        auto encode = [respond, base64, page = std::move(page).value()] {
          respond(json_response(
              200, json::encode_all_page(page, encode_read_all_token(page.next), base64)));
        };
        if (post) return post(std::move(encode));
        encode();
      });
}

// The query is parsed and its relative times resolved here; the partial
// result the handler merged is finished on a network thread.
void http_api::query(const http_request& request, respond_fn respond) {
  auto params = parse_query(request.query);
  if (!params) return fail(respond, params.err());
  auto force_base64 = force_base64_param(*params);
  if (!force_base64) return fail(respond, force_base64.err());
  auto body = json::decode_query_body(request.body);
  if (!body) return fail(respond, body.err());
  auto parsed = prepare_query(body->text, engine::system_clock().now_us());
  if (!parsed) return fail(respond, parsed.err());
  auto plan = engine::query::plan::compile(*parsed);
  if (!plan) return fail(respond, plan.err());
  actors::query_request q{std::move(parsed).value(), {}, body->allow_partial, body->timeout_ms,
                          {}};
  handler_.query(std::move(q), [post = post_, respond = std::move(respond), plan = *plan,
                                base64 = *force_base64](
                                   engine::result<engine::query::partial_result> r) {
    if (!r) return respond_error(respond, r.err());
    auto partial = std::make_shared<engine::query::partial_result>(std::move(r).value());
    auto encode = [respond, base64, plan, partial] {
      const auto answer = engine::query::finish(std::move(*partial), *plan);
      respond(json_response(200, json::encode_query_answer(answer, base64)));
    };
    if (post) return post(std::move(encode));
    encode();
  });
}

void http_api::stats(respond_fn respond) {
  handler_.stats(
      [respond = std::move(respond)](engine::result<std::vector<actors::partition_stats>> r) {
        if (!r) return respond_error(respond, r.err());
        respond(json_response(200, json::encode_stats(*r)));
      });
}

}  // namespace annal::net
