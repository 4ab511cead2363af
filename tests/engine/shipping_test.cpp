// Log shipping: partition::ship_from reads committed records as their exact
// frames, partition::apply_shipped writes them at the same lsns on a copy in
// another store. The copy must read back exactly what the source does, catch
// idempotent retries, survive a crash, and refuse damaged, misplaced or
// not-yet-durable input without changing anything.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "engine/crc32c.hpp"
#include "engine/record_codec.hpp"
#include "tests/support/store_fixture.hpp"
#include "tests/support/stream_dump.hpp"

namespace annal::testing {
namespace {

using engine::errc;
using engine::expected_version;
using engine::shipped_batch;

constexpr std::size_t k_everything = std::numeric_limits<std::size_t>::max();

// One append made on the source, to retry on the copy.
struct made_append {
  std::string stream;
  expected_version expected;
  std::vector<engine::event_input> events;
  engine::append_result result;
};

class shipping_test : public store_fixture {
 protected:
  shipping_test() {
    // Small segments so that both logs roll segments while copying.
    options_.partition.log.segment_bytes = 4u << 10;
    options_.partition.log.write_buffer_bytes = 1u << 10;
    options_.node_log.segment_bytes = 1u << 20;
    copy_options_ = options_;
    copy_options_.directory = dir_.path() + "/copy";
    // An earlier clock: the copy's timestamps must come from the records.
    copy_options_.clock = &copy_clock_;
  }

  void SetUp() override {
    store_fixture::SetUp();
    open_copy();
  }

  void open_copy() { copy_store_ = must(engine::store::open(copy_options_), "open copy"); }
  // Drops the copy's store without a close, as a crash after its last sync.
  void crash_and_reopen_copy() {
    copy_store_.reset();
    open_copy();
  }

  engine::partition& source() { return partition_of(k_home); }
  engine::partition& copy() {
    return *must(copy_store_->get(st().partition_for(k_home)), "get copy partition");
  }

  // Ships from the copy's end until it has caught up, `budget` bytes at a
  // time, then syncs the copy. Returns the batches applied.
  std::vector<shipped_batch> ship_all(std::size_t budget) {
    std::vector<shipped_batch> applied;
    for (int guard = 0; guard < 100000; ++guard) {
      auto batch = must(source().ship_from(copy().end(), budget), "ship_from");
      EXPECT_EQ(batch.from, copy().end());
      if (batch.bytes.empty()) {
        EXPECT_EQ(batch.next, batch.source_end);
        break;
      }
      auto written = must(copy().apply_shipped(batch), "apply_shipped");
      EXPECT_EQ(written.next, batch.next);
      applied.push_back(std::move(batch));
    }
    must(copy_store_->sync(), "sync copy");
    return applied;
  }

  void expect_same_streams() {
    ASSERT_FALSE(streams_.empty());
    for (const auto& s : streams_) {
      const auto want = dump_stream(source(), s);
      const auto got = dump_stream(copy(), s);
      EXPECT_TRUE(want.failure.empty()) << s << ": " << want.failure;
      EXPECT_EQ(got, want) << s << "\n  source: " << describe(want) << "\n  copy:   "
                           << describe(got);
    }
    // The copy holds the same bytes at the same lsns.
    EXPECT_EQ(copy().end(), source().visible_end());
    const auto want = must(source().ship_from(lsn{0}, k_everything), "ship source");
    const auto got = must(copy().ship_from(lsn{0}, k_everything), "ship copy");
    EXPECT_EQ(got.bytes, want.bytes);
  }

  made_append do_append(const std::string& stream, expected_version expected,
                        std::size_t count, bool with_metadata) {
    made_append a{stream, expected, fresh_events(count), {}};
    if (with_metadata) {
      for (auto& e : a.events) e.metadata = "{\"meta\":\"" + stream + "\"}";
    }
    a.result = must(append(stream, expected, a.events), "append " + stream);
    return a;
  }

