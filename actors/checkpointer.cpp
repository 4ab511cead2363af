#include "actors/checkpointer.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

namespace annal::actors {

checkpointer::checkpointer(engine::file_system& fs, node_metrics& metrics, go_fn go,
                           done_fn done)
    : fs_(fs), metrics_(metrics), go_(std::move(go)), done_(std::move(done)) {}

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

void checkpointer::request(partition_id p, std::vector<std::string> write_back) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    queue_.push_back({p, std::move(write_back)});
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
    queued next = std::move(queue_.front());
    queue_.pop_front();
    const partition_id p = next.partition;
    lock.unlock();
    for (const auto& path : next.write_back) {
      // A hint: the checkpoint's own sync reports what matters.
      if (auto ec = fs_.write_back(path)) {
        spdlog::debug("partition {}: write-back of {}: {}", p.value(), path, ec.message());
      }
    }
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
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
      // Observed first: whoever sees the count sees the duration too.
      metrics_.checkpoint_seconds.observe(took.count());
      metrics_.checkpoints.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("partition {}: checkpoint in {:.1f} ms", p.value(), took.count() * 1000);
    }
    done_(p, std::move(failure));
    lock.lock();
  }
}

}  // namespace annal::actors
