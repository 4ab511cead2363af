#include "actors/group_commit.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

namespace annal::actors {

group_commit::group_commit(engine::node_log& wal, std::uint32_t partition_count,
                           options options, node_metrics& metrics, partition_fn durable,
                           tick_fn tick)
    : wal_(wal),
      options_(options),
      metrics_(metrics),
      durable_(std::move(durable)),
      tick_(std::move(tick)) {
  partitions_.reserve(partition_count);
  for (std::uint32_t p = 0; p < partition_count; ++p) {
    partitions_.push_back(std::make_unique<partition_slot>(metrics));
  }
  last_tick_.store(wal.appended_position().value());
}

group_commit::~group_commit() { stop(); }

void group_commit::start() {
  const std::size_t n = std::max<std::size_t>(options_.threads, 1);
  for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
}

void group_commit::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void group_commit::run() {
  pthread_setname_np(pthread_self(), "annal-sync");
  const bool interval = options_.mode == engine::fsync_mode::interval;
  std::unique_lock lock(mu_);
  for (;;) {
    const auto ready = [this] { return stopping_ || pending_.load(); };
    if (interval) {
      cv_.wait_for(lock, options_.interval, ready);
    } else {
      cv_.wait(lock, ready);
    }
    if (stopping_) return;
    // Under fsync=interval an idle round still fdatasyncs what earlier rounds
    // only wrote, once the interval has passed.
    if (!pending_.exchange(false) && !interval) continue;
    lock.unlock();
    round();
    lock.lock();
  }
}

void group_commit::round() {
  const auto start = std::chrono::steady_clock::now();
  auto durable = wal_.sync();
  metrics_.sync_seconds.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  metrics_.sync_rounds.fetch_add(1, std::memory_order_relaxed);
  if (!durable) failed_.store(true);
  // Pairs with the fence in release() of another thread (either we see its
  // flag or it sees the position this round published), and with the one in
  // partition_actor::listen_for_releases().
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (std::uint32_t p = 0; p < partitions_.size(); ++p) {
    auto& flag = partitions_[p]->waiting;
    if (flag.load() && flag.exchange(false)) release(partition_id{p});
  }
  const std::uint64_t appended = wal_.appended_position().value();
  std::uint64_t last = last_tick_.load();
  if (appended - last >= options_.tick_bytes &&
      last_tick_.compare_exchange_strong(last, appended)) {
    tick_();
  }
}

engine::error group_commit::failure() const {
  auto failure = wal_.failure();
  return failure ? *failure : engine::error{engine::errc::io_error, "the node log failed"};
}

void group_commit::release(partition_id p) {
  auto& slot = *partitions_[p.value()];
  auto& acks = slot.acks;
  for (;;) {
    // Writes an earlier round made durable are acknowledged even if a later
    // round failed; only the rest fail.
    const auto durable = wal_.durable_position();
    if (!acks.release(durable)) break;
    if (failed()) {
      acks.fail_all(failure());
      break;
    }
    slot.waiting.store(true);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (wal_.durable_position() == durable && !failed()) break;
  }
  if (acks.listening()) durable_(p);
}

}  // namespace annal::actors
