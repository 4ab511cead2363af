#include "engine/checkpoint.hpp"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/crc32c.hpp"
#include "tests/support/disk_view.hpp"
#include "tests/support/byte_damage.hpp"
#include "tests/support/event_factory.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using annal::lsn;
using annal::node_log_position;
using annal::partition_id;
using annal::stream_version;
using annal::engine::checkpoint_crc;
using annal::engine::checkpoint_delta;
using annal::engine::checkpoint_name;
using annal::engine::checkpoint_state;
using annal::engine::decode_checkpoint;
using annal::engine::encode_checkpoint;
using annal::engine::encode_delta_checkpoint;
using annal::engine::errc;
using annal::engine::event_id_window;
using annal::engine::k_checkpoint_header_size;
using annal::engine::load_newest_checkpoint;
using annal::engine::pack_location;
using annal::engine::partition_log;
using annal::engine::posix_file_system;
using annal::engine::snapshot_ref;
using annal::engine::store_checkpoint;
using annal::engine::stream_index;
using annal::testing::make_event_id;
using annal::testing::files_in;
using annal::testing::size_on_disk;
using annal::testing::temp_dir;

constexpr partition_id k_partition{2};
constexpr annal::timestamp_us k_last_timestamp = 1'700'000'000'654'321;

// A partition state with something in every field.
struct sample_state {
  sample_state() {
    auto& orders = index.get_or_create("orders-1");
    orders.next_version = 5;
    orders.first_located = 2;  // versions 0 and 1 are past retention
    orders.locations = {pack_location(lsn{0}, 1), pack_location(lsn{64}, 0),
                        pack_location(lsn{64}, 1)};
    orders.metadata = {.max_count = 3, .max_age_seconds = 0, .truncate_before = 0};
    orders.snapshot = snapshot_ref{stream_version{3}, lsn{128}};

    auto& users = index.get_or_create("users-7");
    users.next_version = 1;
    users.locations = {pack_location(lsn{192}, 0)};
    users.metadata = {.max_count = 0, .max_age_seconds = 86400, .truncate_before = 1};
    users.deleted = true;

    auto& gone = index.get_or_create("gone-9");
    gone.tombstoned = true;

    index.get_or_create("only-metadata").metadata.max_count = 10;

    // 10 inserts into 8 slots, one id twice: the window has wrapped.
    for (std::uint64_t i = 0; i < 9; ++i) {
      window.insert(make_event_id(i, 0xfeed), {static_cast<std::uint32_t>(i % 2), i});
    }
    window.insert(make_event_id(5, 0xfeed), {1, 4});
  }

  std::vector<std::byte> encode(std::uint64_t sequence = 7, lsn log_end = lsn{812},
                                partition_id partition = k_partition) const {
    return encode_checkpoint(partition, sequence, log_end, node_log_position{4096},
                             k_last_timestamp, segments, index, window);
  }

  stream_index index;
  event_id_window window{8};
  std::vector<partition_log::segment_info> segments{{lsn{0}, 256}, {lsn{512}, 300}};
};

std::string path_of(const temp_dir& dir, std::uint64_t sequence) {
  return dir.file(checkpoint_name(sequence));
}

void reseal(std::vector<std::byte>& bytes) {
  const std::uint32_t crc = annal::engine::crc32c(std::span<const std::byte>(bytes).subspan(12));
  std::memcpy(bytes.data() + 8, &crc, 4);
}

TEST(checkpoint_test, file_names_carry_a_zero_padded_sequence) {
  EXPECT_EQ(checkpoint_name(1), "checkpoint-00000000000000000001.ckpt");
  EXPECT_EQ(checkpoint_name(1234567), "checkpoint-00000000000001234567.ckpt");
}

