# The partition checkpoint: the stream index and the log position it covers.
# File framing is described in docs/log_format.md ("Checkpoint files").
@0xf7c225d30d32e563;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("annal::schema");

struct PartitionCheckpoint {
  partition @0 :UInt32;
  logEnd @1 :UInt64;           # partition lsn: every record below is in synced segment files
  nodeLogPosition @2 :UInt64;  # node-log position where this partition's replay starts
  lastTimestampUs @3 :Int64;
  segments @4 :List(UInt64);   # first lsn of each live segment, ascending (gaps: removed by retention)
  streams @5 :List(StreamEntry);
  recentEventIds @6 :List(RecentEventId);  # oldest first
  segmentBytes @7 :List(UInt64);  # bytes of each live segment, parallel to segments
  sequence @8 :UInt64;            # checkpoints of a partition are numbered 1, 2, ...
  # A delta checkpoint (store format 3) extends checkpoint `extends`, which is
  # sequence - 1 and whose file's header CRC is `extendsCrc`; 0: a full one.
  # A delta lists only the streams that changed since, each with the
  # locations from `locationsFrom`, and the event ids recorded since (oldest
  # first). Segments and the scalar fields above are always complete.
  extends @9 :UInt64;
  extendsCrc @10 :UInt32;
}

struct StreamEntry {
  id @0 :Text;
  nextVersion @1 :UInt64;      # version the next event gets (0: never written)
  firstLocated @2 :UInt64;     # version of locations[0]
  locations @3 :List(UInt64);  # (record lsn << 16) | index in batch, per version
  maxCount @4 :UInt64;
  maxAgeSeconds @5 :UInt64;
  truncateBefore @6 :UInt64;
  deleted @7 :Bool;
  tombstoned @8 :Bool;
  hasSnapshot @9 :Bool;
  snapshotVersion @10 :UInt64;
  snapshotLsn @11 :UInt64;
  number @12 :UInt32;          # stream number (index in the full list); deltas only
  locationsFrom @13 :UInt64;   # version of locations[0]; deltas only (a full one: firstLocated)
}

struct RecentEventId {
  id @0 :Data;
  stream @1 :UInt32;   # index into streams
  version @2 :UInt64;
}
