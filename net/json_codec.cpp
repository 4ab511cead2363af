#include "net/json_codec.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>

namespace annal::net::json {
namespace {

using nlohmann::json;
using engine::errc;
using engine::error;

// Deeper bodies are refused before parsing: serializing them again would
// recurse that deep.
constexpr std::size_t k_max_nesting = 256;

constexpr char k_hex[] = "0123456789abcdef";
constexpr char k_base64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

error malformed(std::string message) { return error{errc::malformed_request, std::move(message)}; }

// The deepest array/object nesting of JSON text, strings skipped. A linear
// scan without recursion; the text need not be valid.
std::size_t nesting_depth(std::string_view text) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

// Parses a request body as one JSON object.
engine::result<json> parse_object(std::string_view body) {
  if (nesting_depth(body) > k_max_nesting) {
    return malformed(fmt::format("the body nests deeper than {} levels", k_max_nesting));
  }
  json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return malformed("the body is not valid JSON");
  if (!doc.is_object()) return malformed("the body must be a JSON object");
  return doc;
}

// A field that must be an unsigned integer when present; `fallback` when
// absent or null.
engine::result<std::uint64_t> unsigned_field(const json& object, const char* name,
                                             std::uint64_t fallback) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number_unsigned()) {
    if (it->is_number_integer()) {
      return error{errc::invalid_argument, fmt::format("\"{}\" must not be negative", name)};
    }
    return malformed(fmt::format("\"{}\" must be a non-negative integer", name));
  }
  return it->get<std::uint64_t>();
}

// Whether the payload named `key` is base64 (from "<key>Encoding").
engine::result<bool> payload_is_base64(const json& object, const std::string& key,
                                       const std::string& where) {
  const auto it = object.find(key + "Encoding");
  if (it == object.end() || it->is_null()) return false;
  if (!it->is_string()) return malformed(fmt::format("{}\"{}Encoding\" must be a string", where, key));
  const auto& value = it->get_ref<const std::string&>();
  if (value == "base64") return true;
  if (value == "json") return false;
  return error{errc::invalid_argument,
               fmt::format("{}\"{}Encoding\" must be \"json\" or \"base64\"", where, key)};
}

// The bytes to store for payload `key` of `object` (see the header).
engine::result<std::string> payload_field(const json& object, const std::string& key,
                                          const std::string& where) {
  auto base64 = payload_is_base64(object, key, where);
  if (!base64) return base64.err();
  const auto it = object.find(key);
  if (it == object.end()) return std::string{};
  if (!*base64) return it->dump();
  if (!it->is_string()) {
    return malformed(fmt::format("{}\"{}\" must be a base64 string", where, key));
  }
  auto bytes = base64_decode(it->get_ref<const std::string&>());
  if (!bytes) return error{errc::invalid_argument, fmt::format("{}\"{}\" is not valid base64", where, key)};
  return std::move(*bytes);
}

void append_payload(std::string& out, std::string_view key, std::string_view bytes,
                    bool force_base64) {
  out += '"';
  out += key;
  out += "\":";
  if (bytes.empty()) {
    out += "null";
  } else if (!force_base64 && is_json(bytes)) {
    out += bytes;
  } else {
    out += '"';
    out += base64_encode(bytes);
    out += "\",\"";
    out += key;
    out += "Encoding\":\"base64\"";
  }
}

void append_optional_version(std::string& out, const std::optional<stream_version>& v) {
  if (v) {
    out += std::to_string(v->value());
  } else {
    out += "null";
  }
}

}  // namespace

std::string format_uuid(const event_id& id) {
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += k_hex[id[i] >> 4];
    out += k_hex[id[i] & 0xf];
  }
  return out;
}

