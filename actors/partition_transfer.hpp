#pragma once

#include <chrono>
#include <cstddef>

#include "actors/requests.hpp"
#include "engine/shipped_batch.hpp"

namespace annal::actors {

// The source side of a partition handoff (docs/cluster.md, "Handoff"), as
// the node that is taking a partition over calls it on the partition's
// current owner: over a peer link, served by the owner's binary server.
//
// Thread-safe; every call ends in exactly one reply, like request_handler.
class partition_transfer {
 public:
  virtual ~partition_transfer() = default;

  // The committed records of `p` from `from` (engine::partition::ship_from).
  virtual void ship_log(partition_id p, lsn from, std::size_t max_bytes,
                        reply_fn<engine::shipped_batch> reply) = 0;
  // The write pause: from now on the owner holds every client request to `p`
  // (none is applied, none fails) and replies, once every write it accepted
  // before is durable, with the partition's end. The hold ends with unseal(),
  // with the partition moving away (the held requests then fail with
  // not_owner, and their senders retry at the new owner), or, `hold_for`
  // after the seal, when the owner has fenced the handoff off in the
  // metadata store (docs/cluster.md). errc::not_owner if `p` is not the
  // owner's, errc::invalid_argument if it is sealed already.
  virtual void seal(partition_id p, std::chrono::milliseconds hold_for, reply_fn<lsn> reply) = 0;
  // Ends a hold: the held requests are served in order. Replies with the
  // partition's end; a partition not sealed is left as it is.
  virtual void unseal(partition_id p, reply_fn<lsn> reply) = 0;
};

}  // namespace annal::actors
