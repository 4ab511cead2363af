// What a node acknowledges survives: a clean stop and reopen, a killed
// process, and a partition that fails to open answers with its error.

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <thread>

#include "engine/file_names.hpp"
#include "engine/log_format.hpp"
#include "engine/partitioning.hpp"
#include "engine/store.hpp"
#include "tests/actors/node_harness.hpp"
#include "tests/support/byte_damage.hpp"
#include "tests/support/event_factory.hpp"

namespace annal::testing {
namespace {

using engine::errc;
using engine::expected_version;

std::unique_ptr<engine::store> open_store(const std::string& dir) {
  engine::store_options o;
  o.directory = dir;
  o.node_log.mode = engine::fsync_mode::none;
  auto opened = engine::store::open(std::move(o));
  if (!opened) throw std::runtime_error("store::open: " + opened.err().message);
  return std::move(opened).value();
}

// The id stored at `version` of `stream`, or nullopt.
std::optional<event_id> id_at(engine::store& st, const std::string& stream,
                              std::uint64_t version) {
  auto* p = st.get(st.partition_for(stream)).value();
  auto page = p->read_stream(stream, stream_version{version}, 1, engine::read_direction::forward);
  if (!page || page->events.empty() || page->events[0].version.value() != version) {
    return std::nullopt;
  }
  return page->events[0].id;
}

class node_durability_test : public ::testing::TestWithParam<engine::fsync_mode> {};

TEST_P(node_durability_test, stop_then_reopen_sees_every_acknowledged_append) {
  temp_dir dir;
  const auto options = small_node_options(dir, GetParam());
  constexpr int k_threads = 4;
  constexpr int k_per_thread = 300;
  std::mutex mu;
  std::map<std::pair<std::string, std::uint64_t>, event_id> acknowledged;  // guarded by mu
  {
    auto node = start_node(options);
    reply_counter replies(k_threads * k_per_thread);
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < k_per_thread; ++i) {
          const std::string stream = "durable-" + std::to_string((t * k_per_thread + i) % 7);
          const auto id = make_event_id(static_cast<std::uint64_t>(t * k_per_thread + i));
          std::vector<engine::event_input> events{engine::event_input{id, "t", "{}", {}}};
          node->handler().append(append_of(stream, expected_version::any(), std::move(events)),
                                 [&, stream, id](engine::result<actors::append_reply> r) {
                                   if (r) {
                                     std::lock_guard lock(mu);
                                     acknowledged[{stream, r->first_version.value()}] = id;
                                   }
                                   replies.arrived();
                                 });
        }
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_TRUE(replies.wait());
    node->stop();
  }
  ASSERT_EQ(acknowledged.size(), static_cast<std::size_t>(k_threads * k_per_thread));

  {
    auto st = open_store(options.data_dir);
    // The final checkpoint covered everything: nothing to replay.
    EXPECT_EQ(st->recovery().replayed_records, 0u);
    for (const auto& [key, id] : acknowledged) {
      EXPECT_EQ(id_at(*st, key.first, key.second), id) << key.first << "@" << key.second;
    }
  }
  // And through a new node.
  auto node = start_node(options);
  auto page = await_reply<engine::read_page>([&](auto reply) {
    node->handler().read(actors::read_request{"durable-0", stream_version{0}, false, 10000,
                                              engine::read_direction::forward},
                         std::move(reply));
  });
  ASSERT_TRUE(page.ok()) << page.err().message;
  std::size_t expected = 0;
  for (const auto& [key, id] : acknowledged) expected += key.first == "durable-0" ? 1 : 0;
  EXPECT_EQ(page->events.size(), expected);
}

// A child process serves appends and reports each acknowledgement through a
// pipe; the parent kills it with SIGKILL mid-load. Every acknowledged event
// must be in the store afterwards: replies come only after the round that
// wrote (and, under fsync=always, synced) them.
TEST_P(node_durability_test, acknowledged_appends_survive_a_killed_process) {
  temp_dir dir;
  const auto options = small_node_options(dir, GetParam());
  constexpr int k_streams = 5;
  struct ack {
    std::uint32_t stream;
    std::uint32_t version;
    std::uint64_t n;
  };
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    auto started = actors::node::start(options);
    if (!started) ::_exit(2);
    auto& node = **started;
    // Keeps 32 appends in flight until killed.
    std::atomic<std::uint64_t> next{0};
    std::function<void()> issue = [&] {
      const std::uint64_t n = next.fetch_add(1);
      const auto s = static_cast<std::uint32_t>(n % k_streams);
      std::vector<engine::event_input> events{make_event(n)};
      node.handler().append(
          append_of("killed-" + std::to_string(s), expected_version::any(), std::move(events)),
          [&, s, n](engine::result<actors::append_reply> r) {
            if (r) {
              const ack a{s, static_cast<std::uint32_t>(r->first_version.value()), n};
              if (::write(fds[1], &a, sizeof a) != sizeof a) ::_exit(3);
            }
            issue();
          });
    };
    for (int i = 0; i < 32; ++i) issue();
    for (;;) ::pause();
  }
  ::close(fds[1]);
  std::vector<ack> acks;
  ack a;
  while (acks.size() < 2000 && ::read(fds[0], &a, sizeof a) == sizeof a) acks.push_back(a);
  ::kill(child, SIGKILL);
  int wstatus = 0;
  ::waitpid(child, &wstatus, 0);
  // Acknowledgements written before the kill.
  while (::read(fds[0], &a, sizeof a) == sizeof a) acks.push_back(a);
  ::close(fds[0]);
  ASSERT_GE(acks.size(), 2000u) << "the child stopped early (status " << wstatus << ")";

