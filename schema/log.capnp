# Payloads of the records in partition logs and the node log.
# The record frame around them is described in docs/log_format.md.
# Changing a field's meaning requires a new record format version.
@0xa837793e14a4510b;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("annal::schema");

# One event of an append batch. Version, lsn and timestamp are not stored per
# event: they follow from the batch.
struct Event {
  # The 16-byte id (UUID) in the data section, not as a Data blob: bytes
  # 0..7 as a little-endian integer in id0, bytes 8..15 in id1.
  id0 @0 :UInt64;
  id1 @1 :UInt64;
  type @2 :Text;       # 1..128 bytes
  data @3 :Data;
  metadata @4 :Data;
}

# Record type 1: an atomic append to one stream.
struct AppendBatch {
  streamId @0 :Text;
  firstVersion @1 :UInt64;   # version of events[0]; the rest follow densely
  timestampUs @2 :Int64;     # microseconds since epoch, shared by the batch
  events @3 :List(Event);
}

# Record type 2: the full metadata of a stream after a change. Replaying it
# sets the state; it never depends on the state before.
struct StreamMetadata {
  streamId @0 :Text;
  timestampUs @1 :Int64;
  maxCount @2 :UInt64;        # 0: unlimited
  maxAgeSeconds @3 :UInt64;   # 0: unlimited
  truncateBefore @4 :UInt64;  # versions below are gone; 0: none
  deleted @5 :Bool;           # soft delete: reads as absent until written again
  tombstoned @6 :Bool;        # hard delete: never writable again
}

# Record type 3: a user snapshot of a stream's state at `version`.
struct Snapshot {
  streamId @0 :Text;
  version @1 :UInt64;
  timestampUs @2 :Int64;
  payload @3 :Data;
}
