// Which appends a partition accepts: the expected-version check (any,
// no_stream, stream_exists, exact N), tombstones, and the input validation
// that runs before it. (Validation lives here because it decides, like the
// expected version, whether an append is accepted at all.)

#include <gtest/gtest.h>

#include <string>

#include "tests/support/store_fixture.hpp"

namespace {

using annal::stream_version;
using annal::engine::errc;
using annal::engine::event_input;
using annal::engine::expected_version;
using annal::testing::make_event;
using annal::testing::must;
using annal::testing::store_fixture;
using annal::testing::versions_of;

class expected_version_test : public store_fixture {
 protected:
  // `count` synced events on a new stream: versions 0 .. count - 1.
  void write(std::string_view stream, std::size_t count) {
    append_synced(stream, expected_version::any(), fresh_events(count));
  }
  std::uint64_t last_version(std::string_view stream) {
    auto v = info(stream).last_version;
    return v ? v->value() : UINT64_MAX;
  }
};

// ------------------------------------------------------------------ any

TEST_F(expected_version_test, any_creates_a_stream_at_version_zero) {
  auto r = append("orders-1", expected_version::any(), fresh_events(2));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), 0u);
  EXPECT_EQ(r->last_version.value(), 1u);
  EXPECT_FALSE(r->duplicate);
}

TEST_F(expected_version_test, any_appends_after_the_last_version) {
  write("orders-1", 3);
  auto r = append("orders-1", expected_version::any(), fresh_events(1));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), 3u);
  EXPECT_EQ(r->last_version.value(), 3u);
}

// ------------------------------------------------------------ no_stream

TEST_F(expected_version_test, no_stream_creates_a_new_stream) {
  auto r = append("orders-1", expected_version::no_stream(), fresh_events(3));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), 0u);
  EXPECT_EQ(r->last_version.value(), 2u);
}

TEST_F(expected_version_test, no_stream_on_existing_stream_reports_current_version) {
  write("orders-1", 2);
  auto r = append("orders-1", expected_version::no_stream(), fresh_events(1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::wrong_expected_version);
  ASSERT_TRUE(r.err().current_version.has_value());
  EXPECT_EQ(r.err().current_version->value(), 1u);
  EXPECT_EQ(last_version("orders-1"), 1u);
}

TEST_F(expected_version_test, no_stream_after_soft_delete_continues_at_next_version) {
  write("orders-1", 3);
  must(partition_of("orders-1").delete_stream("orders-1", expected_version::any(), false),
       "delete");
  auto r = append("orders-1", expected_version::no_stream(), fresh_events(2));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), 3u);
  EXPECT_EQ(r->last_version.value(), 4u);
}

TEST_F(expected_version_test, no_stream_on_stream_with_only_metadata_creates_it) {
  must(partition_of("orders-1").set_metadata("orders-1", {.max_count = 5}), "set_metadata");
  auto r = append("orders-1", expected_version::no_stream(), fresh_events(1));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), 0u);
}

// -------------------------------------------------------- stream_exists

TEST_F(expected_version_test, stream_exists_on_missing_stream_reports_no_current_version) {
  auto r = append("orders-1", expected_version::stream_exists(), fresh_events(1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::wrong_expected_version);
  EXPECT_FALSE(r.err().current_version.has_value());
  EXPECT_EQ(read_forward("orders-1").err().code, errc::stream_not_found);
}

TEST_F(expected_version_test, stream_exists_appends_to_existing_stream) {
  write("orders-1", 2);
  auto r = append("orders-1", expected_version::stream_exists(), fresh_events(1));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), 2u);
}

TEST_F(expected_version_test, stream_exists_after_soft_delete_reports_no_current_version) {
  write("orders-1", 2);
  must(partition_of("orders-1").delete_stream("orders-1", expected_version::any(), false),
       "delete");
  auto r = append("orders-1", expected_version::stream_exists(), fresh_events(1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::wrong_expected_version);
  EXPECT_FALSE(r.err().current_version.has_value());
}

TEST_F(expected_version_test, stream_exists_on_stream_with_only_metadata_fails) {
  must(partition_of("orders-1").set_metadata("orders-1", {.max_count = 5}), "set_metadata");
  auto r = append("orders-1", expected_version::stream_exists(), fresh_events(1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::wrong_expected_version);
  EXPECT_FALSE(r.err().current_version.has_value());
}

// ---------------------------------------------------------------- exact

TEST_F(expected_version_test, exact_version_equal_to_last_version_appends) {
  write("orders-1", 3);
  auto r = append("orders-1", expected_version::exact(2), fresh_events(2));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), 3u);
  EXPECT_EQ(r->last_version.value(), 4u);
}

TEST_F(expected_version_test, exact_version_mismatch_reports_current_version) {
  write("orders-1", 3);
  for (std::uint64_t wrong : {0ull, 1ull, 3ull, 100ull}) {
    auto r = append("orders-1", expected_version::exact(wrong), fresh_events(1));
    ASSERT_FALSE(r) << "expected " << wrong;
    EXPECT_EQ(r.err().code, errc::wrong_expected_version) << "expected " << wrong;
    ASSERT_TRUE(r.err().current_version.has_value()) << "expected " << wrong;
    EXPECT_EQ(r.err().current_version->value(), 2u) << "expected " << wrong;
  }
  EXPECT_EQ(last_version("orders-1"), 2u);
}