std::optional<event_id> parse_uuid(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  event_id id{};
  std::size_t byte = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    const int high = hex_value(text[i]);
    const int low = hex_value(text[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    id[byte++] = static_cast<std::uint8_t>(high << 4 | low);
    i += 2;
  }
  return id;
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = std::uint32_t{static_cast<std::uint8_t>(bytes[i])} << 16 |
                            std::uint32_t{static_cast<std::uint8_t>(bytes[i + 1])} << 8 |
                            static_cast<std::uint8_t>(bytes[i + 2]);
    out += k_base64[n >> 18 & 63];
    out += k_base64[n >> 12 & 63];
    out += k_base64[n >> 6 & 63];
    out += k_base64[n & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t n = std::uint32_t{static_cast<std::uint8_t>(bytes[i])} << 16;
    if (rest == 2) n |= std::uint32_t{static_cast<std::uint8_t>(bytes[i + 1])} << 8;
    out += k_base64[n >> 18 & 63];
    out += k_base64[n >> 12 & 63];
    out += rest == 2 ? k_base64[n >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t bits = 0;
  int count = 0;
  for (const char c : text) {
    const int v = base64_value(c);
    if (v < 0) return std::nullopt;
    bits = bits << 6 | static_cast<std::uint32_t>(v);
    if (++count == 4) {
      out += static_cast<char>(bits >> 16 & 0xff);
      out += static_cast<char>(bits >> 8 & 0xff);
      out += static_cast<char>(bits & 0xff);
      bits = 0;
      count = 0;
    }
  }
  if (count == 2) {
    out += static_cast<char>(bits >> 4 & 0xff);
  } else if (count == 3) {
    out += static_cast<char>(bits >> 10 & 0xff);
    out += static_cast<char>(bits >> 2 & 0xff);
  }
  return out;
}

bool is_json(std::string_view bytes) { return json::accept(bytes.begin(), bytes.end()); }

std::string quote(std::string_view text) {
  return json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
}

engine::result<engine::expected_version> parse_expected_version(std::string_view text) {
  if (text == "any") return engine::expected_version::any();
  if (text == "no_stream") return engine::expected_version::no_stream();
  if (text == "stream_exists") return engine::expected_version::stream_exists();
  std::uint64_t version = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) {
    return error{errc::invalid_argument,
                 "expectedVersion must be any, no_stream, stream_exists or a version >= 0"};
  }
  return engine::expected_version::exact(version);
}

engine::result<actors::append_request> decode_append(std::string stream, std::string_view body,
                                                     std::size_t max_batch_events) {
  auto doc = parse_object(body);
  if (!doc) return doc.err();
  actors::append_request request;
  request.stream = std::move(stream);

  const auto expected = doc->find("expectedVersion");
  if (expected == doc->end() || expected->is_null()) {
    request.expected = engine::expected_version::any();
  } else if (expected->is_string()) {
    auto parsed = parse_expected_version(expected->get_ref<const std::string&>());
    if (!parsed) return parsed.err();
    request.expected = *parsed;
  } else if (expected->is_number_unsigned()) {
    request.expected = engine::expected_version::exact(expected->get<std::uint64_t>());
  } else if (expected->is_number_integer()) {
    return error{errc::invalid_argument, "expectedVersion must not be negative"};
  } else {
    return malformed("\"expectedVersion\" must be a string or a non-negative integer");
  }

  const auto events = doc->find("events");
  if (events == doc->end()) return malformed("\"events\" is missing");
  if (!events->is_array()) return malformed("\"events\" must be an array");
  if (events->empty()) return error{errc::invalid_event, "an append needs at least one event"};
  if (events->size() > max_batch_events) {
    return error{errc::batch_too_large, fmt::format("{} events in one append; the limit is {}",
                                                    events->size(), max_batch_events)};
  }
  request.events.reserve(events->size());
  for (std::size_t i = 0; i < events->size(); ++i) {
    const json& e = (*events)[i];
    const std::string where = fmt::format("event {}: ", i);
    if (!e.is_object()) return malformed(where + "an event must be a JSON object");
    engine::event_input input;

    const auto id = e.find("id");
    if (id == e.end() || id->is_null()) {
      // Left nil: the node gives it a random version-4 UUID.
    } else if (!id->is_string()) {
      return malformed(where + "\"id\" must be a UUID string");
    } else if (auto parsed = parse_uuid(id->get_ref<const std::string&>())) {
      input.id = *parsed;
    } else {
      return error{errc::invalid_event, where + "\"id\" is not a UUID (8-4-4-4-12 hex digits)"};
    }

    const auto type = e.find("type");
    if (type == e.end()) return malformed(where + "\"type\" is missing");
    if (!type->is_string()) return malformed(where + "\"type\" must be a string");
    input.type = type->get<std::string>();

    auto data = payload_field(e, "data", where);
    if (!data) return data.err();
    input.data = std::move(*data);
    auto metadata = payload_field(e, "metadata", where);
    if (!metadata) return metadata.err();
    input.metadata = std::move(*metadata);
    request.events.push_back(std::move(input));
  }
  return request;
}

std::string encode_append_reply(const actors::append_reply& reply) {
  return fmt::format(
      R"({{"firstVersion":{},"lastVersion":{},"position":{},"partition":{},"duplicate":{}}})",
      reply.first_version.value(), reply.last_version.value(), reply.position.value(),
      reply.partition.value(), reply.duplicate);
}

std::string encode_event(const engine::recorded_event& event, bool force_base64) {
  std::string out;
  out.reserve(128 + event.data.size() + event.metadata.size());
  out += R"({"id":")";
  out += format_uuid(event.id);
  out += R"(","type":)";
  out += quote(event.type);
  out += R"(,"version":)";
  out += std::to_string(event.version.value());
  out += R"(,"timestamp":)";
  out += std::to_string(event.timestamp);
  out += ',';
  append_payload(out, "data", event.data, force_base64);
  out += ',';
  append_payload(out, "metadata", event.metadata, force_base64);
  out += '}';
  return out;
}

std::string encode_read_page(const engine::read_page& page, bool force_base64) {
  std::string out = R"({"events":[)";
  for (std::size_t i = 0; i < page.events.size(); ++i) {
    if (i > 0) out += ',';
    out += encode_event(page.events[i], force_base64);
  }
  out += R"(],"next":)";
  append_optional_version(out, page.next);
  out += R"(,"lastVersion":)";
  append_optional_version(out, page.last_version);
  out += '}';
  return out;
}