TEST(checkpoint_test, encoded_file_starts_with_magic_and_length) {
  const sample_state sample;
  const auto bytes = sample.encode();
  ASSERT_GT(bytes.size(), k_checkpoint_header_size);
  EXPECT_EQ(std::memcmp(bytes.data(), "ANNALCK1", 8), 0);
  std::uint64_t length = 0;
  std::memcpy(&length, bytes.data() + 16, 8);
  EXPECT_EQ(length, bytes.size() - k_checkpoint_header_size);
  EXPECT_EQ(bytes.size() % 8, 0u);
}

TEST(checkpoint_test, populated_state_round_trips) {
  const sample_state sample;
  const auto bytes = sample.encode();
  auto decoded = decode_checkpoint(bytes, k_partition, "p/checkpoint");
  ASSERT_TRUE(decoded.ok()) << decoded.err().message;
  const checkpoint_state& s = *decoded;

  EXPECT_EQ(s.sequence, 7u);
  EXPECT_EQ(s.log_end, lsn{812});
  EXPECT_EQ(s.node_position, node_log_position{4096});
  EXPECT_EQ(s.last_timestamp, k_last_timestamp);
  ASSERT_EQ(s.segments.size(), 2u);
  EXPECT_EQ(s.segments[0].base, lsn{0});
  EXPECT_EQ(s.segments[0].bytes, 256u);
  EXPECT_EQ(s.segments[1].base, lsn{512});
  EXPECT_EQ(s.segments[1].bytes, 300u);

  ASSERT_EQ(s.index.size(), sample.index.size());
  for (std::uint32_t n = 0; n < sample.index.size(); ++n) {
    const auto& want = sample.index.at(n);
    const auto& got = s.index.at(n);
    SCOPED_TRACE(want.id);
    EXPECT_EQ(got.id, want.id);
    EXPECT_EQ(s.index.number_of(got), n) << "stream numbers are kept (the window refers to them)";
    EXPECT_EQ(s.index.find(want.id), &got);
    EXPECT_EQ(got.next_version, want.next_version);
    EXPECT_EQ(got.first_located, want.first_located);
    EXPECT_EQ(got.locations, want.locations);
    EXPECT_EQ(got.metadata, want.metadata);
    EXPECT_EQ(got.deleted, want.deleted);
    EXPECT_EQ(got.tombstoned, want.tombstoned);
    ASSERT_EQ(got.snapshot.has_value(), want.snapshot.has_value());
    if (want.snapshot) {
      EXPECT_EQ(got.snapshot->version, want.snapshot->version);
      EXPECT_EQ(got.snapshot->record, want.snapshot->record);
    }
  }

  std::vector<std::pair<annal::event_id, event_id_window::entry>> window;
  sample.window.for_each([&](const annal::event_id& id, const event_id_window::entry& e) {
    window.emplace_back(id, e);
  });
  ASSERT_EQ(s.recent_ids.size(), window.size());
  for (std::size_t i = 0; i < window.size(); ++i) {
    EXPECT_EQ(s.recent_ids[i].first, window[i].first) << i;
    EXPECT_EQ(s.recent_ids[i].second.stream, window[i].second.stream) << i;
    EXPECT_EQ(s.recent_ids[i].second.version, window[i].second.version) << i;
  }
  // Replayed oldest first, the window answers as before.
  event_id_window restored(8);
  for (const auto& [id, e] : s.recent_ids) restored.insert(id, e);
  const auto* repeated = restored.find(make_event_id(5, 0xfeed));
  ASSERT_NE(repeated, nullptr);
  EXPECT_EQ(repeated->stream, 1u);
  EXPECT_EQ(repeated->version, 4u);
  EXPECT_EQ(restored.find(make_event_id(0, 0xfeed)), nullptr) << "evicted before the checkpoint";
}

TEST(checkpoint_test, empty_state_round_trips) {
  stream_index index;
  event_id_window window(4);
  const auto bytes = encode_checkpoint(k_partition, 1, lsn{0}, node_log_position{0}, 0, {},
                                       index, window);
  auto decoded = decode_checkpoint(bytes, k_partition, "x");
  ASSERT_TRUE(decoded.ok()) << decoded.err().message;
  EXPECT_EQ(decoded->sequence, 1u);
  EXPECT_EQ(decoded->index.size(), 0u);
  EXPECT_TRUE(decoded->segments.empty());
  EXPECT_TRUE(decoded->recent_ids.empty());
}