TEST_F(expected_version_test, exact_version_zero_on_missing_stream_reports_no_current_version) {
  auto r = append("orders-1", expected_version::exact(0), fresh_events(1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::wrong_expected_version);
  EXPECT_FALSE(r.err().current_version.has_value());
}

TEST_F(expected_version_test, exact_version_after_soft_delete_reports_no_current_version) {
  write("orders-1", 3);
  must(partition_of("orders-1").delete_stream("orders-1", expected_version::any(), false),
       "delete");
  auto r = append("orders-1", expected_version::exact(2), fresh_events(1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::wrong_expected_version);
  EXPECT_FALSE(r.err().current_version.has_value());
}

TEST_F(expected_version_test, exact_version_counts_appends_not_yet_synced) {
  // The owner orders writes: a second append may build on one whose sync is
  // still pending.
  ASSERT_TRUE(append("orders-1", expected_version::no_stream(), fresh_events(2)));
  auto r = append("orders-1", expected_version::exact(1), fresh_events(1));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->first_version.value(), 2u);
  auto stale = append("orders-1", expected_version::exact(1), fresh_events(1));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.err().code, errc::wrong_expected_version);
  ASSERT_TRUE(stale.err().current_version.has_value());
  EXPECT_EQ(stale.err().current_version->value(), 2u);
}

TEST_F(expected_version_test, rejected_append_writes_nothing) {
  write("orders-1", 2);
  auto& p = partition_of("orders-1");
  const auto end = p.end();
  ASSERT_FALSE(append("orders-1", expected_version::exact(5), fresh_events(1)));
  ASSERT_FALSE(append("orders-1", expected_version::no_stream(), fresh_events(1)));
  must(st().sync(), "sync");
  EXPECT_EQ(p.end(), end);
  auto page = read_forward("orders-1");
  ASSERT_TRUE(page) << page.err().message;
  EXPECT_EQ(versions_of(*page), (std::vector<std::uint64_t>{0, 1}));
}

TEST_F(expected_version_test, delete_stream_checks_expected_version) {
  write("orders-1", 3);
  auto r = partition_of("orders-1").delete_stream("orders-1", expected_version::exact(1), false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::wrong_expected_version);
  ASSERT_TRUE(r.err().current_version.has_value());
  EXPECT_EQ(r.err().current_version->value(), 2u);
  must(st().sync(), "sync");
  EXPECT_FALSE(info("orders-1").deleted);

  ASSERT_TRUE(
      partition_of("orders-1").delete_stream("orders-1", expected_version::exact(2), false));
  must(st().sync(), "sync");
  EXPECT_TRUE(info("orders-1").deleted);
}

// ------------------------------------------------------------ tombstone

TEST_F(expected_version_test, tombstoned_stream_rejects_every_write_with_stream_deleted) {
  write("orders-1", 2);
  auto& p = partition_of("orders-1");
  ASSERT_TRUE(p.delete_stream("orders-1", expected_version::any(), true));
  must(st().sync(), "sync");

  for (auto expected : {expected_version::any(), expected_version::no_stream(),
                        expected_version::stream_exists(), expected_version::exact(1)}) {
    auto r = append("orders-1", expected, fresh_events(1));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, errc::stream_deleted);
  }
  auto meta = p.set_metadata("orders-1", {.max_count = 1});
  ASSERT_FALSE(meta);
  EXPECT_EQ(meta.err().code, errc::stream_deleted);
  auto soft = p.delete_stream("orders-1", expected_version::any(), false);
  ASSERT_FALSE(soft);
  EXPECT_EQ(soft.err().code, errc::stream_deleted);
  auto again = p.delete_stream("orders-1", expected_version::any(), true);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.err().code, errc::stream_deleted);
  auto snap = p.put_snapshot("orders-1", stream_version{1}, "state");
  ASSERT_FALSE(snap);
  EXPECT_EQ(snap.err().code, errc::stream_deleted);
}

TEST_F(expected_version_test, tombstone_of_never_written_stream_forbids_writes) {
  ASSERT_TRUE(partition_of("orders-1").delete_stream("orders-1", expected_version::any(), true));
  auto r = append("orders-1", expected_version::no_stream(), fresh_events(1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::stream_deleted);
}

TEST_F(expected_version_test, retried_batch_on_tombstoned_stream_is_stream_deleted) {
  const auto events = fresh_events(2);
  append_synced("orders-1", expected_version::no_stream(), events);
  ASSERT_TRUE(partition_of("orders-1").delete_stream("orders-1", expected_version::any(), true));
  auto r = append("orders-1", expected_version::no_stream(), events);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::stream_deleted);
}

// ----------------------------------------------------------- validation

