#include "engine/errors.hpp"

#include <fmt/format.h>

namespace annal::engine {
namespace {

class engine_error_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "annal.engine"; }
  std::string message(int value) const override { return errc_name(static_cast<errc>(value)); }
};

}  // namespace

const std::error_category& engine_category() {
  static const engine_error_category category;
  return category;
}

std::error_code make_error_code(errc e) { return {static_cast<int>(e), engine_category()}; }

const char* errc_name(errc e) {
  switch (e) {
    case errc::ok: return "ok";
    case errc::wrong_expected_version: return "wrong_expected_version";
    case errc::stream_not_found: return "stream_not_found";
    case errc::stream_deleted: return "stream_deleted";
    case errc::idempotency_conflict: return "idempotency_conflict";
    case errc::invalid_stream_id: return "invalid_stream_id";
    case errc::invalid_event: return "invalid_event";
    case errc::batch_too_large: return "batch_too_large";
    case errc::invalid_argument: return "invalid_argument";
    case errc::checksum_mismatch: return "checksum_mismatch";
    case errc::lsn_gap: return "lsn_gap";
    case errc::corruption: return "corruption";
    case errc::io_error: return "io_error";
    case errc::partition_unavailable: return "partition_unavailable";
    case errc::malformed_request: return "malformed_request";
    case errc::unknown_request: return "unknown_request";
    case errc::unsupported_version: return "unsupported_version";
    case errc::frame_too_large: return "frame_too_large";
    case errc::too_many_connections: return "too_many_connections";
    case errc::overloaded: return "overloaded";
    case errc::timeout: return "timeout";
    case errc::connection_lost: return "connection_lost";
    case errc::shutting_down: return "shutting_down";
    case errc::not_found: return "not_found";
    case errc::not_owner: return "not_owner";
    case errc::node_unavailable: return "node_unavailable";
    case errc::conflict: return "conflict";
    case errc::metadata_unavailable: return "metadata_unavailable";
    case errc::full_copy_needed: return "full_copy_needed";
    case errc::query_syntax: return "query_syntax";
    case errc::query_too_large: return "query_too_large";
    case errc::query_timeout: return "query_timeout";
  }
  return "unknown";
}

std::optional<errc> errc_from_name(std::string_view name) {
  for (int value = 0; value <= static_cast<int>(errc::last_errc); ++value) {
    if (name == errc_name(static_cast<errc>(value))) return static_cast<errc>(value);
  }
  return std::nullopt;
}

error io_failure(std::string_view what, const std::string& path, std::error_code ec) {
  return error{errc::io_error, fmt::format("{} {}: {}", what, path, ec.message())};
}

}  // namespace annal::engine