engine::result<engine::stream_metadata> decode_metadata(std::string_view body) {
  auto doc = parse_object(body);
  if (!doc) return doc.err();
  engine::stream_metadata metadata;
  auto max_count = unsigned_field(*doc, "maxCount", 0);
  if (!max_count) return max_count.err();
  auto max_age = unsigned_field(*doc, "maxAge", 0);
  if (!max_age) return max_age.err();
  auto truncate_before = unsigned_field(*doc, "truncateBefore", 0);
  if (!truncate_before) return truncate_before.err();
  metadata.max_count = *max_count;
  metadata.max_age_seconds = *max_age;
  metadata.truncate_before = *truncate_before;
  return metadata;
}

std::string encode_stream_info(const engine::stream_info& info) {
  std::string out = fmt::format(R"({{"maxCount":{},"maxAge":{},"truncateBefore":{},"lastVersion":)",
                                info.metadata.max_count, info.metadata.max_age_seconds,
                                info.metadata.truncate_before);
  append_optional_version(out, info.last_version);
  out += fmt::format(R"(,"firstRetained":{},"deleted":{},"tombstoned":{}}})", info.first_retained,
                     info.deleted, info.tombstoned);
  return out;
}

engine::result<snapshot_body> decode_snapshot(std::string_view body) {
  auto doc = parse_object(body);
  if (!doc) return doc.err();
  const auto version = doc->find("version");
  if (version == doc->end() || version->is_null()) return malformed("\"version\" is missing");
  auto v = unsigned_field(*doc, "version", 0);
  if (!v) return v.err();
  if (doc->find("data") == doc->end()) return malformed("\"data\" is missing");
  auto payload = payload_field(*doc, "data", "");
  if (!payload) return payload.err();
  return snapshot_body{stream_version{*v}, std::move(*payload)};
}

std::string encode_snapshot(const engine::snapshot_read& snapshot, bool force_base64) {
  std::string out = fmt::format(R"({{"version":{},"timestamp":{},)", snapshot.version.value(),
                                snapshot.timestamp);
  append_payload(out, "data", snapshot.payload, force_base64);
  out += '}';
  return out;
}

std::string encode_write_reply(const actors::write_reply& reply) {
  return fmt::format(R"({{"position":{},"partition":{}}})", reply.position.value(),
                     reply.partition.value());
}

std::string encode_error(const engine::error& e) {
  std::string out = R"({"error":{"code":")";
  out += engine::errc_name(e.code);
  out += R"(","message":)";
  out += quote(e.message);
  if (e.code == errc::wrong_expected_version) {
    out += R"(,"currentVersion":)";
    append_optional_version(out, e.current_version);
  }
  out += "}}";
  return out;
}

std::string encode_all_page(const actors::read_all_page& page, std::string_view next_token,
                            bool force_base64) {
  std::string out = R"({"events":[)";
  for (std::size_t i = 0; i < page.events.size(); ++i) {
    if (i > 0) out += ',';
    out += encode_all_event(page.events[i], force_base64);
  }
  out += R"(],"next":)";
  out += quote(next_token);
  out += R"(,"atEnd":)";
  out += page.at_end ? "true" : "false";
  out += '}';
  return out;
}

std::string encode_all_event(const actors::all_event& e, bool force_base64) {
  std::string out = R"({"stream":)";
  out += quote(e.stream);
  out += R"(,"partition":)";
  out += std::to_string(e.partition.value());
  out += R"(,"position":)";
  out += std::to_string(e.event.position.value());
  out += ',';
  // encode_event's object without its opening brace.
  out += std::string_view(encode_event(e.event, force_base64)).substr(1);
  return out;
}

std::string encode_stats(const std::vector<actors::partition_stats>& stats) {
  struct node_totals {
    std::uint64_t partitions = 0, streams = 0, events = 0, bytes = 0;
  };
  std::map<std::string, node_totals> nodes;
  std::uint64_t streams = 0, events = 0;
  std::string out = R"({"partitions":[)";
  for (std::size_t i = 0; i < stats.size(); ++i) {
    const auto& s = stats[i];
    if (i > 0) out += ',';
    out += fmt::format(R"({{"partition":{},"node":{},"streams":{},"events":{},"endLsn":{}}})",
                       s.partition.value(), quote(s.node), s.streams, s.events, s.end_lsn.value());
    auto& n = nodes[s.node];
    ++n.partitions;
    n.streams += s.streams;
    n.events += s.events;
    n.bytes += s.end_lsn.value();
    streams += s.streams;
    events += s.events;
  }
  out += R"(],"nodes":[)";
  bool first = true;
  for (const auto& [id, n] : nodes) {
    if (!first) out += ',';
    first = false;
    out += fmt::format(R"({{"node":{},"partitions":{},"streams":{},"events":{},"bytes":{}}})",
                       quote(id), n.partitions, n.streams, n.events, n.bytes);
  }
  out += fmt::format(R"(],"streams":{},"events":{}}})", streams, events);
  return out;
}

}  // namespace annal::net::json
