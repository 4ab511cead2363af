#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "actors/requests.hpp"

namespace annal::actors {

// Where each partition is served, as one node sees it at one map epoch.
struct routing_table {
  std::uint64_t epoch = 0;
  std::uint32_t partition_count = 0;
  // Per partition: the handler of its owner (this node's own handler, or the
  // peer link to the owning node), null when no node serves it.
  std::vector<std::shared_ptr<request_handler>> owners;
  std::vector<std::string> owner_ids;  // per partition, for messages
};

// The request_handler a clustered node exposes to its clients: sends each
// request to its partition's owner, local or remote, and passes the reply or
// typed error back unchanged. Requests for a partition without an owner fail
// with errc::partition_unavailable.
//
// Thread-safe; set() swaps the whole table atomically, so a request sees
// either the old table or the new one, never a mix.
class cluster_router final : public request_handler {
 public:
  explicit cluster_router(std::shared_ptr<const routing_table> table);

  void set(std::shared_ptr<const routing_table> table);
  std::shared_ptr<const routing_table> table() const;

  void append(append_request request, reply_fn<append_reply> reply) override;
  void read(read_request request, reply_fn<engine::read_page> reply) override;
  void read_last(std::string stream, reply_fn<engine::read_page> reply) override;
  void get_stream_info(std::string stream, reply_fn<engine::stream_info> reply) override;
  void set_metadata(std::string stream, engine::stream_metadata metadata,
                    reply_fn<write_reply> reply) override;
  void delete_stream(std::string stream, engine::expected_version expected, bool tombstone,
                     reply_fn<write_reply> reply) override;
  void put_snapshot(std::string stream, stream_version version, std::string payload,
                    reply_fn<write_reply> reply) override;
  void get_snapshot(std::string stream,
                    reply_fn<std::optional<engine::snapshot_read>> reply) override;

 private:
  // The owner's handler, or the error to answer with.
  result<std::shared_ptr<request_handler>> owner_of(std::string_view stream) const;

  std::atomic<std::shared_ptr<const routing_table>> table_;
};

}  // namespace annal::actors
