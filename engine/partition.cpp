#include "engine/partition.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>
#include <unordered_map>

#include "engine/checkpoint.hpp"
#include "engine/crc32c.hpp"
#include "engine/partitioning.hpp"

namespace annal::engine {
namespace {

constexpr timestamp_us k_us_per_second = 1'000'000;
// How many events ahead of its insert an id's window bucket is prefetched:
// the table is larger than the caches, so each insert would otherwise wait
// for a miss.
constexpr std::uint32_t k_id_prefetch_distance = 8;

error wrong_version(std::string_view stream, const stream_entry* entry, expected_version expected) {
  error e{errc::wrong_expected_version, ""};
  if (entry && entry->exists()) e.current_version = stream_version{entry->next_version - 1};
  const char* wanted = "";
  std::string exact;
  switch (expected.what) {
    case expected_version::kind::any: wanted = "any"; break;
    case expected_version::kind::no_stream: wanted = "no stream"; break;
    case expected_version::kind::stream_exists: wanted = "an existing stream"; break;
    case expected_version::kind::exact:
      exact = fmt::format("version {}", expected.version.value());
      wanted = exact.c_str();
      break;
  }
  e.message = e.current_version
                  ? fmt::format("stream '{}' is at version {}, expected {}", stream,
                                e.current_version->value(), wanted)
                  : fmt::format("stream '{}' does not exist, expected {}", stream, wanted);
  return e;
}

error invalid_stream_id() {
  return error{errc::invalid_stream_id,
               "a stream id is 1..256 bytes of UTF-8 without control characters"};
}

}  // namespace

partition::partition(file_system& fs, clock& clock, node_log* wal, std::string dir,
                     partition_id id, partition_options options)
    : fs_(fs),
      clock_(clock),
      wal_(wal),
      dir_(std::move(dir)),
      id_(id),
      options_(options),
      recent_ids_(std::max<std::size_t>(options.event_id_window, 1)) {}

result<std::unique_ptr<partition>> partition::open(file_system& fs, clock& clock, node_log* wal,
                                                   std::string dir, partition_id id,
                                                   partition_options options) {
  if (options.max_batch_events > k_format_max_batch_events) {
    return error{errc::invalid_argument, "max_batch_events exceeds the format limit of 65535"};
  }
  std::unique_ptr<partition> p(new partition(fs, clock, wal, std::move(dir), id, options));
  if (auto ec = fs.create_directories(p->dir_)) return io_failure("create directory", p->dir_, ec);
  auto loaded = load_newest_checkpoint(fs, p->dir_, id);
  if (!loaded) return loaded.err();
  lsn end{};
  std::vector<partition_log::segment_info> segments;
  if (auto& state = *loaded) {
    end = state->log_end;
    segments = state->segments;
    p->index_ = std::move(state->index);
    for (const auto& [event, where] : state->recent_ids) p->recent_ids_.insert(event, where);
    p->last_timestamp_ = state->last_timestamp;
    p->checkpoint_sequence_ = state->sequence;
    p->checkpoint_node_position_ = state->node_position;
    p->checkpoint_end_ = state->log_end;
    for (const auto& s : segments) p->previous_checkpoint_segments_.push_back(s.base.value());
    p->previous_checkpoint_node_position_ = state->node_position;
    p->chain_ = state->chain;
    p->mark_all_checkpointed();
    // Before the log opens and removes the segment files an older checkpoint
    // may still list.
    if (end == lsn{0} && segments.empty()) {
      if (auto s = p->finish_interrupted_clear(); !s) return s.err();
    }
  }
  auto log = partition_log::open(fs, p->dir_, id, options.log, end, segments);
  if (!log) return log.err();
  p->log_ = std::move(*log);
  p->visible_end_ = end;
  return p;
}

// ---------------------------------------------------------------- writes

status partition::validate(std::string_view stream, std::span<const event_input> events) {
  if (!valid_stream_id(stream)) {
    return invalid_stream_id();
  }
  if (events.empty()) return error{errc::invalid_event, "an append needs at least one event"};
  if (events.size() > options_.max_batch_events) {
    return error{errc::batch_too_large, fmt::format("{} events in one append; the limit is {}",
                                                    events.size(), options_.max_batch_events)};
  }
  std::size_t total = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    if (same_event_id(e.id, event_id{})) {
      // The edge generates ids for clients that send none; an all-zero id
      // would make unrelated appends look like retries of each other.
      return error{errc::invalid_event, fmt::format("event {}: the nil UUID is not an event id", i)};
    }
    if (!valid_event_type(e.type)) {
      return error{errc::invalid_event,
                   fmt::format("event {}: a type is 1..128 bytes of UTF-8 without control "
                               "characters", i)};
    }
    const std::size_t size = e.data.size() + e.metadata.size();
    if (size > options_.max_event_bytes) {
      return error{errc::batch_too_large, fmt::format("event {} has {} bytes; the limit is {}", i,
                                                      size, options_.max_event_bytes)};
    }
    total += size + e.type.size();
  }
  if (events.size() > 1) {
    // Duplicate ids within the batch: open addressing over event indexes.
    auto& table = id_scratch_;
    table.assign(std::bit_ceil(events.size() * 2), 0);
    const std::size_t mask = table.size() - 1;
    for (std::uint32_t i = 0; i < events.size(); ++i) {
      std::size_t b = hash_event_id(events[i].id) & mask;
      for (; table[b] != 0; b = (b + 1) & mask) {
        if (same_event_id(events[table[b] - 1].id, events[i].id)) {
          return error{errc::invalid_event,
                       fmt::format("event {} repeats the id of event {}", i, table[b] - 1)};
        }
      }
      table[b] = i + 1;
    }
  }
  if (total > options_.max_batch_bytes) {
    return error{errc::batch_too_large,
                 fmt::format("the append has {} bytes; the limit is {}", total,
                             options_.max_batch_bytes)};
  }
  return {};
}

