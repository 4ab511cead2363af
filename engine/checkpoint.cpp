#include "engine/checkpoint.hpp"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fmt/format.h>
#include <kj/exception.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "engine/crc32c.hpp"
#include "schema/checkpoint.capnp.h"

namespace annal::engine {
namespace {

constexpr std::string_view k_prefix = "checkpoint-";
constexpr std::string_view k_suffix = ".ckpt";

}  // namespace

bool parse_checkpoint_name(const std::string& name, std::uint64_t& sequence) {
  if (!name.starts_with(k_prefix) || !name.ends_with(k_suffix)) return false;
  const char* first = name.data() + k_prefix.size();
  const char* last = name.data() + name.size() - k_suffix.size();
  auto [ptr, ec] = std::from_chars(first, last, sequence);
  return ec == std::errc{} && ptr == last;
}

std::string checkpoint_name(std::uint64_t sequence) {
  return fmt::format("{}{:020}{}", k_prefix, sequence, k_suffix);
}

namespace {

void encode_stream(const stream_entry& e, std::uint32_t number, std::uint64_t locations_from,
                   schema::StreamEntry::Builder out) {
  out.setId(capnp::Text::Reader(e.id.data(), e.id.size()));
  out.setNumber(number);
  out.setNextVersion(e.next_version);
  out.setFirstLocated(e.first_located);
  out.setLocationsFrom(locations_from);
  const std::size_t skip = locations_from - e.first_located;
  auto locations = out.initLocations(static_cast<unsigned>(e.locations.size() - skip));
  for (unsigned j = 0; j < locations.size(); ++j) locations.set(j, e.locations[skip + j]);
  out.setMaxCount(e.metadata.max_count);
  out.setMaxAgeSeconds(e.metadata.max_age_seconds);
  out.setTruncateBefore(e.metadata.truncate_before);
  out.setDeleted(e.deleted);
  out.setTombstoned(e.tombstoned);
  if (e.snapshot) {
    out.setHasSnapshot(true);
    out.setSnapshotVersion(e.snapshot->version.value());
    out.setSnapshotLsn(e.snapshot->record.value());
  }
}

// A full checkpoint when `delta` is null.
std::vector<std::byte> encode(partition_id partition, std::uint64_t sequence, lsn log_end,
                              node_log_position node_position, timestamp_us last_timestamp,
                              std::span<const partition_log::segment_info> segments,
                              const stream_index& index, const event_id_window& recent_ids,
                              const checkpoint_delta* delta) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<schema::PartitionCheckpoint>();
  root.setPartition(partition.value());
  root.setSequence(sequence);
  root.setLogEnd(log_end.value());
  root.setNodeLogPosition(node_position.value());
  root.setLastTimestampUs(last_timestamp);
  auto bases = root.initSegments(static_cast<unsigned>(segments.size()));
  auto sizes = root.initSegmentBytes(static_cast<unsigned>(segments.size()));
  for (unsigned i = 0; i < segments.size(); ++i) {
    bases.set(i, segments[i].base.value());
    sizes.set(i, segments[i].bytes);
  }
  if (delta) {
    root.setExtends(delta->extends);
    root.setExtendsCrc(delta->extends_crc);
    auto streams = root.initStreams(static_cast<unsigned>(delta->streams.size()));
    for (unsigned i = 0; i < delta->streams.size(); ++i) {
      const auto& change = delta->streams[i];
      encode_stream(index.at(change.number), change.number, change.locations_from, streams[i]);
    }
  } else {
    auto streams = root.initStreams(static_cast<unsigned>(index.size()));
    for (std::uint32_t i = 0; i < index.size(); ++i) {
      encode_stream(index.at(i), i, index.at(i).first_located, streams[i]);
    }
  }
  // A delta: the ids recorded since the checkpoint it extends; a full one: all.
  const std::size_t id_count =
      delta ? std::min(delta->new_ids, recent_ids.size()) : recent_ids.size();
  auto ids = root.initRecentEventIds(static_cast<unsigned>(id_count));
  unsigned n = 0;
  recent_ids.for_each_newest(id_count, [&](const event_id& id, const event_id_window::entry& where) {
    auto out = ids[n++];
    out.setId(capnp::Data::Reader(id.data(), id.size()));
    out.setStream(where.stream);
    out.setVersion(where.version);
  });

