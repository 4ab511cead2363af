// Idempotent appends: a retried batch (same event ids) returns the original
// result instead of writing the events twice, by position under an exact
// (or no_stream) expected version and by the recent event-id window under
// any expected version; also after a reopen and after a crash.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/store_fixture.hpp"

namespace {

using annal::engine::append_result;
using annal::engine::errc;
using annal::engine::event_input;
using annal::engine::expected_version;
using annal::testing::data_for;
using annal::testing::data_of;
using annal::testing::must;
using annal::testing::store_fixture;
using annal::testing::versions_of;

class idempotency_test : public store_fixture {
 protected:
  void expect_same_result(const append_result& retry, const append_result& original) {
    EXPECT_TRUE(retry.duplicate);
    EXPECT_EQ(retry.first_version, original.first_version);
    EXPECT_EQ(retry.last_version, original.last_version);
    EXPECT_EQ(retry.position, original.position);
  }
  // The versions a full forward read of `stream` returns.
  std::vector<std::uint64_t> versions(std::string_view stream) {
    return versions_of(must(read_forward(stream), "read"));
  }
};

TEST_F(idempotency_test, retry_with_exact_version_returns_original_result) {
  append_synced("orders-1", expected_version::no_stream(), fresh_events(2));
  const auto batch = fresh_events(2);
  const auto original = append_synced("orders-1", expected_version::exact(1), batch);
  ASSERT_FALSE(original.duplicate);
  const auto end = partition_of("orders-1").end();

  auto retry = append("orders-1", expected_version::exact(1), batch);
  ASSERT_TRUE(retry) << retry.err().message;
  expect_same_result(*retry, original);
  EXPECT_EQ(retry->first_version.value(), 2u);
  EXPECT_EQ(retry->last_version.value(), 3u);
  EXPECT_EQ(retry->durable_after.value(), 0u);  // already durable
  EXPECT_EQ(partition_of("orders-1").end(), end);
  must(st().sync(), "sync");
  EXPECT_EQ(versions("orders-1"), (std::vector<std::uint64_t>{0, 1, 2, 3}));
}

TEST_F(idempotency_test, retry_with_no_stream_returns_original_result) {
  const auto batch = fresh_events(3);
  const auto original = append_synced("orders-1", expected_version::no_stream(), batch);
  auto retry = append("orders-1", expected_version::no_stream(), batch);
  ASSERT_TRUE(retry) << retry.err().message;
  expect_same_result(*retry, original);
  EXPECT_EQ(retry->first_version.value(), 0u);
  EXPECT_EQ(retry->last_version.value(), 2u);
  EXPECT_EQ(versions("orders-1"), (std::vector<std::uint64_t>{0, 1, 2}));
}

TEST_F(idempotency_test, retry_with_any_is_recognised_by_event_id_window) {
  append_synced("orders-1", expected_version::any(), fresh_events(1));
  const auto batch = fresh_events(2);
  const auto original = append_synced("orders-1", expected_version::any(), batch);
  append_synced("orders-1", expected_version::any(), fresh_events(1));

  auto retry = append("orders-1", expected_version::any(), batch);
  ASSERT_TRUE(retry) << retry.err().message;
  expect_same_result(*retry, original);
  EXPECT_EQ(retry->first_version.value(), 1u);
  EXPECT_EQ(retry->last_version.value(), 2u);
  EXPECT_EQ(versions("orders-1"), (std::vector<std::uint64_t>{0, 1, 2, 3}));
}

TEST_F(idempotency_test, retry_with_stream_exists_returns_original_result) {
  append_synced("orders-1", expected_version::any(), fresh_events(1));
  const auto batch = fresh_events(1);
  const auto original = append_synced("orders-1", expected_version::stream_exists(), batch);
  auto retry = append("orders-1", expected_version::stream_exists(), batch);
  ASSERT_TRUE(retry) << retry.err().message;
  expect_same_result(*retry, original);
  EXPECT_EQ(versions("orders-1"), (std::vector<std::uint64_t>{0, 1}));
}

TEST_F(idempotency_test, retry_with_exact_version_after_later_writes_returns_original_result) {
  // The expected version no longer matches the stream, but the batch sits
  // where it would have gone: the retry succeeds.
  append_synced("orders-1", expected_version::no_stream(), fresh_events(1));
  const auto batch = fresh_events(2);
  const auto original = append_synced("orders-1", expected_version::exact(0), batch);
  append_synced("orders-1", expected_version::any(), fresh_events(3));

  auto retry = append("orders-1", expected_version::exact(0), batch);
  ASSERT_TRUE(retry) << retry.err().message;
  expect_same_result(*retry, original);
  EXPECT_EQ(info("orders-1").last_version->value(), 5u);
}

TEST_F(idempotency_test, retry_before_sync_is_recognised_and_visible_once_after_sync) {
  const auto batch = fresh_events(2);
  auto original = append("orders-1", expected_version::no_stream(), batch);
  ASSERT_TRUE(original) << original.err().message;
  ASSERT_GT(original->durable_after.value(), 0u);

  auto retry = append("orders-1", expected_version::no_stream(), batch);
  ASSERT_TRUE(retry) << retry.err().message;
  expect_same_result(*retry, *original);
  // The retry may only be acknowledged by the sync that covers the original.
  EXPECT_EQ(retry->durable_after, original->durable_after);
  EXPECT_EQ(read_forward("orders-1").err().code, errc::stream_not_found);

  must(st().sync(), "sync");
  auto page = read_forward("orders-1");
  ASSERT_TRUE(page) << page.err().message;
  EXPECT_EQ(versions_of(*page), (std::vector<std::uint64_t>{0, 1}));
  EXPECT_EQ(data_of(*page), (std::vector<std::string>{batch[0].data, batch[1].data}));
}

TEST_F(idempotency_test, exact_version_retry_is_recognised_beyond_event_id_window) {
  options_.partition.event_id_window = 4;
  reopen();
  append_synced("orders-1", expected_version::no_stream(), fresh_events(1));
  const auto batch = fresh_events(2);
  const auto original = append_synced("orders-1", expected_version::exact(0), batch);
  append_each_synced("orders-1", 20);  // pushes the batch's ids out of the window

  auto retry = append("orders-1", expected_version::exact(0), batch);
  ASSERT_TRUE(retry) << retry.err().message;
  expect_same_result(*retry, original);
  EXPECT_EQ(info("orders-1").last_version->value(), 22u);
}

TEST_F(idempotency_test, any_retry_beyond_event_id_window_is_written_again) {
  // The documented limit of the window: under `any`, only the most recent
  // event_id_window ids are recognised.
  options_.partition.event_id_window = 4;
  reopen();
  const auto batch = fresh_events(1);
  append_synced("orders-1", expected_version::any(), batch);
  append_each_synced("orders-1", 10);

  auto retry = append("orders-1", expected_version::any(), batch);
  ASSERT_TRUE(retry) << retry.err().message;
  EXPECT_FALSE(retry->duplicate);
  EXPECT_EQ(retry->first_version.value(), 11u);
}

TEST_F(idempotency_test, any_retry_within_configured_window_is_recognised) {
  options_.partition.event_id_window = 16;
  reopen();
  const auto batch = fresh_events(1);
  const auto original = append_synced("orders-1", expected_version::any(), batch);
  append_each_synced("orders-1", 15);  // the window now holds exactly 16 ids

  auto retry = append("orders-1", expected_version::any(), batch);
  ASSERT_TRUE(retry) << retry.err().message;
  expect_same_result(*retry, original);
  EXPECT_EQ(info("orders-1").last_version->value(), 15u);
}

TEST_F(idempotency_test, batch_differing_after_written_ids_is_idempotency_conflict) {
  const auto batch = fresh_events(3);
  append_synced("orders-1", expected_version::any(), batch);
  auto changed = batch;
  changed[2].id = fresh_events(1)[0].id;
  const auto end = partition_of("orders-1").end();

  for (auto expected : {expected_version::any(), expected_version::no_stream()}) {
    auto r = append("orders-1", expected, changed);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, errc::idempotency_conflict);
  }
  EXPECT_EQ(partition_of("orders-1").end(), end);
  EXPECT_EQ(versions("orders-1"), (std::vector<std::uint64_t>{0, 1, 2}));
}