std::optional<error> partition::check_expected(const stream_entry* entry,
                                               expected_version expected,
                                               std::string_view stream) const {
  if (entry && entry->tombstoned) {
    return error{errc::stream_deleted, fmt::format("stream '{}' is tombstoned", stream)};
  }
  const bool exists = entry && entry->exists();
  bool ok = true;
  switch (expected.what) {
    case expected_version::kind::any: break;
    case expected_version::kind::no_stream: ok = !exists; break;
    case expected_version::kind::stream_exists: ok = exists; break;
    case expected_version::kind::exact:
      ok = exists && entry->next_version - 1 == expected.version.value();
      break;
  }
  if (ok) return std::nullopt;
  return wrong_version(stream, entry, expected);
}

node_log_position partition::ticket_for(lsn record) const {
  for (const auto& w : pending_) {
    if (w.record_end > record) return w.ticket;
  }
  return node_log_position{0};
}

result<std::optional<append_result>> partition::find_retry(const stream_entry& entry,
                                                           expected_version expected,
                                                           std::span<const event_input> events) {
  const std::uint32_t number = index_.number_of(entry);
  std::optional<std::uint64_t> start;
  bool from_window = false;
  if (const auto* hit = recent_ids_.find(events[0].id); hit && hit->stream == number) {
    start = hit->version;
    from_window = true;
  } else if (expected.what == expected_version::kind::exact &&
             expected.version.value() < entry.next_version) {
    start = expected.version.value() + 1;
  } else if (expected.what == expected_version::kind::no_stream) {
    start = entry.metadata.truncate_before;
  }
  if (!start || *start < entry.first_located || *start >= entry.next_version) {
    return std::optional<append_result>{};
  }
  if (expected.what == expected_version::kind::exact &&
      *start != expected.version.value() + 1) {
    return std::optional<append_result>{};
  }

  // Compare the ids stored at start, start+1, ... with the batch.
  std::size_t matched = 0;
  for (; matched < events.size(); ++matched) {
    const std::uint64_t v = *start + matched;
    if (v >= entry.next_version) break;
    const auto* hit = recent_ids_.find(events[matched].id);
    if (hit && hit->stream == number && hit->version == v) continue;
    // Not in the window: read the stored id.
    read_page page;
    if (auto s = read_events(entry, v, 1, read_direction::forward, page); !s) return s.err();
    if (page.events.empty() || page.events[0].id != events[matched].id) break;
  }
  if (matched == events.size()) {
    append_result r;
    r.first_version = stream_version{*start};
    r.last_version = stream_version{*start + events.size() - 1};
    r.position = location_record(entry.location(*start));
    r.durable_after = ticket_for(location_record(entry.location(*start + events.size() - 1)));
    r.duplicate = true;
    return std::optional<append_result>(r);
  }
  if (from_window && matched > 0) {
    return error{errc::idempotency_conflict,
                 fmt::format("stream '{}': the first {} events of the append were written at "
                             "version {}, but event {} differs",
                             entry.id, matched, *start, matched)};
  }
  return std::optional<append_result>{};
}

timestamp_us partition::next_timestamp() {
  last_timestamp_ = std::max(clock_.now_us(), last_timestamp_);
  return last_timestamp_;
}

result<write_result> partition::write_frame(std::span<const std::byte> frame) {
  if (failure_) return *failure_;
  node_log_position ticket{0};
  if (wal_) {
    auto appended = wal_->append(frame);
    if (!appended) return appended.err();
    ticket = *appended;
  }
  const lsn position = log_->end();
  if (auto s = log_->append(frame); !s) return s.err();
  pending_.push_back({log_->end(), ticket});
  return write_result{position, ticket};
}

result<append_result> partition::append(std::string_view stream, expected_version expected,
                                        std::span<const event_input> events) {
  // The retry check below starts with a lookup that misses the caches.
  if (!events.empty()) recent_ids_.prefetch(events[0].id);
  if (auto s = validate(stream, events); !s) return s.err();
  stream_entry* entry = index_.find(stream);
  if (entry && !entry->tombstoned) {
    auto retry = find_retry(*entry, expected, events);
    if (!retry) return retry.err();
    if (*retry) return **retry;
  }
  if (auto e = check_expected(entry, expected, stream)) return *e;

  const std::uint64_t first = entry ? entry->next_version : 0;
  const lsn position = log_->end();
  const auto frame = encoder_.append_batch(id_, position, stream, stream_version{first},
                                           next_timestamp(), events);
  auto written = write_frame(frame);
  if (!written) return written.err();
  if (!entry) entry = &index_.get_or_create(stream);
  if (entry->deleted) hide_change(*entry);
  const std::uint32_t number = index_.number_of(*entry);
  for (std::uint32_t i = 0; i < events.size(); ++i) {
    if (i + k_id_prefetch_distance < events.size()) {
      recent_ids_.prefetch(events[i + k_id_prefetch_distance].id);
    }
    entry->locations.push_back(pack_location(position, i));
    recent_ids_.insert(events[i].id, {number, first + i});
  }
  entry->next_version = first + events.size();
  entry->deleted = false;

  append_result r;
  static_cast<write_result&>(r) = *written;
  r.first_version = stream_version{first};
  r.last_version = stream_version{first + events.size() - 1};
  return r;
}

result<write_result> partition::set_metadata(std::string_view stream,
                                             const stream_metadata& metadata) {
  if (!valid_stream_id(stream)) {
    return invalid_stream_id();
  }
  stream_entry* entry = index_.find(stream);
  if (entry && entry->tombstoned) {
    return error{errc::stream_deleted, fmt::format("stream '{}' is tombstoned", stream)};
  }
  const bool deleted = entry && entry->deleted;
  const auto frame = encoder_.stream_metadata(id_, log_->end(), stream, next_timestamp(),
                                              metadata, deleted, false);
  auto written = write_frame(frame);
  if (!written) return written.err();
  if (!entry) entry = &index_.get_or_create(stream);
  hide_change(*entry);
  entry->metadata = metadata;
  return *written;
}

