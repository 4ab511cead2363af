// Background checkpoints under load: they happen (small checkpoint_bytes),
// lose nothing, and a reopened store replays only what came after them.

#include <gtest/gtest.h>
#include <pthread.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/store.hpp"
#include "engine/partitioning.hpp"
#include "tests/actors/node_harness.hpp"
#include "tests/support/forwarding_file_system.hpp"
#include "tests/support/event_factory.hpp"

namespace annal::testing {
namespace {

using engine::expected_version;

class node_checkpoint_test : public ::testing::TestWithParam<engine::fsync_mode> {};

TEST_P(node_checkpoint_test, checkpoints_under_load_lose_nothing) {
  temp_dir dir;
  auto options = small_node_options(dir, GetParam());
  options.partition.checkpoint_bytes = 16u << 10;
  constexpr int k_threads = 3;
  constexpr int k_streams = 12;
  const std::string data(200, 'd');

  auto node = start_node(options);
  std::atomic<bool> running{true};
  std::atomic<int> failures{0};
  std::mutex mu;
  std::vector<std::uint64_t> acknowledged(k_streams, 0);  // events per stream; guarded by mu
  std::vector<std::thread> threads;
  // Each thread keeps a window of appends in flight until told to stop and
  // waits for its last replies.
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      std::uint64_t sent = 0;
      auto replies = std::make_shared<std::atomic<std::uint64_t>>(0);
      while (running.load()) {
        const int window = 16;
        reply_counter batch(window);
        for (int i = 0; i < window; ++i, ++sent) {
          const int s = static_cast<int>((sent * k_threads + t) % k_streams);
          std::vector<engine::event_input> events{
              engine::event_input{{}, "load", data, {}}};
          node->handler().append(
              append_of("ckpt-" + std::to_string(s), expected_version::any(), std::move(events)),
              [&, s](engine::result<actors::append_reply> r) {
                if (r) {
                  std::lock_guard lock(mu);
                  ++acknowledged[s];
                } else {
                  failures.fetch_add(1);
                }
                batch.arrived();
              });
        }
        if (!batch.wait()) {
          failures.fetch_add(1000);
          return;
        }
      }
    });
  }
  // Load until several background checkpoints ran (deadline: the reply one).
  const auto deadline = std::chrono::steady_clock::now() + k_reply_deadline;
  while (node->metrics().checkpoints.load() < 8 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling, not synchronization
  }
  running = false;
  for (auto& t : threads) t.join();
  EXPECT_GE(node->metrics().checkpoints.load(), 8u);
  EXPECT_GE(node->metrics().checkpoint_seconds.count(), 8u);
  EXPECT_GT(node->metrics().checkpoint_seconds.sum(), 0.0);
  EXPECT_EQ(failures.load(), 0);

  // Reads during the node's life see every acknowledged event.
  for (int s = 0; s < k_streams; ++s) {
    auto page = await_reply<engine::read_page>([&](auto reply) {
      node->handler().read(actors::read_request{"ckpt-" + std::to_string(s), stream_version{0},
                                                false, 1000000, engine::read_direction::forward},
                           std::move(reply));
    });
    ASSERT_TRUE(page.ok()) << page.err().message;
    EXPECT_EQ(page->events.size(), acknowledged[s]) << "stream " << s;
  }
  node->stop();
  // Each checkpoint the actors applied (stop waits for them) held its
  // partition up once.
  EXPECT_GE(node->metrics().checkpoint_pause_seconds.count(), 8u);

  engine::store_options so;
  so.directory = options.data_dir;
  so.partition = options.partition;
  auto st = std::move(engine::store::open(so)).value();
  EXPECT_EQ(st->recovery().replayed_records, 0u);
  for (int s = 0; s < k_streams; ++s) {
    const std::string stream = "ckpt-" + std::to_string(s);
    auto info = st->get(st->partition_for(stream)).value()->get_stream_info(stream);
    ASSERT_TRUE(info.ok());
    ASSERT_TRUE(info->last_version.has_value());
    EXPECT_EQ(info->last_version->value() + 1, acknowledged[s]) << stream;
  }
}

// The partition whose checkpoint file `path` is (".../partitions/00003/..."),
// or nullopt for other files.
std::optional<partition_id> checkpoint_partition(const std::string& path) {
  const std::string folder = "/partitions/";
  const auto at = path.find(folder);
  if (at == std::string::npos || path.find(".ckpt") == std::string::npos) return std::nullopt;
  return partition_id{static_cast<std::uint32_t>(std::stoul(path.substr(at + folder.size(), 5)))};
}

// A node on `fs` that checkpoints a partition once it has 16 KiB of log.
actors::node_options checkpointing_options(const temp_dir& dir, engine::file_system& fs) {
  auto options = small_node_options(dir, engine::fsync_mode::always);
  options.fs = &fs;
  options.partition.checkpoint_bytes = 16u << 10;
  return options;
}

// Holds every partition checkpoint file's write until release().
class held_checkpoints final : public forwarding_file_system {
 public:
  held_checkpoints() : forwarding_file_system(engine::posix_file_system()) {}

