#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/requests.hpp"

namespace annal::actors {

// Where each partition is served, as one node sees it at one map epoch.
struct routing_table {
  std::uint64_t epoch = 0;
  std::uint32_t partition_count = 0;
  std::string self_id;  // this node
  // Per partition: the handler of its owner (this node's own handler, or the
  // peer link to the owning node), null when no node serves it.
  std::vector<std::shared_ptr<request_handler>> owners;
  std::vector<std::string> owner_ids;  // per partition; self_id for local ones
  // More than one node in the map: a partition may move away from this node
  // (a handoff), so local requests too may meet not_owner.
  bool multi_node = false;
};

// The request_handler a clustered node exposes to its clients: sends each
// request to its partition's owner, local or remote, and passes the reply or
// typed error back unchanged. Requests for a partition without an owner fail
// with errc::partition_unavailable.
//
// When an owner answers errc::not_owner (this node's map is behind, or the
// partition just moved away in a handoff), the router asks `refresh` to
// bring the table up to date and retries once with the table it then has.
//
// Thread-safe; set() swaps the whole table atomically, so a request sees
// either the old table or the new one, never a mix.
class cluster_router final : public request_handler {
 public:
  // Brings the table up to date (typically: re-reads the cluster map and
  // calls set()), then calls `done`, on any thread.
  using refresh_fn = std::function<void(std::function<void()> done)>;

  explicit cluster_router(std::shared_ptr<const routing_table> table, refresh_fn refresh = {});

  ~cluster_router() override;

  void set(std::shared_ptr<const routing_table> table);
  std::shared_ptr<const routing_table> table() const;
  // The highest map epoch seen on a forwarded request (0: none): a sender
  // ahead of us means our map is behind.
  std::uint64_t newest_sender_epoch() const { return newest_sender_epoch_.load(); }

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
  // Fans out: one request per node owning requested partitions (this node's
  // own partitions included), carrying that node's partitions; the pages are
  // merged (actors::merge_read_all) and cut to the limit. Any node's error
  // fails the whole page with that error (node_unavailable for a node that
  // cannot be reached); on not_owner the map is refreshed and the whole
  // page retried once.
  void read_all(read_all_request request, reply_fn<read_all_page> reply) override;
  // One request per node; each node reports only the partitions it owns.
  // Merged by partition; a node whose report lacks a partition the map
  // gives it counts as not_owner (refresh, retry once).
  void stats(reply_fn<std::vector<partition_stats>> reply) override;
  // Fans out like read_all: one request per owning node with that node's
  // partitions; the partial results are merged. On not_owner (a partition
  // moved during the scan) the map is refreshed and the query retried once.
  void query(query_request request, reply_fn<engine::query::partial_result> reply) override;

  // Serves forwarded requests from local partitions only (not_owner otherwise).
  request_handler& forwarded(std::uint64_t sender_epoch) override;

 private:
  class local_view;

  // Routes `send(owner, reply)` for `stream`; on not_owner from a remote
  // owner, refreshes and retries once. `send` may be called twice.
  template <class T, class Send>
  void dispatch(std::string stream, reply_fn<T> reply, Send send, bool retried = false);
  void read_all_attempt(read_all_request request, reply_fn<read_all_page> reply, bool retried);
  // A long-poll read-all (wait_ms > 0). Requires: the request was checked.
  void read_all_waiting(read_all_request request, reply_fn<read_all_page> reply, bool retried);
  void stats_attempt(reply_fn<std::vector<partition_stats>> reply, bool retried);
  void query_attempt(query_request request, reply_fn<engine::query::partial_result> reply,
                     bool retried);

  std::atomic<std::shared_ptr<const routing_table>> table_;
  refresh_fn refresh_;
  std::atomic<std::uint64_t> newest_sender_epoch_{0};
  std::unique_ptr<local_view> local_view_;
};

}  // namespace annal::actors