result<write_result> partition::delete_stream(std::string_view stream, expected_version expected,
                                              bool tombstone) {
  if (!valid_stream_id(stream)) {
    return invalid_stream_id();
  }
  stream_entry* entry = index_.find(stream);
  if (auto e = check_expected(entry, expected, stream)) return *e;
  if (!tombstone && !(entry && entry->exists())) {
    return error{errc::stream_not_found, fmt::format("stream '{}' does not exist", stream)};
  }
  stream_metadata metadata = entry ? entry->metadata : stream_metadata{};
  metadata.truncate_before = entry ? entry->next_version : 0;
  const auto frame = encoder_.stream_metadata(id_, log_->end(), stream, next_timestamp(),
                                              metadata, !tombstone, tombstone);
  auto written = write_frame(frame);
  if (!written) return written.err();
  if (!entry) entry = &index_.get_or_create(stream);
  hide_change(*entry);
  entry->metadata = metadata;
  entry->deleted = !tombstone;
  entry->tombstoned = tombstone;
  // The snapshot describes events the delete removed: a stream written again
  // must not start from it (and its segment may be removed meanwhile).
  entry->snapshot.reset();
  return *written;
}

result<write_result> partition::put_snapshot(std::string_view stream, stream_version version,
                                             std::string_view payload) {
  stream_entry* entry = index_.find(stream);
  if (!entry || !entry->exists()) {
    if (entry && entry->tombstoned) {
      return error{errc::stream_deleted, fmt::format("stream '{}' is tombstoned", stream)};
    }
    return error{errc::stream_not_found, fmt::format("stream '{}' does not exist", stream)};
  }
  if (version.value() >= entry->next_version) {
    return error{errc::invalid_argument,
                 fmt::format("snapshot version {} is past the last version {} of stream '{}'",
                             version.value(), entry->next_version - 1, stream)};
  }
  if (payload.size() > options_.max_batch_bytes) {
    return error{errc::batch_too_large, fmt::format("snapshot of {} bytes; the limit is {}",
                                                    payload.size(), options_.max_batch_bytes)};
  }
  const lsn position = log_->end();
  const auto frame = encoder_.snapshot(id_, position, stream, version, next_timestamp(), payload);
  auto written = write_frame(frame);
  if (!written) return written.err();
  hide_change(*entry);
  entry->snapshot = snapshot_ref{version, position};
  return *written;
}

void partition::advance_durable(node_log_position durable) {
  while (!pending_.empty() && pending_.front().ticket <= durable) {
    visible_end_ = pending_.front().record_end;
    pending_.pop_front();
  }
  while (!hidden_.empty() && hidden_.front().record_end <= visible_end_) hidden_.pop_front();
}

partition::stream_view partition::visible_view(const stream_entry& entry) const {
  if (!hidden_.empty()) {
    const std::uint32_t number = index_.number_of(entry);
    for (const auto& h : hidden_) {
      if (h.stream == number) return h.before;
    }
  }
  return stream_view{entry.metadata, entry.deleted, entry.tombstoned, entry.snapshot};
}

void partition::hide_change(const stream_entry& entry) {
  hidden_.push_back(hidden_change{
      log_->end(), index_.number_of(entry),
      stream_view{entry.metadata, entry.deleted, entry.tombstoned, entry.snapshot}});
}

// ----------------------------------------------------------------- reads

std::uint64_t partition::visible_next_version(const stream_entry& entry) const {
  if (entry.next_version == entry.first_located) return entry.next_version;
  if (location_record(entry.locations.back()) < visible_end_) return entry.next_version;
  // Locations ascend with versions: find the first one not yet visible.
  const auto it = std::lower_bound(entry.locations.begin(), entry.locations.end(),
                                   pack_location(visible_end_, 0));
  return entry.first_located + static_cast<std::uint64_t>(it - entry.locations.begin());
}

result<timestamp_us> partition::timestamp_of(const stream_entry& entry, std::uint64_t version) {
  auto record = log_->read(location_record(entry.location(version)));
  if (!record) return record.err();
  timestamp_us ts = 0;
  auto s = guard_decode(
      [&] {
        record_reader reader(record->payload());
        ts = reader.append_batch().getTimestampUs();
      },
      dir_);
  if (!s) return s.err();
  return ts;
}

std::uint64_t partition::first_retained(const stream_entry& entry,
                                        const stream_metadata& metadata) {
  const std::uint64_t next = visible_next_version(entry);
  std::uint64_t lo = std::max(entry.first_located, metadata.truncate_before);
  if (metadata.max_count > 0 && next > metadata.max_count) {
    lo = std::max(lo, next - metadata.max_count);
  }
  lo = std::min(lo, next);
  if (metadata.max_age_seconds > 0 && lo < next) {
    const timestamp_us cutoff =
        clock_.now_us() -
        static_cast<timestamp_us>(metadata.max_age_seconds) * k_us_per_second;
    // Timestamps never decrease within a partition, so within a stream.
    std::uint64_t low = lo, high = next;
    while (low < high) {
      const std::uint64_t mid = low + (high - low) / 2;
      auto ts = timestamp_of(entry, mid);
      // An unreadable record is reported by the read itself; keep it in range.
      if (ts && *ts < cutoff) {
        low = mid + 1;
      } else {
        high = mid;
      }
    }
    lo = low;
  }
  return lo;
}

status partition::read_events(const stream_entry& entry, std::uint64_t first,
                              std::uint64_t count, read_direction direction, read_page& page) {
  page.events.reserve(page.events.size() + count);
  std::optional<record_ref> current;
  std::optional<record_reader> reader;
  capnp::List<schema::Event>::Reader events;
  timestamp_us timestamp = 0;
  std::uint64_t first_version = 0;
  return guard_decode(
      [&] {
        for (std::uint64_t i = 0; i < count; ++i) {
          const std::uint64_t v = direction == read_direction::forward ? first + i : first - i;
          const event_location loc = entry.location(v);
          const lsn record_lsn = location_record(loc);
          if (!current || current->header.position != record_lsn) {
            auto record = log_->read(record_lsn);
            if (!record) throw record.err();
            if (record->header.type != log_format::record_type::append_batch) {
              throw error{errc::corruption,
                          fmt::format("partition {}: lsn {} of stream '{}' version {} is not "
                                      "an append record",
                                      id_.value(), record_lsn.value(), entry.id, v)};
            }
            if (page.buffers.empty() || page.buffers.back() != record->owner) {
              page.buffers.push_back(record->owner);
            }
            reader.reset();
            current = std::move(*record);
            reader.emplace(current->payload());
            auto batch = reader->append_batch();
            events = batch.getEvents();
            timestamp = batch.getTimestampUs();
            first_version = batch.getFirstVersion();
          }
          const std::uint32_t index = location_index(loc);
          if (index >= events.size() || first_version + index != v) {
            throw error{errc::corruption,
                        fmt::format("partition {}: record at lsn {} does not hold version {} of "
                                    "stream '{}'",
                                    id_.value(), record_lsn.value(), v, entry.id)};
          }
          const auto view = to_event_view(events[index]);
          page.events.push_back(recorded_event{view.id, view.type, view.data, view.metadata,
                                               stream_version{v}, timestamp, record_lsn});
        }
      },
      dir_);
}

