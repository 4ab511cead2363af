#include "actors/checkpointer.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <utility>

namespace annal::actors {

checkpointer::checkpointer(node_metrics& metrics, go_fn go, begun_fn begun, done_fn done)
    : metrics_(metrics), go_(std::move(go)), begun_(std::move(begun)), done_(std::move(done)) {}

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

void checkpointer::hand_over(engine::partition* part) {
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

    const auto encoding = std::chrono::steady_clock::now();
    auto begun = part->begin_checkpoint();
    metrics_.checkpoint_pause_seconds.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - encoding).count());
    begun_(p);  // `part` is the actor's again
    if (!begun) {
      spdlog::error("partition {}: checkpoint failed: {}", p.value(), begun.err().message);
      done_(p, nullptr, begun.err());
      lock.lock();
      continue;
    }
    auto job = std::make_shared<engine::checkpoint_job>(std::move(*begun));

    const auto started = std::chrono::steady_clock::now();
    auto written = job->write();
    std::optional<engine::error> failure;
    if (!written) {
      failure = written.err();
      spdlog::error("partition {}: checkpoint failed: {}", p.value(), written.err().message);
    } else {
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
      // Observed first: whoever sees the count sees the duration too.
      metrics_.checkpoint_seconds.observe(took.count());
      metrics_.checkpoints.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("partition {}: {} checkpoint {} ({} bytes) written in {:.1f} ms", p.value(),
                    job->delta() ? "delta" : "full", job->sequence(), job->bytes(),
                    took.count() * 1000);
    }
    done_(p, std::move(job), std::move(failure));
    lock.lock();
  }
}

}  // namespace annal::actors
