#include "actors/read_all.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <queue>
#include <tuple>
#include <unordered_map>

#include "actors/partition_list.hpp"
#include "engine/log_format.hpp"
#include "engine/record_codec.hpp"

namespace annal::actors {
namespace {

using engine::errc;
using engine::error;

// Records fetched from a partition log per read_log call.
constexpr std::size_t k_read_chunk_bytes = 256u << 10;

// The merge order: (timestamp, partition, position).
auto key_of(const all_event& e) {
  return std::make_tuple(e.event.timestamp, e.partition.value(), e.position().value());
}

}  // namespace

engine::status check_read_all(const read_all_request& request, std::uint32_t partition_count) {
  if (request.limit == 0) {
    return error{errc::invalid_argument, "a read-all needs a limit of at least 1"};
  }
  if (!request.from.empty() && request.from.size() != partition_count) {
    return error{errc::invalid_argument,
                 fmt::format("the read-all position names {} partitions; the cluster has {} (a "
                             "position from another cluster?)",
                             request.from.size(), partition_count)};
  }
  return check_partition_list(request.partitions, partition_count);
}

read_all_part part_of(read_all_page page, const std::vector<partition_id>& partitions) {
  read_all_part part;
  part.events = std::move(page.events);
  part.at_end = page.at_end;
  part.buffers = std::move(page.buffers);
  part.next.reserve(partitions.size());
  for (const auto p : partitions) {
    part.next.emplace_back(p, p.value() < page.next.size() ? page.next[p.value()] : all_position{});
  }
  return part;
}

namespace {

using event_key = decltype(key_of(std::declval<all_event>()));

// Where a page stops: after no event later than the smallest last event of
// a part that may have more; nowhere at all (`blocked`) while such a part
// has no events.
struct page_horizon {
  bool blocked = false;
  std::optional<event_key> key;
};

page_horizon horizon_of(const std::vector<read_all_part>& parts) {
  page_horizon h;
  for (const auto& part : parts) {
    if (part.at_end) continue;
    if (part.events.empty()) {
      h.blocked = true;
      continue;
    }
    const auto last = key_of(part.events.back());
    if (!h.key || last < *h.key) h.key = last;
  }
  return h;
}

// Whether a page holding `taken` events of `bytes` budget bytes takes `e`
// next. The first event is always taken: the parts are sorted, and taking
// it regardless keeps a partition whose clock went back from stalling.
bool takes(const all_event& e, std::size_t taken, std::size_t bytes, const page_horizon& h,
           std::size_t max_bytes) {
  if (taken == 0) return true;
  if (h.key && key_of(e) > *h.key) return false;
  return bytes + e.budget_bytes() <= max_bytes;
}

// Where each covered partition continues, as its part says.
void set_part_nexts(const std::vector<read_all_part>& parts, std::vector<all_position>& next) {
  for (const auto& part : parts) {
    for (const auto& [p, position] : part.next) {
      if (p.value() >= next.size()) next.resize(p.value() + 1);
      next[p.value()] = position;
    }
  }
}

// merge_read_all of one part whose events are all of one partition (a
// subscription's catch-up reads one partition at a time): the events are
// one run in position order already, so the page is a prefix of them, cut
// exactly where the k-way merge below would cut it, without the heap and
// without copying the events.
read_all_page take_single_run(std::vector<read_all_part> parts, std::vector<all_position> base,
                              std::size_t limit, std::size_t max_bytes) {
  auto& part = parts.front();
  read_all_page page;
  page.next = std::move(base);
  const page_horizon horizon = horizon_of(parts);
  const std::size_t available = part.events.size();
  std::size_t taken = 0;
  std::size_t bytes = 0;
  while (!horizon.blocked && taken < available && taken < limit &&
         takes(part.events[taken], taken, bytes, horizon, max_bytes)) {
    bytes += part.events[taken].budget_bytes();
    ++taken;
  }
  set_part_nexts(parts, page.next);
  if (taken < available) {
    const auto& first = part.events.front();
    page.next[first.partition.value()] =
        taken > 0 ? part.events[taken - 1].after() : first.position();
  }
  page.events = std::move(part.events);
  page.events.erase(page.events.begin() + static_cast<std::ptrdiff_t>(taken), page.events.end());
  page.buffers = std::move(part.buffers);
  page.at_end = part.at_end && taken == available;
  return page;
}

}  // namespace

read_all_page merge_read_all(std::vector<read_all_part> parts, std::vector<all_position> base,
                             std::size_t limit, std::size_t max_bytes) {
  if (parts.size() == 1) {
    const auto& events = parts.front().events;
    const bool one_partition = std::all_of(events.begin(), events.end(), [&](const all_event& e) {
      return e.partition == events.front().partition;
    });
    if (one_partition) {
      return take_single_run(std::move(parts), std::move(base), limit, max_bytes);
    }
  }
  read_all_page page;
  page.next = std::move(base);

  const page_horizon horizon = horizon_of(parts);

  // One run per partition, in the part's (position) order.
  struct run {
    std::vector<const all_event*> events;
    std::size_t taken = 0;
    std::size_t part = 0;
  };
  std::vector<run> runs;
  std::unordered_map<std::uint32_t, std::size_t> run_of;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    for (const auto& e : parts[i].events) {
      auto [it, added] = run_of.try_emplace(e.partition.value(), runs.size());
      if (added) runs.push_back(run{{}, 0, i});
      runs[it->second].events.push_back(&e);
    }
  }

