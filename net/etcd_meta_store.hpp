#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/meta_store.hpp"

namespace annal::net {

struct etcd_options {
  // Client URLs ("http://127.0.0.1:2379"); at least one. Calls go to the one
  // that answered last and fail over to the next when it cannot be reached.
  std::vector<std::string> endpoints;
  // Time to establish a TCP connection to one endpoint.
  std::chrono::milliseconds connect_timeout{2000};
  // Time for a whole request/response to one endpoint (watches excepted).
  std::chrono::milliseconds request_timeout{5000};
  // Delay before a dropped watch reconnects: doubles from min up to max, back
  // to min once a watch is established again.
  std::chrono::milliseconds watch_backoff_min{100};
  std::chrono::milliseconds watch_backoff_max{2000};

  // Splits "http://a:2379,http://b:2379" (whitespace around commas ignored).
  static std::vector<std::string> parse_endpoints(std::string_view list);
};

// meta_store over etcd 3.4's HTTP/JSON gateway (/v3/kv/range, /v3/kv/txn,
// /v3/lease/*, /v3/kv/compaction, /v3/watch) with libcurl.
//
// Failover: a request that cannot connect to an endpoint (refused, no route,
// connect timeout) moves on to the next one. Reads are also retried on the
// next endpoint after any other transport failure; writes (txn, put, del,
// lease grant/revoke) are not, because the first endpoint may have applied
// them: they return errc::metadata_unavailable saying the outcome is unknown.
// Every call is bounded by about endpoints * (connect_timeout +
// request_timeout).
//
// Watches: each runs a streaming POST /v3/watch on its own thread. When the
// stream drops (etcd restarts, a network error) the watch reconnects, with
// backoff, from the revision after the last one it delivered, so no event is
// lost or repeated. If etcd compacted that revision meanwhile, the watch
// ends with watch_error::kind::compacted (see cluster/meta_store.hpp).
// While etcd cannot be reached a watch keeps retrying and logs a warning.
//
// Thread-safe. Owned by one node for its lifetime; watch handles must be
// destroyed before the store.
class etcd_meta_store final : public cluster::meta_store {
 public:
  // Requires: !opts.endpoints.empty().
  explicit etcd_meta_store(etcd_options opts);
  ~etcd_meta_store() override;

  etcd_meta_store(const etcd_meta_store&) = delete;
  etcd_meta_store& operator=(const etcd_meta_store&) = delete;

  engine::result<cluster::range_result> range(const std::string& key, bool prefix = false) override;
  engine::result<cluster::txn_result> txn(const std::vector<cluster::compare>& compares,
                                          const std::vector<cluster::op>& on_success,
                                          const std::vector<cluster::op>& on_failure) override;
  engine::result<std::int64_t> lease_grant(std::chrono::seconds ttl) override;
  engine::status lease_keep_alive(std::int64_t id) override;
  engine::status lease_revoke(std::int64_t id) override;
  engine::status compact(std::int64_t revision) override;
  std::unique_ptr<cluster::watch_handle> watch(const std::string& prefix, std::int64_t from_revision,
                                               cluster::watch_callback on_events,
                                               cluster::watch_error_callback on_error = {}) override;

  const etcd_options& options() const { return opts_; }

 private:
  // POSTs `body` (JSON) to `path` and returns the response body (JSON text)
  // of a 200 reply; maps etcd's error replies and transport failures.
  engine::result<std::string> post(const std::string& path, const std::string& body, bool idempotent);

  void* acquire_handle();
  void release_handle(void* handle);

  const etcd_options opts_;
  std::atomic<std::size_t> preferred_{0};  // index of the endpoint that answered last
  std::mutex pool_mu_;
  std::vector<void*> pool_;  // idle CURL easy handles (keep their connections); guarded by pool_mu_
};

}  // namespace annal::net