result<read_page> partition::read_stream(std::string_view stream, stream_version from,
                                         std::size_t limit, read_direction direction) {
  if (limit == 0) return error{errc::invalid_argument, "a read needs a limit of at least 1"};
  const stream_entry* found = index_.find(stream);
  const stream_view view = found ? visible_view(*found) : stream_view{};
  if (view.tombstoned) {
    return error{errc::stream_deleted, fmt::format("stream '{}' is tombstoned", stream)};
  }
  const std::uint64_t next = found ? visible_next_version(*found) : 0;
  if (!found || view.deleted || next == 0) {
    return error{errc::stream_not_found, fmt::format("stream '{}' does not exist", stream)};
  }
  const stream_entry& entry = *found;
  const std::uint64_t lo = first_retained(entry, view.metadata);
  read_page page;
  page.last_version = stream_version{next - 1};
  std::uint64_t start, count;
  if (direction == read_direction::forward) {
    start = std::max(from.value(), lo);
    if (start >= next) return page;
    count = std::min<std::uint64_t>(limit, next - start);
    if (start + count < next) page.next = stream_version{start + count};
  } else {
    start = std::min(from.value(), next - 1);
    if (start < lo) return page;
    count = std::min<std::uint64_t>(limit, start - lo + 1);
    if (start - lo + 1 > count) page.next = stream_version{start - count};
  }
  if (count == 0) return page;
  if (auto s = read_events(entry, start, count, direction, page); !s) return s.err();
  return page;
}

result<read_page> partition::read_last(std::string_view stream) {
  return read_stream(stream, stream_version{UINT64_MAX}, 1, read_direction::backward);
}

result<stream_info> partition::get_stream_info(std::string_view stream) {
  const stream_entry* entry = index_.find(stream);
  stream_info info;
  if (!entry) return info;
  const stream_view view = visible_view(*entry);
  info.metadata = view.metadata;
  info.deleted = view.deleted;
  info.tombstoned = view.tombstoned;
  const std::uint64_t next = visible_next_version(*entry);
  if (!view.deleted && !view.tombstoned && next > 0) info.last_version = stream_version{next - 1};
  info.first_retained = first_retained(*entry, view.metadata);
  return info;
}

result<std::optional<snapshot_read>> partition::get_snapshot(std::string_view stream) {
  const stream_entry* entry = index_.find(stream);
  const stream_view view = entry ? visible_view(*entry) : stream_view{};
  if (!view.snapshot || view.snapshot->record >= visible_end_ || view.deleted ||
      view.tombstoned) {
    return std::optional<snapshot_read>{};
  }
  auto record = log_->read(view.snapshot->record);
  if (!record) return record.err();
  snapshot_read out;
  auto s = guard_decode(
      [&] {
        record_reader reader(record->payload());
        auto snap = reader.snapshot();
        out.version = stream_version{snap.getVersion()};
        out.timestamp = snap.getTimestampUs();
        out.payload = to_view(snap.getPayload());
      },
      dir_);
  if (!s) return s.err();
  if (record->header.type != log_format::record_type::snapshot) {
    return error{errc::corruption, fmt::format("partition {}: lsn {} is not a snapshot record",
                                               id_.value(), view.snapshot->record.value())};
  }
  out.buffers.push_back(record->owner);
  return std::optional<snapshot_read>(std::move(out));
}

result<snapshot_and_events> partition::read_from_snapshot(std::string_view stream,
                                                          std::size_t limit) {
  auto snapshot = get_snapshot(stream);
  if (!snapshot) return snapshot.err();
  const stream_version from{*snapshot ? (*snapshot)->version.value() + 1 : 0};
  auto page = read_stream(stream, from, limit, read_direction::forward);
  if (!page) return page.err();
  return snapshot_and_events{std::move(*snapshot), std::move(*page)};
}

result<std::vector<record_ref>> partition::read_log(lsn from, std::size_t max_bytes) {
  if (from >= visible_end_) return std::vector<record_ref>{};
  auto records = log_->read_from(from, max_bytes);
  if (!records) return records.err();
  while (!records->empty() && records->back().header.position >= visible_end_) {
    records->pop_back();
  }
  return records;
}

// ------------------------------------------------------------- shipping

result<shipped_batch> partition::ship_from(lsn from, std::size_t max_bytes) {
  if (from > log_->end()) {
    return error{errc::invalid_argument,
                 fmt::format("partition {}: cannot ship from lsn {}: the log ends at lsn {}",
                             id_.value(), from.value(), log_->end().value())};
  }
  if (from > visible_end_) {
    return error{errc::invalid_argument,
                 fmt::format("partition {}: cannot ship from lsn {}: records are durable only "
                             "up to lsn {}",
                             id_.value(), from.value(), visible_end_.value())};
  }
  shipped_batch batch;
  batch.from = from;
  batch.next = from;
  batch.source_end = visible_end_;
  if (from == visible_end_) return batch;

  // The copy needs every record from `from` on. Retention removes whole
  // sealed segments, possibly in the middle of the log: if it removed any
  // range at or after `from`, the records there are gone and only a copy of
  // whole segments (with the checkpoint that no longer lists them) can help.
  // Said up front, so that a copy does not stall half way.
  const auto& segments = log_->segments();
  auto it = std::upper_bound(segments.begin(), segments.end(), from,
                             [](lsn v, const partition_log::segment_info& s) {
                               return v < s.base;
                             });
  auto full_copy = [&](std::uint64_t removed_from, std::uint64_t removed_to) {
    return error{errc::full_copy_needed,
                 fmt::format("partition {}: cannot ship from lsn {}: retention removed lsns "
                             "[{}, {}); a full copy is needed",
                             id_.value(), from.value(), removed_from, removed_to)};
  };
  if (it == segments.begin()) {
    return full_copy(from.value(), segments.empty() ? log_->end().value()
                                                    : segments.front().base.value());
  }
  for (--it; it + 1 != segments.end(); ++it) {
    const std::uint64_t end = it->base.value() + it->bytes;
    if (end != (it + 1)->base.value()) {
      return full_copy(std::max(end, from.value()), (it + 1)->base.value());
    }
  }

  auto records = log_->read_from(from, max_bytes);
  if (!records) return records.err();
  for (const auto& r : *records) {
    if (r.end() > visible_end_) break;
    if (!batch.bytes.empty() && batch.bytes.size() + r.frame.size() > max_bytes) break;
    if (r.header.position != batch.next) {
      return error{errc::corruption,
                   fmt::format("partition {}: record at lsn {} follows lsn {} while shipping",
                               id_.value(), r.header.position.value(), batch.next.value())};
    }
    batch.bytes.insert(batch.bytes.end(), r.frame.begin(), r.frame.end());
    batch.next = r.end();
  }
  batch.crc = crc32c(batch.bytes);
  return batch;
}