TEST_F(idempotency_test, batch_extending_written_ids_is_idempotency_conflict) {
  const auto batch = fresh_events(2);
  append_synced("orders-1", expected_version::any(), batch);
  auto longer = batch;
  longer.push_back(fresh_events(1)[0]);
  auto r = append("orders-1", expected_version::any(), longer);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::idempotency_conflict);
  EXPECT_EQ(versions("orders-1"), (std::vector<std::uint64_t>{0, 1}));
}

TEST_F(idempotency_test, prefix_of_written_batch_is_a_duplicate) {
  const auto batch = fresh_events(3);
  append_synced("orders-1", expected_version::any(), batch);
  const std::vector<event_input> prefix(batch.begin(), batch.begin() + 2);
  auto r = append("orders-1", expected_version::any(), prefix);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_TRUE(r->duplicate);
  EXPECT_EQ(r->first_version.value(), 0u);
  EXPECT_EQ(r->last_version.value(), 1u);
}

TEST_F(idempotency_test, different_batch_at_exact_version_is_wrong_expected_version) {
  append_synced("orders-1", expected_version::no_stream(), fresh_events(1));
  append_synced("orders-1", expected_version::exact(0), fresh_events(2));
  auto r = append("orders-1", expected_version::exact(0), fresh_events(2));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::wrong_expected_version);
  ASSERT_TRUE(r.err().current_version.has_value());
  EXPECT_EQ(r.err().current_version->value(), 2u);
}