  // Streams in one partition, written with every kind of record: appends with
  // expected versions and event metadata, stream metadata, snapshots, soft
  // deletes with a later revive, and tombstones, interleaved.
  void write_workload(int rounds = 6) {
    streams_.push_back(k_home);
    for (int i = 1; i < 24; ++i) {
      streams_.push_back(stream_in_partition_of(k_home, "ship-" + std::to_string(i) + "-"));
    }
    for (int round = 0; round < rounds; ++round) {
      for (std::size_t i = 0; i < streams_.size(); ++i) {
        const auto& s = streams_[i];
        clock_.advance_seconds(1);
        const auto kind = i % 5;
        if (kind == 4 && round == 3) {
          must(source().delete_stream(s, expected_version::any(), true), "tombstone");
          continue;
        }
        if (kind == 4 && round > 3) continue;
        if (kind == 3 && round == 2) {
          must(source().delete_stream(s, expected_version::any(), false), "soft delete");
          continue;
        }
        // Pending writes count for expected versions: ask the index.
        const bool fresh = round == 0 || (kind == 3 && round == 3);
        const expected_version expected =
            fresh ? expected_version::no_stream()
                  : expected_version::exact(source().index().find(s)->next_version - 1);
        appends_.push_back(do_append(s, expected, 1 + (i + round) % 3, i % 7 == 0));
        if (kind == 1 && round == 1) {
          must(source().set_metadata(s, engine::stream_metadata{4, 0, 0}), "set_metadata");
        }
        if (kind == 2 && round % 2 == 1) {
          const auto* entry = source().index().find(s);
          must(source().put_snapshot(s, stream_version{entry->next_version - 1},
                                     "snapshot of " + s + " in round " + std::to_string(round)),
               "put_snapshot");
        }
      }
      must(st().sync(), "sync source");
    }
  }

