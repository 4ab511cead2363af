#include "cli/client_commands.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <sstream>

#include "cli/address.hpp"
#include "client/client.hpp"
#include "net/json_codec.hpp"

namespace annal::cli {
namespace {

int fail(const engine::error& e) {
  std::fprintf(stderr, "annal: %s: %s\n", engine::errc_name(e.code), e.message.c_str());
  return 1;
}

int usage(const std::string& message) {
  std::fprintf(stderr, "annal: %s\n", message.c_str());
  return 2;
}

int print(const std::string& json_text) {
  std::printf("%s\n", json_text.c_str());
  return 0;
}

engine::result<std::unique_ptr<client::client>> connect(const connection_flags& c) {
  const auto address = parse_host_port(c.server);
  if (!address || address->port == 0) {
    return engine::error(engine::errc::invalid_argument,
                         "invalid --server '" + c.server + "' (expected HOST:PORT)");
  }
  client::client_options options;
  options.host = address->host;
  options.port = address->port;
  options.client_name = "annal-cli";
  options.request_timeout = std::chrono::milliseconds(c.timeout_ms);
  return client::client::connect(options);
}

// Compact JSON text if `text` is JSON, else the text as given.
std::string stored_bytes(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? text : parsed.dump();
}

template <class T>
int run(const connection_flags& c, T&& body) {
  auto connected = connect(c);
  if (!connected) {
    return connected.err().code == engine::errc::invalid_argument ? usage(connected.err().message)
                                                                  : fail(connected.err());
  }
  return body(**connected);
}

}  // namespace

int run_append(const connection_flags& c, const append_flags& f) {
  auto expected = net::json::parse_expected_version(f.expected);
  if (!expected) return usage("invalid --expected '" + f.expected + "'");
  actors::append_request request;
  if (f.events) {
    if (!f.type.empty() || f.data || f.metadata || f.id) {
      return usage("--events excludes --type, --data, --metadata and --id");
    }
    std::string text = *f.events;
    if (text == "-") text.assign(std::istreambuf_iterator<char>(std::cin), {});
    auto events = nlohmann::json::parse(text, nullptr, false);
    if (events.is_discarded() || !events.is_array()) {
      return usage("--events must be a JSON array of events");
    }
    auto decoded = net::json::decode_append(f.stream, nlohmann::json{{"events", events}}.dump(),
                                            std::numeric_limits<std::size_t>::max());
    if (!decoded) return fail(decoded.err());
    request = std::move(decoded).value();
  } else {
    if (f.type.empty()) return usage("give --type (and --data), or --events");
    engine::event_input event;
    event.type = f.type;
    if (f.data) event.data = stored_bytes(*f.data);
    if (f.metadata) event.metadata = stored_bytes(*f.metadata);
    if (f.id) {
      auto id = net::json::parse_uuid(*f.id);
      if (!id) return usage("invalid --id '" + *f.id + "' (expected a UUID)");
      event.id = *id;
    }
    request.stream = f.stream;
    request.events.push_back(std::move(event));
  }
  request.expected = *expected;
  return run(c, [&](client::client& cl) {
    auto reply = cl.append(std::move(request));
    return reply ? print(net::json::encode_append_reply(*reply)) : fail(reply.err());
  });
}

int run_read(const connection_flags& c, const read_flags& f) {
  if (f.limit == 0) return usage("--limit must be at least 1");
  actors::read_request request;
  request.stream = f.stream;
  request.limit = f.limit;
  request.direction = f.backward ? engine::read_direction::backward : engine::read_direction::forward;
  if (f.from) {
    request.from = stream_version{*f.from};
  } else {
    request.from_end = f.backward;
  }
  return run(c, [&](client::client& cl) {
    auto page = cl.read(std::move(request));
    return page ? print(net::json::encode_read_page(*page, false)) : fail(page.err());
  });
}

int run_head(const connection_flags& c, const std::string& stream) {
  return run(c, [&](client::client& cl) {
    auto page = cl.read_last(stream);
    if (!page) return fail(page.err());
    if (page->events.empty()) {
      return fail(engine::error(engine::errc::stream_not_found, "stream '" + stream + "' is empty"));
    }
    return print(net::json::encode_event(page->events.front(), false));
  });
}

int run_delete(const connection_flags& c, const delete_flags& f) {
  auto expected = net::json::parse_expected_version(f.expected);
  if (!expected) return usage("invalid --expected '" + f.expected + "'");
  return run(c, [&](client::client& cl) {
    auto reply = cl.delete_stream(f.stream, *expected, f.tombstone);
    return reply ? print(net::json::encode_write_reply(*reply)) : fail(reply.err());
  });
}

int run_meta(const connection_flags& c, const meta_flags& f) {
  return run(c, [&](client::client& cl) {
    auto info = cl.get_stream_info(f.stream);
    if (!info) return fail(info.err());
    if (!f.max_count && !f.max_age && !f.truncate_before) {
      return print(net::json::encode_stream_info(*info));
    }
    engine::stream_metadata metadata = info->metadata;
    if (f.max_count) metadata.max_count = *f.max_count;
    if (f.max_age) metadata.max_age_seconds = *f.max_age;
    if (f.truncate_before) metadata.truncate_before = *f.truncate_before;
    auto written = cl.set_metadata(f.stream, metadata);
    if (!written) return fail(written.err());
    auto after = cl.get_stream_info(f.stream);
    return after ? print(net::json::encode_stream_info(*after)) : fail(after.err());
  });
}

int run_snapshot(const connection_flags& c, const snapshot_flags& f) {
  if (f.version.has_value() != f.data.has_value()) {
    return usage("storing a snapshot needs both --version and --data");
  }
  return run(c, [&](client::client& cl) {
    if (f.version) {
      auto reply = cl.put_snapshot(f.stream, stream_version{*f.version}, stored_bytes(*f.data));
      return reply ? print(net::json::encode_write_reply(*reply)) : fail(reply.err());
    }
    auto snapshot = cl.get_snapshot(f.stream);
    if (!snapshot) return fail(snapshot.err());
    if (!*snapshot) {
      return fail(engine::error(engine::errc::not_found,
                                "stream '" + f.stream + "' has no snapshot"));
    }
    return print(net::json::encode_snapshot(**snapshot, false));
  });
}

}  // namespace annal::cli