status partition::check_shipped_payloads(
    std::span<const log_format::parsed_frame> frames) const {
  // The next version of each stream the batch appends to, as apply() would
  // leave it.
  std::unordered_map<std::string, std::uint64_t> next_versions;
  auto next_version_of = [&](std::string_view stream) -> std::uint64_t& {
    auto [at, inserted] = next_versions.try_emplace(std::string(stream), 0);
    if (inserted) {
      const stream_entry* entry = index_.find(stream);
      at->second = entry ? entry->next_version : 0;
    }
    return at->second;
  };
  for (const auto& frame : frames) {
    const lsn position = frame.header.position;
    auto bad = [&](std::string what) {
      return error{errc::corruption,
                   fmt::format("partition {}: shipped record at lsn {}: {}", id_.value(),
                               position.value(), what)};
    };
    // Reads every field apply() reads, so that apply() cannot fail half way.
    auto s = guard_decode(
        [&] {
          record_reader reader(frame.payload);
          switch (frame.header.type) {
            case log_format::record_type::append_batch: {
              auto batch = reader.append_batch();
              const auto stream = to_view(batch.getStreamId());
              if (!valid_stream_id(stream)) throw bad("invalid stream id");
              auto events = batch.getEvents();
              if (events.size() == 0 || events.size() > k_format_max_batch_events) {
                throw bad(fmt::format("{} events in one record", events.size()));
              }
              std::uint64_t& next = next_version_of(stream);
              if (batch.getFirstVersion() != next) {
                throw bad(fmt::format("appends version {} to stream '{}' which is at {}",
                                      batch.getFirstVersion(), stream, next));
              }
              for (auto e : events) (void)id_of(e);
              (void)batch.getTimestampUs();
              next += events.size();
              break;
            }
            case log_format::record_type::stream_metadata: {
              auto m = reader.stream_metadata();
              if (!valid_stream_id(to_view(m.getStreamId()))) throw bad("invalid stream id");
              (void)m.getMaxCount();
              (void)m.getMaxAgeSeconds();
              (void)m.getTruncateBefore();
              (void)m.getDeleted();
              (void)m.getTombstoned();
              (void)m.getTimestampUs();
              break;
            }
            case log_format::record_type::snapshot: {
              auto snap = reader.snapshot();
              if (!valid_stream_id(to_view(snap.getStreamId()))) throw bad("invalid stream id");
              (void)snap.getVersion();
              (void)snap.getTimestampUs();
              break;
            }
            default:
              break;  // an ignorable future type
          }
        },
        dir_);
    if (!s) return s;
  }
  return {};
}

result<shipped_write> partition::apply_shipped(const shipped_batch& batch) {
  if (failure_) return *failure_;
  if (batch.from != log_->end()) {
    return error{errc::lsn_gap,
                 fmt::format("partition {}: shipped batch starts at lsn {} but the copy ends at "
                             "lsn {}",
                             id_.value(), batch.from.value(), log_->end().value())};
  }
  if (crc32c(batch.bytes) != batch.crc) {
    return error{errc::checksum_mismatch,
                 fmt::format("partition {}: shipped batch from lsn {} ({} bytes) fails its "
                             "checksum",
                             id_.value(), batch.from.value(), batch.bytes.size())};
  }
  if (batch.next < batch.from || batch.next.value() - batch.from.value() != batch.bytes.size()) {
    return error{errc::corruption,
                 fmt::format("partition {}: shipped batch claims lsns [{}, {}) but holds {} "
                             "bytes",
                             id_.value(), batch.from.value(), batch.next.value(),
                             batch.bytes.size())};
  }
  if (batch.bytes.empty()) return shipped_write{log_->end(), node_log_position{0}};

  // Payloads are read in place and must be 8-byte aligned; a batch that
  // came off the wire may not be.
  std::span<const std::byte> bytes(batch.bytes);
  std::vector<std::uint64_t> aligned;
  if (reinterpret_cast<std::uintptr_t>(bytes.data()) % log_format::k_alignment != 0) {
    aligned.resize((bytes.size() + 7) / 8);
    std::memcpy(aligned.data(), bytes.data(), bytes.size());
    bytes = std::span<const std::byte>(reinterpret_cast<const std::byte*>(aligned.data()),
                                       bytes.size());
  }

  // Check everything before changing anything.
  std::vector<log_format::parsed_frame> frames;
  for (std::size_t offset = 0; offset < bytes.size();) {
    const lsn expected{batch.from.value() + offset};
    auto parsed = log_format::parse_frame(bytes.subspan(offset));
    if (parsed.status != log_format::frame_status::ok) {
      const bool crc = parsed.status == log_format::frame_status::checksum_mismatch;
      return error{crc ? errc::checksum_mismatch : errc::corruption,
                   fmt::format("partition {}: shipped record at lsn {}: {}", id_.value(),
                               expected.value(),
                               parsed.status == log_format::frame_status::incomplete
                                   ? "truncated record"
                                   : log_format::frame_status_name(parsed.status))};
    }
    if (parsed.header.position != expected) {
      return error{errc::lsn_gap,
                   fmt::format("partition {}: shipped record at lsn {} claims lsn {}: records "
                               "are not contiguous",
                               id_.value(), expected.value(), parsed.header.position.value())};
    }
    if (parsed.header.partition != id_) {
      return error{errc::corruption,
                   fmt::format("partition {}: shipped record at lsn {} claims partition {} "
                               "lsn {}",
                               id_.value(), expected.value(), parsed.header.partition.value(),
                               parsed.header.position.value())};
    }
    offset += parsed.header.frame_size();
    frames.push_back(parsed);
  }
  if (auto s = check_shipped_payloads(frames); !s) return s.err();

  // One node-log append for the whole batch: its frames are node-log records
  // as they are, and recovery replays them like appended ones.
  node_log_position ticket{0};
  if (wal_) {
    auto appended = wal_->append(bytes);
    if (!appended) return appended.err();
    ticket = *appended;
  }
  // Past this point only an I/O failure can stop us; it is sticky (the
  // partition log refuses all later writes) and a restart recovers from the
  // node log, which holds the whole batch.
  for (const auto& frame : frames) {
    const auto whole = bytes.subspan(
        static_cast<std::size_t>(frame.header.position.value() - batch.from.value()),
        frame.header.frame_size());
    if (auto s = log_->append(whole); !s) return s.err();
    if (auto s = apply(frame.header, frame.payload, true); !s) return s.err();
  }
  pending_.push_back({log_->end(), ticket});
  return shipped_write{log_->end(), ticket};
}