  static constexpr const char* k_home = "ship-home";
  manual_clock copy_clock_{1'600'000'000'000'000};
  engine::store_options copy_options_;
  std::unique_ptr<engine::store> copy_store_;
  std::vector<std::string> streams_;
  std::vector<made_append> appends_;
};

TEST_F(shipping_test, copy_in_small_batches_reads_like_the_source) {
  write_workload();
  const auto batches = ship_all(512);

  ASSERT_GT(batches.size(), 20u);
  EXPECT_EQ(batches.front().from, lsn{0});  // a copy starts from an empty partition
  for (std::size_t i = 0; i < batches.size(); ++i) {
    if (i > 0) {
      EXPECT_EQ(batches[i].from, batches[i - 1].next);
    }
    // Within budget unless a single record is larger.
    const auto first = engine::log_format::decode_header(batches[i].bytes);
    if (first.frame_size() < batches[i].bytes.size()) {
      EXPECT_LE(batches[i].bytes.size(), 512u);
    }
    EXPECT_EQ(batches[i].crc, engine::crc32c(batches[i].bytes));
  }
  EXPECT_EQ(batches.back().next, source().end());
  EXPECT_EQ(copy().visible_end(), source().end());
  expect_same_streams();

  // The dumps hold what the workload wrote.
  const auto home = dump_stream(copy(), k_home);
  ASSERT_EQ(home.read_code, errc::ok);
  EXPECT_EQ(home.events.size(), 1u + 2u + 3u + 1u + 2u + 3u);
  EXPECT_EQ(dump_stream(copy(), streams_[4]).read_code, errc::stream_deleted);
  EXPECT_EQ(dump_stream(copy(), streams_[3]).read_code, errc::ok);
  EXPECT_TRUE(dump_stream(copy(), streams_[2]).snapshot.has_value());
  EXPECT_EQ(dump_stream(copy(), streams_[1]).metadata.max_count, 4u);
}

TEST_F(shipping_test, retry_of_a_source_append_is_a_duplicate_on_the_copy) {
  write_workload();
  ship_all(1024);
  const lsn end = copy().end();
  int checked = 0;
  for (const auto& a : appends_) {
    const auto kind = std::find(streams_.begin(), streams_.end(), a.stream) - streams_.begin();
    if (kind % 5 >= 3) continue;  // deleted streams start over
    for (auto expected : {a.expected, expected_version::any()}) {
      auto retry = copy().append(a.stream, expected, a.events);
      ASSERT_TRUE(retry.ok()) << a.stream << ": " << retry.err().message;
      EXPECT_TRUE(retry->duplicate) << a.stream;
      EXPECT_EQ(retry->first_version, a.result.first_version) << a.stream;
      EXPECT_EQ(retry->last_version, a.result.last_version) << a.stream;
      EXPECT_EQ(retry->position, a.result.position) << a.stream;
      ++checked;
    }
  }
  EXPECT_GT(checked, 50);
  EXPECT_EQ(copy().end(), end);  // nothing was written

  // A new append continues the versions, with a timestamp that does not go
  // back behind the source's (the copy's clock is years earlier).
  const auto before = must(source().read_last(k_home), "read source");
  auto events = fresh_events(1);
  auto r = must(copy().append(k_home, expected_version::exact(
                                           before.last_version.value().value()),
                              events),
                "append on copy");
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.first_version.value(), before.last_version.value().value() + 1);
  must(copy_store_->sync(), "sync copy");
  const auto after = must(copy().read_last(k_home), "read copy");
  ASSERT_EQ(after.events.size(), 1u);
  EXPECT_GE(after.events[0].timestamp, before.events.at(0).timestamp);
}

TEST_F(shipping_test, tail_is_shipped_from_the_last_next) {
  write_workload(3);
  auto first = ship_all(700);
  ASSERT_FALSE(first.empty());
  const lsn caught_up = first.back().next;
  EXPECT_EQ(copy().end(), caught_up);

  // Caught up: an empty batch that says so.
  auto empty = must(source().ship_from(caught_up, 700), "ship at end");
  EXPECT_TRUE(empty.bytes.empty());
  EXPECT_EQ(empty.from, caught_up);
  EXPECT_EQ(empty.next, caught_up);
  EXPECT_EQ(empty.source_end, caught_up);
  EXPECT_EQ(must(copy().apply_shipped(empty), "apply empty").next, caught_up);

  // More on the source, then ship the tail.
  for (const auto& s : streams_) {
    if (info(s).tombstoned) continue;
    appends_.push_back(do_append(s, expected_version::any(), 2, false));
  }
  must(source().put_snapshot(k_home, stream_version{1}, "late snapshot"), "put_snapshot");
  must(st().sync(), "sync source");
  auto tail = ship_all(700);
  ASSERT_FALSE(tail.empty());
  EXPECT_EQ(tail.front().from, caught_up);
  EXPECT_GT(tail.back().next, caught_up);
  expect_same_streams();
  EXPECT_EQ(dump_stream(copy(), k_home).snapshot->second, "late snapshot");
}

TEST_F(shipping_test, corrupted_batch_is_refused_and_the_copy_is_unchanged) {
  write_workload(2);
  const auto good = must(source().ship_from(lsn{0}, 2048), "ship");
  ASSERT_GT(good.bytes.size(), 1000u);
  const auto wal_before = copy_store_->wal().appended_position();
  auto expect_unchanged = [&](const char* what) {
    EXPECT_EQ(copy().end(), lsn{0}) << what;
    EXPECT_EQ(copy_store_->wal().appended_position(), wal_before) << what;
    EXPECT_EQ(copy().index().size(), 0u) << what;
    must(copy_store_->sync(), "sync copy");
    EXPECT_EQ(dump_stream(copy(), k_home).read_code, errc::stream_not_found) << what;
  };

  {  // One flipped byte: the batch CRC catches it.
    auto bad = good;
    bad.bytes[bad.bytes.size() / 2] ^= std::byte{0x01};
    auto r = copy().apply_shipped(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::checksum_mismatch) << r.err().message;
    expect_unchanged("flipped byte");
  }
  {  // The same with the batch CRC fixed: the record's own CRC catches it.
    auto bad = good;
    bad.bytes[bad.bytes.size() - 3] ^= std::byte{0x40};
    bad.crc = engine::crc32c(bad.bytes);
    auto r = copy().apply_shipped(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::checksum_mismatch) << r.err().message;
    expect_unchanged("flipped byte, batch crc fixed");
  }
  {  // Truncated last record.
    auto bad = good;
    bad.bytes.resize(bad.bytes.size() - 8);
    bad.next = lsn{bad.next.value() - 8};
    bad.crc = engine::crc32c(bad.bytes);
    auto r = copy().apply_shipped(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::corruption) << r.err().message;
    EXPECT_NE(r.err().message.find("truncated"), std::string::npos) << r.err().message;
    expect_unchanged("truncated");
  }
  {  // `next` that does not match the bytes.
    auto bad = good;
    bad.next = lsn{bad.next.value() + 8};
    auto r = copy().apply_shipped(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::corruption) << r.err().message;
    expect_unchanged("next");
  }
  {  // Records whose lsns do not follow each other: the second one is skipped.
    const auto records = must(source().read_log(lsn{0}, 4096), "read_log");
    ASSERT_GE(records.size(), 3u);
    shipped_batch bad;
    bad.from = lsn{0};
    for (int i : {0, 2}) {
      bad.bytes.insert(bad.bytes.end(), records[i].frame.begin(), records[i].frame.end());
    }
    bad.next = lsn{bad.bytes.size()};
    bad.crc = engine::crc32c(bad.bytes);
    auto r = copy().apply_shipped(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::lsn_gap) << r.err().message;
    expect_unchanged("skipped record");
  }
  {  // Sound frames whose second record does not continue its stream: found
     // before the first one is applied.
    engine::record_encoder encoder;
    const partition_id p = copy().id();
    auto e = make_events(900, 1);
    auto f0 = encoder.append_batch(p, lsn{0}, k_home, stream_version{0}, 5, e);
    shipped_batch bad;
    bad.from = lsn{0};
    bad.bytes.assign(f0.begin(), f0.end());
    auto e2 = make_events(901, 1);
    auto f1 = encoder.append_batch(p, lsn{bad.bytes.size()}, k_home, stream_version{7}, 5, e2);
    bad.bytes.insert(bad.bytes.end(), f1.begin(), f1.end());
    bad.next = lsn{bad.bytes.size()};
    bad.crc = engine::crc32c(bad.bytes);
    auto r = copy().apply_shipped(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::corruption) << r.err().message;
    expect_unchanged("version gap in a stream");
  }
  {  // Records of another partition.
    std::string other = "elsewhere";
    while (st().partition_for(other) == st().partition_for(k_home)) other += "-";
    must(partition_of(other).append(other, expected_version::any(), fresh_events(1)), "append");
    must(st().sync(), "sync");
    auto bad = must(partition_of(other).ship_from(lsn{0}, 4096), "ship other");
    auto r = copy().apply_shipped(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::corruption) << r.err().message;
    expect_unchanged("other partition");
  }

  // Untouched by all that, the copy takes the good batch.
  must(copy().apply_shipped(good), "apply good batch");
  ship_all(4096);
  expect_same_streams();
}

TEST_F(shipping_test, batch_out_of_order_is_an_lsn_gap) {
  write_workload(2);
  const auto b1 = must(source().ship_from(lsn{0}, 600), "ship 1");
  const auto b2 = must(source().ship_from(b1.next, 600), "ship 2");
  ASSERT_FALSE(b2.bytes.empty());

  auto r = copy().apply_shipped(b2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::lsn_gap);
  EXPECT_NE(r.err().message.find("lsn " + std::to_string(b2.from.value())), std::string::npos)
      << r.err().message;
  EXPECT_NE(r.err().message.find("lsn 0"), std::string::npos) << r.err().message;
  EXPECT_EQ(copy().end(), lsn{0});

  must(copy().apply_shipped(b1), "apply 1");
  auto again = copy().apply_shipped(b1);  // a duplicate delivery
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.err().code, errc::lsn_gap);
  EXPECT_EQ(copy().end(), b1.next);
  must(copy().apply_shipped(b2), "apply 2");
  ship_all(600);
  expect_same_streams();
}

TEST_F(shipping_test, shipped_records_are_visible_once_durable_on_the_copy) {
  const std::string s = k_home;
  streams_.push_back(s);
  appends_.push_back(do_append(s, expected_version::no_stream(), 3, false));
  must(st().sync(), "sync");
  ship_all(k_everything);
  ASSERT_EQ(dump_stream(copy(), s).events.size(), 3u);

  // A soft delete and a snapshot-free stream of events, shipped but not yet
  // synced on the copy: reads there still show the old state.
  must(source().delete_stream(s, expected_version::any(), false), "delete");
  streams_.push_back(stream_in_partition_of(s));
  appends_.push_back(do_append(streams_.back(), expected_version::any(), 2, false));
  must(st().sync(), "sync");
  const auto batch = must(source().ship_from(copy().end(), k_everything), "ship");
  const auto written = must(copy().apply_shipped(batch), "apply");
  EXPECT_GT(written.durable_after.value(), copy_store_->wal().durable_position().value());
  EXPECT_EQ(dump_stream(copy(), s).events.size(), 3u);
  EXPECT_EQ(dump_stream(copy(), streams_.back()).read_code, errc::stream_not_found);
  EXPECT_LT(copy().visible_end(), batch.next);

  must(copy_store_->sync(), "sync copy");
  EXPECT_GE(copy_store_->wal().durable_position(), written.durable_after);
  EXPECT_EQ(copy().visible_end(), batch.next);
  EXPECT_EQ(dump_stream(copy(), s).read_code, errc::stream_not_found);
  expect_same_streams();
}

TEST_F(shipping_test, copy_survives_a_crash_and_reopen) {
  write_workload();
  // Half, a checkpoint of the copy, the rest; then a crash without close.
  const lsn half{source().end().value() / 2};
  while (copy().end() < half) {
    auto b = must(source().ship_from(copy().end(), 900), "ship");
    must(copy().apply_shipped(b), "apply");
  }
  must(copy_store_->sync(), "sync copy");
  must(copy_store_->checkpoint_all(), "checkpoint copy");
  ship_all(900);
  crash_and_reopen_copy();
  EXPECT_GT(copy_store_->recovery().replayed_records, 0u);
  expect_same_streams();

  // The idempotency window was rebuilt by replay too.
  const auto& a = appends_.back();
  auto retry = must(copy().append(a.stream, expected_version::any(), a.events), "retry");
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.first_version, a.result.first_version);
}