TEST_F(expected_version_test, empty_batch_is_invalid_event) {
  auto r = append("orders-1", expected_version::any(), std::vector<event_input>{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_event);
}

TEST_F(expected_version_test, invalid_stream_ids_are_rejected) {
  const std::string too_long(257, 'a');
  const std::string ids[] = {
      "",            // empty
      too_long,      // 257 bytes
      "orders\xff",  // not UTF-8
      "orders\xc3",  // truncated sequence
      "\xc0\xaf",    // overlong '/'
      "\xed\xa0\x80",  // a surrogate
      "orders\n1",   // C0 control
      "orders\x7f",  // DEL
      "orders\xc2\x80",  // C1 control
      std::string("or\0ders", 7),
  };
  for (const auto& id : ids) {
    auto r = append(id, expected_version::any(), fresh_events(1));
    ASSERT_FALSE(r) << "'" << id << "'";
    EXPECT_EQ(r.err().code, errc::invalid_stream_id) << "'" << id << "'";
    auto meta = partition_of(id).set_metadata(id, {.max_count = 1});
    ASSERT_FALSE(meta) << "'" << id << "'";
    EXPECT_EQ(meta.err().code, errc::invalid_stream_id) << "'" << id << "'";
    auto del = partition_of(id).delete_stream(id, expected_version::any(), true);
    ASSERT_FALSE(del) << "'" << id << "'";
    EXPECT_EQ(del.err().code, errc::invalid_stream_id) << "'" << id << "'";
  }
}

TEST_F(expected_version_test, longest_and_non_ascii_stream_ids_are_accepted) {
  const std::string longest(256, 'a');
  const std::string ids[] = {longest, "x", "bestellungen-\xc3\xa4\xc3\xb6\xc3\xbc",
                             "\xe6\xb3\xa8\xe6\x96\x87-\xf0\x9f\x93\xa6"};
  for (const auto& id : ids) {
    auto r = append(id, expected_version::no_stream(), fresh_events(1));
    ASSERT_TRUE(r) << "'" << id << "': " << r.err().message;
    EXPECT_EQ(r->first_version.value(), 0u);
  }
  must(st().sync(), "sync");
  for (const auto& id : ids) {
    auto page = read_forward(id);
    ASSERT_TRUE(page) << "'" << id << "': " << page.err().message;
    EXPECT_EQ(page->events.size(), 1u);
  }
}

TEST_F(expected_version_test, invalid_event_types_are_invalid_event) {
  const std::string types[] = {"", std::string(129, 't'), "order\tplaced", "order\xff"};
  for (const auto& type : types) {
    auto events = fresh_events(2);
    events[1].type = type;
    auto r = append("orders-1", expected_version::any(), events);
    ASSERT_FALSE(r) << "'" << type << "'";
    EXPECT_EQ(r.err().code, errc::invalid_event) << "'" << type << "'";
  }
  auto longest = fresh_events(1, std::string(128, 't'));
  EXPECT_TRUE(append("orders-1", expected_version::any(), longest));
}

TEST_F(expected_version_test, repeated_event_id_within_batch_is_invalid_event) {
  auto events = fresh_events(3);
  events[2].id = events[0].id;
  auto r = append("orders-1", expected_version::any(), events);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_event);
  EXPECT_EQ(read_forward("orders-1").err().code, errc::stream_not_found);
}

TEST_F(expected_version_test, too_many_events_is_batch_too_large) {
  options_.partition.max_batch_events = 3;
  reopen();
  auto r = append("orders-1", expected_version::any(), fresh_events(4));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::batch_too_large);
  auto ok = append("orders-1", expected_version::any(), fresh_events(3));
  ASSERT_TRUE(ok) << ok.err().message;
  EXPECT_EQ(ok->last_version.value(), 2u);
}

TEST_F(expected_version_test, too_large_event_is_batch_too_large) {
  options_.partition.max_event_bytes = 16;
  reopen();
  std::vector<event_input> events{make_event(100, "t", std::string(10, 'd'), std::string(7, 'm'))};
  auto r = append("orders-1", expected_version::any(), events);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::batch_too_large);
  events[0].metadata.resize(6);  // data + metadata == 16: at the limit
  EXPECT_TRUE(append("orders-1", expected_version::any(), events));
}

TEST_F(expected_version_test, too_many_bytes_in_batch_is_batch_too_large) {
  options_.partition.max_batch_bytes = 100;
  reopen();
  std::vector<event_input> events;
  for (std::uint64_t n = 100; n < 104; ++n) {
    events.push_back(make_event(n, "t", std::string(30, 'd')));  // 4 x 31 bytes
  }
  auto r = append("orders-1", expected_version::any(), events);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::batch_too_large);
  events.pop_back();  // 3 x 31 bytes
  EXPECT_TRUE(append("orders-1", expected_version::any(), events));
}

TEST_F(expected_version_test, invalid_batch_is_rejected_before_expected_version) {
  write("orders-1", 1);
  auto events = fresh_events(1);
  events[0].type.clear();
  auto r = append("orders-1", expected_version::exact(7), events);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::invalid_event);
}

}  // namespace
