// Request semantics of a node through its request_handler, on real files.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <set>
#include <thread>

#include "engine/query/parser.hpp"
#include "tests/actors/node_harness.hpp"
#include "tests/support/event_factory.hpp"

namespace annal::testing {
namespace {

using actors::append_reply;
using actors::write_reply;
using engine::errc;
using engine::expected_version;

class node_test : public ::testing::TestWithParam<engine::fsync_mode> {
 protected:
  node_test() : node_(start_node(small_node_options(dir_, GetParam()))) {}

  engine::result<append_reply> append(std::string stream, expected_version expected,
                                      std::vector<engine::event_input> events) {
    return await_reply<append_reply>([&](auto reply) {
      node_->handler().append(append_of(std::move(stream), expected, std::move(events)),
                              std::move(reply));
    });
  }
  engine::result<engine::read_page> read(std::string stream, std::uint64_t from,
                                         std::size_t limit = 100,
                                         engine::read_direction direction =
                                             engine::read_direction::forward,
                                         bool from_end = false) {
    return await_reply<engine::read_page>([&](auto reply) {
      node_->handler().read(
          actors::read_request{std::move(stream), stream_version{from}, from_end, limit,
                               direction},
          std::move(reply));
    });
  }
  engine::result<engine::stream_info> info(std::string stream) {
    return await_reply<engine::stream_info>(
        [&](auto reply) { node_->handler().get_stream_info(std::move(stream), std::move(reply)); });
  }

  temp_dir dir_;
  std::unique_ptr<actors::node> node_;
};

std::vector<std::uint64_t> versions(const engine::read_page& page) {
  std::vector<std::uint64_t> out;
  for (const auto& e : page.events) out.push_back(e.version.value());
  return out;
}

TEST_P(node_test, append_then_read_round_trip) {
  auto appended = append("orders-1", expected_version::any(), make_events(1, 3));
  ASSERT_TRUE(appended.ok()) << appended.err().message;
  EXPECT_EQ(appended->first_version.value(), 0u);
  EXPECT_EQ(appended->last_version.value(), 2u);
  EXPECT_FALSE(appended->duplicate);
  EXPECT_LT(appended->partition.value(), node_->partition_count());

  auto page = read("orders-1", 0);
  ASSERT_TRUE(page.ok()) << page.err().message;
  ASSERT_EQ(page->events.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(page->events[i].version.value(), i);
    EXPECT_EQ(page->events[i].id, make_event_id(1 + i));
    EXPECT_EQ(page->events[i].data, "{\"n\":" + std::to_string(1 + i) + "}");
    EXPECT_EQ(page->events[i].type, "test-event");
  }
  EXPECT_EQ(node_->metrics().append_requests.load(), 1u);
  EXPECT_EQ(node_->metrics().appended_events.load(), 3u);
  EXPECT_GE(node_->metrics().read_events.load(), 3u);
}

TEST_P(node_test, concurrent_appends_from_several_threads_are_all_readable) {
  constexpr int k_threads = 4;
  constexpr int k_per_thread = 200;
  reply_counter replies(k_threads * k_per_thread);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < k_per_thread; ++i) {
        const std::uint64_t n = static_cast<std::uint64_t>(t) * 100000 + i;
        node_->handler().append(
            append_of("s-" + std::to_string(t), expected_version::any(), make_events(n, 1)),
            [&](engine::result<append_reply> r) {
              if (!r) failures.fetch_add(1);
              replies.arrived();
            });
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(replies.wait());
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < k_threads; ++t) {
    auto page = read("s-" + std::to_string(t), 0, 1000);
    ASSERT_TRUE(page.ok()) << page.err().message;
    ASSERT_EQ(page->events.size(), static_cast<std::size_t>(k_per_thread));
    // One thread's appends to one stream keep their order.
    for (int i = 0; i < k_per_thread; ++i) {
      EXPECT_EQ(page->events[i].id, make_event_id(static_cast<std::uint64_t>(t) * 100000 + i));
    }
  }
  EXPECT_EQ(node_->metrics().appended_events.load(),
            static_cast<std::uint64_t>(k_threads * k_per_thread));
  EXPECT_GT(node_->metrics().sync_rounds.load(), 0u);
  EXPECT_EQ(node_->metrics().append_seconds.count(),
            static_cast<std::uint64_t>(k_threads * k_per_thread));
}

TEST_P(node_test, every_expected_version_kind) {
  // no_stream: only on a new stream.
  ASSERT_TRUE(append("ev", expected_version::no_stream(), make_events(1, 1)).ok());
  auto again = append("ev", expected_version::no_stream(), make_events(2, 1));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.err().code, errc::wrong_expected_version);
  ASSERT_TRUE(again.err().current_version.has_value());
  EXPECT_EQ(again.err().current_version->value(), 0u);