  std::error_code write_file(const std::string& path, std::span<const std::byte> data) override {
    if (auto p = checkpoint_partition(path)) {
      std::unique_lock lock(mu_);
      if (holding_) {
        held_.push_back(*p);
        cv_.notify_all();
        cv_.wait_for(lock, k_reply_deadline, [this] { return !holding_; });
      }
    }
    return base_.write_file(path, data);
  }

  // The partition of the first checkpoint write held, once one is.
  std::optional<partition_id> wait_for_held() {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, k_reply_deadline, [this] { return !held_.empty(); })) {
      return std::nullopt;
    }
    return held_.front();
  }
  void release() {
    std::lock_guard lock(mu_);
    holding_ = false;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool holding_ = true;            // guarded by mu_
  std::vector<partition_id> held_;  // guarded by mu_
};

// While a partition's checkpoint is being written (its file write held), the
// partition acknowledges writes and answers reads; a clear sent meanwhile
// waits for the checkpoint and then succeeds.
TEST(node_checkpoint_in_progress_test, the_partition_serves_while_its_checkpoint_is_written) {
  temp_dir dir;
  held_checkpoints fs;
  const auto options = checkpointing_options(dir, fs);
  auto node = start_node(options);
  struct release_on_exit {
    held_checkpoints& fs;
    ~release_on_exit() { fs.release(); }
  } releaser{fs};

  // Load one stream until some partition's checkpoint is being written.
  const std::string data(1000, 'd');
  std::atomic<bool> loading{true};
  std::thread loader([&] {
    for (int i = 0; i < 200 && loading.load(); ++i) {
      std::vector<engine::event_input> events(4, engine::event_input{{}, "load", data, {}});
      try {
        (void)await_reply<actors::append_reply>([&](auto reply) {
          node->handler().append(append_of("load", expected_version::any(), std::move(events)),
                                 std::move(reply));
        });
      } catch (const std::runtime_error&) {
        return;  // no reply: the checks below fail
      }
    }
  });
  const std::optional<partition_id> held = fs.wait_for_held();
  loading = false;
  loader.join();
  ASSERT_TRUE(held.has_value()) << "no checkpoint began";

  std::string stream;
  for (int i = 0; stream.empty(); ++i) {
    const std::string candidate = "served-" + std::to_string(i);
    if (engine::partition_for(candidate, options.partition_count) == *held) stream = candidate;
  }
  for (int i = 0; i < 3; ++i) {
    auto appended = await_reply<actors::append_reply>([&](auto reply) {
      node->handler().append(
          append_of(stream, expected_version::any(), {engine::event_input{{}, "x", "y", {}}}),
          std::move(reply));
    });
    ASSERT_TRUE(appended.ok()) << appended.err().message;
  }
  auto page = await_reply<engine::read_page>([&](auto reply) {
    node->handler().read(
        actors::read_request{stream, stream_version{0}, false, 10, engine::read_direction::forward},
        std::move(reply));
  });
  ASSERT_TRUE(page.ok()) << page.err().message;
  EXPECT_EQ(page->events.size(), 3u);
  EXPECT_EQ(node->metrics().checkpoints.load(), 0u) << "the checkpoint is still held";

  // A clear (the partition moved away) waits for the checkpoint to end.
  node->set_owned(*held, false);
  auto cleared = std::async(std::launch::async, [&] {
    return await_reply<lsn>([&](auto reply) { node->clear_partition(*held, std::move(reply)); });
  });
  fs.release();
  const auto end = cleared.get();
  ASSERT_TRUE(end.ok()) << end.err().message;
  EXPECT_EQ(*end, lsn{0});
  EXPECT_GE(node->metrics().checkpoints.load(), 1u);
  node->stop();
}

// The first partition checkpoint file written fails with ENOSPC; records the
// partition of that failure and of every checkpoint file stored after it.
class full_disk_once final : public forwarding_file_system {
 public:
  full_disk_once() : forwarding_file_system(engine::posix_file_system()) {}

  std::error_code write_file(const std::string& path, std::span<const std::byte> data) override {
    const auto p = checkpoint_partition(path);
    if (!p) return base_.write_file(path, data);
    std::lock_guard lock(mu_);
    if (!failed_) {
      failed_ = p;
      return std::make_error_code(std::errc::no_space_on_device);
    }
    auto ec = base_.write_file(path, data);
    if (!ec && *p == *failed_) ++stored_after_;
    return ec;
  }
  std::optional<partition_id> failed() {
    std::lock_guard lock(mu_);
    return failed_;
  }
  // Checkpoint files of the failed partition stored since.
  int stored_after() {
    std::lock_guard lock(mu_);
    return stored_after_;
  }

 private:
  std::mutex mu_;
  std::optional<partition_id> failed_;  // guarded by mu_
  int stored_after_ = 0;                // guarded by mu_
};

