#include "net/wire_codec.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "engine/partitioning.hpp"

namespace annal::net::wire_codec {
namespace {

std::string_view view(capnp::Text::Reader text) { return {text.begin(), text.size()}; }
std::string_view view(capnp::Data::Reader data) {
  return {reinterpret_cast<const char*>(data.begin()), data.size()};
}
capnp::Data::Reader as_data(std::string_view bytes) {
  return {reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()};
}
capnp::Text::Reader as_text(std::string_view text) { return {text.data(), text.size()}; }

}  // namespace

void split_event_id(const event_id& id, std::uint64_t& id0, std::uint64_t& id1) {
  id0 = 0;
  id1 = 0;
  for (int i = 7; i >= 0; --i) {
    id0 = (id0 << 8) | id[static_cast<std::size_t>(i)];
    id1 = (id1 << 8) | id[static_cast<std::size_t>(i + 8)];
  }
}

event_id join_event_id(std::uint64_t id0, std::uint64_t id1) {
  event_id id{};
  for (std::size_t i = 0; i < 8; ++i) {
    id[i] = static_cast<std::uint8_t>(id0 >> (8 * i));
    id[i + 8] = static_cast<std::uint8_t>(id1 >> (8 * i));
  }
  return id;
}

engine::result<std::string> decode_stream(capnp::Text::Reader stream) {
  const auto text = view(stream);
  if (!engine::valid_stream_id(text)) {
    return engine::error{engine::errc::invalid_stream_id,
                         fmt::format("invalid stream id ({} bytes): must be 1..{} bytes of UTF-8 "
                                     "without control characters",
                                     text.size(), engine::k_max_stream_id_bytes)};
  }
  return std::string(text);
}

engine::result<engine::expected_version> decode_expected(wire::ExpectedVersion::Reader expected) {
  switch (expected.which()) {
    case wire::ExpectedVersion::ANY: return engine::expected_version::any();
    case wire::ExpectedVersion::NO_STREAM: return engine::expected_version::no_stream();
    case wire::ExpectedVersion::STREAM_EXISTS: return engine::expected_version::stream_exists();
    case wire::ExpectedVersion::EXACT: return engine::expected_version::exact(expected.getExact());
  }
  return engine::error{engine::errc::malformed_request, "unknown kind of expected version"};
}

engine::result<actors::append_request> decode_append(wire::AppendRequest::Reader request,
                                                     std::size_t max_batch_events) {
  auto events = request.getEvents();
  if (events.size() > max_batch_events) {
    return engine::error{engine::errc::batch_too_large,
                         fmt::format("{} events in one append; the limit is {}", events.size(),
                                     max_batch_events)};
  }
  auto stream = decode_stream(request.getStream());
  if (!stream) return stream.err();
  auto expected = decode_expected(request.getExpected());
  if (!expected) return expected.err();
  actors::append_request out;
  out.stream = std::move(stream).value();
  out.expected = *expected;
  out.events.resize(events.size());
  for (unsigned i = 0; i < events.size(); ++i) {
    auto in = events[i];
    auto& event = out.events[i];
    event.id = join_event_id(in.getId0(), in.getId1());
    event.type = view(in.getType());
    event.data = view(in.getData());
    event.metadata = view(in.getMetadata());
  }
  return out;
}

engine::result<actors::read_request> decode_read(wire::ReadRequest::Reader request) {
  auto stream = decode_stream(request.getStream());
  if (!stream) return stream.err();
  actors::read_request out;
  out.stream = std::move(stream).value();
  out.from = stream_version{request.getFrom()};
  out.from_end = request.getFromEnd();
  out.limit = request.getLimit();
  out.direction =
      request.getBackward() ? engine::read_direction::backward : engine::read_direction::forward;
  return out;
}

engine::stream_metadata decode_metadata(wire::StreamMetadata::Reader metadata) {
  return {metadata.getMaxCount(), metadata.getMaxAgeSeconds(), metadata.getTruncateBefore()};
}

void encode_expected(wire::ExpectedVersion::Builder out, const engine::expected_version& expected) {
  using kind = engine::expected_version::kind;
  switch (expected.what) {
    case kind::any: out.setAny(); break;
    case kind::no_stream: out.setNoStream(); break;
    case kind::stream_exists: out.setStreamExists(); break;
    case kind::exact: out.setExact(expected.version.value()); break;
  }
}

// The fields an EventInput and a RecordedEvent share: id, type, data, metadata.
template <class Builder, class Event>
void encode_event_fields(Builder event, const Event& in) {
  std::uint64_t id0 = 0, id1 = 0;
  split_event_id(in.id, id0, id1);
  event.setId0(id0);
  event.setId1(id1);
  event.setType(as_text(in.type));
  if (!in.data.empty()) event.setData(as_data(in.data));
  if (!in.metadata.empty()) event.setMetadata(as_data(in.metadata));
}

void encode_append(wire::AppendRequest::Builder out, const actors::append_request& request) {
  out.setStream(as_text(request.stream));
  encode_expected(out.initExpected(), request.expected);
  auto events = out.initEvents(static_cast<unsigned>(request.events.size()));
  for (unsigned i = 0; i < events.size(); ++i) {
    const auto& in = request.events[i];
    auto event = events[i];
    encode_event_fields(event, in);
  }
}

void encode_read(wire::ReadRequest::Builder out, const actors::read_request& request) {
  out.setStream(as_text(request.stream));
  out.setFrom(request.from.value());
  out.setFromEnd(request.from_end);
  out.setLimit(static_cast<std::uint32_t>(
      std::min<std::size_t>(request.limit, std::numeric_limits<std::uint32_t>::max())));
  out.setBackward(request.direction == engine::read_direction::backward);
}

void encode_metadata(wire::StreamMetadata::Builder out, const engine::stream_metadata& metadata) {
  out.setMaxCount(metadata.max_count);
  out.setMaxAgeSeconds(metadata.max_age_seconds);
  out.setTruncateBefore(metadata.truncate_before);
}

void encode_error(wire::Error::Builder out, const engine::error& error) {
  out.setCode(engine::errc_name(error.code));
  out.setMessage(as_text(error.message));
  if (error.current_version) {
    out.setHasCurrentVersion(true);
    out.setCurrentVersion(error.current_version->value());
  }
}

void encode_append_reply(wire::AppendReply::Builder out, const actors::append_reply& reply) {
  out.setFirstVersion(reply.first_version.value());
  out.setLastVersion(reply.last_version.value());
  out.setPosition(reply.position.value());
  out.setPartition(reply.partition.value());
  out.setDuplicate(reply.duplicate);
}

void encode_read_page(wire::ReadReply::Builder out, const engine::read_page& page,
                      std::size_t max_bytes) {
  // Fixed per-event cost: the struct (2 pointers... 8 words) and text/data padding.
  constexpr std::size_t k_event_overhead = 96;
  std::size_t count = 0;
  std::size_t bytes = 64;
  for (const auto& event : page.events) {
    const std::size_t size =
        k_event_overhead + event.type.size() + event.data.size() + event.metadata.size();
    if (count > 0 && bytes + size > max_bytes) break;
    bytes += size;
    ++count;
  }
  auto events = out.initEvents(static_cast<unsigned>(count));
  for (unsigned i = 0; i < count; ++i) {
    const auto& in = page.events[i];
    auto event = events[i];
    encode_event_fields(event, in);
    event.setVersion(in.version.value());
    event.setTimestampUs(in.timestamp);
    event.setPosition(in.position.value());
  }
  std::optional<stream_version> next = page.next;
  if (count < page.events.size()) next = page.events[count].version;
  if (next) {
    out.setHasNext(true);
    out.setNext(next->value());
  }
  if (page.last_version) {
    out.setHasLastVersion(true);
    out.setLastVersion(page.last_version->value());
  }
}

void encode_stream_info(wire::StreamInfo::Builder out, const engine::stream_info& info) {
  encode_metadata(out.initMetadata(), info.metadata);
  out.setExists(info.last_version.has_value());
  if (info.last_version) out.setLastVersion(info.last_version->value());
  out.setFirstRetained(info.first_retained);
  out.setDeleted(info.deleted);
  out.setTombstoned(info.tombstoned);
}

void encode_write_reply(wire::WriteReply::Builder out, const actors::write_reply& reply) {
  out.setPosition(reply.position.value());
  out.setPartition(reply.partition.value());
}

void encode_snapshot(wire::SnapshotReply::Builder out,
                     const std::optional<engine::snapshot_read>& snapshot) {
  out.setFound(snapshot.has_value());
  if (!snapshot) return;
  out.setVersion(snapshot->version.value());
  out.setTimestampUs(snapshot->timestamp);
  if (!snapshot->payload.empty()) out.setPayload(as_data(snapshot->payload));
}

engine::error decode_error(wire::Error::Reader in) {
  const auto code = view(in.getCode());
  engine::error error;
  if (auto known = engine::errc_from_name(code); known && *known != engine::errc::ok) {
    error = engine::error{*known, std::string(view(in.getMessage()))};
  } else {
    error = engine::error{engine::errc::invalid_argument,
                          fmt::format("{}: {}", code, view(in.getMessage()))};
  }
  if (in.getHasCurrentVersion()) error.current_version = stream_version{in.getCurrentVersion()};
  return error;
}

actors::append_reply decode_append_reply(wire::AppendReply::Reader reply) {
  return {stream_version{reply.getFirstVersion()}, stream_version{reply.getLastVersion()},
          lsn{reply.getPosition()}, partition_id{reply.getPartition()}, reply.getDuplicate()};
}

engine::read_page decode_read_page(wire::ReadReply::Reader reply,
                                   std::shared_ptr<const void> keep_alive) {
  engine::read_page page;
  auto events = reply.getEvents();
  page.events.resize(events.size());
  for (unsigned i = 0; i < events.size(); ++i) {
    auto in = events[i];
    auto& event = page.events[i];
    event.id = join_event_id(in.getId0(), in.getId1());
    event.type = view(in.getType());
    event.data = view(in.getData());
    event.metadata = view(in.getMetadata());
    event.version = stream_version{in.getVersion()};
    event.timestamp = in.getTimestampUs();
    event.position = lsn{in.getPosition()};
  }
  if (reply.getHasNext()) page.next = stream_version{reply.getNext()};
  if (reply.getHasLastVersion()) page.last_version = stream_version{reply.getLastVersion()};
  page.buffers.push_back(std::move(keep_alive));
  return page;
}

engine::stream_info decode_stream_info(wire::StreamInfo::Reader in) {
  engine::stream_info info;
  info.metadata = decode_metadata(in.getMetadata());
  if (in.getExists()) info.last_version = stream_version{in.getLastVersion()};
  info.first_retained = in.getFirstRetained();
  info.deleted = in.getDeleted();
  info.tombstoned = in.getTombstoned();
  return info;
}

actors::write_reply decode_write_reply(wire::WriteReply::Reader reply) {
  return {lsn{reply.getPosition()}, partition_id{reply.getPartition()}};
}

std::optional<engine::snapshot_read> decode_snapshot(wire::SnapshotReply::Reader reply,
                                                     std::shared_ptr<const void> keep_alive) {
  if (!reply.getFound()) return std::nullopt;
  engine::snapshot_read snapshot;
  snapshot.version = stream_version{reply.getVersion()};
  snapshot.timestamp = reply.getTimestampUs();
  snapshot.payload = view(reply.getPayload());
  snapshot.buffers.push_back(std::move(keep_alive));
  return snapshot;
}

// --- Read-all and stats ---

actors::read_all_request decode_read_all(wire::ReadAllRequest::Reader request) {
  actors::read_all_request out;
  auto from = request.getFrom();
  out.from.reserve(from.size());
  for (const auto position : from) out.from.emplace_back(position);
  out.limit = request.getLimit();
  auto partitions = request.getPartitions();
  out.partitions.reserve(partitions.size());
  for (const auto p : partitions) out.partitions.emplace_back(p);
  out.wait_ms = std::min(request.getWaitMs(), actors::k_read_all_max_wait_ms);
  out.watch = request.getWatch();
  out.watch_seq = request.getWatchSeq();
  out.from_end = request.getFromEnd();
  return out;
}

void encode_read_all(wire::ReadAllRequest::Builder out, const actors::read_all_request& request) {
  auto from = out.initFrom(static_cast<unsigned>(request.from.size()));
  for (unsigned i = 0; i < from.size(); ++i) from.set(i, request.from[i].value());
  out.setLimit(static_cast<std::uint32_t>(
      std::min<std::size_t>(request.limit, std::numeric_limits<std::uint32_t>::max())));
  auto partitions = out.initPartitions(static_cast<unsigned>(request.partitions.size()));
  for (unsigned i = 0; i < partitions.size(); ++i) {
    partitions.set(i, request.partitions[i].value());
  }
  out.setWaitMs(request.wait_ms);
  out.setWatch(request.watch);
  out.setWatchSeq(request.watch_seq);
  out.setFromEnd(request.from_end);
}

namespace {

void encode_all_events(capnp::List<wire::AllEvent>::Builder events,
                       const std::vector<actors::all_event>& from) {
  for (unsigned i = 0; i < events.size(); ++i) {
    const auto& in = from[i];
    auto event = events[i];
    event.setStream(as_text(in.stream));
    event.setPartition(in.partition.value());
    event.setIndex(in.index);
    auto recorded = event.initEvent();
    encode_event_fields(recorded, in.event);
    recorded.setVersion(in.event.version.value());
    recorded.setTimestampUs(in.event.timestamp);
    recorded.setPosition(in.event.position.value());
  }
}

// The views point into the message.
std::vector<actors::all_event> decode_all_events(capnp::List<wire::AllEvent>::Reader events) {
  std::vector<actors::all_event> out(events.size());
  for (unsigned i = 0; i < events.size(); ++i) {
    auto in = events[i];
    auto recorded = in.getEvent();
    auto& e = out[i];
    e.stream = view(in.getStream());
    e.partition = partition_id{in.getPartition()};
    e.index = in.getIndex();
    e.event.id = join_event_id(recorded.getId0(), recorded.getId1());
    e.event.type = view(recorded.getType());
    e.event.data = view(recorded.getData());
    e.event.metadata = view(recorded.getMetadata());
    e.event.version = stream_version{recorded.getVersion()};
    e.event.timestamp = recorded.getTimestampUs();
    e.event.position = lsn{recorded.getPosition()};
  }
  return out;
}

void encode_positions(capnp::List<std::uint64_t>::Builder out,
                      const std::vector<actors::all_position>& positions) {
  for (unsigned i = 0; i < out.size(); ++i) out.set(i, positions[i].value());
}

std::vector<actors::all_position> decode_positions(capnp::List<std::uint64_t>::Reader in) {
  std::vector<actors::all_position> out;
  out.reserve(in.size());
  for (const auto p : in) out.emplace_back(p);
  return out;
}

}  // namespace

engine::result<subscribe_params> decode_subscribe(wire::SubscribeRequest::Reader request) {
  subscribe_params out;
  auto target = request.getTarget();
  switch (target.which()) {
    case wire::SubscribeRequest::Target::ALL:
      break;
    case wire::SubscribeRequest::Target::STREAM: {
      auto stream = decode_stream(target.getStream());
      if (!stream) return stream.err();
      out.target = {actors::subscription_target::kind::stream, std::move(stream).value()};
      break;
    }
    case wire::SubscribeRequest::Target::CATEGORY: {
      auto category = view(target.getCategory());
      if (category.empty() || !engine::valid_stream_id(category)) {
        return engine::error{engine::errc::invalid_argument,
                             "a category is 1..256 bytes of UTF-8 without control characters"};
      }
      out.target = {actors::subscription_target::kind::category, std::string(category)};
      break;
    }
    default:
      return engine::error{engine::errc::malformed_request, "unknown subscription target"};
  }
  out.filter = std::string(view(request.getFilter()));
  auto from = request.getFrom();
  using start_kind = actors::subscription_start::kind;
  switch (from.which()) {
    case wire::SubscribeRequest::From::START:
      break;
    case wire::SubscribeRequest::From::END:
      out.from.what = start_kind::end;
      break;
    case wire::SubscribeRequest::From::POSITION:
      out.from.what = start_kind::position;
      out.from.positions = decode_positions(from.getPosition());
      break;
    case wire::SubscribeRequest::From::VERSION:
      if (out.target.what != actors::subscription_target::kind::stream) {
        return engine::error{engine::errc::invalid_argument,
                             "a start at a version needs a one-stream subscription"};
      }
      out.from.what = start_kind::version;
      out.from.version = stream_version{from.getVersion()};
      break;
    default:
      return engine::error{engine::errc::malformed_request, "unknown subscription start"};
  }
  out.credits = request.getCredits();
  return out;
}

void encode_subscribe(wire::SubscribeRequest::Builder out, const subscribe_params& params) {
  auto target = out.initTarget();
  switch (params.target.what) {
    case actors::subscription_target::kind::all:
      target.setAll();
      break;
    case actors::subscription_target::kind::stream:
      target.setStream(params.target.name);
      break;
    case actors::subscription_target::kind::category:
      target.setCategory(params.target.name);
      break;
  }
  out.setFilter(params.filter);
  auto from = out.initFrom();
  switch (params.from.what) {
    case actors::subscription_start::kind::start:
      from.setStart();
      break;
    case actors::subscription_start::kind::end:
      from.setEnd();
      break;
    case actors::subscription_start::kind::position:
      encode_positions(
          from.initPosition(static_cast<unsigned>(params.from.positions.size())),
          params.from.positions);
      break;
    case actors::subscription_start::kind::version:
      from.setVersion(params.from.version.value());
      break;
  }
  out.setCredits(params.credits);
}

void encode_subscribed(wire::SubscribedReply::Builder out,
                       const std::vector<actors::all_position>& start) {
  out.setPartitionCount(static_cast<std::uint32_t>(start.size()));
  encode_positions(out.initPosition(static_cast<unsigned>(start.size())), start);
}

std::vector<actors::all_position> decode_subscribed(wire::SubscribedReply::Reader reply) {
  return decode_positions(reply.getPosition());
}

void encode_subscription_events(wire::SubscriptionEvents::Builder out,
                                const actors::subscription_batch& batch) {
  encode_all_events(out.initEvents(static_cast<unsigned>(batch.events.size())), batch.events);
  encode_positions(out.initNext(static_cast<unsigned>(batch.next.size())), batch.next);
}

actors::subscription_batch decode_subscription_events(wire::SubscriptionEvents::Reader events,
                                                      std::shared_ptr<const void> keep_alive) {
  actors::subscription_batch batch;
  batch.events = decode_all_events(events.getEvents());
  batch.next = decode_positions(events.getNext());
  batch.buffers.push_back(std::move(keep_alive));
  return batch;
}

void encode_read_all_page(wire::ReadAllReply::Builder out, const actors::read_all_page& page) {
  encode_all_events(out.initEvents(static_cast<unsigned>(page.events.size())), page.events);
  auto next = out.initNext(static_cast<unsigned>(page.next.size()));
  for (unsigned i = 0; i < next.size(); ++i) next.set(i, page.next[i].value());
  out.setAtEnd(page.at_end);
}

actors::read_all_page decode_read_all_page(wire::ReadAllReply::Reader reply,
                                           std::shared_ptr<const void> keep_alive) {
  actors::read_all_page page;
  page.events = decode_all_events(reply.getEvents());
  auto next = reply.getNext();
  page.next.reserve(next.size());
  for (const auto position : next) page.next.emplace_back(position);
  page.at_end = reply.getAtEnd();
  page.buffers.push_back(std::move(keep_alive));
  return page;
}

void encode_stats(wire::StatsReply::Builder out,
                  const std::vector<actors::partition_stats>& stats) {
  auto partitions = out.initPartitions(static_cast<unsigned>(stats.size()));
  for (unsigned i = 0; i < partitions.size(); ++i) {
    const auto& in = stats[i];
    auto p = partitions[i];
    p.setPartition(in.partition.value());
    p.setNode(as_text(in.node));
    p.setStreams(in.streams);
    p.setEvents(in.events);
    p.setEndLsn(in.end_lsn.value());
  }
}

std::vector<actors::partition_stats> decode_stats(wire::StatsReply::Reader reply) {
  std::vector<actors::partition_stats> stats;
  auto partitions = reply.getPartitions();
  stats.reserve(partitions.size());
  for (const auto p : partitions) {
    stats.push_back(actors::partition_stats{partition_id{p.getPartition()},
                                            std::string(view(p.getNode())), p.getStreams(),
                                            p.getEvents(), lsn{p.getEndLsn()}});
  }
  return stats;
}

void encode_shipped_batch(wire::ShipLogReply::Builder out, const engine::shipped_batch& batch) {
  out.setFrom(batch.from.value());
  out.setNext(batch.next.value());
  out.setBytes(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(batch.bytes.data()),
                                   batch.bytes.size()));
  out.setCrc(batch.crc);
  out.setSourceEnd(batch.source_end.value());
}

engine::shipped_batch decode_shipped_batch(wire::ShipLogReply::Reader reply) {
  engine::shipped_batch batch;
  batch.from = lsn{reply.getFrom()};
  batch.next = lsn{reply.getNext()};
  const auto bytes = reply.getBytes();
  const auto* first = reinterpret_cast<const std::byte*>(bytes.begin());
  batch.bytes.assign(first, first + bytes.size());
  batch.crc = reply.getCrc();
  batch.source_end = lsn{reply.getSourceEnd()};
  return batch;
}

}  // namespace annal::net::wire_codec
