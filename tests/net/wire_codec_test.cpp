#include "net/wire_codec.hpp"

#include <capnp/message.h>
#include <gtest/gtest.h>

#include "tests/support/event_factory.hpp"

namespace annal::net {
namespace {

using engine::errc;

TEST(wire_codec, event_id_bytes_are_little_endian_halves) {
  event_id id{};
  for (std::size_t i = 0; i < 16; ++i) id[i] = static_cast<std::uint8_t>(i + 1);
  std::uint64_t id0 = 0, id1 = 0;
  wire_codec::split_event_id(id, id0, id1);
  EXPECT_EQ(id0, 0x0807060504030201u);
  EXPECT_EQ(id1, 0x100f0e0d0c0b0a09u);
  EXPECT_EQ(wire_codec::join_event_id(id0, id1), id);
}

TEST(wire_codec, append_request_round_trips) {
  actors::append_request request;
  request.stream = "orders-1";
  request.expected = engine::expected_version::exact(41);
  request.events.push_back(testing::make_event(1, "created", R"({"a":1})", "meta"));
  request.events.push_back(testing::make_event(2, "paid", std::string("\0\x01", 2)));
  capnp::MallocMessageBuilder message;
  wire_codec::encode_append(message.initRoot<wire::AppendRequest>(), request);
  auto decoded = wire_codec::decode_append(message.getRoot<wire::AppendRequest>().asReader(), 10);
  ASSERT_TRUE(decoded) << decoded.err().message;
  EXPECT_EQ(decoded->stream, "orders-1");
  EXPECT_EQ(decoded->expected.what, engine::expected_version::kind::exact);
  EXPECT_EQ(decoded->expected.version, stream_version{41});
  ASSERT_EQ(decoded->events.size(), 2u);
  EXPECT_EQ(decoded->events[0].id, request.events[0].id);
  EXPECT_EQ(decoded->events[0].type, "created");
  EXPECT_EQ(decoded->events[0].data, R"({"a":1})");
  EXPECT_EQ(decoded->events[0].metadata, "meta");
  EXPECT_EQ(decoded->events[1].data, std::string("\0\x01", 2));
}

TEST(wire_codec, batch_over_the_limit_is_rejected) {
  actors::append_request request;
  request.stream = "s";
  for (int i = 0; i < 4; ++i) request.events.push_back(testing::make_event(i + 1));
  capnp::MallocMessageBuilder message;
  wire_codec::encode_append(message.initRoot<wire::AppendRequest>(), request);
  auto decoded = wire_codec::decode_append(message.getRoot<wire::AppendRequest>().asReader(), 3);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.err().code, errc::batch_too_large);
}

TEST(wire_codec, invalid_stream_ids_are_rejected) {
  for (std::string bad : {std::string(), std::string("\xff\xfe"), std::string(257, 'a'),
                          std::string("a\nb")}) {
    capnp::MallocMessageBuilder message;
    auto ref = message.initRoot<wire::StreamRef>();
    ref.setStream(capnp::Text::Reader(bad.data(), bad.size()));
    auto decoded = wire_codec::decode_stream(ref.asReader().getStream());
    ASSERT_FALSE(decoded);
    EXPECT_EQ(decoded.err().code, errc::invalid_stream_id);
  }
}

TEST(wire_codec, read_request_round_trips) {
  actors::read_request request{"s-1", stream_version{5}, true, 20,
                               engine::read_direction::backward};
  capnp::MallocMessageBuilder message;
  wire_codec::encode_read(message.initRoot<wire::ReadRequest>(), request);
  auto decoded = wire_codec::decode_read(message.getRoot<wire::ReadRequest>().asReader());
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->stream, "s-1");
  EXPECT_EQ(decoded->from, stream_version{5});
  EXPECT_TRUE(decoded->from_end);
  EXPECT_EQ(decoded->limit, 20u);
  EXPECT_EQ(decoded->direction, engine::read_direction::backward);
}

TEST(wire_codec, error_keeps_code_and_current_version) {
  engine::error error{errc::wrong_expected_version, "stream s is at 3"};
  error.current_version = stream_version{3};
  capnp::MallocMessageBuilder message;
  wire_codec::encode_error(message.initRoot<wire::Error>(), error);
  auto decoded = wire_codec::decode_error(message.getRoot<wire::Error>().asReader());
  EXPECT_EQ(decoded.code, errc::wrong_expected_version);
  EXPECT_EQ(decoded.message, "stream s is at 3");
  ASSERT_TRUE(decoded.current_version);
  EXPECT_EQ(*decoded.current_version, stream_version{3});
}

