# Query results: the partial result a node sends back to the node that runs
# a query (engine/query/partial_result.hpp), and the final answer sent to the
# client (engine/query/result_table.hpp). Converted by
# engine/query/partial_result_codec.hpp, whose decoders check everything
# below and answer malformed_request otherwise. docs/queries.md ("Aggregates
# and results") describes the semantics. Fields are only ever added; a
# field's meaning never changes.
@0xb9cd5c71adeafbbd;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("annal::wire");

# Where a partition's scan stopped: its end when complete, else the first
# record not scanned.
struct PartitionPosition {
  partition @0 :UInt32;
  lsn @1 :UInt64;
}

# A group key column or a result table cell. Group key numbers are finite.
struct ResultValue {
  union {
    null @0 :Void;       # also a missing field in a group key
    boolean @1 :Bool;
    number @2 :Float64;
    text @3 :Data;       # a string's unescaped bytes
    json @4 :Data;       # group keys only: an object or array as JSON text
  }
}

# Dense bucket counts of a percentile sketch: counts[j] is bucket offset + j.
# Bucket indices lie in (-40000, 40000).
struct SketchBuckets {
  offset @0 :Int32;
  counts @1 :List(UInt64);
}

# A DDSketch with relative accuracy 0.01 (gamma = 1.01 / 0.99): bucket i
# holds magnitudes in (gamma^(i-1), gamma^i].
struct PercentileSketch {
  positive @0 :SketchBuckets;
  negative @1 :SketchBuckets;  # by magnitude
  zero @2 :UInt64;
}

# The state of one aggregate of one group; the members used depend on the
# aggregate (the plan says which):
#   count:                 count = events
#   sum, avg, min, max:    count = numeric values; sum, min, max (min and max
#                          meaningful when count > 0)
#   count_distinct:        distinct = the distinct values, each the in-memory
#                          key encoding of one value (engine/query/group_key.hpp)
#   percentile:            sketch
struct Accumulator {
  count @0 :UInt64;
  sum @1 :Float64;
  min @2 :Float64;
  max @3 :Float64;
  distinct @4 :List(Data);
  sketch @5 :PercentileSketch;
}

struct Group {
  key @0 :List(ResultValue);         # bucket (a number) first when bucketed
  accumulators @1 :List(Accumulator);  # one per aggregate, in query order
}

struct ListedEvent {
  stream @0 :Text;
  partition @1 :UInt32;
  lsn @2 :UInt64;          # lsn of the event's record
  index @3 :UInt32;        # position in the record's batch
  id0 @4 :UInt64;          # id bytes 0..7, little-endian
  id1 @5 :UInt64;          # id bytes 8..15, little-endian
  type @6 :Text;
  data @7 :Data;
  metadata @8 :Data;
  version @9 :UInt64;
  timestampUs @10 :Int64;
}

# What the scans of some partitions found (node to node).
struct PartialResult {
  positions @0 :List(PartitionPosition);  # each partition at most once
  eventsScanned @1 :UInt64;
  partial @2 :Bool;  # stopped early at a limit
  union {
    groups @3 :List(Group);        # aggregations: at most 100,000, keys distinct
    events @4 :List(ListedEvent);  # listings: at most the query's N
  }
}

struct ResultRow {
  values @0 :List(ResultValue);  # one per column
}

struct ResultTable {
  columns @0 :List(Text);
  rows @1 :List(ResultRow);
}

# The answer to a query (to the client).
struct QueryAnswer {
  positions @0 :List(PartitionPosition);  # ascending by partition
  eventsScanned @1 :UInt64;
  partial @2 :Bool;
  union {
    table @3 :ResultTable;         # aggregations
    events @4 :List(ListedEvent);  # listings, in answer order
  }
}
