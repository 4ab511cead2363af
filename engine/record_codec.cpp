#include "engine/record_codec.hpp"

#include <fmt/format.h>
#include <kj/exception.h>

#include <cstring>

namespace annal::engine {
namespace {

// Generous per-item overheads of the Cap'n Proto encoding (struct and list
// pointers, padding), so one first segment fits the whole message.
constexpr std::size_t k_message_overhead = 128;
constexpr std::size_t k_event_overhead = 96;

capnp::ReaderOptions reader_options() {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = log_format::k_max_payload_bytes / sizeof(capnp::word) * 2;
  options.nestingLimit = 16;
  return options;
}

kj::ArrayPtr<const capnp::word> as_words(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const capnp::word*>(bytes.data()), bytes.size() / sizeof(capnp::word)};
}

capnp::Data::Reader as_data(std::string_view s) {
  return {reinterpret_cast<const kj::byte*>(s.data()), s.size()};
}

capnp::Text::Reader as_text(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

capnp::MallocMessageBuilder& record_encoder::start(std::size_t estimate_bytes) {
  const std::size_t words = estimate_bytes / sizeof(capnp::word) + 1;
  if (scratch_.size() < words) {
    builder_.reset();
    scratch_.assign(words, capnp::word{});
  }
  // MallocMessageBuilder zeroes the first segment again on destruction, which
  // keeps scratch_ reusable.
  builder_.reset();
  builder_.emplace(kj::arrayPtr(scratch_.data(), scratch_.size()));
  return *builder_;
}

std::span<const std::byte> record_encoder::finish(log_format::record_type type,
                                                  partition_id partition, lsn position) {
  auto segments = builder_->getSegmentsForOutput();
  // Standard Cap'n Proto stream framing: segment count - 1, segment sizes,
  // padding to a word, then the segments.
  const std::size_t table_words = (segments.size() + 2) / 2;
  std::size_t payload_bytes = table_words * sizeof(capnp::word);
  for (auto& segment : segments) payload_bytes += segment.size() * sizeof(capnp::word);

  frame_.resize(log_format::k_header_size + payload_bytes);
  std::byte* out = frame_.data() + log_format::k_header_size;
  std::memset(out, 0, table_words * sizeof(capnp::word));
  const auto count_minus_one = static_cast<std::uint32_t>(segments.size() - 1);
  std::memcpy(out, &count_minus_one, 4);
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const auto size = static_cast<std::uint32_t>(segments[i].size());
    std::memcpy(out + 4 + 4 * i, &size, 4);
  }
  out += table_words * sizeof(capnp::word);
  for (auto& segment : segments) {
    std::memcpy(out, segment.begin(), segment.size() * sizeof(capnp::word));
    out += segment.size() * sizeof(capnp::word);
  }
  builder_.reset();
  log_format::seal_frame(frame_, type, partition, position);
  return frame_;
}

std::span<const std::byte> record_encoder::append_batch(partition_id partition, lsn position,
                                                        std::string_view stream,
                                                        stream_version first,
                                                        timestamp_us timestamp,
                                                        std::span<const event_input> events) {
  std::size_t estimate = k_message_overhead + stream.size();
  for (const auto& e : events) {
    estimate += k_event_overhead + e.type.size() + e.data.size() + e.metadata.size();
  }
  auto batch = start(estimate).initRoot<schema::AppendBatch>();
  batch.setStreamId(as_text(stream));
  batch.setFirstVersion(first.value());
  batch.setTimestampUs(timestamp);
  auto list = batch.initEvents(static_cast<unsigned>(events.size()));
  for (unsigned i = 0; i < events.size(); ++i) {
    const auto& in = events[i];
    auto out = list[i];
    std::uint64_t id0, id1;
    std::memcpy(&id0, in.id.data(), 8);
    std::memcpy(&id1, in.id.data() + 8, 8);
    out.setId0(id0);
    out.setId1(id1);
    out.setType(as_text(in.type));
    if (!in.data.empty()) out.setData(as_data(in.data));
    if (!in.metadata.empty()) out.setMetadata(as_data(in.metadata));
  }
  return finish(log_format::record_type::append_batch, partition, position);
}

std::span<const std::byte> record_encoder::stream_metadata(
    partition_id partition, lsn position, std::string_view stream, timestamp_us timestamp,
    const engine::stream_metadata& metadata, bool deleted, bool tombstoned) {
  auto record = start(k_message_overhead + stream.size()).initRoot<schema::StreamMetadata>();
  record.setStreamId(as_text(stream));
  record.setTimestampUs(timestamp);
  record.setMaxCount(metadata.max_count);
  record.setMaxAgeSeconds(metadata.max_age_seconds);
  record.setTruncateBefore(metadata.truncate_before);
  record.setDeleted(deleted);
  record.setTombstoned(tombstoned);
  return finish(log_format::record_type::stream_metadata, partition, position);
}

std::span<const std::byte> record_encoder::snapshot(partition_id partition, lsn position,
                                                    std::string_view stream,
                                                    stream_version version,
                                                    timestamp_us timestamp,
                                                    std::string_view payload) {
  auto record = start(k_message_overhead + stream.size() + payload.size())
                    .initRoot<schema::Snapshot>();
  record.setStreamId(as_text(stream));
  record.setVersion(version.value());
  record.setTimestampUs(timestamp);
  record.setPayload(as_data(payload));
  return finish(log_format::record_type::snapshot, partition, position);
}

record_reader::record_reader(std::span<const std::byte> payload)
    : reader_(as_words(payload), reader_options()) {}

status guard_decode(const std::function<void()>& decode, std::string_view where) {
  try {
    decode();
    return {};
  } catch (const error& e) {
    return e;
  } catch (const kj::Exception& e) {
    return error{errc::corruption,
                 fmt::format("{}: undecodable record payload: {}", where,
                             e.getDescription().cStr())};
  }
}

event_id id_of(schema::Event::Reader event) {
  event_id id;
  const std::uint64_t id0 = event.getId0(), id1 = event.getId1();
  std::memcpy(id.data(), &id0, 8);
  std::memcpy(id.data() + 8, &id1, 8);
  return id;
}

event_view to_event_view(schema::Event::Reader event) {
  event_view view;
  view.id = id_of(event);
  view.type = to_view(event.getType());
  view.data = to_view(event.getData());
  view.metadata = to_view(event.getMetadata());
  return view;
}

std::string_view to_view(capnp::Text::Reader text) { return {text.begin(), text.size()}; }

std::string_view to_view(capnp::Data::Reader data) {
  return {reinterpret_cast<const char*>(data.begin()), data.size()};
}

}  // namespace annal::engine