// ------------------------------------------------------------- recovery

status partition::replay(std::span<const std::byte> frame, const std::string& file,
                         std::uint64_t offset) {
  const auto header = log_format::decode_header(frame);
  if (header.position < log_->end()) return {};  // already in the partition log
  if (header.position > log_->end()) {
    return error{errc::lsn_gap,
                 fmt::format("node log {} at offset {}: partition {} record has lsn {} but the "
                             "partition log ends at lsn {}",
                             file, offset, id_.value(), header.position.value(),
                             log_->end().value())};
  }
  if (auto s = log_->append(frame); !s) return s;
  return apply(header, frame.subspan(log_format::k_header_size));
}

status partition::apply(const log_format::record_header& header,
                        std::span<const std::byte> payload, bool hide_from_reads) {
  const lsn position = header.position;
  return guard_decode(
      [&] {
        record_reader reader(payload);
        switch (header.type) {
          case log_format::record_type::append_batch: {
            auto batch = reader.append_batch();
            auto& entry = index_.get_or_create(to_view(batch.getStreamId()));
            if (batch.getFirstVersion() != entry.next_version) {
              throw error{errc::corruption,
                          fmt::format("partition {}: lsn {} appends version {} to stream '{}' "
                                      "which is at {}",
                                      id_.value(), position.value(), batch.getFirstVersion(),
                                      entry.id, entry.next_version)};
            }
            if (hide_from_reads && entry.deleted) hide_change(entry);
            const std::uint32_t number = index_.number_of(entry);
            auto events = batch.getEvents();
            for (std::uint32_t i = 0; i < events.size(); ++i) {
              if (i + k_id_prefetch_distance < events.size()) {
                recent_ids_.prefetch(id_of(events[i + k_id_prefetch_distance]));
              }
              entry.locations.push_back(pack_location(position, i));
              recent_ids_.insert(id_of(events[i]), {number, entry.next_version + i});
            }
            entry.next_version += events.size();
            entry.deleted = false;
            last_timestamp_ = std::max(last_timestamp_, batch.getTimestampUs());
            break;
          }
          case log_format::record_type::stream_metadata: {
            auto m = reader.stream_metadata();
            auto& entry = index_.get_or_create(to_view(m.getStreamId()));
            if (hide_from_reads) hide_change(entry);
            entry.metadata = {m.getMaxCount(), m.getMaxAgeSeconds(), m.getTruncateBefore()};
            entry.deleted = m.getDeleted();
            entry.tombstoned = m.getTombstoned();
            // As delete_stream: no snapshot survives a delete. (While deleted,
            // put_snapshot is refused, so this drops nothing newer.)
            if (entry.deleted || entry.tombstoned) entry.snapshot.reset();
            last_timestamp_ = std::max(last_timestamp_, m.getTimestampUs());
            break;
          }
          case log_format::record_type::snapshot: {
            auto snap = reader.snapshot();
            auto& entry = index_.get_or_create(to_view(snap.getStreamId()));
            if (hide_from_reads) hide_change(entry);
            entry.snapshot = snapshot_ref{stream_version{snap.getVersion()}, position};
            last_timestamp_ = std::max(last_timestamp_, snap.getTimestampUs());
            break;
          }
          default:
            break;  // an ignorable future type
        }
      },
      dir_);
}

// ----------------------------------------------------------- checkpoint

std::vector<lsn> partition::removable_segments() {
  const auto& segments = log_->segments();
  if (segments.size() < 2) return {};
  std::vector<bool> live(segments.size(), false);
  live.back() = true;
  auto segment_of = [&](lsn at) {
    auto it = std::upper_bound(segments.begin(), segments.end(), at,
                               [](lsn v, const partition_log::segment_info& s) {
                                 return v < s.base;
                               });
    return static_cast<std::size_t>(it - segments.begin()) - 1;
  };
  // A snapshot that reads still see until a newer change is visible.
  for (const auto& h : hidden_) {
    if (h.before.snapshot && !h.before.deleted && !h.before.tombstoned) {
      live[segment_of(h.before.snapshot->record)] = true;
    }
  }
  index_.for_each([&](stream_entry& entry) {
    if (entry.snapshot && !entry.deleted && !entry.tombstoned) {
      live[segment_of(entry.snapshot->record)] = true;
    }
    // Events past retention are gone for good: drop their locations.
    const std::uint64_t lo =
        std::max(first_retained(entry, entry.metadata), entry.first_located);
    if (lo > entry.first_located) {
      entry.locations.erase(entry.locations.begin(),
                            entry.locations.begin() +
                                static_cast<std::ptrdiff_t>(lo - entry.first_located));
      entry.first_located = lo;
    }
    // Mark each segment holding a live event, jumping a segment at a time.
    auto it = entry.locations.begin();
    while (it != entry.locations.end()) {
      const std::size_t s = segment_of(location_record(*it));
      live[s] = true;
      if (s + 1 == segments.size()) break;
      it = std::lower_bound(it, entry.locations.end(), pack_location(segments[s + 1].base, 0));
    }
  });
  std::vector<lsn> removable;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (!live[i]) removable.push_back(segments[i].base);
  }
  return removable;
}