TEST(checkpoint_test, any_single_bit_flip_is_rejected_as_checksum_mismatch) {
  const sample_state sample;
  const auto original = sample.encode();
  for (std::size_t offset = 0; offset < original.size(); ++offset) {
    auto bytes = original;
    bytes[offset] ^= std::byte(1u << (offset % 8));
    auto decoded = decode_checkpoint(bytes, k_partition, "/data/p/checkpoint-7.ckpt");
    ASSERT_FALSE(decoded.ok()) << "flip at " << offset << " accepted";
    EXPECT_EQ(decoded.err().code, errc::checksum_mismatch) << offset;
    EXPECT_NE(decoded.err().message.find("/data/p/checkpoint-7.ckpt"), std::string::npos)
        << decoded.err().message;
  }
}

TEST(checkpoint_test, truncated_checkpoint_is_rejected_as_checksum_mismatch) {
  const sample_state sample;
  const auto original = sample.encode();
  for (std::size_t size = 0; size < original.size(); ++size) {
    const std::span<const std::byte> cut(original.data(), size);
    auto decoded = decode_checkpoint(cut, k_partition, "c");
    ASSERT_FALSE(decoded.ok()) << "cut to " << size << " accepted";
    EXPECT_EQ(decoded.err().code, errc::checksum_mismatch) << size;
  }
}

TEST(checkpoint_test, checkpoint_of_another_partition_is_rejected) {
  const sample_state sample;
  const auto bytes = sample.encode(7, lsn{812}, partition_id{3});
  auto decoded = decode_checkpoint(bytes, k_partition, "c");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.err().code, errc::checksum_mismatch);
  EXPECT_NE(decoded.err().message.find("belongs to partition 3"), std::string::npos)
      << decoded.err().message;
}

TEST(checkpoint_test, unknown_flags_are_rejected_even_with_a_matching_crc) {
  const sample_state sample;
  auto bytes = sample.encode();
  bytes[12] = std::byte{1};
  reseal(bytes);
  auto decoded = decode_checkpoint(bytes, k_partition, "c");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.err().code, errc::checksum_mismatch);
}

TEST(checkpoint_test, stream_with_locations_not_matching_its_versions_is_rejected) {
  stream_index index;
  auto& e = index.get_or_create("s");
  e.next_version = 5;  // claims 5 versions, locates 1
  e.locations = {pack_location(lsn{0}, 0)};
  event_id_window window(2);
  const auto bytes = encode_checkpoint(k_partition, 1, lsn{64}, node_log_position{0}, 0,
                                       std::vector<partition_log::segment_info>{{lsn{0}, 64}},
                                       index, window);
  auto decoded = decode_checkpoint(bytes, k_partition, "c");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.err().code, errc::checksum_mismatch);
  EXPECT_NE(decoded.err().message.find("stream 's'"), std::string::npos) << decoded.err().message;
}

TEST(checkpoint_test, recent_id_naming_an_unknown_stream_is_rejected) {
  stream_index index;
  index.get_or_create("s");
  event_id_window window(2);
  window.insert(make_event_id(1), {5, 0});  // stream number 5 does not exist
  const auto bytes = encode_checkpoint(k_partition, 1, lsn{0}, node_log_position{0}, 0, {},
                                       index, window);
  auto decoded = decode_checkpoint(bytes, k_partition, "c");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.err().code, errc::checksum_mismatch);
}

class checkpoint_files_test : public ::testing::Test {
 protected:
  void store(std::uint64_t sequence, lsn log_end) {
    const auto bytes = sample_.encode(sequence, log_end);
    // Full checkpoints: each keeps the one before as its fallback.
    const auto s = store_checkpoint(posix_file_system(), dir_.path(), sequence, bytes,
                                    sequence > 1 ? sequence - 1 : sequence);
    ASSERT_TRUE(s.ok()) << s.err().message;
  }

