#pragma once

#include <chrono>
#include <future>
#include <string>

#include "engine/errors.hpp"
#include "engine/partitioning.hpp"

// Helpers for tests that drive asynchronous request handlers.
namespace annal::testing {

// Calls `call(reply)` and waits up to 30 s for the reply (errc::timeout
// after that).
template <class T, class Call>
engine::result<T> await_reply(Call call) {
  std::promise<engine::result<T>> done;
  call([&done](engine::result<T> r) { done.set_value(std::move(r)); });
  auto future = done.get_future();
  if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    return engine::error{engine::errc::timeout, "no reply in 30 s"};
  }
  return future.get();
}

// A stream id in partition `p` of `partition_count`, distinct for each `n`.
inline std::string stream_in_partition(std::uint32_t p, std::uint32_t partition_count, int n) {
  for (int i = 0;; ++i) {
    auto s = "s-" + std::to_string(n) + "-" + std::to_string(i);
    if (engine::partition_for(s, partition_count).value() == p) return s;
  }
}

}  // namespace annal::testing
