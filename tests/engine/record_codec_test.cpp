#include "engine/record_codec.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/log_format.hpp"
#include "tests/support/event_factory.hpp"

namespace {

using annal::lsn;
using annal::partition_id;
using annal::stream_version;
using annal::engine::errc;
using annal::engine::event_input;
using annal::engine::guard_decode;
using annal::engine::record_encoder;
using annal::engine::record_reader;
using annal::engine::to_event_view;
using annal::engine::to_view;
using annal::testing::make_event;
using annal::testing::make_event_id;
namespace lf = annal::engine::log_format;

constexpr partition_id k_partition{3};
constexpr annal::timestamp_us k_timestamp = 1'700'000'000'123'456;

// Bytes 0..255 and back, including NUL and 0xff: nothing text-like about it.
std::string binary_blob(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(static_cast<std::uint8_t>(i * 7));
  return s;
}

// Parses a frame produced by the encoder and checks the framing around it.
lf::parsed_frame parse_checked(std::span<const std::byte> frame, lf::record_type type,
                               lsn position) {
  EXPECT_EQ(frame.size() % lf::k_alignment, 0u) << "frames keep 8-byte alignment";
  auto parsed = lf::parse_frame(frame);
  EXPECT_EQ(parsed.status, lf::frame_status::ok);
  EXPECT_EQ(parsed.header.frame_size(), frame.size());
  EXPECT_EQ(parsed.header.type, type);
  EXPECT_EQ(parsed.header.partition, k_partition);
  EXPECT_EQ(parsed.header.position, position);
  return parsed;
}

// A copy that owns its bytes as capnp words (so the payload is 8-byte aligned).
struct owned_frame {
  explicit owned_frame(std::span<const std::byte> frame) : words((frame.size() + 7) / 8) {
    std::memcpy(words.data(), frame.data(), frame.size());
    bytes = std::span<const std::byte>(reinterpret_cast<const std::byte*>(words.data()), frame.size());
  }
  std::vector<std::uint64_t> words;
  std::span<const std::byte> bytes;
};

TEST(record_codec_test, append_batch_round_trips_ids_types_data_and_metadata) {
  std::vector<event_input> events;
  events.push_back(make_event(1, "order-placed", R"({"total":42})", R"({"user":"ann"})"));
  events.push_back(make_event(2, "order-paid", "", ""));  // empty data and metadata
  events.push_back(make_event(3, "blob", binary_blob(300), binary_blob(17)));
  events[2].id = make_event_id(0xffffffffffffffffull, 0x0123456789abcdefull);

  record_encoder encoder;
  const owned_frame frame(encoder.append_batch(k_partition, lsn{8192}, "orders-42",
                                               stream_version{5}, k_timestamp, events));
  const auto parsed = parse_checked(frame.bytes, lf::record_type::append_batch, lsn{8192});

  const auto status = guard_decode(
      [&] {
        record_reader reader(parsed.payload);
        auto batch = reader.append_batch();
        EXPECT_EQ(to_view(batch.getStreamId()), "orders-42");
        EXPECT_EQ(batch.getFirstVersion(), 5u);
        EXPECT_EQ(batch.getTimestampUs(), k_timestamp);
        auto list = batch.getEvents();
        ASSERT_EQ(list.size(), events.size());
        for (unsigned i = 0; i < list.size(); ++i) {
          const auto view = to_event_view(list[i]);
          EXPECT_EQ(view.id, events[i].id) << i;
          EXPECT_EQ(view.type, events[i].type) << i;
          EXPECT_EQ(view.data, events[i].data) << i;
          EXPECT_EQ(view.metadata, events[i].metadata) << i;
        }
      },
      "test");
  EXPECT_TRUE(status.ok()) << status.err().message;
}

TEST(record_codec_test, metadata_record_round_trips_every_field) {
  record_encoder encoder;
  const annal::engine::stream_metadata metadata{.max_count = 10,
                                                .max_age_seconds = 3600,
                                                .truncate_before = 7};
  const owned_frame frame(encoder.stream_metadata(k_partition, lsn{64}, "users-1", k_timestamp,
                                                  metadata, true, false));
  const auto parsed = parse_checked(frame.bytes, lf::record_type::stream_metadata, lsn{64});
  const auto status = guard_decode(
      [&] {
        record_reader reader(parsed.payload);
        auto m = reader.stream_metadata();
        EXPECT_EQ(to_view(m.getStreamId()), "users-1");
        EXPECT_EQ(m.getTimestampUs(), k_timestamp);
        EXPECT_EQ(m.getMaxCount(), 10u);
        EXPECT_EQ(m.getMaxAgeSeconds(), 3600u);
        EXPECT_EQ(m.getTruncateBefore(), 7u);
        EXPECT_TRUE(m.getDeleted());
        EXPECT_FALSE(m.getTombstoned());
      },
      "test");
  EXPECT_TRUE(status.ok()) << status.err().message;

  const owned_frame tombstone(encoder.stream_metadata(k_partition, lsn{128}, "users-1",
                                                      k_timestamp, {}, false, true));
  const auto parsed_tombstone =
      parse_checked(tombstone.bytes, lf::record_type::stream_metadata, lsn{128});
  const auto status2 = guard_decode(
      [&] {
        record_reader reader(parsed_tombstone.payload);
        auto m = reader.stream_metadata();
        EXPECT_EQ(m.getMaxCount(), 0u);
        EXPECT_EQ(m.getMaxAgeSeconds(), 0u);
        EXPECT_EQ(m.getTruncateBefore(), 0u);
        EXPECT_FALSE(m.getDeleted());
        EXPECT_TRUE(m.getTombstoned());
      },
      "test");
  EXPECT_TRUE(status2.ok()) << status2.err().message;
}

TEST(record_codec_test, snapshot_record_round_trips_binary_and_empty_payloads) {
  record_encoder encoder;
  for (const std::string& payload : {binary_blob(1000), std::string()}) {
    const owned_frame frame(encoder.snapshot(k_partition, lsn{256}, "cart-9", stream_version{41},
                                             k_timestamp, payload));
    const auto parsed = parse_checked(frame.bytes, lf::record_type::snapshot, lsn{256});
    const auto status = guard_decode(
        [&] {
          record_reader reader(parsed.payload);
          auto s = reader.snapshot();
          EXPECT_EQ(to_view(s.getStreamId()), "cart-9");
          EXPECT_EQ(s.getVersion(), 41u);
          EXPECT_EQ(s.getTimestampUs(), k_timestamp);
          EXPECT_EQ(to_view(s.getPayload()), payload);
        },
        "test");
    EXPECT_TRUE(status.ok()) << status.err().message;
  }
}

TEST(record_codec_test, reused_encoder_leaves_nothing_of_a_larger_previous_record) {
  // The encoder reuses one zeroed scratch segment; a smaller record after a
  // larger one must not pick up its leftovers (e.g. metadata it does not set).
  record_encoder encoder;
  std::vector<event_input> big;
  for (std::uint64_t n = 0; n < 50; ++n) {
    big.push_back(make_event(n, "big-type", binary_blob(200), binary_blob(100)));
  }
  const owned_frame first(encoder.append_batch(k_partition, lsn{0}, "s", stream_version{0},
                                               k_timestamp, big));

  const std::vector<event_input> small{make_event(99, "t", "", "")};
  const owned_frame second(encoder.append_batch(k_partition, lsn{first.bytes.size()}, "s",
                                                stream_version{50}, k_timestamp + 1, small));
  const auto parsed = parse_checked(second.bytes, lf::record_type::append_batch,
                                    lsn{first.bytes.size()});
  EXPECT_LT(second.bytes.size(), first.bytes.size());
  const auto status = guard_decode(
      [&] {
        record_reader reader(parsed.payload);
        auto batch = reader.append_batch();
        EXPECT_EQ(batch.getFirstVersion(), 50u);
        ASSERT_EQ(batch.getEvents().size(), 1u);
        const auto view = to_event_view(batch.getEvents()[0]);
        EXPECT_EQ(view.id, make_event_id(99));
        EXPECT_EQ(view.type, "t");
        EXPECT_EQ(view.data, "");
        EXPECT_EQ(view.metadata, "");
      },
      "test");
  EXPECT_TRUE(status.ok()) << status.err().message;

  // And the first frame, copied before, still decodes as it was.
  const auto parsed_first = parse_checked(first.bytes, lf::record_type::append_batch, lsn{0});
  const auto status_first = guard_decode(
      [&] {
        record_reader reader(parsed_first.payload);
        auto list = reader.append_batch().getEvents();
        ASSERT_EQ(list.size(), 50u);
        const auto last = to_event_view(list[49]);
        EXPECT_EQ(last.id, make_event_id(49));
        EXPECT_EQ(last.data, binary_blob(200));
        EXPECT_EQ(last.metadata, binary_blob(100));
      },
      "test");
  EXPECT_TRUE(status_first.ok()) << status_first.err().message;
}

TEST(record_codec_test, garbage_payload_becomes_corruption_naming_where) {
  // A frame with a valid CRC whose payload is not a Cap'n Proto message: what a
  // writer bug or a format mismatch would leave.
  std::vector<std::uint64_t> words(lf::k_header_size / 8 + 8, 0xababababababababull);
  const std::span<std::byte> frame(reinterpret_cast<std::byte*>(words.data()), words.size() * 8);
  lf::seal_frame(frame, lf::record_type::append_batch, k_partition, lsn{0});
  const auto parsed = lf::parse_frame(frame);
  ASSERT_EQ(parsed.status, lf::frame_status::ok);

  const auto status = guard_decode(
      [&] {
        record_reader reader(parsed.payload);
        (void)reader.append_batch().getEvents().size();
      },
      "segment 00000000000000000000.seg at offset 0");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.err().code, errc::corruption);
  EXPECT_NE(status.err().message.find("segment 00000000000000000000.seg at offset 0"),
            std::string::npos)
      << status.err().message;
  EXPECT_NE(status.err().message.find("undecodable"), std::string::npos) << status.err().message;
}

TEST(record_codec_test, segment_table_claiming_more_words_than_present_is_corruption) {
  // One segment of 1000 words announced, 1 word present.
  std::vector<std::uint64_t> words{std::uint64_t{1000} << 32, 0};
  const std::span<const std::byte> payload(reinterpret_cast<const std::byte*>(words.data()), 16);
  const auto status = guard_decode([&] { record_reader reader(payload); }, "here");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.err().code, errc::corruption);
}

TEST(record_codec_test, guard_decode_passes_success_and_engine_errors_through) {
  bool ran = false;
  EXPECT_TRUE(guard_decode([&] { ran = true; }, "x").ok());
  EXPECT_TRUE(ran);

  const auto status = guard_decode(
      [] { throw annal::engine::error{errc::lsn_gap, "stopped early"}; }, "x");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.err().code, errc::lsn_gap);
  EXPECT_EQ(status.err().message, "stopped early");
}

}  // namespace