  // stream_exists: only on an existing stream.
  auto missing = append("ev-new", expected_version::stream_exists(), make_events(3, 1));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::wrong_expected_version);
  EXPECT_FALSE(missing.err().current_version.has_value());
  auto exists = append("ev", expected_version::stream_exists(), make_events(4, 1));
  ASSERT_TRUE(exists.ok());
  EXPECT_EQ(exists->first_version.value(), 1u);

  // exact: only at the current version.
  auto exact = append("ev", expected_version::exact(1), make_events(5, 2));
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->first_version.value(), 2u);
  EXPECT_EQ(exact->last_version.value(), 3u);
  auto stale = append("ev", expected_version::exact(1), make_events(7, 1));
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.err().code, errc::wrong_expected_version);
  EXPECT_EQ(stale.err().current_version->value(), 3u);

  // any: always.
  auto any = append("ev", expected_version::any(), make_events(8, 1));
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->first_version.value(), 4u);

  EXPECT_EQ(node_->metrics().errors[static_cast<std::size_t>(errc::wrong_expected_version)].load(),
            3u);
}

TEST_P(node_test, idempotent_retry_returns_the_original_result) {
  auto first = append("idem", expected_version::no_stream(), make_events(10, 2));
  ASSERT_TRUE(first.ok());
  auto retry = append("idem", expected_version::no_stream(), make_events(10, 2));
  ASSERT_TRUE(retry.ok()) << retry.err().message;
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->first_version, first->first_version);
  EXPECT_EQ(retry->last_version, first->last_version);
  EXPECT_EQ(retry->position, first->position);
  auto page = read("idem", 0);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(versions(*page), (std::vector<std::uint64_t>{0, 1}));
  EXPECT_EQ(node_->metrics().appended_events.load(), 2u);
}

TEST_P(node_test, nil_event_ids_get_distinct_random_uuids) {
  std::vector<engine::event_input> events(5);
  for (auto& e : events) e.type = "nil-id";
  auto appended = append("nil", expected_version::any(), events);
  ASSERT_TRUE(appended.ok()) << appended.err().message;
  auto page = read("nil", 0);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->events.size(), 5u);
  std::set<event_id> ids;
  for (const auto& e : page->events) {
    EXPECT_NE(e.id, event_id{});
    EXPECT_EQ(e.id[6] >> 4, 4) << "version 4";
    EXPECT_EQ(e.id[8] & 0xc0, 0x80) << "RFC 4122 variant";
    ids.insert(e.id);
  }
  EXPECT_EQ(ids.size(), 5u);
}

TEST_P(node_test, read_backward_from_the_end_and_read_last) {
  ASSERT_TRUE(append("tail", expected_version::any(), make_events(1, 5)).ok());
  auto page = read("tail", 0, 2, engine::read_direction::forward, /*from_end=*/true);
  ASSERT_TRUE(page.ok()) << page.err().message;
  EXPECT_EQ(versions(*page), (std::vector<std::uint64_t>{4, 3}));
  ASSERT_TRUE(page->next.has_value());
  EXPECT_EQ(page->next->value(), 2u);

  auto last = await_reply<engine::read_page>(
      [&](auto reply) { node_->handler().read_last("tail", std::move(reply)); });
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(versions(*last), (std::vector<std::uint64_t>{4}));

  auto missing = read("nothing-here", 0);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::stream_not_found);
}

TEST_P(node_test, metadata_round_trip) {
  ASSERT_TRUE(append("meta", expected_version::any(), make_events(1, 4)).ok());
  engine::stream_metadata metadata;
  metadata.max_count = 2;
  auto set = await_reply<write_reply>([&](auto reply) {
    node_->handler().set_metadata("meta", metadata, std::move(reply));
  });
  ASSERT_TRUE(set.ok()) << set.err().message;
  auto got = info("meta");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->metadata, metadata);
  EXPECT_EQ(got->last_version->value(), 3u);
  auto page = read("meta", 0);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(versions(*page), (std::vector<std::uint64_t>{2, 3}));
}

