#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace annal::testing {

// Polls `condition` until it holds or `timeout` passes; returns its last
// value. Tests wait on conditions this way, never on fixed sleeps.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace annal::testing
