#include "actors/cluster_router.hpp"

#include <fmt/format.h>

#include "engine/partitioning.hpp"

namespace annal::actors {

cluster_router::cluster_router(std::shared_ptr<const routing_table> table)
    : table_(std::move(table)) {}

void cluster_router::set(std::shared_ptr<const routing_table> table) {
  table_.store(std::move(table));
}

std::shared_ptr<const routing_table> cluster_router::table() const { return table_.load(); }

result<std::shared_ptr<request_handler>> cluster_router::owner_of(std::string_view stream) const {
  if (!engine::valid_stream_id(stream)) {
    return error{errc::invalid_stream_id,
                 "a stream id is 1..256 bytes of valid UTF-8 without "
                 "control characters"};
  }
  const auto table = table_.load();
  const auto p = engine::partition_for(stream, table->partition_count).value();
  if (p < table->owners.size() && table->owners[p]) return table->owners[p];
  return error{errc::partition_unavailable,
               fmt::format("partition {} has no owner at epoch {}", p, table->epoch)};
}

namespace {

// Calls `send(owner)` for the owner of `stream`, or answers `reply` with the
// routing error.
template <class Reply, class Send>
void route(const result<std::shared_ptr<request_handler>>& owner, Reply& reply, Send send) {
  if (!owner) {
    reply(owner.err());
    return;
  }
  send(*owner.value());
}

}  // namespace

void cluster_router::append(append_request request, reply_fn<append_reply> reply) {
  route(owner_of(request.stream), reply,
        [&](request_handler& owner) { owner.append(std::move(request), std::move(reply)); });
}

void cluster_router::read(read_request request, reply_fn<engine::read_page> reply) {
  route(owner_of(request.stream), reply,
        [&](request_handler& owner) { owner.read(std::move(request), std::move(reply)); });
}

void cluster_router::read_last(std::string stream, reply_fn<engine::read_page> reply) {
  route(owner_of(stream), reply,
        [&](request_handler& owner) { owner.read_last(std::move(stream), std::move(reply)); });
}

void cluster_router::get_stream_info(std::string stream, reply_fn<engine::stream_info> reply) {
  route(owner_of(stream), reply, [&](request_handler& owner) {
    owner.get_stream_info(std::move(stream), std::move(reply));
  });
}

void cluster_router::set_metadata(std::string stream, engine::stream_metadata metadata,
                                  reply_fn<write_reply> reply) {
  route(owner_of(stream), reply, [&](request_handler& owner) {
    owner.set_metadata(std::move(stream), std::move(metadata), std::move(reply));
  });
}

void cluster_router::delete_stream(std::string stream, engine::expected_version expected,
                                   bool tombstone, reply_fn<write_reply> reply) {
  route(owner_of(stream), reply, [&](request_handler& owner) {
    owner.delete_stream(std::move(stream), expected, tombstone, std::move(reply));
  });
}

void cluster_router::put_snapshot(std::string stream, stream_version version, std::string payload,
                                  reply_fn<write_reply> reply) {
  route(owner_of(stream), reply, [&](request_handler& owner) {
    owner.put_snapshot(std::move(stream), version, std::move(payload), std::move(reply));
  });
}

void cluster_router::get_snapshot(std::string stream,
                                  reply_fn<std::optional<engine::snapshot_read>> reply) {
  route(owner_of(stream), reply,
        [&](request_handler& owner) { owner.get_snapshot(std::move(stream), std::move(reply)); });
}

}  // namespace annal::actors
