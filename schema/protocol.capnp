# The binary client protocol (client <-> node). Framing, handshake and limits
# are described in docs/protocol.md. Fields are only ever added; a field's
# meaning never changes within a protocol version.
@0xb7b58ca75e182b83;

using Cxx = import "/capnp/c++.capnp";
using Q = import "query.capnp";
using QR = import "query_result.capnp";
$Cxx.namespace("annal::wire");

const protocolVersion :UInt32 = 1;

# --- Requests -------------------------------------------------------------

# The first frame on a connection, answered by HelloReply.
struct Hello {
  protocolVersion @0 :UInt32;
  clientName @1 :Text;
}

struct ExpectedVersion {
  union {
    any @0 :Void;
    noStream @1 :Void;
    streamExists @2 :Void;
    exact @3 :UInt64;
  }
}

struct EventInput {
  # The 16-byte id: bytes 0..7 little-endian in id0, 8..15 in id1.
  # All zero: the node generates a random (version 4) UUID.
  id0 @0 :UInt64;
  id1 @1 :UInt64;
  type @2 :Text;
  data @3 :Data;
  metadata @4 :Data;
}

struct AppendRequest {
  stream @0 :Text;
  expected @1 :ExpectedVersion;
  events @2 :List(EventInput);
}

struct ReadRequest {
  stream @0 :Text;
  # First version to return. Backward reads with `fromEnd` start at the
  # stream's last event and ignore `from`.
  from @1 :UInt64;
  fromEnd @2 :Bool;
  limit @3 :UInt32;
  backward @4 :Bool;
}

struct StreamRef {
  stream @0 :Text;
}

struct StreamMetadata {
  maxCount @0 :UInt64;        # 0: unlimited
  maxAgeSeconds @1 :UInt64;   # 0: unlimited
  truncateBefore @2 :UInt64;  # 0: keep everything
}

struct SetMetadataRequest {
  stream @0 :Text;
  metadata @1 :StreamMetadata;
}

struct DeleteRequest {
  stream @0 :Text;
  expected @1 :ExpectedVersion;
  tombstone @2 :Bool;
}

struct PutSnapshotRequest {
  stream @0 :Text;
  version @1 :UInt64;
  payload @2 :Data;
}

# Events of all streams, merged in timestamp order (docs/protocol.md,
# "Read all"). The resume position is one lsn per partition.
struct ReadAllRequest {
  # Per partition (index = partition id): where to continue, i.e. the `next`
  # of the previous page. Empty: from the start of every partition. Each is
  # a position (record lsn << 16) | index of the event in its record.
  from @0 :List(UInt64);
  limit @1 :UInt32;
  # Node to node only: the partitions to read. Empty: every partition.
  partitions @2 :List(UInt32);
  # Long-poll (docs/subscriptions.md): when the page would be empty because
  # every partition read is at its end, wait up to waitMs (at most 30000)
  # for new records before answering. 0: answer at once.
  waitMs @3 :UInt32;
  # The waiting reader's key and round: a partition keeps one wait per
  # watch; a higher watchSeq replaces an older wait, which is answered.
  watch @4 :UInt64;
  watchSeq @5 :UInt64;
  # Ignore `from`: answer no events and `next` = the end of each partition.
  fromEnd @6 :Bool;
}

# Node to node (partition handoff, docs/cluster.md): the committed records of
# a partition from an lsn, exactly as on disk.
struct ShipLogRequest {
  partition @0 :UInt32;
  from @1 :UInt64;
  maxBytes @2 :UInt32;
}

# Node to node: hold every client request to a partition (the handoff's
# write pause) for at most holdMs; answered once every write accepted before
# is durable, with the partition's end.
struct SealRequest {
  partition @0 :UInt32;
  holdMs @1 :UInt32;
}

struct PartitionRef {
  partition @0 :UInt32;
}

# A subscription (docs/subscriptions.md): catch-up from `from`, then live.
# Answered by `subscribed` (or an error); then the node pushes
# `subscriptionEvents` with the subscribe request's id, never more events
# than the credits granted, until `subscriptionEnded`.
struct SubscribeRequest {
  target :union {
    all @0 :Void;        # every stream
    stream @1 :Text;     # one stream
    category @2 :Text;   # streams whose id up to the first '-' is this
  }
  # A query `where` filter on the target's events (docs/subscriptions.md);
  # empty: none.
  filter @3 :Text;
  from :union {
    start @4 :Void;
    end @5 :Void;
    # A resume position: one entry per partition, as readAll's `next`
    # (a subscriptionEvents' `next`, or the subscribed reply's `position`).
    position @6 :List(UInt64);
    version @7 :UInt64;  # stream targets only: from this stream version
  }
  # Credits granted with the request (grantCredits adds more).
  credits @8 :UInt32;
}

# One-way (no reply): the client takes `credits` more events.
struct CreditGrant {
  subscription @0 :UInt64;  # the subscribe request's id
  credits @1 :UInt32;
}

# One-way: ends the subscription; the node answers subscriptionEnded
# (without an error) on the subscription's id.
struct SubscriptionRef {
  subscription @0 :UInt64;
}

# A query (docs/queries.md). A client sends its text, parsed by the node
# that receives it; a node fanning a query out sends the parsed form with
# relative time bounds already resolved, and asks for the partial result.
struct QueryRequest {
  text @0 :Text;
  query @1 :Q.Query;            # used when text is empty
  partitions @2 :List(UInt32);  # empty: every partition
  allowPartial @3 :Bool;        # a limit ends the scan with a partial result
  timeoutMs @4 :UInt32;         # 0: the node's limit
  wantPartial @5 :Bool;         # answer with the mergeable partial result
}

