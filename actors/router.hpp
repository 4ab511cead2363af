#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include <caf/actor.hpp>

#include "engine/errors.hpp"
#include "engine/types.hpp"

namespace annal::actors {

// Routes a stream to the actor serving its partition. Today every route is a
// local partition actor; a cluster node will put a peer proxy actor (same
// messages, forwarded over the peer link) in the routes of remote partitions.
//
// Owned by node. Filled before the node takes requests and cleared by stop()
// after the last request has been routed; in between it is immutable, so any
// thread may read it without locking. (A changing cluster map will swap whole
// tables.)
class router {
 public:
  struct route {
    caf::actor actor;                         // null when unavailable
    std::optional<engine::error> unavailable;  // errc::partition_unavailable
  };

  explicit router(std::uint32_t partition_count) : partition_count_(partition_count) {}

  std::uint32_t partition_count() const { return partition_count_; }
  partition_id partition_for(std::string_view stream) const;
  // Requires: p < partition_count() and the table is filled.
  const route& at(partition_id p) const { return routes_[p.value()]; }

  // Requires: no request is being routed (start and stop only).
  void set(std::vector<route> routes) { routes_ = std::move(routes); }
  // Drops every actor handle, so that the actor system can shut down.
  // Requires: no request is being routed.
  void clear() { routes_.clear(); }
  const std::vector<route>& routes() const { return routes_; }

 private:
  std::uint32_t partition_count_;
  std::vector<route> routes_;
};

}  // namespace annal::actors