  // K-way merge over the run heads: each partition stays in position order
  // even if its timestamps were not monotonic.
  auto later = [&](std::size_t a, std::size_t b) {
    return key_of(*runs[a].events[runs[a].taken]) > key_of(*runs[b].events[runs[b].taken]);
  };
  std::priority_queue<std::size_t, std::vector<std::size_t>, decltype(later)> heads(later);
  for (std::size_t r = 0; r < runs.size(); ++r) heads.push(r);
  std::size_t bytes = 0;
  std::size_t available = 0;
  for (const auto& r : runs) available += r.events.size();
  while (!heads.empty() && page.events.size() < limit && !horizon.blocked) {
    const std::size_t r = heads.top();
    const all_event& e = *runs[r].events[runs[r].taken];
    if (!takes(e, page.events.size(), bytes, horizon, max_bytes)) break;  // the next page's
    bytes += e.budget_bytes();
    page.events.push_back(e);
    heads.pop();
    if (++runs[r].taken < runs[r].events.size()) heads.push(r);
  }

  // Where each covered partition continues.
  set_part_nexts(parts, page.next);
  for (const auto& r : runs) {
    if (r.taken == r.events.size()) continue;  // the part's own next stands
    const auto p = r.events.front()->partition.value();
    page.next[p] = r.taken > 0 ? r.events[r.taken - 1]->after() : r.events.front()->position();
  }
  bool all_at_end = true;
  for (auto& part : parts) {
    all_at_end = all_at_end && part.at_end;
    for (auto& b : part.buffers) page.buffers.push_back(std::move(b));
  }
  page.at_end = all_at_end && page.events.size() == available;
  return page;
}

engine::result<read_all_part> read_partition_all(engine::partition& partition, all_position from,
                                                 std::size_t limit, std::size_t max_bytes) {
  const partition_id id = partition.id();
  read_all_part part;
  lsn at = position_record(from);
  std::uint32_t skip = position_index(from);
  if (at > partition.end()) {
    return error{errc::invalid_argument,
                 fmt::format("read-all position lsn {} is past the end of partition {} (lsn {})",
                             at.value(), id.value(), partition.end().value())};
  }
  std::size_t bytes = 0;
  std::size_t scanned = 0;
  bool first_read = true;
  bool stopped = false;  // inside a record: `at`/`skip` name the next event
  while (!stopped) {
    if (at >= partition.visible_end()) {
      part.at_end = true;
      break;
    }
    if (part.events.size() >= limit) break;
    if (part.events.empty() ? scanned >= k_read_all_scan_bytes : bytes >= max_bytes) break;
    auto records = partition.read_log(at, k_read_chunk_bytes);
    if (!records) {
      if (first_read && at == position_record(from) && at.value() != 0 &&
          records.err().code == errc::checksum_mismatch) {
        return error{errc::invalid_argument,
                     fmt::format("partition {}: lsn {} is not the start of a record: a read-all "
                                 "position must be a `next` read-all returned ({})",
                                 id.value(), at.value(), records.err().message)};
      }
      return records.err();
    }
    first_read = false;
    if (records->empty()) {
      part.at_end = true;
      break;
    }
    for (auto& record : *records) {
      // read_log skips ranges removed by retention: a record may start later.
      if (record.header.position != at) skip = 0;
      at = record.header.position;
      if (record.header.type == engine::log_format::record_type::append_batch) {
        std::size_t index = skip;
        auto decoded = engine::guard_decode(
            [&] {
              engine::record_reader reader(record.payload());
              auto batch = reader.append_batch();
              const auto stream = engine::to_view(batch.getStreamId());
              const auto timestamp = batch.getTimestampUs();
              const auto first = batch.getFirstVersion();
              auto events = batch.getEvents();
              for (; index < events.size(); ++index) {
                if (part.events.size() >= limit || (!part.events.empty() && bytes >= max_bytes)) {
                  stopped = true;
                  return;
                }
                const auto view = engine::to_event_view(events[static_cast<unsigned>(index)]);
                all_event e;
                e.stream = stream;
                e.partition = id;
                e.index = static_cast<std::uint32_t>(index);
                e.event.id = view.id;
                e.event.type = view.type;
                e.event.data = view.data;
                e.event.metadata = view.metadata;
                e.event.version = stream_version{first + index};
                e.event.timestamp = timestamp;
                e.event.position = at;
                bytes += e.budget_bytes();
                part.events.push_back(e);
              }
            },
            fmt::format("partition {} lsn {}", id.value(), at.value()));
        if (!decoded) return decoded.err();
        if (index > skip && (part.buffers.empty() || part.buffers.back() != record.owner)) {
          part.buffers.push_back(record.owner);
        }
        if (stopped) {
          skip = static_cast<std::uint32_t>(index);
          break;
        }
      }
      scanned += record.frame.size();
      at = record.end();
      skip = 0;
    }
  }
  part.next.emplace_back(id, make_all_position(at, skip));
  return part;
}

}  // namespace annal::actors