TEST_F(shipping_test, batch_not_synced_on_the_copy_is_lost_in_a_crash_and_shipped_again) {
  write_workload(3);
  const auto first = must(source().ship_from(lsn{0}, 1500), "ship 1");
  must(copy().apply_shipped(first), "apply 1");
  must(copy_store_->sync(), "sync copy");
  const auto second = must(source().ship_from(first.next, 1500), "ship 2");
  must(copy().apply_shipped(second), "apply 2");
  crash_and_reopen_copy();  // the second batch was never synced
  EXPECT_EQ(copy().end(), first.next);
  ship_all(1500);
  expect_same_streams();
}

TEST_F(shipping_test, shipping_is_bounded_to_the_durable_end) {
  streams_.push_back(k_home);
  appends_.push_back(do_append(k_home, expected_version::no_stream(), 2, false));
  must(st().sync(), "sync");
  const lsn durable = source().visible_end();
  appends_.push_back(do_append(k_home, expected_version::any(), 2, false));  // not synced
  ASSERT_GT(source().end(), durable);

  const auto b = must(source().ship_from(lsn{0}, k_everything), "ship");
  EXPECT_EQ(b.next, durable);
  EXPECT_EQ(b.source_end, durable);
  EXPECT_EQ(b.bytes.size(), durable.value());

  for (lsn beyond : {source().end(), lsn{source().end().value() + 8}}) {
    auto r = source().ship_from(beyond, k_everything);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::invalid_argument) << r.err().message;
  }
  auto at_end = must(source().ship_from(durable, k_everything), "ship at durable end");
  EXPECT_TRUE(at_end.bytes.empty());

  must(copy().apply_shipped(b), "apply");
  must(st().sync(), "sync");
  ship_all(k_everything);
  EXPECT_EQ(copy().end(), source().end());
  expect_same_streams();
}

TEST_F(shipping_test, range_removed_by_retention_needs_a_full_copy) {
  streams_.push_back(k_home);
  must(source().set_metadata(k_home, engine::stream_metadata{1, 0, 0}), "set_metadata");
  for (int i = 0; i < 10; ++i) append_each_synced(k_home, 20);
  must(st().checkpoint_all(), "checkpoint");
  ASSERT_GT(source().log().segments().front().base, lsn{0});  // retention removed the head

  auto r = source().ship_from(lsn{0}, 4096);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::full_copy_needed) << r.err().message;
  EXPECT_STREQ(engine::errc_name(r.err().code), "full_copy_needed");

  // From the last segment on, shipping still works.
  const lsn base = source().log().segments().back().base;
  auto tail = must(source().ship_from(base, k_everything), "ship last segment");
  EXPECT_EQ(tail.next, source().visible_end());
}

}  // namespace
}  // namespace annal::testing