TEST(wire_codec, unknown_error_code_keeps_its_name_in_the_message) {
  capnp::MallocMessageBuilder message;
  auto error = message.initRoot<wire::Error>();
  error.setCode("quota_exceeded");
  error.setMessage("too much");
  auto decoded = wire_codec::decode_error(error.asReader());
  EXPECT_EQ(decoded.code, errc::invalid_argument);
  EXPECT_EQ(decoded.message, "quota_exceeded: too much");
  EXPECT_FALSE(decoded.current_version);
}

engine::read_page page_of(std::size_t count, std::size_t data_bytes, std::string& storage) {
  storage.assign(data_bytes, 'd');
  engine::read_page page;
  for (std::size_t i = 0; i < count; ++i) {
    engine::recorded_event event;
    event.id = testing::make_event_id(i + 1);
    event.type = "t";
    event.data = storage;
    event.version = stream_version{i};
    event.timestamp = 1000 + static_cast<timestamp_us>(i);
    event.position = lsn{i * 100};
    page.events.push_back(event);
  }
  page.last_version = stream_version{count - 1};
  return page;
}

TEST(wire_codec, read_page_round_trips) {
  std::string storage;
  auto page = page_of(3, 10, storage);
  page.next = stream_version{3};
  capnp::MallocMessageBuilder message;
  wire_codec::encode_read_page(message.initRoot<wire::ReadReply>(), page, 1 << 20);
  auto decoded = wire_codec::decode_read_page(message.getRoot<wire::ReadReply>().asReader(), {});
  ASSERT_EQ(decoded.events.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(decoded.events[i].id, page.events[i].id);
    EXPECT_EQ(decoded.events[i].type, "t");
    EXPECT_EQ(decoded.events[i].data, storage);
    EXPECT_EQ(decoded.events[i].version, stream_version{i});
    EXPECT_EQ(decoded.events[i].timestamp, 1000 + static_cast<timestamp_us>(i));
    EXPECT_EQ(decoded.events[i].position, lsn{i * 100});
  }
  EXPECT_EQ(decoded.next, stream_version{3});
  EXPECT_EQ(decoded.last_version, stream_version{2});
  EXPECT_EQ(decoded.buffers.size(), 1u);
}

TEST(wire_codec, read_page_over_the_frame_budget_is_cut_with_next) {
  std::string storage;
  auto page = page_of(10, 1000, storage);
  capnp::MallocMessageBuilder message;
  wire_codec::encode_read_page(message.initRoot<wire::ReadReply>(), page, 3500);
  auto decoded = wire_codec::decode_read_page(message.getRoot<wire::ReadReply>().asReader(), {});
  ASSERT_EQ(decoded.events.size(), 3u);
  ASSERT_TRUE(decoded.next);
  EXPECT_EQ(*decoded.next, stream_version{3});
}

TEST(wire_codec, stream_info_and_snapshot_round_trip) {
  engine::stream_info info;
  info.metadata = {5, 60, 2};
  info.last_version = stream_version{9};
  info.first_retained = 2;
  info.deleted = true;
  capnp::MallocMessageBuilder message;
  wire_codec::encode_stream_info(message.initRoot<wire::StreamInfo>(), info);
  auto decoded = wire_codec::decode_stream_info(message.getRoot<wire::StreamInfo>().asReader());
  EXPECT_EQ(decoded.metadata, info.metadata);
  EXPECT_EQ(decoded.last_version, stream_version{9});
  EXPECT_EQ(decoded.first_retained, 2u);
  EXPECT_TRUE(decoded.deleted);
  EXPECT_FALSE(decoded.tombstoned);

  engine::snapshot_read snapshot;
  snapshot.version = stream_version{4};
  snapshot.timestamp = 77;
  snapshot.payload = "state";
  capnp::MallocMessageBuilder snapshot_message;
  wire_codec::encode_snapshot(snapshot_message.initRoot<wire::SnapshotReply>(), snapshot);
  auto got = wire_codec::decode_snapshot(
      snapshot_message.getRoot<wire::SnapshotReply>().asReader(), {});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->version, stream_version{4});
  EXPECT_EQ(got->timestamp, 77);
  EXPECT_EQ(got->payload, "state");
  capnp::MallocMessageBuilder none;
  wire_codec::encode_snapshot(none.initRoot<wire::SnapshotReply>(), std::nullopt);
  EXPECT_FALSE(wire_codec::decode_snapshot(none.getRoot<wire::SnapshotReply>().asReader(), {}));
}

}  // namespace
}  // namespace annal::net
