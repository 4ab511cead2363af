#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/errors.hpp"
#include "engine/named_type.hpp"
#include "engine/partition.hpp"
#include "engine/types.hpp"

// Read-all: the events of every stream, merged across partitions (and nodes)
// in timestamp order, page by page with a resume position per partition
// (docs/protocol.md, "Read all"). The value types travel through
// request_handler; the functions are the two halves every layer shares:
// reading one partition, and merging sorted runs under a limit.
namespace annal::actors {

// Where read-all continues in one partition: the event at `index` in the
// record at lsn `record`, packed as (record << 16) | index, like
// engine::event_location (and with the same bound: a batch holds at most
// 65535 events). 0 is the start of the partition. A position is only ever
// taken from a read-all reply; positions of one partition grow with its log.
using all_position = named_type<std::uint64_t, struct all_position_tag>;

constexpr all_position make_all_position(lsn record, std::uint32_t index) {
  return all_position{(record.value() << 16) | index};
}
constexpr lsn position_record(all_position p) { return lsn{p.value() >> 16}; }
constexpr std::uint32_t position_index(all_position p) {
  return static_cast<std::uint32_t>(p.value() & 0xffff);
}

// Event bytes (stream + type + data + metadata plus a fixed overhead per
// event) a read-all page holds at most, at least one event. Keeps a page well
// inside the binary protocol's default 16 MiB frame.
inline constexpr std::size_t k_read_all_max_bytes = 4u << 20;
// Fixed cost counted per event against the byte budget: the wire structs
// (AllEvent, RecordedEvent) and blob padding.
inline constexpr std::size_t k_all_event_overhead = 160;
// Event bytes one partition contributes to one request at most (at least one
// event): bounds the memory a read-all takes on a node with many partitions.
inline constexpr std::size_t k_read_all_partition_bytes = 1u << 20;
// Log bytes one partition scans per request without finding an event (only
// metadata or snapshot records) before it answers with an advanced position
// and no events, so that a request never scans a whole log.
inline constexpr std::size_t k_read_all_scan_bytes = 8u << 20;

struct read_all_request {
  // Per partition (index = partition id): the `next` of the previous page.
  // Empty: the start of every partition. Otherwise exactly one entry per
  // partition of the cluster (errc::invalid_argument).
  std::vector<all_position> from;
  std::size_t limit = 100;  // events per page; >= 1
  // The partitions to read (node to node); empty: every partition.
  std::vector<partition_id> partitions;
  // Byte budget of the page (see k_read_all_max_bytes); not on the wire:
  // each node applies its own.
  std::size_t max_bytes = k_read_all_max_bytes;
  // Start every requested partition at its current (acknowledged) end,
  // ignoring `from`: the page has no events, `next` holds the ends and
  // at_end is set. How a subscription starts "from the end".
  bool from_end = false;
  // Long-poll (subscriptions, docs/subscriptions.md): when > 0 and the page
  // would be empty because every requested partition is at its end, the
  // node waits up to this long (capped at k_read_all_max_wait_ms) for any of
  // them to acknowledge new records, then answers with a page of the
  // partition that woke first (an empty page at its end after a timeout);
  // the other partitions keep their `from`. In a cluster the first node with
  // events answers for the page likewise.
  std::uint32_t wait_ms = 0;
  // The waiting reader (one random key per subscription) and its round: a
  // partition keeps one wait per key, and a wait with a higher `watch_seq`
  // replaces (answers at once) an older one. 0: waits are never replaced.
  // With a key, the node keeps the reader's waits parked across rounds and
  // reads only partitions that may have news (live_watches.hpp).
  std::uint64_t watch = 0;
  std::uint64_t watch_seq = 0;
};

// The longest a read-all waits for new records (read_all_request::wait_ms).
inline constexpr std::uint32_t k_read_all_max_wait_ms = 30000;

// Why a partition answered a wait (wait_msg in actors/messages.hpp).
enum class wake_reason : std::uint8_t {
  ready,       // records past the position became visible (or were there)
  timeout,     // the deadline passed with nothing new
  superseded,  // a newer wait of the same watch key replaced this one
};

// One event of a read-all page. The views point into read_all_page::buffers.
struct all_event {
  std::string_view stream;
  partition_id partition;
  std::uint32_t index = 0;       // in its record
  engine::recorded_event event;  // event.position: the lsn of its record

  all_position position() const { return make_all_position(event.position, index); }
  // Where the partition continues after this event.
  all_position after() const { return make_all_position(event.position, index + 1); }
  std::size_t budget_bytes() const {
    return k_all_event_overhead + stream.size() + event.type.size() + event.data.size() +
           event.metadata.size();
  }
};

struct read_all_page {
  // In (timestamp, partition, position) order.
  std::vector<all_event> events;
  // One position per partition of the cluster: where the next page starts.
  // A partition advances only past events this page returns (or past
  // records without events), so following `next` never skips or repeats an
  // event.
  std::vector<all_position> next;
  // Every partition read was read to its (acknowledged) end.
  bool at_end = false;
  // Keeps the bytes behind the event views alive.
  std::vector<std::shared_ptr<const void>> buffers;
};

// A sorted run of events for merge_read_all: one partition's page, or one
// node's merged page, with where each of its partitions continues after it.
struct read_all_part {
  // Sorted as in read_all_page; within a partition, in position order.
  std::vector<all_event> events;
  // Per partition the part covers: its position after all of `events`.
  std::vector<std::pair<partition_id, all_position>> next;
  bool at_end = false;  // nothing more in any of its partitions (for now)
  std::vector<std::shared_ptr<const void>> buffers;
};

// Checks a request against a cluster of `partition_count` partitions:
// errc::invalid_argument for a limit of 0, a `from` of another size, or a
// partition out of range or listed twice.
engine::status check_read_all(const read_all_request& request, std::uint32_t partition_count);

// The part a node's page makes for the partitions it was asked for.
// Requires: page.next covers every partition in `partitions`.
read_all_part part_of(read_all_page page, const std::vector<partition_id>& partitions);

// Merges sorted parts into one page of at most `limit` events and about
// `max_bytes` (see all_event::budget_bytes; at least one event when any can
// be returned), in (timestamp, partition, position) order.
//
// A part that is not at its end may hold more events after its last one,
// and those may sort before another part's events: the page therefore stops
// at the smallest "last event" of such parts (its horizon), so pages
// followed one after the other come out in order too. A part not at its end
// with no events at all blocks every event (its next position still
// advances). `next` starts as `base` (one entry per partition) and takes,
// per covered partition, the position after its last returned event, or the
// part's own next when all of its events were returned.
//
// Pure; each part's events must be in position order per partition.
read_all_page merge_read_all(std::vector<read_all_part> parts, std::vector<all_position> base,
                             std::size_t limit, std::size_t max_bytes);

// Reads partition `p` from `from`: at most `limit` events and about
// `max_bytes` (at least one event unless the end comes first), only from
// acknowledged records (engine::partition::read_log), events of append
// records only, decoded with their stream names. The part covers `p`; it is
// at its end when the partition's acknowledged end was reached.
//
// Errors: errc::invalid_argument for a position past the partition's end, or
// one that is not the start of a record (not a position read-all returned);
// the storage errors of read_log otherwise.
// Requires: the caller owns `p` (its partition actor, or a test).
engine::result<read_all_part> read_partition_all(engine::partition& p, all_position from,
                                                 std::size_t limit, std::size_t max_bytes);

}  // namespace annal::actors