TEST_P(node_test, soft_delete_then_tombstone) {
  ASSERT_TRUE(append("del", expected_version::any(), make_events(1, 2)).ok());
  auto deleted = await_reply<write_reply>([&](auto reply) {
    node_->handler().delete_stream("del", expected_version::exact(1), false, std::move(reply));
  });
  ASSERT_TRUE(deleted.ok()) << deleted.err().message;
  auto gone = read("del", 0);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.err().code, errc::stream_not_found);

  // A soft-deleted stream continues its versions.
  auto revived = append("del", expected_version::any(), make_events(3, 1));
  ASSERT_TRUE(revived.ok()) << revived.err().message;
  EXPECT_EQ(revived->first_version.value(), 2u);

  auto tombstoned = await_reply<write_reply>([&](auto reply) {
    node_->handler().delete_stream("del", expected_version::any(), true, std::move(reply));
  });
  ASSERT_TRUE(tombstoned.ok()) << tombstoned.err().message;
  auto refused = append("del", expected_version::any(), make_events(4, 1));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.err().code, errc::stream_deleted);
  auto got = info("del");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->tombstoned);
}

TEST_P(node_test, snapshot_round_trip) {
  auto none = await_reply<std::optional<engine::snapshot_read>>(
      [&](auto reply) { node_->handler().get_snapshot("snap", std::move(reply)); });
  ASSERT_TRUE(none.ok()) << none.err().message;
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(append("snap", expected_version::any(), make_events(1, 3)).ok());
  auto put = await_reply<write_reply>([&](auto reply) {
    node_->handler().put_snapshot("snap", stream_version{2}, "state@2", std::move(reply));
  });
  ASSERT_TRUE(put.ok()) << put.err().message;
  auto got = await_reply<std::optional<engine::snapshot_read>>(
      [&](auto reply) { node_->handler().get_snapshot("snap", std::move(reply)); });
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->version.value(), 2u);
  EXPECT_EQ((*got)->payload, "state@2");
}

TEST_P(node_test, bad_input_gets_a_typed_error) {
  auto empty_stream = append("", expected_version::any(), make_events(1, 1));
  ASSERT_FALSE(empty_stream.ok());
  EXPECT_EQ(empty_stream.err().code, errc::invalid_stream_id);

  auto no_events = append("x", expected_version::any(), {});
  ASSERT_FALSE(no_events.ok());

  std::vector<engine::event_input> untyped{make_event(1, "")};
  auto bad_event = append("x", expected_version::any(), untyped);
  ASSERT_FALSE(bad_event.ok());
  EXPECT_EQ(bad_event.err().code, errc::invalid_event);

  // The node still serves.
  EXPECT_TRUE(append("x", expected_version::any(), make_events(1, 1)).ok());
}

TEST_P(node_test, a_query_cancelled_by_its_client_answers_connection_lost) {
  ASSERT_TRUE(append("orders-1", expected_version::any(), make_events(1, 3)).ok());
  auto run = [&](bool cancelled) {
    actors::query_request request;
    request.query = engine::query::parse_query("from $all | count()").value();
    request.cancel = std::make_shared<std::atomic<bool>>(cancelled);
    return await_reply<engine::query::partial_result>(
        [&](auto reply) { node_->handler().query(std::move(request), std::move(reply)); });
  };
  auto answered = run(false);
  ASSERT_TRUE(answered.ok()) << answered.err().message;
  EXPECT_EQ(answered->events_scanned, 3u);
  auto cancelled = run(true);
  ASSERT_FALSE(cancelled.ok());
  EXPECT_EQ(cancelled.err().code, errc::connection_lost);
}

TEST_P(node_test, requests_after_stop_fail_with_shutting_down) {
  ASSERT_TRUE(append("before", expected_version::any(), make_events(1, 1)).ok());
  node_->stop();
  node_->stop();  // idempotent
  auto appended = append("after", expected_version::any(), make_events(2, 1));
  ASSERT_FALSE(appended.ok());
  EXPECT_EQ(appended.err().code, errc::shutting_down);
  auto page = read("before", 0);
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.err().code, errc::shutting_down);
  auto put = await_reply<write_reply>([&](auto reply) {
    node_->handler().put_snapshot("before", stream_version{0}, "x", std::move(reply));
  });
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.err().code, errc::shutting_down);
}

INSTANTIATE_TEST_SUITE_P(fsync, node_test,
                         ::testing::Values(engine::fsync_mode::always, engine::fsync_mode::none,
                                           engine::fsync_mode::interval),
                         [](const auto& info) {
                           switch (info.param) {
                             case engine::fsync_mode::always: return std::string("always");
                             case engine::fsync_mode::none: return std::string("none");
                             default: return std::string("interval");
                           }
                         });

}  // namespace
}  // namespace annal::testing
