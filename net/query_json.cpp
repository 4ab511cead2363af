#include "net/query_json.hpp"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "net/json_codec.hpp"

namespace annal::net::json {
namespace {

using engine::errc;
using engine::error;

void append_value(std::string& out, const engine::query::value& v) {
  if (std::holds_alternative<engine::query::null_value>(v)) {
    out += "null";
  } else if (const bool* b = std::get_if<bool>(&v)) {
    out += *b ? "true" : "false";
  } else if (const double* d = std::get_if<double>(&v)) {
    if (!std::isfinite(*d)) {
      out += "null";  // JSON has no infinities
    } else {
      out += fmt::format("{}", *d);
    }
  } else {
    out += quote(std::get<std::string>(v));
  }
}

void append_event(std::string& out, const engine::query::listed_event& e, bool force_base64) {
  actors::all_event view;
  view.stream = e.stream;
  view.partition = e.partition;
  view.index = e.index;
  view.event.id = e.id;
  view.event.type = e.type;
  view.event.data = e.data;
  view.event.metadata = e.metadata;
  view.event.version = e.version;
  view.event.timestamp = e.timestamp;
  view.event.position = e.position;
  out += encode_all_event(view, force_base64);
}

}  // namespace

engine::result<query_body> decode_query_body(std::string_view body) {
  auto doc = nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return error{errc::malformed_request, "the body must be a JSON object {\"query\": \"...\"}"};
  }
  query_body out;
  auto text = doc.find("query");
  if (text == doc.end() || !text->is_string()) {
    return error{errc::malformed_request, "\"query\" must be the query text, a string"};
  }
  out.text = text->get<std::string>();
  if (auto partial = doc.find("allowPartial"); partial != doc.end()) {
    if (!partial->is_boolean()) {
      return error{errc::malformed_request, "\"allowPartial\" must be true or false"};
    }
    out.allow_partial = partial->get<bool>();
  }
  if (auto timeout = doc.find("timeoutMs"); timeout != doc.end()) {
    if (!timeout->is_number_unsigned() || timeout->get<std::uint64_t>() > UINT32_MAX) {
      return error{errc::malformed_request,
                   "\"timeoutMs\" must be a whole number of milliseconds"};
    }
    out.timeout_ms = timeout->get<std::uint32_t>();
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "query" && key != "allowPartial" && key != "timeoutMs") {
      return error{errc::malformed_request, fmt::format("unknown field {:?}", key)};
    }
  }
  return out;
}

std::string encode_query_answer(const engine::query::query_answer& answer, bool force_base64) {
  std::string out = "{";
  if (const auto* table = std::get_if<engine::query::result_table>(&answer.body)) {
    out += R"("columns":[)";
    for (std::size_t i = 0; i < table->columns.size(); ++i) {
      if (i > 0) out += ',';
      out += quote(table->columns[i]);
    }
    out += R"(],"rows":[)";
    for (std::size_t r = 0; r < table->rows.size(); ++r) {
      if (r > 0) out += ',';
      out += '[';
      for (std::size_t c = 0; c < table->rows[r].size(); ++c) {
        if (c > 0) out += ',';
        append_value(out, table->rows[r][c]);
      }
      out += ']';
    }
    out += ']';
  } else {
    const auto& events = std::get<std::vector<engine::query::listed_event>>(answer.body);
    out += R"("events":[)";
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (i > 0) out += ',';
      append_event(out, events[i], force_base64);
    }
    out += ']';
  }
  out += R"(,"positions":[)";
  for (std::size_t i = 0; i < answer.positions.size(); ++i) {
    if (i > 0) out += ',';
    out += fmt::format(R"({{"partition":{},"lsn":{}}})", answer.positions[i].first.value(),
                       answer.positions[i].second.value());
  }
  out += fmt::format(R"(],"eventsScanned":{},"partial":{}}})", answer.events_scanned,
                     answer.partial ? "true" : "false");
  return out;
}

}  // namespace annal::net::json