status partition::checkpoint() {
  auto job = begin_checkpoint();
  if (!job) return job.err();
  const status written = job->write();
  return finish_checkpoint(std::move(*job), written);
}

result<checkpoint_job> partition::begin_checkpoint() {
  if (failure_) return *failure_;
  if (checkpoint_in_progress_) {
    return error{errc::invalid_argument,
                 fmt::format("partition {}: a checkpoint is in progress", id_.value())};
  }
  checkpoint_job job;
  // Replay restarts at a position the node log will have on disk before the
  // checkpoint does (write() fdatasyncs it whatever the fsync mode): after a
  // power loss the node log must restart at its end without leaving a gap
  // before this position. It covers every record this partition appended.
  if (wal_) job.node_position_ = wal_->appended_position();
  auto segments = log_->begin_sync();
  if (!segments) return segments.err();
  job.segments_ = std::move(*segments);

  const std::vector<lsn> past_retention = removable_segments();
  for (const auto& seg : log_->segments()) {
    if (!std::binary_search(past_retention.begin(), past_retention.end(), seg.base)) {
      job.listed_.push_back(seg);
    }
  }
  // Files the previous checkpoint lists stay until the next one, so that it
  // remains a valid fallback.
  for (lsn base : past_retention) {
    if (std::binary_search(previous_checkpoint_segments_.begin(),
                           previous_checkpoint_segments_.end(), base.value())) {
      continue;
    }
    job.removable_.push_back(base);
    job.removable_files_.push_back(log_->path_of(base));
  }
  job.partition_ = id_;
  job.fs_ = &fs_;
  job.wal_ = wal_;
  job.dir_ = dir_;
  job.sequence_ = checkpoint_sequence_ + 1;
  // The chain of the checkpoint before stays: it is the fallback.
  job.keep_from_ = checkpoint_sequence_ > 0 ? chain_.base : job.sequence_;
  job.log_end_ = log_->end();
  job.release_before_ = previous_checkpoint_node_position_;
  job.stream_count_ = static_cast<std::uint32_t>(index_.size());
  job.ids_inserted_ = recent_ids_.inserted();
  // A delta extends the newest checkpoint, until the deltas add up to the
  // last full one or there are too many to read on open.
  job.delta_ = options_.delta_checkpoints && checkpoint_sequence_ > 0 &&
               chain_.deltas < options_.max_checkpoint_deltas &&
               chain_.delta_bytes < chain_.base_bytes;
  if (job.delta_) {
    const auto changed = changed_streams();
    const checkpoint_delta what{checkpoint_sequence_, chain_.newest_crc, changed,
                                job.ids_inserted_ - checkpointed_ids_};
    job.bytes_ = encode_delta_checkpoint(id_, job.sequence_, job.log_end_, job.node_position_,
                                         last_timestamp_, job.listed_, index_, recent_ids_, what);
    job.streams_.reserve(changed.size());
    for (const auto& c : changed) {
      job.streams_.emplace_back(c.number, checkpointed_stream::of(index_.at(c.number)));
    }
  } else {
    job.bytes_ = encode_checkpoint(id_, job.sequence_, job.log_end_, job.node_position_,
                                   last_timestamp_, job.listed_, index_, recent_ids_);
    job.streams_.reserve(index_.size());
    for (std::uint32_t i = 0; i < index_.size(); ++i) {
      job.streams_.emplace_back(i, checkpointed_stream::of(index_.at(i)));
    }
  }
  job.crc_ = checkpoint_crc(job.bytes_);
  checkpoint_in_progress_ = true;
  return job;
}

status partition::finish_checkpoint(checkpoint_job job, status written) {
  checkpoint_in_progress_ = false;
  using step = checkpoint_job::step;
  if (!written && job.reached_ == step::segments) return log_->fail_sync(written.err());
  if (job.reached_ < step::release) return written;

  checkpoint_sequence_ = job.sequence_;
  if (job.delta_) {
    ++chain_.deltas;
    chain_.delta_bytes += job.bytes_.size();
  } else {
    chain_ = checkpoint_chain{job.sequence_, 0, 0, job.bytes_.size(), 0};
    checkpointed_streams_.clear();
  }
  chain_.newest_crc = job.crc_;
  // Streams created since begin_checkpoint() count as new, whatever they hold.
  checkpointed_streams_.resize(job.stream_count_);
  for (auto& [number, state] : job.streams_) checkpointed_streams_[number] = std::move(state);
  checkpointed_ids_ = job.ids_inserted_;
  if (wal_) advance_durable(job.node_position_);

  // Forget the segments whose files write() removed. If it stopped first (a
  // failed release), they stay, and the next checkpoint removes them.
  if (job.reached_ == step::done) {
    for (lsn base : job.removable_) {
      if (auto s = log_->forget_segment(base); !s) return s;
    }
  }
  previous_checkpoint_segments_.clear();
  for (const auto& seg : job.listed_) previous_checkpoint_segments_.push_back(seg.base.value());
  previous_checkpoint_node_position_ = job.node_position_;
  checkpoint_node_position_ = job.node_position_;
  checkpoint_end_ = job.log_end_;
  return written;
}

std::vector<checkpoint_delta::stream_change> partition::changed_streams() const {
  std::vector<checkpoint_delta::stream_change> changed;
  for (std::uint32_t i = 0; i < index_.size(); ++i) {
    const stream_entry& e = index_.at(i);
    if (i >= checkpointed_streams_.size()) {
      changed.push_back({i, e.first_located});
      continue;
    }
    const checkpointed_stream& then = checkpointed_streams_[i];
    if (then == checkpointed_stream::of(e)) continue;
    // Versions only grow, and retention only drops locations from the
    // front: the locations checkpointed then are still right. Were it ever
    // otherwise, the delta lists them all.
    const bool grew = e.next_version >= then.next_version && e.first_located >= then.first_located;
    changed.push_back({i, grew ? std::max(then.next_version, e.first_located) : e.first_located});
  }
  return changed;
}