struct Request {
  id @0 :UInt64;  # chosen by the client; echoed in the response
  union {
    hello @1 :Hello;
    append @2 :AppendRequest;
    read @3 :ReadRequest;
    readLast @4 :StreamRef;
    getMetadata @5 :StreamRef;
    setMetadata @6 :SetMetadataRequest;
    deleteStream @7 :DeleteRequest;
    putSnapshot @8 :PutSnapshotRequest;
    getSnapshot @9 :StreamRef;
    ping @10 :Void;
    readAll @12 :ReadAllRequest;
    stats @13 :Void;
    # Node to node only.
    shipLog @14 :ShipLogRequest;
    sealPartition @15 :SealRequest;
    unsealPartition @16 :PartitionRef;
    query @17 :QueryRequest;
    subscribe @18 :SubscribeRequest;
    grantCredits @19 :CreditGrant;
    unsubscribe @20 :SubscriptionRef;
  }
  # Set by a node that forwards a client's request to the partition's owner:
  # the forwarding node's cluster-map epoch. 0 (the default): a client's own
  # request. A node serves a forwarded request only from a partition it owns
  # and never forwards it again; otherwise it answers not_owner.
  forwardedEpoch @11 :UInt64;
}

# --- Responses ------------------------------------------------------------

struct HelloReply {
  protocolVersion @0 :UInt32;
  nodeId @1 :Text;
  partitionCount @2 :UInt32;
  maxFrameBytes @3 :UInt32;
  maxBatchEvents @4 :UInt32;
}

struct Error {
  code @0 :Text;        # stable snake_case name, as in the HTTP API
  message @1 :Text;
  # wrong_expected_version: the stream's current version, if it exists.
  hasCurrentVersion @2 :Bool;
  currentVersion @3 :UInt64;
}

struct AppendReply {
  firstVersion @0 :UInt64;
  lastVersion @1 :UInt64;
  position @2 :UInt64;   # lsn of the batch in its partition log
  partition @3 :UInt32;
  duplicate @4 :Bool;    # an idempotent retry: nothing new was written
}

struct RecordedEvent {
  id0 @0 :UInt64;
  id1 @1 :UInt64;
  type @2 :Text;
  data @3 :Data;
  metadata @4 :Data;
  version @5 :UInt64;
  timestampUs @6 :Int64;
  position @7 :UInt64;
}

struct ReadReply {
  events @0 :List(RecordedEvent);
  hasNext @1 :Bool;      # next: where the following page starts
  next @2 :UInt64;
  hasLastVersion @3 :Bool;
  lastVersion @4 :UInt64;
}

struct StreamInfo {
  metadata @0 :StreamMetadata;
  exists @1 :Bool;
  lastVersion @2 :UInt64;
  firstRetained @3 :UInt64;
  deleted @4 :Bool;
  tombstoned @5 :Bool;
}

struct WriteReply {
  position @0 :UInt64;
  partition @1 :UInt32;
}

struct SnapshotReply {
  found @0 :Bool;
  version @1 :UInt64;
  timestampUs @2 :Int64;
  payload @3 :Data;
}

struct AllEvent {
  stream @0 :Text;
  partition @1 :UInt32;
  event @2 :RecordedEvent;
  # The event's index in its record (event.position is the record's lsn):
  # with it a node resumes a partition in the middle of an append batch.
  index @3 :UInt32;
}

struct ReadAllReply {
  events @0 :List(AllEvent);
  # Per partition: where the next page starts (the resume token).
  next @1 :List(UInt64);
  # True when every partition read was read to its end.
  atEnd @2 :Bool;
}

struct PartitionStats {
  partition @0 :UInt32;
  node @1 :Text;        # the node that owns and reported it
  streams @2 :UInt64;
  events @3 :UInt64;
  endLsn @4 :UInt64;    # bytes in the partition log
}

struct StatsReply {
  partitions @0 :List(PartitionStats);
}

struct ShipLogReply {
  from @0 :UInt64;
  next @1 :UInt64;
  bytes @2 :Data;       # the frames of [from, next), as on disk
  crc @3 :UInt32;       # CRC32C of bytes
  sourceEnd @4 :UInt64;
}

struct SealReply {
  end @0 :UInt64;       # the partition's end lsn
}

struct SubscribedReply {
  partitionCount @0 :UInt32;
  # Where the subscription starts: a resume position (one per partition).
  position @1 :List(UInt64);
}

struct SubscriptionEvents {
  # In delivery order: per stream in version order, per partition in log
  # order (docs/subscriptions.md, "Order").
  events @0 :List(AllEvent);
  # The resume position after these events.
  next @1 :List(UInt64);
}

struct SubscriptionEnded {
  # False: ended by unsubscribe. True: by `error` (a subscription that
  # cannot go on: bad filter, not_owner storm, a node gone too long ...).
  failed @0 :Bool;
  error @1 :Error;
}

struct QueryReply {
  union {
    answer @0 :QR.QueryAnswer;
    partial @1 :QR.PartialResult;  # wantPartial
  }
}

struct Response {
  id @0 :UInt64;  # the request's id; 0 for a connection-level error
  union {
    error @1 :Error;
    hello @2 :HelloReply;
    append @3 :AppendReply;
    read @4 :ReadReply;
    streamInfo @5 :StreamInfo;
    write @6 :WriteReply;
    snapshot @7 :SnapshotReply;
    pong @8 :Void;
    readAll @9 :ReadAllReply;
    stats @10 :StatsReply;
    shippedLog @11 :ShipLogReply;
    sealed @12 :SealReply;  # sealPartition and unsealPartition
    query @13 :QueryReply;
    subscribed @14 :SubscribedReply;
    subscriptionEvents @15 :SubscriptionEvents;
    subscriptionEnded @16 :SubscriptionEnded;
  }
}