  const auto words = capnp::messageToFlatArray(message);
  const auto payload = words.asBytes();
  std::vector<std::byte> file(k_checkpoint_header_size + payload.size());
  std::memcpy(file.data(), k_checkpoint_magic, 8);
  const std::uint64_t length = payload.size();
  std::memcpy(file.data() + 16, &length, 8);
  std::memcpy(file.data() + k_checkpoint_header_size, payload.begin(), payload.size());
  const std::uint32_t crc = crc32c(std::span<const std::byte>(file).subspan(12));
  std::memcpy(file.data() + 8, &crc, 4);
  return file;
}

}  // namespace

std::vector<std::byte> encode_checkpoint(partition_id partition, std::uint64_t sequence,
                                         lsn log_end, node_log_position node_position,
                                         timestamp_us last_timestamp,
                                         std::span<const partition_log::segment_info> segments,
                                         const stream_index& index,
                                         const event_id_window& recent_ids) {
  return encode(partition, sequence, log_end, node_position, last_timestamp, segments, index,
                recent_ids, nullptr);
}

std::vector<std::byte> encode_delta_checkpoint(
    partition_id partition, std::uint64_t sequence, lsn log_end, node_log_position node_position,
    timestamp_us last_timestamp, std::span<const partition_log::segment_info> segments,
    const stream_index& index, const event_id_window& recent_ids, const checkpoint_delta& delta) {
  return encode(partition, sequence, log_end, node_position, last_timestamp, segments, index,
                recent_ids, &delta);
}

std::uint32_t checkpoint_crc(std::span<const std::byte> bytes) {
  std::uint32_t crc;
  std::memcpy(&crc, bytes.data() + 8, 4);
  return crc;
}

result<checkpoint_state> decode_checkpoint(std::span<const std::byte> bytes,
                                           partition_id partition, const std::string& path) {
  auto damaged = [&](std::string_view what) {
    return error{errc::checksum_mismatch, fmt::format("checkpoint {}: {}", path, what)};
  };
  if (bytes.size() < k_checkpoint_header_size ||
      std::memcmp(bytes.data(), k_checkpoint_magic, 8) != 0) {
    return damaged("bad magic or too short");
  }
  std::uint32_t crc;
  std::uint32_t flags;
  std::uint64_t length;
  std::memcpy(&crc, bytes.data() + 8, 4);
  std::memcpy(&flags, bytes.data() + 12, 4);
  std::memcpy(&length, bytes.data() + 16, 8);
  if (flags != 0 || length != bytes.size() - k_checkpoint_header_size || length % 8 != 0) {
    return damaged("bad header");
  }
  if (crc32c(bytes.subspan(12)) != crc) return damaged("checksum mismatch");

  checkpoint_state state;
  try {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = length / 8 * 4 + 1024;
    const auto payload = bytes.subspan(k_checkpoint_header_size);
    capnp::FlatArrayMessageReader reader(
        kj::ArrayPtr<const capnp::word>(reinterpret_cast<const capnp::word*>(payload.data()),
                                        payload.size() / 8),
        options);
    auto root = reader.getRoot<schema::PartitionCheckpoint>();
    if (root.getPartition() != partition.value()) {
      return damaged(fmt::format("belongs to partition {}", root.getPartition()));
    }
    state.sequence = root.getSequence();
    state.extends = root.getExtends();
    state.extends_crc = root.getExtendsCrc();
    const bool delta = state.extends != 0;
    if (delta && state.extends + 1 != state.sequence) {
      return damaged(fmt::format("checkpoint {} names checkpoint {} as the one it extends",
                                 state.sequence, state.extends));
    }
    state.log_end = lsn{root.getLogEnd()};
    state.node_position = node_log_position{root.getNodeLogPosition()};
    state.last_timestamp = root.getLastTimestampUs();
    auto bases = root.getSegments();
    auto sizes = root.getSegmentBytes();
    if (bases.size() != sizes.size()) return damaged("segment lists differ in length");
    for (unsigned i = 0; i < bases.size(); ++i) {
      state.segments.push_back({lsn{bases[i]}, sizes[i]});
    }
    for (auto in : root.getStreams()) {
      const auto id = in.getId();
      auto& e = state.index.get_or_create(std::string_view(id.begin(), id.size()));
      e.next_version = in.getNextVersion();
      e.first_located = in.getFirstLocated();
      auto locations = in.getLocations();
      e.locations.reserve(locations.size());
      for (auto l : locations) e.locations.push_back(l);
      e.metadata.max_count = in.getMaxCount();
      e.metadata.max_age_seconds = in.getMaxAgeSeconds();
      e.metadata.truncate_before = in.getTruncateBefore();
      e.deleted = in.getDeleted();
      e.tombstoned = in.getTombstoned();
      if (in.getHasSnapshot()) {
        e.snapshot = snapshot_ref{stream_version{in.getSnapshotVersion()}, lsn{in.getSnapshotLsn()}};
      }
      // A full checkpoint lists every location from firstLocated; a delta
      // those from locationsFrom.
      const std::uint64_t from = delta ? in.getLocationsFrom() : e.first_located;
      if (from < e.first_located || from + e.locations.size() != e.next_version) {
        return damaged(fmt::format("stream '{}' has {} locations for versions [{}, {})", e.id,
                                   e.locations.size(), from, e.next_version));
      }
      if (delta) {
        state.stream_numbers.push_back(in.getNumber());
        state.locations_from.push_back(from);
      }
    }
    for (auto in : root.getRecentEventIds()) {
      event_id id{};
      const auto data = in.getId();
      // A delta's stream numbers are checked when it is applied.
      if (data.size() != id.size() || (!delta && in.getStream() >= state.index.size())) {
        return damaged("bad recent event id");
      }
      std::memcpy(id.data(), data.begin(), id.size());
      state.recent_ids.emplace_back(id, event_id_window::entry{in.getStream(), in.getVersion()});
    }
  } catch (const kj::Exception& e) {
    return damaged(fmt::format("undecodable: {}", e.getDescription().cStr()));
  }
  return state;
}

