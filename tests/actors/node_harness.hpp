#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "actors/node.hpp"
#include "tests/support/temp_dir.hpp"

// Helpers for tests that drive an actors::node through its request_handler
// from plain threads. Header-only.
namespace annal::testing {

// Generous: CI is a loaded 2-core box. A reply that takes this long is lost.
inline constexpr std::chrono::seconds k_reply_deadline{60};

// Calls `call(reply_fn)` and waits for the one reply. Throws (a test failure)
// if none comes before the deadline. Any thread.
template <class T, class Call>
engine::result<T> await_reply(Call&& call) {
  auto promise = std::make_shared<std::promise<engine::result<T>>>();
  auto future = promise->get_future();
  call(actors::reply_fn<T>([promise](engine::result<T> r) { promise->set_value(std::move(r)); }));
  if (future.wait_for(k_reply_deadline) != std::future_status::ready) {
    throw std::runtime_error("no reply before the deadline");
  }
  return future.get();
}

// Counts replies from many threads and waits until `expected` arrived.
// Thread-safe.
class reply_counter {
 public:
  explicit reply_counter(std::size_t expected) : expected_(expected) {}

  void arrived() {
    std::lock_guard lock(mu_);
    if (++arrived_ == expected_) cv_.notify_all();
  }
  // False if the deadline passed first.
  bool wait() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, k_reply_deadline, [this] { return arrived_ >= expected_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t expected_;
  std::size_t arrived_ = 0;  // guarded by mu_
};

inline actors::node_options small_node_options(const temp_dir& dir, engine::fsync_mode fsync) {
  actors::node_options o;
  o.data_dir = dir.file("data");
  o.partition_count = 4;
  o.fsync = fsync;
  return o;
}

inline std::unique_ptr<actors::node> start_node(actors::node_options o) {
  auto started = actors::node::start(std::move(o));
  if (!started) throw std::runtime_error("node::start: " + started.err().message);
  return std::move(started).value();
}

inline actors::append_request append_of(std::string stream, engine::expected_version expected,
                                        std::vector<engine::event_input> events) {
  return actors::append_request{std::move(stream), expected, std::move(events)};
}

}  // namespace annal::testing