  std::optional<checkpoint_state> load() {
    auto loaded = load_newest_checkpoint(posix_file_system(), dir_.path(), k_partition);
    EXPECT_TRUE(loaded.ok()) << loaded.err().message;
    if (!loaded.ok()) return std::nullopt;
    return std::move(*loaded);
  }

  temp_dir dir_;
  sample_state sample_;
};

TEST_F(checkpoint_files_test, stored_checkpoint_is_written_under_its_final_name_only) {
  store(1, lsn{100});
  EXPECT_EQ(files_in(dir_.path()),
            std::vector<std::string>{"checkpoint-00000000000000000001.ckpt"});
  std::vector<std::byte> on_disk;
  ASSERT_FALSE(annal::testing::read_all(path_of(dir_, 1), on_disk));
  EXPECT_EQ(on_disk, sample_.encode(1, lsn{100}));
}

TEST_F(checkpoint_files_test, store_removes_the_checkpoints_before_keep_from) {
  store(1, lsn{100});
  store(2, lsn{200});
  store(3, lsn{300});
  EXPECT_EQ(files_in(dir_.path()), (std::vector<std::string>{
                                       "checkpoint-00000000000000000002.ckpt",
                                       "checkpoint-00000000000000000003.ckpt",
                                   }));
  store(4, lsn{400});
  EXPECT_EQ(files_in(dir_.path()), (std::vector<std::string>{
                                       "checkpoint-00000000000000000003.ckpt",
                                       "checkpoint-00000000000000000004.ckpt",
                                   }));
}

TEST_F(checkpoint_files_test, store_leaves_other_files_alone) {
  ASSERT_FALSE(annal::testing::write_all(dir_.file("00000000000000000000.seg"),
                                         annal::testing::bytes_of("segment")));
  store(1, lsn{100});
  store(2, lsn{200});
  store(3, lsn{300});
  EXPECT_EQ(files_in(dir_.path()), (std::vector<std::string>{
                                       "00000000000000000000.seg",
                                       "checkpoint-00000000000000000002.ckpt",
                                       "checkpoint-00000000000000000003.ckpt",
                                   }));
}

TEST_F(checkpoint_files_test, no_checkpoint_loads_as_nothing) {
  auto loaded = load_newest_checkpoint(posix_file_system(), dir_.path(), k_partition);
  ASSERT_TRUE(loaded.ok()) << loaded.err().message;
  EXPECT_FALSE(loaded->has_value());
}

TEST_F(checkpoint_files_test, newest_checkpoint_is_loaded) {
  store(9, lsn{100});
  store(10, lsn{200});  // numerically newest, not just by name
  auto state = load();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->sequence, 10u);
  EXPECT_EQ(state->log_end, lsn{200});
}

TEST_F(checkpoint_files_test, damaged_newest_checkpoint_falls_back_to_the_older_one) {
  store(1, lsn{100});
  store(2, lsn{200});
  ASSERT_FALSE(annal::testing::flip_bit(path_of(dir_, 2), 100, 3));
  auto state = load();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->sequence, 1u);
  EXPECT_EQ(state->log_end, lsn{100});
  EXPECT_EQ(state->index.size(), sample_.index.size());
}

TEST_F(checkpoint_files_test, truncated_newest_checkpoint_falls_back_to_the_older_one) {
  store(1, lsn{100});
  store(2, lsn{200});
  std::uint64_t size = 0;
  ASSERT_FALSE(posix_file_system().file_size(path_of(dir_, 2), size));
  ASSERT_FALSE(annal::testing::shrink_file(path_of(dir_, 2), size / 2));
  auto state = load();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->sequence, 1u);
}