status store_checkpoint(file_system& fs, const std::string& dir, std::uint64_t sequence,
                        std::span<const std::byte> bytes, std::uint64_t keep_from) {
  const std::string final_path = dir + "/" + checkpoint_name(sequence);
  const std::string temp_path = final_path + ".tmp";
  if (auto ec = fs.write_file(temp_path, bytes)) return io_failure("write", temp_path, ec);
  if (auto ec = fs.rename_file(temp_path, final_path)) return io_failure("rename", temp_path, ec);

  std::vector<std::string> names;
  if (auto ec = fs.list_files(dir, names)) return io_failure("list", dir, ec);
  std::vector<std::uint64_t> sequences;
  for (const auto& name : names) {
    std::uint64_t s;
    if (parse_checkpoint_name(name, s)) sequences.push_back(s);
  }
  std::sort(sequences.begin(), sequences.end());
  for (std::uint64_t s : sequences) {
    if (s >= keep_from) break;
    const std::string path = dir + "/" + checkpoint_name(s);
    if (auto ec = fs.remove_file(path)) return io_failure("remove", path, ec);
  }
  return {};
}

status apply_delta_checkpoint(checkpoint_state& state, checkpoint_state delta,
                              const std::string& path) {
  auto damaged = [&](std::string_view what) {
    return error{errc::checksum_mismatch, fmt::format("checkpoint {}: {}", path, what)};
  };
  if (delta.extends != state.sequence) {
    return damaged(fmt::format("extends checkpoint {}, not {}", delta.extends, state.sequence));
  }
  for (std::uint32_t k = 0; k < delta.index.size(); ++k) {
    stream_entry& in = delta.index.at(k);
    const std::uint32_t number = delta.stream_numbers[k];
    const std::uint64_t from = delta.locations_from[k];
    stream_entry* e = state.index.find(in.id);
    if (!e) {
      if (number != state.index.size()) {
        return damaged(fmt::format("new stream '{}' is number {}, but the index has {}", in.id,
                                   number, state.index.size()));
      }
      e = &state.index.get_or_create(in.id);
    } else if (e->number != number) {
      return damaged(fmt::format("stream '{}' is number {}, not {}", in.id, e->number, number));
    }
    // Keep the known locations of versions [in.first_located, from).
    if (from > in.first_located) {
      const std::uint64_t known_end = e->first_located + e->locations.size();
      if (in.first_located < e->first_located || from > known_end) {
        return damaged(fmt::format("stream '{}' lists locations from version {}, but the "
                                   "checkpoint it extends has versions [{}, {})",
                                   in.id, from, e->first_located, known_end));
      }
      e->locations.resize(from - e->first_located);
      e->locations.erase(e->locations.begin(),
                         e->locations.begin() +
                             static_cast<std::ptrdiff_t>(in.first_located - e->first_located));
    } else {
      e->locations.clear();
    }
    e->locations.insert(e->locations.end(), in.locations.begin(), in.locations.end());
    e->first_located = in.first_located;
    e->next_version = in.next_version;
    e->metadata = in.metadata;
    e->deleted = in.deleted;
    e->tombstoned = in.tombstoned;
    e->snapshot = in.snapshot;
  }
  for (const auto& [id, where] : delta.recent_ids) {
    if (where.stream >= state.index.size()) return damaged("bad recent event id");
    state.recent_ids.emplace_back(id, where);
  }
  state.sequence = delta.sequence;
  state.log_end = delta.log_end;
  state.node_position = delta.node_position;
  state.last_timestamp = delta.last_timestamp;
  state.segments = std::move(delta.segments);
  return {};
}

