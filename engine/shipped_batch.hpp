#pragma once

// The unit of log shipping: a run of committed records of one partition,
// copied byte for byte from its partition log, so that another node can hold
// the same records at the same lsns (partition handoff, mirror replicas).
// Built by partition::ship_from on the source and applied by
// partition::apply_shipped on the copy; the contract is in docs/storage.md
// ("Shipping").

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/types.hpp"

namespace annal::engine {

// A plain value: no ownership beyond its bytes, safe to move between
// threads and to serialize as is.
struct shipped_batch {
  lsn from;  // lsn of the first record; the copy's end() must equal it
  lsn next;  // lsn just past the last record: where the next batch starts
  // The frames of [from, next) back to back, each exactly as on disk (header
  // with its own CRC32C, then payload). Empty when the copy is caught up.
  std::vector<std::byte> bytes;
  std::uint32_t crc = 0;  // CRC32C of `bytes` (0 for none)
  // The source's durable end when the batch was built: the copy has caught
  // up with it once `next == source_end`.
  lsn source_end;
};

// What apply_shipped did on the copy.
struct shipped_write {
  lsn next;  // the copy's end() after the batch (== batch.next)
  // The shipped records are acknowledged by the copy's node log (durable
  // under fsync=always) once node_log::durable_position() >= durable_after,
  // exactly as for an append; 0 when nothing was written.
  node_log_position durable_after;
};

}  // namespace annal::engine
