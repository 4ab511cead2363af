#pragma once

#include <spdlog/spdlog.h>

// Lowers spdlog's global level to `critical` for the object's lifetime, for
// randomized tests that reopen stores hundreds of times: recovery logs every
// file it cuts or removes, which would bury a failure's message.
// Header-only.
//
// Not thread-safe: spdlog's level is process-wide; create it on the test's
// thread, once.
namespace annal::testing {

class quiet_log {
 public:
  quiet_log() : level_(spdlog::get_level()) { spdlog::set_level(spdlog::level::critical); }
  ~quiet_log() { spdlog::set_level(level_); }
  quiet_log(const quiet_log&) = delete;
  quiet_log& operator=(const quiet_log&) = delete;

 private:
  spdlog::level::level_enum level_;
};

}  // namespace annal::testing