TEST_F(checkpoint_files_test, all_checkpoints_damaged_is_an_error_not_an_empty_partition) {
  // Loading "nothing" here would open the partition empty and delete its
  // segment files as unlisted leftovers: the damage must stop the open.
  store(1, lsn{100});
  store(2, lsn{200});
  ASSERT_FALSE(annal::testing::flip_bit(path_of(dir_, 1), 40, 0));
  ASSERT_FALSE(annal::testing::flip_bit(path_of(dir_, 2), 40, 0));
  auto loaded = load_newest_checkpoint(posix_file_system(), dir_.path(), k_partition);
  ASSERT_FALSE(loaded.ok()) << "loaded " << (loaded->has_value() ? "a checkpoint" : "nothing");
  EXPECT_EQ(loaded.err().code, errc::checksum_mismatch);
  EXPECT_NE(loaded.err().message.find(path_of(dir_, 2)), std::string::npos) << loaded.err().message;
}

TEST_F(checkpoint_files_test, leftover_temporary_checkpoint_is_ignored) {
  store(1, lsn{100});
  store(2, lsn{200});
  // A newer checkpoint whose write was interrupted before its rename: even a
  // complete one is not trusted, it was never made durable under its name.
  const auto interrupted = sample_.encode(3, lsn{300});
  ASSERT_FALSE(annal::testing::write_all(path_of(dir_, 3) + ".tmp", interrupted));
  ASSERT_FALSE(annal::testing::write_all(path_of(dir_, 4) + ".tmp",
                                         annal::testing::bytes_of("torn")));
  auto state = load();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->sequence, 2u);
  EXPECT_EQ(state->log_end, lsn{200});

  // Nor does it count when the next checkpoint decides what to keep.
  store(3, lsn{300});
  state = load();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->sequence, 3u);
  EXPECT_TRUE(posix_file_system().exists(path_of(dir_, 2)));
  EXPECT_FALSE(posix_file_system().exists(path_of(dir_, 1)));
}

// A full checkpoint of the sample at 1, then deltas of the sample as the
// tests change it.
class checkpoint_chain_test : public checkpoint_files_test {
 protected:
  // The scalars of checkpoint `sequence`: distinct per sequence, so that a
  // load shows whose it took.
  static lsn log_end_of(std::uint64_t sequence) { return lsn{100 * sequence}; }
  static node_log_position position_of(std::uint64_t sequence) {
    return node_log_position{4096 + sequence};
  }

  // Stores a delta at `sequence` that extends the file before it, listing
  // `changed` and the `new_ids` newest ids of the sample's window.
  void store_delta(std::uint64_t sequence, std::vector<checkpoint_delta::stream_change> changed,
                   std::size_t new_ids) {
    std::vector<std::byte> before;
    ASSERT_FALSE(annal::testing::read_all(path_of(dir_, sequence - 1), before));
    const checkpoint_delta delta{sequence - 1, checkpoint_crc(before), std::move(changed),
                                 new_ids};
    const auto bytes = encode_delta_checkpoint(
        k_partition, sequence, log_end_of(sequence), position_of(sequence),
        k_last_timestamp + static_cast<annal::timestamp_us>(sequence), sample_.segments,
        sample_.index, sample_.window, delta);
    const auto s = store_checkpoint(posix_file_system(), dir_.path(), sequence, bytes, 1);
    ASSERT_TRUE(s.ok()) << s.err().message;
  }

  // The sample now, as a full checkpoint at `sequence` would hold it.
  std::vector<std::byte> full_of_sample(std::uint64_t sequence) const {
    return encode_checkpoint(k_partition, sequence, log_end_of(sequence), position_of(sequence),
                             k_last_timestamp + static_cast<annal::timestamp_us>(sequence),
                             sample_.segments, sample_.index, sample_.window);
  }

  // A loaded state as a full checkpoint: equal bytes, equal state.
  std::vector<std::byte> full_of(const checkpoint_state& state) const {
    event_id_window window(sample_.window.capacity());
    for (const auto& [id, where] : state.recent_ids) window.insert(id, where);
    return encode_checkpoint(k_partition, state.sequence, state.log_end, state.node_position,
                             state.last_timestamp, state.segments, state.index, window);
  }

