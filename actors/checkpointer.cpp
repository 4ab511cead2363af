#include "actors/checkpointer.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

namespace annal::actors {

checkpointer::checkpointer(node_metrics& metrics, go_fn go, done_fn done)
    : metrics_(metrics), go_(std::move(go)), done_(std::move(done)) {}

checkpointer::~checkpointer() { stop(); }

void checkpointer::start() {
  thread_ = std::thread([this] { run(); });
}

void checkpointer::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void checkpointer::request(partition_id p) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    queue_.push_back(p);
  }
  cv_.notify_all();
}

void checkpointer::hand_over(partition_id p, engine::partition* part) {
  {
    std::lock_guard lock(mu_);
    handed_ = part;
  }
  cv_.notify_all();
}

void checkpointer::run() {
  pthread_setname_np(pthread_self(), "annal-checkpt");
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    const partition_id p = queue_.front();
    queue_.pop_front();
    lock.unlock();
    go_(p);
    lock.lock();
    // The actor always answers, also while the node stops.
    cv_.wait(lock, [this] { return handed_ != nullptr; });
    engine::partition* part = std::exchange(handed_, nullptr);
    lock.unlock();

    const auto started = std::chrono::steady_clock::now();
    auto done = part->checkpoint();
    std::optional<engine::error> failure;
    if (!done) {
      failure = done.err();
      spdlog::error("partition {}: checkpoint failed: {}", p.value(), done.err().message);
    } else {
      metrics_.checkpoints.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("partition {}: checkpoint in {:.1f} ms", p.value(),
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                              started)
                        .count());
    }
    done_(p, std::move(failure));
    lock.lock();
  }
}

}  // namespace annal::actors
