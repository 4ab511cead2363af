#include "actors/scheduler_policy.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/settings.hpp>

namespace annal::actors {

spin_then_park::worker_data::worker_data(caf::scheduler::abstract_coordinator* coordinator)
    : spin(
          std::chrono::microseconds(caf::get_or(coordinator->config(), spin_key, default_spin_us))),
      park(std::chrono::milliseconds(
          caf::get_or(coordinator->config(), park_key, default_park_ms))) {}

spin_then_park::worker_data::worker_data(const worker_data& other)
    : spin(other.spin), park(other.park) {}

void spin_then_park::wake(worker_data& data) {
  std::lock_guard<std::mutex> guard(data.park_mu);
  if (data.parked) data.park_cv.notify_one();
}

}  // namespace annal::actors
