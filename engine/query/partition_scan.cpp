#include "engine/query/partition_scan.hpp"

#include <fmt/format.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "engine/log_format.hpp"
#include "engine/query/group_key.hpp"
#include "engine/query/json_fields.hpp"
#include "engine/record_codec.hpp"

namespace annal::engine::query {
namespace {

// The listed-bytes budget is taken by a scan in chunks of at least this much.
constexpr std::uint64_t k_listed_bytes_chunk = 64u << 10;

// floor(t / bucket) * bucket, also for t < 0.
timestamp_us bucket_start(timestamp_us t, std::int64_t bucket) {
  timestamp_us q = t / bucket;
  if (t % bucket != 0 && t < 0) --q;
  return q * bucket;
}

}  // namespace

struct partition_scan::state {
  std::shared_ptr<const plan> plan_ptr;
  const plan& p;
  partition_id partition;
  lsn end;
  lsn at{};
  bool done = false;
  partial_result result;

  std::vector<field_value> slots;
  json_fields data_reader;
  json_fields metadata_reader;
  std::string key;                                // the group key being built
  std::string distinct;                           // a count_distinct value being encoded
  std::uint32_t only_group = string_index::npos;  // the group when there are no key columns
  // Listing: a heap whose top is the candidate that comes last in the answer.
  std::vector<listed_event> candidates;
  // Bytes the candidates hold (listed_bytes of each), and the part of the
  // query's listed-bytes budget this scan has taken (never less).
  std::uint64_t listed_held = 0, listed_reserved = 0;

  // Every event past the record filters has its data document read: a
  // record's documents are then read as a batch (batch_data holds them).
  const bool batched_data;
  // The record being looked at. batched: batched_data and more than one event.
  bool batched = false;
  std::vector<std::string_view> batch_data;
  // The event being looked at: events[event_index].
  schema::Event::Reader event;
  unsigned event_index = 0;
  std::uint8_t documents_read = 0;
  std::string_view data_view, metadata_view;
  bool data_fetched = false, metadata_fetched = false;

  state(std::shared_ptr<const plan> pp, partition_id id, lsn e)
      : plan_ptr(std::move(pp)),
        p(*plan_ptr),
        partition(id),
        end(e),
        batched_data(reads_every_data_document(p)) {
    slots.resize(p.slot_count());
    if (!p.is_listing()) {
      std::vector<aggregate_kind> kinds;
      for (const auto& a : p.aggregates().aggregates) kinds.push_back(a.what);
      result.groups = group_table(std::move(kinds));
      if (p.key_columns() == 0) only_group = result.groups.find_or_add({});
    }
  }

  std::string_view data() {
    if (!data_fetched) {
      data_view = batched ? batch_data[event_index] : to_view(event.getData());
      data_fetched = true;
    }
    return data_view;
  }
  std::string_view metadata() {
    if (!metadata_fetched) {
      metadata_view = to_view(event.getMetadata());
      metadata_fetched = true;
    }
    return metadata_view;
  }

  // Whether every event that gets past the record filters has its data
  // document read.
  static bool reads_every_data_document(const plan& p) {
    if (!p.event_filters().empty()) return false;
    if (!p.json_filters().empty()) return (p.json_filters().front().documents & k_reads_data) != 0;
    return !p.is_listing() && (p.result_documents() & k_reads_data) != 0;
  }

  void read_documents(std::uint8_t wanted) {
    const std::uint8_t missing = wanted & ~documents_read;
    if (missing & k_reads_data) {
      if (batched) {
        data_reader.read_batched(event_index, p.data_paths(), slots.data());
      } else {
        data_reader.read(data(), p.data_paths(), slots.data());
      }
    }
    if (missing & k_reads_metadata) {
      metadata_reader.read(metadata(), p.metadata_paths(), slots.data());
    }
    documents_read |= missing;
  }

  void aggregate(timestamp_us timestamp) {
    std::uint32_t g = only_group;
    if (g == string_index::npos) {
      key.clear();
      if (p.bucketed()) {
        append_key_number(
            key, static_cast<double>(bucket_start(timestamp, p.aggregates().bucket_micros)));
      }
      for (const auto s : p.group_slots()) append_key_value(key, slots[s]);
      g = result.groups.find_or_add(key);
      if (g == string_index::npos) throw too_many_groups();
    }
    const auto& kinds = result.groups.kinds();
    const auto& agg_slots = p.aggregate_slots();
    for (std::size_t a = 0; a < kinds.size(); ++a) {
      accumulator& acc = result.groups.at(g, a);
      switch (kinds[a]) {
        case aggregate_kind::count:
          ++acc.count;
          break;
        case aggregate_kind::count_distinct: {
          const field_value& v = slots[static_cast<std::size_t>(agg_slots[a])];
          if (v.what == field_value::kind::missing) break;
          distinct.clear();
          append_key_value(distinct, v);
          if (!result.groups.add_distinct(g, a, distinct)) throw too_many_distinct_values();
          break;
        }
        default: {
          const field_value& v = slots[static_cast<std::size_t>(agg_slots[a])];
          if (v.what == field_value::kind::number) acc.add_number(kinds[a], v.number);
          break;
        }
      }
    }
  }

