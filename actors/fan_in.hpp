#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "actors/requests.hpp"

namespace annal::actors {

// Gathers the replies of `n` requests sent side by side (one per partition,
// or one per node) and hands them over together, in slot order, once the
// last one arrived: `done` runs exactly once, on the thread of the last reply
// (at once, in make(), when n == 0).
//
// Thread-safe: the slots may be called from any threads. Shared: each slot
// holds the state alive until it has been called.
template <class T>
class fan_in : public std::enable_shared_from_this<fan_in<T>> {
  struct private_tag {};

 public:
  using done_fn = std::function<void(std::vector<result<T>>)>;

  static std::shared_ptr<fan_in> make(std::size_t n, done_fn done) {
    auto f = std::make_shared<fan_in>(private_tag{}, n, std::move(done));
    if (n == 0) f->finish();
    return f;
  }

  fan_in(private_tag, std::size_t n, done_fn done)
      : missing_(n), results_(n), done_(std::move(done)) {}

  // The reply callback of request `i`. Requires: i < n; called once.
  reply_fn<T> slot(std::size_t i) {
    return [self = this->shared_from_this(), i](result<T> r) {
      bool last = false;
      {
        std::lock_guard lock(self->mu_);
        self->results_[i].emplace(std::move(r));
        last = --self->missing_ == 0;
      }
      if (last) self->finish();
    };
  }

 private:
  // Runs once: after the last slot, nothing touches results_ any more.
  void finish() {
    std::vector<result<T>> all;
    all.reserve(results_.size());
    for (auto& r : results_) all.push_back(std::move(*r));
    auto done = std::move(done_);
    done(std::move(all));
  }

  std::mutex mu_;
  std::size_t missing_;                            // guarded by mu_
  std::vector<std::optional<result<T>>> results_;  // guarded by mu_ until the last reply
  done_fn done_;
};

}  // namespace annal::actors