result<checkpoint_state> load_checkpoint_chain(file_system& fs, const std::string& dir,
                                               partition_id partition, std::uint64_t sequence) {
  struct link {
    checkpoint_state state;
    std::string path;
    std::uint64_t bytes;
  };
  std::vector<link> links;  // newest first
  std::uint32_t newest_crc = 0;
  for (std::uint64_t at = sequence;;) {
    const std::string path = dir + "/" + checkpoint_name(at);
    if (!links.empty() && !fs.exists(path)) {
      return error{errc::checksum_mismatch,
                   fmt::format("checkpoint {}: it extends {}, which is missing",
                               links.back().path, path)};
    }
    std::vector<std::byte> bytes;
    if (auto ec = fs.read_file(path, bytes)) return io_failure("read", path, ec);
    auto state = decode_checkpoint(bytes, partition, path);
    if (!state) return state.err();
    const std::uint32_t crc = checkpoint_crc(bytes);
    if (links.empty()) {
      newest_crc = crc;
    } else if (links.back().state.extends_crc != crc) {
      return error{errc::checksum_mismatch,
                   fmt::format("checkpoint {}: it extends an earlier {} than the one on disk",
                               links.back().path, path)};
    }
    links.push_back({std::move(*state), path, bytes.size()});
    if (links.back().state.extends == 0) break;
    at = links.back().state.extends;
  }
  checkpoint_state state = std::move(links.back().state);
  state.chain.base = state.sequence;
  state.chain.base_bytes = links.back().bytes;
  for (std::size_t i = links.size() - 1; i-- > 0;) {
    if (auto s = apply_delta_checkpoint(state, std::move(links[i].state), links[i].path); !s) {
      return s.err();
    }
    ++state.chain.deltas;
    state.chain.delta_bytes += links[i].bytes;
  }
  state.chain.newest_crc = newest_crc;
  state.extends = 0;
  state.extends_crc = 0;
  return state;
}

result<std::optional<checkpoint_state>> load_newest_checkpoint(file_system& fs,
                                                               const std::string& dir,
                                                               partition_id partition) {
  std::vector<std::string> names;
  if (auto ec = fs.list_files(dir, names)) return io_failure("list", dir, ec);
  std::vector<std::uint64_t> sequences;
  for (const auto& name : names) {
    std::uint64_t s;
    if (parse_checkpoint_name(name, s)) sequences.push_back(s);
    if (name.ends_with(".ckpt.tmp")) {
      // An interrupted checkpoint write: never renamed, so never used.
      (void)fs.remove_file(dir + "/" + name);
    }
  }
  std::sort(sequences.rbegin(), sequences.rend());
  std::optional<error> newest_damage;
  for (std::uint64_t s : sequences) {
    auto state = load_checkpoint_chain(fs, dir, partition, s);
    if (state) return std::optional<checkpoint_state>(std::move(*state));
    if (state.err().code == errc::io_error) return state.err();
    spdlog::error("partition {}: skipping damaged checkpoint: {}", partition.value(),
                  state.err().message);
    if (!newest_damage) newest_damage = state.err();
  }
  if (newest_damage) {
    // Not "no checkpoint": the partition would open empty and remove the
    // segment files the damaged checkpoints list as unlisted leftovers.
    return error{errc::checksum_mismatch,
                 fmt::format("partition {}: every checkpoint is damaged; the newest: {}",
                             partition.value(), newest_damage->message)};
  }
  return std::optional<checkpoint_state>{};
}

}  // namespace annal::engine