  // Takes at least `more` bytes from the query's listed-bytes budget into
  // listed_reserved: a chunk if it fits, so that scans on other threads
  // rarely meet on the shared counter. Throws query_too_large if `more`
  // does not fit.
  void reserve_listed_bytes(std::uint64_t more, const scan_limits& limits, scan_usage& usage) {
    std::uint64_t used = usage.listed_bytes.load(std::memory_order_relaxed);
    std::uint64_t take;
    do {
      if (used + more > limits.max_listed_bytes) {
        throw error{errc::query_too_large,
                    fmt::format("the listed events would hold more than {} bytes on this node "
                                "(stream ids, types, data and metadata); list fewer or smaller "
                                "events",
                                limits.max_listed_bytes)};
      }
      take = std::min(std::max(more, k_listed_bytes_chunk), limits.max_listed_bytes - used);
    } while (!usage.listed_bytes.compare_exchange_weak(used, used + take,
                                                       std::memory_order_relaxed));
    listed_reserved += take;
  }

  static std::uint64_t listed_bytes(const listed_event& e) {
    return e.stream.size() + e.type.size() + e.data.size() + e.metadata.size();
  }

  void list(std::string_view stream, lsn position, std::uint32_t index, stream_version version,
            timestamp_us timestamp, const scan_limits& limits, scan_usage& usage) {
    const auto& l = p.listing();
    const auto before = [&](const listed_event& a, const listed_event& b) {
      return listed_before(a, b, l.newest_first);
    };
    const bool full = candidates.size() >= l.limit;
    if (full) {
      // Compare by key before copying anything.
      const auto k = std::make_tuple(timestamp, partition.value(), position.value(), index);
      const auto worst = listing_key(candidates.front());
      if (l.newest_first ? !(worst < k) : !(k < worst)) return;
    }
    const std::string_view type =
        p.type_slot() ? slots[*p.type_slot()].text : to_view(event.getType());
    const std::uint64_t adding = stream.size() + type.size() + data().size() + metadata().size();
    const std::uint64_t giving_back = full ? listed_bytes(candidates.front()) : 0;
    if (listed_held + adding - giving_back > listed_reserved) {
      reserve_listed_bytes(listed_held + adding - giving_back - listed_reserved, limits, usage);
    }
    listed_held = listed_held + adding - giving_back;
    if (full) {
      std::pop_heap(candidates.begin(), candidates.end(), before);
    } else {
      candidates.emplace_back();
    }
    listed_event& e = candidates.back();
    e.stream.assign(stream);
    e.partition = partition;
    e.position = position;
    e.index = index;
    e.id = id_of(event);
    e.type.assign(type);
    e.data.assign(data());
    e.metadata.assign(metadata());
    e.version = version;
    e.timestamp = timestamp;
    std::push_heap(candidates.begin(), candidates.end(), before);
  }

