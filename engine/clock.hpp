#pragma once

#include "engine/types.hpp"

namespace annal::engine {

// The wall clock the engine stamps events with and judges max_age by.
// Implementations are thread-safe.
class clock {
 public:
  virtual ~clock() = default;
  virtual timestamp_us now_us() = 0;
};

// std::chrono::system_clock. Lives for the whole program.
clock& system_clock();

}  // namespace annal::engine