// A checkpoint whose file cannot be stored is retried (after 1 s), and the
// partition takes writes meanwhile.
TEST(node_checkpoint_retry_test, a_checkpoint_that_failed_to_store_its_file_is_retried) {
  temp_dir dir;
  full_disk_once fs;
  const auto options = checkpointing_options(dir, fs);
  auto node = start_node(options);

  // Each stream in its own partition, so that every partition fills up.
  std::vector<std::string> streams(options.partition_count);
  for (int i = 0, found = 0; found < static_cast<int>(streams.size()); ++i) {
    const std::string candidate = "retry-" + std::to_string(i);
    auto& slot = streams[engine::partition_for(candidate, options.partition_count).value()];
    if (slot.empty()) {
      slot = candidate;
      ++found;
    }
  }
  const std::string data(1000, 'd');
  std::vector<std::uint64_t> acknowledged(streams.size(), 0);
  const auto deadline = std::chrono::steady_clock::now() + k_reply_deadline;
  while (fs.stored_after() < 2 && std::chrono::steady_clock::now() < deadline) {
    for (std::size_t s = 0; s < streams.size(); ++s) {
      std::vector<engine::event_input> events(4, engine::event_input{{}, "load", data, {}});
      auto appended = await_reply<actors::append_reply>([&](auto reply) {
        node->handler().append(append_of(streams[s], expected_version::any(), std::move(events)),
                               std::move(reply));
      });
      ASSERT_TRUE(appended.ok()) << appended.err().message;
      acknowledged[s] += 4;
    }
  }
  ASSERT_TRUE(fs.failed().has_value());
  EXPECT_GE(fs.stored_after(), 2)
      << "partition " << fs.failed()->value() << " never checkpointed again";
  EXPECT_EQ(node->metrics().checkpoint_failures.load(), 1u);
  node->stop();

  engine::store_options so;
  so.directory = options.data_dir;
  so.partition = options.partition;
  auto st = std::move(engine::store::open(so)).value();
  for (std::size_t s = 0; s < streams.size(); ++s) {
    auto info = st->get(st->partition_for(streams[s])).value()->get_stream_info(streams[s]);
    ASSERT_TRUE(info.ok());
    ASSERT_TRUE(info->last_version.has_value());
    EXPECT_EQ(info->last_version->value() + 1, acknowledged[s]) << streams[s];
  }
}

// Records the name of the thread that removes each partition segment file.
class recorded_segment_removals final : public forwarding_file_system {
 public:
  recorded_segment_removals() : forwarding_file_system(engine::posix_file_system()) {}

  std::error_code remove_file(const std::string& path) override {
    if (path.find("/partitions/") != std::string::npos && path.ends_with(".seg")) {
      char name[16] = {};
      pthread_getname_np(pthread_self(), name, sizeof name);
      std::lock_guard lock(mu_);
      threads_.emplace_back(name);
    }
    return base_.remove_file(path);
  }
  std::vector<std::string> threads() {
    std::lock_guard lock(mu_);
    return threads_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> threads_;  // guarded by mu_
};

// Segments that retention emptied are removed by the checkpoint thread, not
// by the partition's actor (an unlink of a large file takes milliseconds, and
// the actor's worker serves every partition).
TEST(node_retention_test, emptied_segments_are_removed_beside_the_partition) {
  temp_dir dir;
  recorded_segment_removals fs;
  auto options = checkpointing_options(dir, fs);
  options.partition.log.segment_bytes = 8u << 10;
  auto node = start_node(options);

  const std::string stream = "kept-short";
  engine::stream_metadata metadata;
  metadata.max_count = 4;
  const std::string data(1000, 'r');
  std::uint64_t appended = 0;
  const auto deadline = std::chrono::steady_clock::now() + k_reply_deadline;
  while (fs.threads().size() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::vector<engine::event_input> events(4, engine::event_input{{}, "load", data, {}});
    auto reply = await_reply<actors::append_reply>([&](auto r) {
      node->handler().append(append_of(stream, expected_version::any(), std::move(events)),
                             std::move(r));
    });
    ASSERT_TRUE(reply.ok()) << reply.err().message;
    appended += 4;
    if (appended == 4) {
      auto set = await_reply<actors::write_reply>([&](auto r) {
        node->handler().set_metadata(stream, metadata, std::move(r));
      });
      ASSERT_TRUE(set.ok()) << set.err().message;
    }
  }
  const auto threads = fs.threads();
  ASSERT_GE(threads.size(), 3u) << "retention removed no segment files";
  for (const auto& name : threads) EXPECT_EQ(name, "annal-checkpt");

  auto page = await_reply<engine::read_page>([&](auto r) {
    node->handler().read(actors::read_request{stream, stream_version{0}}, std::move(r));
  });
  ASSERT_TRUE(page.ok()) << page.err().message;
  ASSERT_EQ(page->events.size(), 4u);
  EXPECT_EQ(page->events.front().version.value(), appended - 4);
  node->stop();
}

INSTANTIATE_TEST_SUITE_P(fsync, node_checkpoint_test,
                         ::testing::Values(engine::fsync_mode::always, engine::fsync_mode::none),
                         [](const auto& info) {
                           return std::string(info.param == engine::fsync_mode::always ? "always"
                                                                                       : "none");
                         });

}  // namespace
}  // namespace annal::testing
