#include "actors/durable_acks.hpp"

#include <type_traits>

namespace annal::actors {

bool durable_acks::hold(node_log_position after, held reply, node_log_position durable) {
  std::lock_guard lock(mu_);
  if (waiters_.empty() && after <= durable) {
    finish(reply, nullptr, request_clock::now());
    return false;
  }
  waiters_.push_back(waiter{after, std::move(reply)});
  return true;
}

bool durable_acks::release(node_log_position durable) {
  std::lock_guard lock(mu_);
  if (waiters_.empty() || durable < waiters_.front().after) return !waiters_.empty();
  const auto now = request_clock::now();
  while (!waiters_.empty() && waiters_.front().after <= durable) {
    finish(waiters_.front().reply, nullptr, now);
    waiters_.pop_front();
  }
  return !waiters_.empty();
}

std::size_t durable_acks::fail_all(const engine::error& e) {
  std::lock_guard lock(mu_);
  const auto now = request_clock::now();
  for (auto& w : waiters_) finish(w.reply, &e, now);
  const std::size_t failed = waiters_.size();
  waiters_.clear();
  return failed;
}

bool durable_acks::empty() const {
  std::lock_guard lock(mu_);
  return waiters_.empty();
}

void durable_acks::finish(held& reply, const engine::error* failure,
                          request_clock::time_point now) {
  if (failure) metrics_.count_error(failure->code);
  std::visit(
      [&](auto& h) {
        if constexpr (std::is_same_v<std::decay_t<decltype(h)>, held_append>) {
          metrics_.append_seconds.observe(
              std::chrono::duration<double>(now - h.received).count());
        }
        if (failure) {
          h.reply(*failure);
        } else {
          h.reply(std::move(h.value));
        }
      },
      reply);
}

}  // namespace annal::actors
