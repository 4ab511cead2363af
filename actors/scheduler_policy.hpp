#pragma once

// The node's CAF scheduler policy: work stealing whose idle workers spin for a
// short, bounded time and then park on a condition variable.
//
// CAF's own work-stealing policy polls for 25 ms after each job (500 attempts
// with 50 µs sleeps) before it blocks. Under a trickle of requests (a live
// subscription at 1,000 appends/s) its workers never block, and their sleeps
// and wake-ups compete with the io and sync threads for the cores; that was
// most of the append acknowledgement's tail (docs/benchmarks.md). Turning the
// polling off made every message to a sleeping worker pay a futex wake-up and
// cost a quarter of the throughput under load. This policy avoids both: a job
// goes to a worker that is awake when there is one, and an idle worker stops
// spinning after `spin` (default 50 µs).
//
// Contract, for N workers, each running (executing a job), spinning (idle,
// polling its queue and stealing) or parked (blocked on its condition
// variable):
// - A job from outside the workers (network, sync and timer threads) goes to a
//   spinning worker if there is one, else to a parked one, which is woken,
//   else round-robin to a running one.
// - A job a worker sends while its own queue already holds work wakes one
//   parked peer, which then steals it.
// - A parked worker also wakes every `park` (10 ms) to steal, so a missed
//   wake-up costs latency, never progress.
// - Wake-ups use the queue's emptiness checked under the worker's mutex, so
//   the state flags are hints only.

#include <atomic>
#include <caf/detail/double_ended_queue.hpp>
#include <caf/policy/unprofiled.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

namespace annal::actors {

class spin_then_park : public caf::policy::unprofiled {
 public:
  using clock = std::chrono::steady_clock;
  using queue_type = caf::detail::double_ended_queue<caf::resumable>;

  // Settings, read from actor_system_config::content when the scheduler
  // starts: the spin time in microseconds (node_options::actor_spin_us) and
  // the longest a parked worker sleeps before it looks for work to steal.
  static constexpr const char* spin_key = "annal.actor-spin-us";
  static constexpr const char* park_key = "annal.actor-park-ms";
  static constexpr std::size_t default_spin_us = 50;
  static constexpr std::size_t default_park_ms = 10;

  enum class worker_state : int { running, spinning, parked };

  struct coordinator_data {
    explicit coordinator_data(caf::scheduler::abstract_coordinator*) {}
    std::atomic<std::size_t> next_worker{0};
  };

  struct worker_data {
    explicit worker_data(caf::scheduler::abstract_coordinator* coordinator);
    // The coordinator copies one initial value into every worker: the copy
    // takes the settings and starts with an empty queue.
    worker_data(const worker_data& other);

    queue_type queue;
    clock::duration spin;
    clock::duration park;
    std::atomic<worker_state> state{worker_state::running};
    std::mutex park_mu;
    std::condition_variable park_cv;
    bool parked = false;  // guarded by park_mu
    bool woken = false;   // guarded by park_mu: a peer asks this worker to steal
  };

  template <class Coordinator>
  void central_enqueue(Coordinator* self, caf::resumable* job) {
    const std::size_t n = self->num_workers();
    const std::size_t start = d(self).next_worker.fetch_add(1, std::memory_order_relaxed);
    decltype(self->worker_by_id(0)) parked = nullptr;
    for (std::size_t k = 0; k < n; ++k) {
      auto* w = self->worker_by_id((start + k) % n);
      const auto state = d(w).state.load(std::memory_order_relaxed);
      if (state == worker_state::spinning) {
        w->external_enqueue(job);
        return;
      }
      if (state == worker_state::parked && parked == nullptr) parked = w;
    }
    (parked != nullptr ? parked : self->worker_by_id(start % n))->external_enqueue(job);
  }

  template <class Worker>
  void external_enqueue(Worker* self, caf::resumable* job) {
    d(self).queue.append(job);
    wake(d(self));
  }

  template <class Worker>
  void internal_enqueue(Worker* self, caf::resumable* job) {
    const bool backlog = !d(self).queue.empty();
    d(self).queue.prepend(job);
    if (backlog) wake_parked_peer(self);
  }

  template <class Worker>
  void resume_job_later(Worker* self, caf::resumable* job) {
    const bool backlog = !d(self).queue.empty();
    d(self).queue.append(job);
    if (backlog) wake_parked_peer(self);
  }

  template <class Worker>
  caf::resumable* dequeue(Worker* self) {
    auto& data = d(self);
    for (;;) {
      data.state.store(worker_state::spinning, std::memory_order_relaxed);
      const auto deadline = clock::now() + data.spin;
      for (std::size_t i = 0;; ++i) {
        if (auto* job = take(self)) return job;
        if ((i & 7) == 7 && clock::now() >= deadline) break;
        std::this_thread::yield();
      }
      {
        std::unique_lock<std::mutex> guard(data.park_mu);
        data.parked = true;
        data.state.store(worker_state::parked, std::memory_order_relaxed);
        data.park_cv.wait_for(guard, data.park, [&] { return data.woken || !data.queue.empty(); });
        data.parked = false;
        data.woken = false;
      }
      data.state.store(worker_state::spinning, std::memory_order_relaxed);
      if (auto* job = take(self)) return job;
    }
  }

  template <class Worker, class UnaryFunction>
  void foreach_resumable(Worker* self, UnaryFunction f) {
    for (auto* job = d(self).queue.take_head(); job != nullptr; job = d(self).queue.take_head())
      f(job);
  }

  template <class Coordinator, class UnaryFunction>
  void foreach_central_resumable(Coordinator*, UnaryFunction) {}

 private:
  // The next job of the worker's own queue, else the oldest job of a peer's.
  template <class Worker>
  caf::resumable* take(Worker* self) {
    auto* job = d(self).queue.take_head();
    if (job == nullptr) {
      auto* parent = self->parent();
      const std::size_t n = parent->num_workers();
      for (std::size_t k = 1; k < n && job == nullptr; ++k)
        job = d(parent->worker_by_id((self->id() + k) % n)).queue.take_tail();
    }
    if (job != nullptr) d(self).state.store(worker_state::running, std::memory_order_relaxed);
    return job;
  }

  template <class Worker>
  void wake_parked_peer(Worker* self) {
    auto* parent = self->parent();
    const std::size_t n = parent->num_workers();
    for (std::size_t k = 1; k < n; ++k) {
      auto& peer = d(parent->worker_by_id((self->id() + k) % n));
      if (peer.state.load(std::memory_order_relaxed) != worker_state::parked) continue;
      std::lock_guard<std::mutex> guard(peer.park_mu);
      if (peer.parked) {
        peer.woken = true;
        peer.park_cv.notify_one();
        return;
      }
    }
  }

  static void wake(worker_data& data);
};

}  // namespace annal::actors
