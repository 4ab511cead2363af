# A parsed query (engine/query/ast.hpp) as it travels between nodes: the
# receiving node parses the text once (engine/query/parser.hpp) and sends this
# struct to the nodes that scan. The query language is described in
# docs/queries.md. Fields are only ever added; a field's meaning never changes.
#
# engine/query/query_codec.hpp converts both ways. Decoding validates
# everything the parser guarantees (see the comments below) and answers
# malformed_request otherwise: a decoded Query is as good as a parsed one.
@0x80b51e73e82a2b3b;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("annal::wire");

# What a predicate, a group key or an aggregate reads from an event.
struct Field {
  kind @0 :Kind;
  # data / metadata: the member names, outermost first; one or more.
  # type / stream / category: empty.
  path @1 :List(Text);

  enum Kind {
    type @0;      # the event type
    stream @1;    # the stream id
    category @2;  # the stream id up to its first '-'
    data @3;      # a member of the event's data JSON
    metadata @4;  # a member of the event's metadata JSON
  }
}

# A literal. Numbers are finite doubles (JSON numbers compare as doubles).
struct Value {
  union {
    null @0 :Void;
    boolean @1 :Bool;
    number @2 :Float64;
    text @3 :Text;
  }
}

# `subject op values`. eq..ge: exactly one value; prefix: exactly one text
# value; in: one or more; exists: none.
struct Comparison {
  subject @0 :Field;  # required
  op @1 :Op;
  values @2 :List(Value);

  enum Op {
    eq @0;
    ne @1;
    lt @2;
    le @3;
    gt @4;
    ge @5;
    in @6;
    exists @7;
    prefix @8;
  }
}

# A boolean expression. and / or hold two or more operands. At most 64
# and / or / not nodes lie on any path from the root to a compare leaf.
struct Expr {
  union {
    compare @0 :Comparison;  # required
    and @1 :List(Expr);
    or @2 :List(Expr);
    not @3 :Expr;            # required
  }
}

# Which streams a query reads. stream, streamPrefix and category names are
# valid stream ids (1..256 bytes of UTF-8 without control characters).
struct Source {
  union {
    all @0 :Void;
    stream @1 :Text;        # exactly this stream
    streamPrefix @2 :Text;  # ids starting with this text ('orders-*')
    category @3 :Text;      # ids whose text before the first '-' is this
  }
}

# Microseconds. absolute: since the Unix epoch. relative: offset from the
# moment the receiving node starts the query, <= 0 (the past); the receiving
# node resolves relative bounds before the query fans out.
struct TimeBound {
  union {
    absolute @0 :Int64;
    relative @1 :Int64;
  }
}

struct Aggregate {
  kind @0 :Kind;
  subject @1 :Field;      # required for every kind but count; absent for count
  percentile @2 :Float64; # percentile: in (0, 100]; every other kind: 0

  enum Kind {
    count @0;
    sum @1;
    avg @2;
    min @3;
    max @4;
    countDistinct @5;
    percentile @6;
  }
}

# `| agg, ... [by f, ...] [every D] [top K]`.
struct Aggregation {
  aggregates @0 :List(Aggregate);  # one or more
  groupBy @1 :List(Field);         # empty: one group
  bucketMicros @2 :Int64;          # 0: no time buckets; > 0: bucket width
  top @3 :UInt32;                  # 0: every group; 1..10000: the K largest
}

# `| first N` (oldest first) or `| last N` (newest first).
struct EventListing {
  limit @0 :UInt32;  # 1..10000
  newestFirst @1 :Bool;
}

struct Query {
  source @0 :Source;     # required
  where @1 :Expr;        # absent: every event of the source
  since @2 :TimeBound;   # inclusive; absent: unbounded
  until @3 :TimeBound;   # exclusive; absent: unbounded
  result :union {
    events @4 :EventListing;      # required when set
    aggregation @5 :Aggregation;  # required when set
  }
}
