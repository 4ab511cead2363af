#pragma once

#include <cstdint>

#include "actors/partition_transfer.hpp"
#include "actors/requests.hpp"

namespace annal::actors {

// The link to another node, as a clustered node uses it: that node's
// partitions as a request_handler, the source side of a handoff from it
// (partition_transfer), and the map epoch sent with every forwarded request.
// Implemented over the binary protocol by client::peer_link.
class peer : public request_handler, public partition_transfer {
 public:
  virtual void set_epoch(std::uint64_t epoch) = 0;
  // Fails what is queued and refuses what comes after (errc::shutting_down).
  virtual void close() = 0;
};

}  // namespace annal::actors
