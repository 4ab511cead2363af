#include "net/query_wire.hpp"

#include "engine/query/parser.hpp"
#include "engine/query/query_codec.hpp"
#include "engine/query/resolve_time.hpp"

namespace annal::net {

engine::result<engine::query::query> prepare_query(std::string_view text, timestamp_us now) {
  auto parsed = engine::query::parse_query(text);
  if (!parsed) return parsed.err();
  return engine::query::resolve_relative_times(std::move(parsed).value(), now);
}

engine::result<received_query> decode_query_request(wire::QueryRequest::Reader in,
                                                    timestamp_us now) {
  received_query out;
  if (in.hasText() && in.getText().size() > 0) {
    const auto text = in.getText();
    auto q = prepare_query(std::string_view(text.cStr(), text.size()), now);
    if (!q) return q.err();
    out.request.query = std::move(q).value();
  } else if (in.hasQuery()) {
    auto q = engine::query::decode_query(in.getQuery());
    if (!q) return q.err();
    out.request.query = engine::query::resolve_relative_times(std::move(q).value(), now);
  } else {
    return engine::error{engine::errc::malformed_request, "a query request needs a text or a query"};
  }
  for (const auto p : in.getPartitions()) out.request.partitions.emplace_back(p);
  out.request.allow_partial = in.getAllowPartial();
  out.request.timeout_ms = in.getTimeoutMs();
  out.want_partial = in.getWantPartial();
  return out;
}

void encode_query_text(wire::QueryRequest::Builder out, std::string_view text, bool allow_partial,
                       std::uint32_t timeout_ms) {
  out.setText(capnp::Text::Reader(text.data(), text.size()));
  out.setAllowPartial(allow_partial);
  out.setTimeoutMs(timeout_ms);
}

void encode_query_fan_out(wire::QueryRequest::Builder out, const actors::query_request& request) {
  engine::query::encode_query(request.query, out.initQuery());
  auto partitions = out.initPartitions(static_cast<unsigned>(request.partitions.size()));
  for (unsigned i = 0; i < partitions.size(); ++i) {
    partitions.set(i, request.partitions[i].value());
  }
  out.setAllowPartial(request.allow_partial);
  out.setTimeoutMs(request.timeout_ms);
  out.setWantPartial(true);
}

}  // namespace annal::net
