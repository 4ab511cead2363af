#include "net/framing.hpp"

#include <cstring>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include "schema/protocol.capnp.h"

namespace annal::net {
namespace {

std::vector<std::byte> ping_frame(std::uint64_t id) {
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<wire::Request>();
  request.setId(id);
  request.setPing();
  return make_frame(message);
}

std::uint32_t length_of(const std::vector<std::byte>& frame) {
  std::uint32_t length = 0;
  std::memcpy(&length, frame.data(), 4);
  return length;
}

TEST(framing, frame_is_length_prefix_plus_stream_framed_message) {
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<wire::Request>();
  request.setId(7);
  request.setPing();
  auto frame = make_frame(message);
  auto flat = capnp::messageToFlatArray(message);
  ASSERT_EQ(length_of(frame), flat.asBytes().size());
  ASSERT_EQ(frame.size(), 4 + flat.asBytes().size());
  EXPECT_EQ(std::memcmp(frame.data() + 4, flat.asBytes().begin(), flat.asBytes().size()), 0);
}

TEST(framing, multi_segment_message_round_trips) {
  capnp::MallocMessageBuilder message(16, capnp::AllocationStrategy::FIXED_SIZE);
  auto request = message.initRoot<wire::Request>();
  request.setId(9);
  request.initAppend().setStream(std::string(500, 'x'));
  ASSERT_GT(message.getSegmentsForOutput().size(), 1u);
  auto frame = make_frame(message);
  frame_view view;
  ASSERT_EQ(next_frame(frame, 1 << 20, view), frame_status::ok);
  aligned_scratch scratch;
  capnp::FlatArrayMessageReader reader(scratch.copy(view.payload), reader_options());
  auto decoded = reader.getRoot<wire::Request>();
  EXPECT_EQ(decoded.getId(), 9u);
  EXPECT_EQ(decoded.getAppend().getStream().size(), 500u);
}

TEST(framing, several_frames_in_one_buffer_are_split) {
  std::vector<std::byte> buffer;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    auto frame = ping_frame(id);
    buffer.insert(buffer.end(), frame.begin(), frame.end());
  }
  std::span<const std::byte> rest(buffer);
  aligned_scratch scratch;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    frame_view view;
    ASSERT_EQ(next_frame(rest, 1 << 20, view), frame_status::ok);
    capnp::FlatArrayMessageReader reader(scratch.copy(view.payload));
    EXPECT_EQ(reader.getRoot<wire::Request>().getId(), id);
    rest = rest.subspan(view.consumed);
  }
  EXPECT_TRUE(rest.empty());
}

TEST(framing, partial_frame_needs_more) {
  auto frame = ping_frame(1);
  frame_view view;
  for (std::size_t n = 0; n < frame.size(); ++n) {
    EXPECT_EQ(next_frame(std::span(frame).first(n), 1 << 20, view), frame_status::need_more) << n;
  }
  EXPECT_EQ(next_frame(frame, 1 << 20, view), frame_status::ok);
}

TEST(framing, oversized_length_is_rejected_from_the_prefix_alone) {
  const std::byte prefix[4] = {std::byte{0xf0}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff}};
  frame_view view;
  EXPECT_EQ(next_frame(prefix, 16u << 20, view), frame_status::too_large);
}

TEST(framing, length_not_a_multiple_of_a_word_is_malformed) {
  auto frame = ping_frame(1);
  frame[0] = static_cast<std::byte>(static_cast<std::uint8_t>(frame[0]) + 3);
  frame_view view;
  EXPECT_EQ(next_frame(frame, 1 << 20, view), frame_status::malformed);
  std::vector<std::byte> empty(4, std::byte{0});
  EXPECT_EQ(next_frame(empty, 1 << 20, view), frame_status::malformed);
}

TEST(framing, segment_table_that_disagrees_with_the_length_is_malformed) {
  auto frame = ping_frame(1);
  frame[8] = static_cast<std::byte>(static_cast<std::uint8_t>(frame[8]) + 1);  // first segment size
  frame_view view;
  EXPECT_EQ(next_frame(frame, 1 << 20, view), frame_status::malformed);
  auto many = ping_frame(1);
  many[4] = std::byte{0xff};  // 256+ segments: the table alone exceeds the frame
  many[5] = std::byte{0x01};
  EXPECT_EQ(next_frame(many, 1 << 20, view), frame_status::malformed);
}

TEST(framing, receive_buffer_compacts_and_grows) {
  receive_buffer buffer(16);
  auto space = buffer.prepare(8);
  ASSERT_GE(space.size(), 8u);
  std::memset(space.data(), 1, 8);
  buffer.commit(8);
  buffer.consume(6);
  EXPECT_EQ(buffer.size(), 2u);
  space = buffer.prepare(100);
  ASSERT_GE(space.size(), 100u);
  std::memset(space.data(), 2, 100);
  buffer.commit(100);
  ASSERT_EQ(buffer.size(), 102u);
  EXPECT_EQ(buffer.data()[0], std::byte{1});
  EXPECT_EQ(buffer.data()[1], std::byte{1});
  EXPECT_EQ(buffer.data()[2], std::byte{2});
  buffer.consume(102);
  EXPECT_EQ(buffer.size(), 0u);
}

TEST(framing, word_buffer_pool_copies_reuse_buffers_and_outlive_the_pool) {
  auto pool = std::make_shared<word_buffer_pool>(1);
  auto frame = ping_frame(11);
  frame_view view;
  ASSERT_EQ(next_frame(frame, 1 << 20, view), frame_status::ok);
  const capnp::word* first_buffer = nullptr;
  {
    auto copy = pool->copy(view.payload);
    ASSERT_EQ(copy->words().size() * sizeof(capnp::word), view.payload.size());
    EXPECT_EQ(std::memcmp(copy->words().begin(), view.payload.data(), view.payload.size()), 0);
    capnp::FlatArrayMessageReader reader(copy->words(), reader_options());
    EXPECT_EQ(reader.getRoot<wire::Request>().getId(), 11u);
    first_buffer = copy->words().begin();
  }
  // Released: the next copy reuses the buffer; a second one at the same
  // time gets its own.
  auto again = pool->copy(view.payload);
  EXPECT_EQ(again->words().begin(), first_buffer);
  auto other = pool->copy(view.payload);
  EXPECT_NE(other->words().begin(), first_buffer);
  // A copy outlives its pool (its buffer is then freed, not given back).
  pool.reset();
  capnp::FlatArrayMessageReader reader(other->words(), reader_options());
  EXPECT_EQ(reader.getRoot<wire::Request>().getId(), 11u);
}

}  // namespace
}  // namespace annal::net
