// Every client operation against a real node process, through the C++
// client over the binary protocol.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>

#include "tests/integration/node_fixture.hpp"

namespace annal::testing {
namespace {

using engine::errc;
using engine::expected_version;

class client_ops_test : public node_fixture {};

std::vector<std::uint64_t> versions(const engine::read_page& page) {
  std::vector<std::uint64_t> out;
  for (const auto& e : page.events) out.push_back(e.version.value());
  return out;
}

TEST_F(client_ops_test, append_then_read_forward_backward_and_last) {
  auto a = event("OrderPlaced", R"({"amount":5})");
  auto b = event("OrderPaid", R"({"amount":5})");
  auto c = event("OrderShipped", "not json");
  auto appended = client_->append(append_of("orders-1", expected_version::no_stream(), {a, b, c}));
  ASSERT_TRUE(appended.ok()) << appended.err().message;
  EXPECT_EQ(appended->first_version.value(), 0u);
  EXPECT_EQ(appended->last_version.value(), 2u);
  EXPECT_FALSE(appended->duplicate);

  actors::read_request forward;
  forward.stream = "orders-1";
  forward.limit = 2;
  auto page = client_->read(forward);
  ASSERT_TRUE(page.ok()) << page.err().message;
  EXPECT_EQ(versions(*page), (std::vector<std::uint64_t>{0, 1}));
  EXPECT_EQ(page->events[0].id, a.id);
  EXPECT_EQ(page->events[0].type, "OrderPlaced");
  EXPECT_EQ(page->events[0].data, R"({"amount":5})");
  ASSERT_TRUE(page->next.has_value());
  EXPECT_EQ(page->next->value(), 2u);
  EXPECT_GT(page->events[0].timestamp, 0);

  forward.from = *page->next;
  page = client_->read(forward);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(versions(*page), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(page->events[0].data, "not json");
  EXPECT_FALSE(page->next.has_value());

  actors::read_request backward;
  backward.stream = "orders-1";
  backward.from_end = true;
  backward.limit = 10;
  backward.direction = engine::read_direction::backward;
  page = client_->read(backward);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(versions(*page), (std::vector<std::uint64_t>{2, 1, 0}));

  auto last = client_->read_last("orders-1");
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->events.size(), 1u);
  EXPECT_EQ(last->events[0].id, c.id);
  EXPECT_EQ(last->events[0].version.value(), 2u);
}

TEST_F(client_ops_test, read_of_a_missing_stream_is_stream_not_found) {
  actors::read_request r;
  r.stream = "never-written";
  auto page = client_->read(r);
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.err().code, errc::stream_not_found);
}

TEST_F(client_ops_test, every_expected_version_case) {
  // no_stream: succeeds on a new stream, fails once it exists.
  ASSERT_TRUE(client_->append(append_of("ev-1", expected_version::no_stream(), {event("A", "1")})));
  auto r = client_->append(append_of("ev-1", expected_version::no_stream(), {event("A", "2")}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::wrong_expected_version);
  ASSERT_TRUE(r.err().current_version.has_value());
  EXPECT_EQ(r.err().current_version->value(), 0u);

  // stream_exists: fails on a missing stream (no current version), succeeds after.
  r = client_->append(append_of("ev-2", expected_version::stream_exists(), {event("A", "1")}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::wrong_expected_version);
  EXPECT_FALSE(r.err().current_version.has_value());
  r = client_->append(append_of("ev-1", expected_version::stream_exists(), {event("A", "3")}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first_version.value(), 1u);

  // exact: the current version succeeds, any other fails with it.
  r = client_->append(append_of("ev-1", expected_version::exact(1), {event("A", "4")}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first_version.value(), 2u);
  r = client_->append(append_of("ev-1", expected_version::exact(1), {event("A", "5")}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::wrong_expected_version);
  EXPECT_EQ(r.err().current_version->value(), 2u);

  // any: always appends.
  r = client_->append(append_of("ev-1", expected_version::any(), {event("A", "6")}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first_version.value(), 3u);
  r = client_->append(append_of("ev-3", expected_version::any(), {event("A", "7")}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first_version.value(), 0u);
}

TEST_F(client_ops_test, idempotent_retry_returns_the_original_result) {
  const std::vector<engine::event_input> batch{event("A", "1"), event("B", "2")};
  auto first = client_->append(append_of("idem-1", expected_version::no_stream(), batch));
  ASSERT_TRUE(first.ok());
  // The same request again (a client retry after a lost reply).
  auto retry = client_->append(append_of("idem-1", expected_version::no_stream(), batch));
  ASSERT_TRUE(retry.ok()) << retry.err().message;
  EXPECT_TRUE(retry->duplicate);
  EXPECT_EQ(retry->first_version, first->first_version);
  EXPECT_EQ(retry->last_version, first->last_version);
  // Under `any` as well.
  auto any_retry = client_->append(append_of("idem-1", expected_version::any(), batch));
  ASSERT_TRUE(any_retry.ok());
  EXPECT_TRUE(any_retry->duplicate);

  actors::read_request r;
  r.stream = "idem-1";
  auto page = client_->read(r);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->events.size(), 2u);
}

TEST_F(client_ops_test, events_without_ids_get_distinct_ids) {
  std::vector<engine::event_input> batch(3);
  for (auto& e : batch) e.type = "NoId";
  ASSERT_TRUE(client_->append(append_of("noid-1", expected_version::any(), batch)));
  actors::read_request r;
  r.stream = "noid-1";
  auto page = client_->read(r);
  ASSERT_TRUE(page.ok());
  std::set<event_id> ids;
  for (const auto& e : page->events) {
    EXPECT_NE(e.id, event_id{});
    ids.insert(e.id);
  }
  EXPECT_EQ(ids.size(), 3u);
}

TEST_F(client_ops_test, metadata_retention_delete_and_tombstone) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client_->append(append_of("meta-1", expected_version::any(), {event("A", "x")})));
  }
  engine::stream_metadata m;
  m.max_count = 2;
  ASSERT_TRUE(client_->set_metadata("meta-1", m));
  auto info = client_->get_stream_info("meta-1");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->metadata.max_count, 2u);
  ASSERT_TRUE(info->last_version.has_value());
  EXPECT_EQ(info->last_version->value(), 4u);
  actors::read_request r;
  r.stream = "meta-1";
  auto page = client_->read(r);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(versions(*page), (std::vector<std::uint64_t>{3, 4}));

  // Soft delete: reads fail, a new append continues the versions.
  ASSERT_TRUE(client_->delete_stream("meta-1", expected_version::exact(4), false));
  page = client_->read(r);
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.err().code, errc::stream_not_found);
  auto again = client_->append(append_of("meta-1", expected_version::any(), {event("A", "y")}));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->first_version.value(), 5u);

  // Tombstone: never writable again.
  ASSERT_TRUE(client_->delete_stream("meta-1", expected_version::any(), true));
  auto refused = client_->append(append_of("meta-1", expected_version::any(), {event("A", "z")}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.err().code, errc::stream_deleted);
  info = client_->get_stream_info("meta-1");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->tombstoned);
}

TEST_F(client_ops_test, snapshots) {
  auto none = client_->get_snapshot("snap-1");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client_->append(append_of("snap-1", expected_version::any(), {event("A", "x")})));
  }
  ASSERT_TRUE(client_->put_snapshot("snap-1", stream_version{1}, R"({"total":2})"));
  auto snap = client_->get_snapshot("snap-1");
  ASSERT_TRUE(snap.ok());
  ASSERT_TRUE(snap->has_value());
  EXPECT_EQ((*snap)->version.value(), 1u);
  EXPECT_EQ((*snap)->payload, R"({"total":2})");
  // A snapshot past the stream's last version is refused.
  auto bad = client_->put_snapshot("snap-1", stream_version{9}, "x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::invalid_argument);
}