  auto st = open_store(options.data_dir);
  for (const auto& k : acks) {
    EXPECT_EQ(id_at(*st, "killed-" + std::to_string(k.stream), k.version), make_event_id(k.n))
        << "stream " << k.stream << " version " << k.version;
  }
}

TEST(node_partition_unavailable, a_partition_that_fails_to_open_answers_with_its_error) {
  temp_dir dir;
  const auto options = small_node_options(dir, engine::fsync_mode::none);
  const std::string bad = "damaged-1";
  std::uint64_t damaged_at = 0;
  partition_id bad_partition{0};
  {
    engine::store_options so;
    so.directory = options.data_dir;
    so.partition_count = options.partition_count;
    so.node_log.mode = engine::fsync_mode::none;
    auto st = std::move(engine::store::open(so)).value();
    bad_partition = st->partition_for(bad);
    auto* p = st->get(bad_partition).value();
    damaged_at = st->wal().appended_position().value();
    ASSERT_TRUE(p->append(bad, expected_version::any(), make_events(1, 1)).ok());
    ASSERT_TRUE(p->append(bad, expected_version::any(), make_events(2, 1)).ok());
    ASSERT_TRUE(st->sync().ok());
    // The other partitions checkpoint past the damage and open.
    for (std::uint32_t i = 0; i < st->partition_count(); ++i) {
      if (partition_id{i} == bad_partition) continue;
      ASSERT_TRUE(st->get(partition_id{i}).value()->checkpoint().ok());
    }
  }
  const std::string wal = engine::node_log_directory(options.data_dir) + "/" +
                          engine::node_log::segment_name(node_log_position{0});
  ASSERT_FALSE(flip_bit(wal, damaged_at + engine::log_format::k_header_size + 8, 3));

  auto node = start_node(options);
  auto appended = await_reply<actors::append_reply>([&](auto reply) {
    node->handler().append(append_of(bad, expected_version::any(), make_events(3, 1)),
                           std::move(reply));
  });
  ASSERT_FALSE(appended.ok());
  EXPECT_EQ(appended.err().code, errc::partition_unavailable);
  EXPECT_NE(appended.err().message.find(wal), std::string::npos) << appended.err().message;
  auto page = await_reply<engine::read_page>([&](auto reply) {
    node->handler().read_last(bad, std::move(reply));
  });
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.err().code, errc::partition_unavailable);

  // A stream of another partition is served.
  std::string good;
  for (int i = 0; good.empty(); ++i) {
    const std::string s = "good-" + std::to_string(i);
    if (engine::partition_for(s, node->partition_count()) != bad_partition) good = s;
  }
  auto ok = await_reply<actors::append_reply>([&](auto reply) {
    node->handler().append(append_of(good, expected_version::any(), make_events(4, 1)),
                           std::move(reply));
  });
  EXPECT_TRUE(ok.ok()) << ok.err().message;
  EXPECT_EQ(node->metrics().errors[static_cast<std::size_t>(errc::partition_unavailable)].load(),
            2u);
}

INSTANTIATE_TEST_SUITE_P(fsync, node_durability_test,
                         ::testing::Values(engine::fsync_mode::always, engine::fsync_mode::none),
                         [](const auto& info) {
                           return std::string(info.param == engine::fsync_mode::always ? "always"
                                                                                       : "none");
                         });

}  // namespace
}  // namespace annal::testing
