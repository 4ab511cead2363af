#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/partition.hpp"

// Everything a client can observe about one stream, read through the public
// partition API, as a plain value: crash and model tests compare it with what
// they expect, or with the same dump taken after another reopen.
// Header-only so that any test can use it without a build change.
//
// Thread-safe as functions (no state); the partition is used by the caller's
// thread only.
namespace annal::testing {

struct dumped_event {
  std::uint64_t version = 0;
  event_id id{};
  std::string type;
  std::string data;
  std::string metadata;
  timestamp_us timestamp = 0;

  friend bool operator==(const dumped_event&, const dumped_event&) = default;
};

struct stream_dump {
  // read_stream forward from version 0, page by page: ok, or the error code
  // (stream_not_found, stream_deleted) of the first page.
  engine::errc read_code = engine::errc::ok;
  std::optional<std::uint64_t> last_version;  // read_page::last_version
  std::vector<dumped_event> events;           // every event, forward
  // The same stream read backward from the end, page by page, reversed:
  // must equal `events`.
  std::vector<dumped_event> backward_reversed;
  // get_stream_info
  engine::stream_metadata metadata;
  bool deleted = false;
  bool tombstoned = false;
  std::optional<std::uint64_t> info_last_version;
  std::uint64_t first_retained = 0;
  // get_snapshot: version and payload
  std::optional<std::pair<std::uint64_t, std::string>> snapshot;
  // Any other error met while dumping (a read failing with checksum_mismatch ...).
  std::string failure;

  friend bool operator==(const stream_dump&, const stream_dump&) = default;
};

inline std::string hex_of(const event_id& id) {
  std::string out;
  for (auto b : id) out += fmt::format("{:02x}", b);
  return out;
}

inline std::string describe(const dumped_event& e) {
  return fmt::format("v{} id={} type={} data={} meta={} ts={}", e.version, hex_of(e.id), e.type,
                     e.data.size() > 40 ? e.data.substr(0, 40) + "..." : e.data, e.metadata,
                     e.timestamp);
}

inline std::string describe(const stream_dump& d) {
  std::string out = fmt::format(
      "read={} last={} info{{max_count={} max_age={} truncate_before={} deleted={} "
      "tombstoned={} last={} first_retained={}}} snapshot={} failure='{}' events[{}]:",
      engine::errc_name(d.read_code),
      d.last_version ? std::to_string(*d.last_version) : std::string("none"),
      d.metadata.max_count, d.metadata.max_age_seconds, d.metadata.truncate_before, d.deleted,
      d.tombstoned, d.info_last_version ? std::to_string(*d.info_last_version) : "none",
      d.first_retained,
      d.snapshot ? fmt::format("v{}:{}", d.snapshot->first, d.snapshot->second) : "none",
      d.failure, d.events.size());
  for (const auto& e : d.events) out += "\n    " + describe(e);
  if (d.backward_reversed != d.events) {
    out += fmt::format("\n  backward read differs ({} events):", d.backward_reversed.size());
    for (const auto& e : d.backward_reversed) out += "\n    " + describe(e);
  }
  return out;
}

inline dumped_event to_dumped(const engine::recorded_event& e) {
  return dumped_event{e.version.value(),      e.id,           std::string(e.type),
                      std::string(e.data),    std::string(e.metadata), e.timestamp};
}

// Reads the whole stream forward and backward in pages of `page_size`, and
// its info and snapshot.
inline stream_dump dump_stream(engine::partition& p, std::string_view stream,
                               std::size_t page_size = 7) {
  stream_dump d;
  auto fail = [&](std::string_view what, const engine::error& e) {
    if (d.failure.empty()) {
      d.failure = fmt::format("{}: {}: {}", what, engine::errc_name(e.code), e.message);
    }
  };
  // Forward.
  std::optional<stream_version> from = stream_version{0};
  bool first = true;
  while (from) {
    auto page = p.read_stream(stream, *from, page_size, engine::read_direction::forward);
    if (!page) {
      if (first && (page.err().code == engine::errc::stream_not_found ||
                    page.err().code == engine::errc::stream_deleted)) {
        d.read_code = page.err().code;
      } else {
        fail("read forward", page.err());
      }
      break;
    }
    if (first && page->last_version) d.last_version = page->last_version->value();
    first = false;
    for (const auto& e : page->events) d.events.push_back(to_dumped(e));
    if (page->next && page->next->value() <= from->value()) {
      d.failure = "read forward: next does not advance";
      break;
    }
    from = page->next;
  }
  // Backward.
  if (d.read_code == engine::errc::ok) {
    std::optional<stream_version> at = stream_version{UINT64_MAX};
    std::vector<dumped_event> backward;
    while (at) {
      auto page = p.read_stream(stream, *at, page_size, engine::read_direction::backward);
      if (!page) {
        fail("read backward", page.err());
        break;
      }
      for (const auto& e : page->events) backward.push_back(to_dumped(e));
      if (page->next && page->next->value() >= at->value()) {
        d.failure = "read backward: next does not go back";
        break;
      }
      at = page->next;
    }
    d.backward_reversed.assign(backward.rbegin(), backward.rend());
  }
  // Info.
  if (auto info = p.get_stream_info(stream)) {
    d.metadata = info->metadata;
    d.deleted = info->deleted;
    d.tombstoned = info->tombstoned;
    if (info->last_version) d.info_last_version = info->last_version->value();
    d.first_retained = info->first_retained;
  } else {
    fail("get_stream_info", info.err());
  }
  // Snapshot.
  if (auto snap = p.get_snapshot(stream)) {
    if (*snap) d.snapshot.emplace((*snap)->version.value(), std::string((*snap)->payload));
  } else {
    fail("get_snapshot", snap.err());
  }
  return d;
}

}  // namespace annal::testing
