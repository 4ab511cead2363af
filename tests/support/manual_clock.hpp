#pragma once

#include <atomic>

#include "engine/clock.hpp"

namespace annal::testing {

// A clock tests set by hand. Thread-safe.
class manual_clock final : public engine::clock {
 public:
  explicit manual_clock(timestamp_us start = 1'700'000'000'000'000) : now_(start) {}

  timestamp_us now_us() override { return now_.load(); }
  void set(timestamp_us t) { now_.store(t); }
  void advance_seconds(std::int64_t s) { now_.fetch_add(s * 1'000'000); }

 private:
  std::atomic<timestamp_us> now_;
};

}  // namespace annal::testing