TEST_F(client_ops_test, pipelined_requests_all_complete_in_order_per_stream) {
  constexpr int k_requests = 500;
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  std::vector<std::uint64_t> first_versions;
  std::atomic<int> failures{0};
  for (int i = 0; i < k_requests; ++i) {
    client_->async().append(
        append_of("pipe-1", expected_version::any(), {event("P", std::to_string(i))}),
        [&](engine::result<actors::append_reply> r) {
          std::lock_guard lock(mu);
          if (r) {
            first_versions.push_back(r->first_version.value());
          } else {
            ++failures;
          }
          ++done;
          cv.notify_all();
        });
  }
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return done == k_requests; }));
  EXPECT_EQ(failures.load(), 0);
  std::sort(first_versions.begin(), first_versions.end());
  for (int i = 0; i < k_requests; ++i) EXPECT_EQ(first_versions[i], static_cast<std::uint64_t>(i));
}

TEST_F(client_ops_test, data_survives_a_restart) {
  auto e = event("A", R"({"k":1})");
  ASSERT_TRUE(client_->append(append_of("restart-1", expected_version::no_stream(), {e})));
  ASSERT_TRUE(client_->put_snapshot("restart-1", stream_version{0}, "snap"));
  client_.reset();
  std::chrono::milliseconds took{};
  EXPECT_EQ(node_->terminate(std::chrono::seconds(10), &took), 0);
  start_node();
  auto page = client_->read_last("restart-1");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].id, e.id);
  auto snap = client_->get_snapshot("restart-1");
  ASSERT_TRUE(snap.ok() && snap->has_value());
  EXPECT_EQ((*snap)->payload, "snap");
}

// The names of process `pid`'s threads (/proc/<pid>/task/*/comm).
std::multiset<std::string> thread_names(pid_t pid) {
  std::multiset<std::string> names;
  const auto tasks = std::filesystem::path("/proc") / std::to_string(pid) / "task";
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::ifstream in(task.path() / "comm");
    std::string name;
    if (std::getline(in, name)) names.insert(name);
  }
  return names;
}

TEST_F(client_ops_test, node_threads_carry_names_operators_can_find_in_top_and_perf) {
  const auto names = thread_names(node_->pid());
  EXPECT_EQ(names.count("annal-io"), 1u);  // annal dev: one io thread, one sync thread
  EXPECT_EQ(names.count("annal-sync"), 1u);
  EXPECT_EQ(names.count("annal-checkpt"), 1u);
  EXPECT_EQ(names.count("annal-logprep"), 1u);  // fsync=always prepares node-log segments
}

}  // namespace
}  // namespace annal::testing