  std::uint32_t number_of(const std::string& stream) {
    return sample_.index.find(stream)->number;
  }
};

TEST_F(checkpoint_chain_test, deltas_applied_in_turn_give_what_a_full_checkpoint_holds) {
  store(1, log_end_of(1));
  {
    // orders-1 (versions [2, 5)) gains versions 5 and 6 while retention drops
    // 2 and 3; a stream is new; another changes only its metadata.
    auto& orders = *sample_.index.find("orders-1");
    orders.locations.erase(orders.locations.begin(), orders.locations.begin() + 2);
    orders.first_located = 4;
    orders.locations.push_back(pack_location(lsn{256}, 0));
    orders.locations.push_back(pack_location(lsn{256}, 1));
    orders.next_version = 7;
    auto& fresh = sample_.index.get_or_create("fresh-1");
    fresh.next_version = 1;
    fresh.locations = {pack_location(lsn{320}, 0)};
    sample_.index.find("only-metadata")->metadata.max_count = 20;
    sample_.window.insert(make_event_id(100, 0xfeed), {fresh.number, 0});
  }
  store_delta(2, {{number_of("orders-1"), 5}, {number_of("only-metadata"), 0},
                  {number_of("fresh-1"), 0}},
              1);
  auto state = load();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->sequence, 2u);
  EXPECT_EQ(state->chain.base, 1u);
  EXPECT_EQ(state->chain.deltas, 1u);
  EXPECT_EQ(full_of(*state), full_of_sample(2));

  {
    // A tombstone that drops every location, a new snapshot, three more ids.
    auto& users = *sample_.index.find("users-7");
    users.tombstoned = true;
    users.first_located = users.next_version;
    users.locations.clear();
    sample_.index.find("orders-1")->snapshot = snapshot_ref{stream_version{6}, lsn{256}};
    for (std::uint64_t i = 0; i < 3; ++i) {
      sample_.window.insert(make_event_id(200 + i, 0xfeed), {number_of("fresh-1"), i});
    }
  }
  store_delta(3, {{number_of("orders-1"), 7}, {number_of("users-7"), 1}}, 3);
  state = load();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->sequence, 3u);
  EXPECT_EQ(state->chain.deltas, 2u);
  EXPECT_EQ(full_of(*state), full_of_sample(3));
  EXPECT_EQ(files_in(dir_.path()).size(), 3u);
}

TEST_F(checkpoint_chain_test, a_delta_of_a_rewritten_checkpoint_is_skipped) {
  store(1, log_end_of(1));
  store_delta(2, {}, 0);
  // Checkpoint 1 written again (as after a load that fell back past 2): the
  // old delta no longer extends what is on disk.
  store(1, lsn{150});
  auto state = load();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->sequence, 1u);
  EXPECT_EQ(state->log_end, lsn{150});
}

TEST_F(checkpoint_chain_test, a_damaged_link_fails_every_delta_after_it) {
  store(1, log_end_of(1));
  store_delta(2, {}, 0);
  store_delta(3, {}, 0);
  ASSERT_FALSE(annal::testing::flip_bit(path_of(dir_, 2), 40, 1));
  auto state = load();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->sequence, 1u);
  EXPECT_EQ(state->log_end, log_end_of(1));
}

TEST_F(checkpoint_chain_test, a_delta_without_the_checkpoint_it_extends_does_not_load) {
  store(1, log_end_of(1));
  store_delta(2, {}, 0);
  ASSERT_EQ(std::remove(path_of(dir_, 1).c_str()), 0);
  auto loaded = load_newest_checkpoint(posix_file_system(), dir_.path(), k_partition);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.err().code, errc::checksum_mismatch);
  EXPECT_NE(loaded.err().message.find("which is missing"), std::string::npos)
      << loaded.err().message;
}

}  // namespace