  // Scans one append-batch record. Throws engine::error for a cap or
  // kj::Exception for an undecodable payload. False when the event budget
  // does not allow this record.
  bool scan_batch(const record_ref& record, const scan_limits& limits, scan_usage& usage) {
    record_reader reader(record.payload());
    auto batch = reader.append_batch();
    auto events = batch.getEvents();
    const std::uint64_t n = events.size();
    std::uint64_t before = usage.events_scanned.load(std::memory_order_relaxed);
    do {
      if (before + n > limits.max_events_scanned) return false;
    } while (!usage.events_scanned.compare_exchange_weak(before, before + n,
                                                         std::memory_order_relaxed));
    result.events_scanned += n;

    const timestamp_us timestamp = batch.getTimestampUs();
    if (p.since() && timestamp < *p.since()) return true;
    if (p.until() && timestamp >= *p.until()) return true;
    const std::string_view stream = to_view(batch.getStreamId());
    if (!p.stream_matches(stream)) return true;
    if (p.stream_slot()) slots[*p.stream_slot()] = field_value::of_string(stream);
    if (p.category_slot()) slots[*p.category_slot()] = field_value::of_string(category_of(stream));
    for (const auto& f : p.record_filters()) {
      if (!evaluate(f, slots.data())) return true;
    }

    const std::uint64_t first = batch.getFirstVersion();
    const bool listing = p.is_listing();
    batched = batched_data && n > 1;
    if (batched) {
      batch_data.clear();
      for (unsigned i = 0; i < n; ++i) batch_data.push_back(to_view(events[i].getData()));
      data_reader.begin_batch(batch_data);
    }
    for (unsigned i = 0; i < n; ++i) {
      event = events[i];
      event_index = i;
      documents_read = 0;
      data_fetched = metadata_fetched = false;
      if (p.type_slot()) slots[*p.type_slot()] = field_value::of_string(to_view(event.getType()));
      bool pass = true;
      for (const auto& f : p.event_filters()) {
        if (!evaluate(f, slots.data())) {
          pass = false;
          break;
        }
      }
      if (!pass) continue;
      for (const auto& f : p.json_filters()) {
        read_documents(f.documents);
        if (!evaluate(f, slots.data())) {
          pass = false;
          break;
        }
      }
      if (!pass) continue;
      if (listing) {
        list(stream, record.header.position, i, stream_version{first + i}, timestamp, limits,
             usage);
      } else {
        read_documents(p.result_documents());
        aggregate(timestamp);
      }
    }
    return true;
  }

  // Stops at a limit: finished and partial with allow_partial, else `e`.
  engine::result<bool> stop(const scan_limits& limits, error e) {
    if (!limits.allow_partial) return e;
    result.partial = true;
    done = true;
    return true;
  }
};

partition_scan::partition_scan(std::shared_ptr<const plan> p, partition_id partition, lsn end)
    : s_(std::make_unique<state>(std::move(p), partition, end)) {}
partition_scan::~partition_scan() = default;
partition_scan::partition_scan(partition_scan&&) noexcept = default;
partition_scan& partition_scan::operator=(partition_scan&&) noexcept = default;

bool partition_scan::finished() const { return s_->done; }
lsn partition_scan::position() const { return s_->at; }

result<bool> partition_scan::step(partition& p, std::size_t max_bytes, const scan_limits& limits,
                                  scan_usage& usage) {
  state& s = *s_;
  if (s.done) return true;
  const auto timed_out = [&] {
    return limits.deadline != std::chrono::steady_clock::time_point::max() &&
           std::chrono::steady_clock::now() >= limits.deadline;
  };
  const auto timeout = [&] {
    return error{errc::query_timeout,
                 fmt::format("the query ran past its deadline (partition {} at lsn {})",
                             s.partition.value(), s.at.value())};
  };
  if (timed_out()) return s.stop(limits, timeout());

  std::size_t bytes = 0;
  while (true) {
    if (s.at >= s.end) {
      s.done = true;
      return true;
    }
    if (bytes > 0 && bytes >= max_bytes) return false;
    const std::size_t want =
        std::clamp<std::size_t>(max_bytes - std::min(bytes, max_bytes), 1, k_scan_read_bytes);
    auto records = p.read_log(s.at, want);
    if (!records) return records.err();
    if (records->empty()) {
      // The partition ends before `end` (it was cleared): nothing more to see.
      s.done = true;
      return true;
    }
    try {
      for (const auto& record : *records) {
        // read_log skips ranges removed by retention: a record may start later.
        if (record.header.position >= s.end) {
          s.at = s.end;
          s.done = true;
          return true;
        }
        s.at = record.header.position;
        if (record.header.type == log_format::record_type::append_batch &&
            !s.scan_batch(record, limits, usage)) {
          return s.stop(limits, error{errc::query_too_large,
                                      fmt::format("the query would scan more than {} events",
                                                  limits.max_events_scanned)});
        }
        s.at = record.end();
        bytes += record.frame.size();
      }
    } catch (const error& e) {
      return e;
    } catch (const kj::Exception& e) {
      return error{errc::corruption,
                   fmt::format("partition {} lsn {}: undecodable record payload: {}",
                               s.partition.value(), s.at.value(), e.getDescription().cStr())};
    }
    if (timed_out()) return s.stop(limits, timeout());
  }
}

partial_result partition_scan::take() {
  state& s = *s_;
  partial_result out = std::move(s.result);
  out.positions = {{s.partition, s.at}};
  if (s.p.is_listing()) {
    out.events = std::move(s.candidates);
    trim_listing(out.events, s.p.listing());
  }
  return out;
}

}  // namespace annal::engine::query
