#include "engine/clock.hpp"

#include <chrono>

namespace annal::engine {
namespace {

class wall_clock final : public clock {
 public:
  timestamp_us now_us() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace

clock& system_clock() {
  static wall_clock instance;
  return instance;
}

}  // namespace annal::engine