void partition::mark_all_checkpointed() {
  checkpointed_streams_.clear();
  checkpointed_streams_.reserve(index_.size());
  index_.for_each(
      [&](const stream_entry& e) { checkpointed_streams_.push_back(checkpointed_stream::of(e)); });
  checkpointed_ids_ = recent_ids_.inserted();
}

bool partition::checkpoint_due() const {
  if (log_->end().value() - checkpoint_end_.value() >= options_.checkpoint_bytes) return true;
  return wal_ && wal_->appended_position().value() - checkpoint_node_position_.value() >=
                     4 * options_.checkpoint_bytes;
}

// ---------------------------------------------------------------- clear

std::vector<std::byte> partition::empty_checkpoint(std::uint64_t sequence,
                                                   node_log_position node_position) const {
  const stream_index no_streams;
  const event_id_window no_ids(1);
  return encode_checkpoint(id_, sequence, lsn{0}, node_position, last_timestamp_, {}, no_streams,
                           no_ids);
}

status partition::clear() {
  if (failure_) return *failure_;
  if (checkpoint_in_progress_) {
    return error{errc::invalid_argument,
                 fmt::format("partition {}: cannot clear while a checkpoint is in progress",
                             id_.value())};
  }
  if (!pending_.empty() || visible_end_ != log_->end()) {
    return error{errc::invalid_argument,
                 fmt::format("partition {}: cannot clear while writes are pending: the log ends "
                             "at lsn {}, reads see up to lsn {}",
                             id_.value(), log_->end().value(), visible_end_.value())};
  }
  if (!wal_) {
    return error{errc::invalid_argument,
                 fmt::format("partition {}: cannot clear without the node log", id_.value())};
  }
  // Where the empty partition's replay starts: on disk (as for a
  // checkpoint) and past every record of this partition, so that recovery
  // never replays an old record into the empty partition.
  auto synced = wal_->sync_to_disk();
  if (!synced) return synced.err();
  const node_log_position node_position = *synced;

  auto stick = [&](const error& e) -> status {
    failure_ = error{e.code, fmt::format("partition {}: clear did not finish, so the partition "
                                         "refuses writes until a restart: {}",
                                         id_.value(), e.message)};
    spdlog::error("{}", failure_->message);
    return *failure_;
  };

  // Two checkpoints of the empty partition: once the second is stored, the
  // fallback is empty too, and deleting the segments the old checkpoints
  // list breaks none that a restart may load. A crash between the two is
  // finished by open() (finish_interrupted_clear).
  const std::uint64_t first = checkpoint_sequence_ + 1;
  const auto bytes = empty_checkpoint(first, node_position);
  const std::uint64_t keep_from = checkpoint_sequence_ > 0 ? chain_.base : first;
  if (auto s = store_checkpoint(fs_, dir_, first, bytes, keep_from); !s) {
    // store_checkpoint can fail after its rename (syncing the directory,
    // removing an old checkpoint): if the empty checkpoint is there, a restart
    // may load it or the old one, and nothing may be written meanwhile.
    const std::string path = dir_ + "/" + checkpoint_name(first);
    if (!fs_.exists(path)) return s;
    std::vector<std::byte> on_disk;
    if (!fs_.read_file(path, on_disk) && on_disk != bytes) return s;  // an older attempt's
    return stick(s.err());
  }
  const std::uint64_t second = first + 1;
  const auto second_bytes = empty_checkpoint(second, node_position);
  if (auto s = store_checkpoint(fs_, dir_, second, second_bytes, first); !s) {
    return stick(s.err());
  }

  const lsn old_end = log_->end();
  checkpoint_sequence_ = second;
  chain_ = checkpoint_chain{second, checkpoint_crc(second_bytes), 0, second_bytes.size(), 0};
  index_ = stream_index{};
  recent_ids_ = event_id_window(recent_ids_.capacity());
  mark_all_checkpointed();
  pending_.clear();
  hidden_.clear();
  visible_end_ = lsn{0};
  checkpoint_end_ = lsn{0};
  checkpoint_node_position_ = node_position;
  previous_checkpoint_node_position_ = node_position;
  previous_checkpoint_segments_.clear();
  removed_segments_.clear();
  // last_timestamp_ stays: timestamps within the partition never go back.
  if (auto s = log_->clear(); !s) return stick(s.err());
  spdlog::info("partition {}: cleared {} bytes of log; empty at lsn 0", id_.value(),
               old_end.value());
  // Both checkpoints a restart may load replay from node_position.
  return wal_->release(id_, node_position);
}

status partition::finish_interrupted_clear() {
  // The partition log never shrinks but through clear(): an older checkpoint
  // that lists segments next to a newer empty one is the fallback a clear
  // left behind: the one before the newest (clear's first empty checkpoint
  // was stored) or the one before that (the second was stored too).
  bool stale = false;
  for (std::uint64_t back = 1; back <= 2 && back <= checkpoint_sequence_; ++back) {
    const std::string path = dir_ + "/" + checkpoint_name(checkpoint_sequence_ - back);
    if (!fs_.exists(path)) continue;
    std::vector<std::byte> bytes;
    if (auto ec = fs_.read_file(path, bytes)) return io_failure("read", path, ec);
    auto older = decode_checkpoint(bytes, id_, path);
    if (older && (older->log_end != lsn{0} || !older->segments.empty())) stale = true;
  }
  if (!stale) return {};
  spdlog::warn("partition {}: finishing an interrupted clear: replacing the fallback checkpoint",
               id_.value());
  const std::uint64_t sequence = checkpoint_sequence_ + 1;
  const auto bytes = empty_checkpoint(sequence, checkpoint_node_position_);
  if (auto s = store_checkpoint(fs_, dir_, sequence, bytes, checkpoint_sequence_); !s) return s;
  checkpoint_sequence_ = sequence;
  chain_ = checkpoint_chain{sequence, checkpoint_crc(bytes), 0, bytes.size(), 0};
  return {};
}

}  // namespace annal::engine
