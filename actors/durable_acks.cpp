#include "actors/durable_acks.hpp"

namespace annal::actors {

bool durable_acks::hold(node_log_position after, held reply, node_log_position durable) {
  std::lock_guard lock(mu_);
  if (waiters_.empty() && after <= durable) {
    answer(reply, request_clock::now());
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
    answer(waiters_.front().reply, now);
    waiters_.pop_front();
  }
  return !waiters_.empty();
}

std::size_t durable_acks::fail_all(const engine::error& e) {
  std::lock_guard lock(mu_);
  const auto now = request_clock::now();
  for (auto& w : waiters_) fail(w.reply, e, now);
  const std::size_t failed = waiters_.size();
  waiters_.clear();
  return failed;
}

bool durable_acks::empty() const {
  std::lock_guard lock(mu_);
  return waiters_.empty();
}

void durable_acks::answer(held& reply, request_clock::time_point now) {
  if (auto* a = std::get_if<held_append>(&reply)) {
    metrics_.append_seconds.observe(std::chrono::duration<double>(now - a->received).count());
    a->reply(std::move(a->value));
  } else if (auto* s = std::get_if<held_shipped>(&reply)) {
    s->reply(std::move(s->value));
  } else {
    auto& w = std::get<held_write>(reply);
    w.reply(std::move(w.value));
  }
}

void durable_acks::fail(held& reply, const engine::error& e, request_clock::time_point now) {
  metrics_.count_error(e.code);
  if (auto* a = std::get_if<held_append>(&reply)) {
    metrics_.append_seconds.observe(std::chrono::duration<double>(now - a->received).count());
    a->reply(e);
  } else if (auto* s = std::get_if<held_shipped>(&reply)) {
    s->reply(e);
  } else {
    std::get<held_write>(reply).reply(e);
  }
}

}  // namespace annal::actors