TEST_F(idempotency_test, retry_after_close_and_reopen_is_recognised) {
  const auto first = fresh_events(2);
  const auto second = fresh_events(2);
  const auto original_first = append_synced("orders-1", expected_version::no_stream(), first);
  const auto original_second = append_synced("orders-1", expected_version::any(), second);
  reopen();

  auto by_position = append("orders-1", expected_version::no_stream(), first);
  ASSERT_TRUE(by_position) << by_position.err().message;
  expect_same_result(*by_position, original_first);
  auto by_window = append("orders-1", expected_version::any(), second);
  ASSERT_TRUE(by_window) << by_window.err().message;
  expect_same_result(*by_window, original_second);
  must(st().sync(), "sync");
  EXPECT_EQ(versions("orders-1"), (std::vector<std::uint64_t>{0, 1, 2, 3}));
}

TEST_F(idempotency_test, retry_after_crash_is_recognised) {
  const auto first = fresh_events(2);
  const auto second = fresh_events(2);
  const auto original_first = append_synced("orders-1", expected_version::no_stream(), first);
  const auto original_second = append_synced("orders-1", expected_version::any(), second);
  crash_and_reopen();
  ASSERT_GT(st().recovery().replayed_records, 0u);

  auto by_no_stream = append("orders-1", expected_version::no_stream(), first);
  ASSERT_TRUE(by_no_stream) << by_no_stream.err().message;
  expect_same_result(*by_no_stream, original_first);
  auto by_window = append("orders-1", expected_version::any(), second);
  ASSERT_TRUE(by_window) << by_window.err().message;
  expect_same_result(*by_window, original_second);
  must(st().sync(), "sync");
  auto page = must(read_forward("orders-1"), "read");
  EXPECT_EQ(versions_of(page), (std::vector<std::uint64_t>{0, 1, 2, 3}));
  EXPECT_EQ(data_of(page), (std::vector<std::string>{data_for(1), data_for(2), data_for(3),
                                                      data_for(4)}));
}

TEST_F(idempotency_test, retry_after_checkpoint_and_crash_is_recognised) {
  // The window comes back from the checkpoint, not only from the node log.
  const auto batch = fresh_events(2);
  const auto original = append_synced("orders-1", expected_version::any(), batch);
  must(st().checkpoint_all(), "checkpoint");
  append_synced("orders-2", expected_version::any(), fresh_events(1));
  crash_and_reopen();

  auto retry = append("orders-1", expected_version::any(), batch);
  ASSERT_TRUE(retry) << retry.err().message;
  expect_same_result(*retry, original);
}

TEST_F(idempotency_test, retry_to_soft_deleted_stream_returns_nothing_new) {
  // The events were written and then deleted: the retry must not bring them
  // back as new events.
  const auto batch = fresh_events(2);
  append_synced("orders-1", expected_version::any(), batch);
  must(partition_of("orders-1").delete_stream("orders-1", expected_version::any(), false),
       "delete");
  must(st().sync(), "sync");
  auto retry = append("orders-1", expected_version::any(), batch);
  ASSERT_TRUE(retry) << retry.err().message;
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->first_version.value(), 0u);
  EXPECT_EQ(read_forward("orders-1").err().code, errc::stream_not_found);
}

}  // namespace
