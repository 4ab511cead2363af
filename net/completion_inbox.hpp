#pragma once

// Completions handed from other threads to one consumer in bursts.
//
// Contract:
// - push() from any thread. It returns true when it found the inbox empty;
//   that caller then schedules one drain() on the consumer.
// - drain() on the consumer only, never from inside a completion. It runs,
//   in push order, every completion queued when it starts. Those pushed
//   while it runs start a new burst (their first push returns true).
// So every completion runs exactly once, and a burst of completions costs
// one scheduled drain instead of one scheduled task each. The binary
// server's connections use it for actor replies: a burst is encoded whole
// and leaves in one socket write.

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace annal::net {

template <class Target> class completion_inbox {
public:
  // F: callable as f(Target&); may be move-only.
  template <class F> bool push(F f) {
    auto c = std::make_unique<holder<F>>(std::move(f));
    std::lock_guard lock(mu_);
    queued_.push_back(std::move(c));
    return queued_.size() == 1;
  }

  void drain(Target &target) {
    {
      std::lock_guard lock(mu_);
      running_.swap(queued_);
    }
    for (auto &c : running_)
      c->run(target);
    running_.clear();
  }

private:
  struct completion {
    virtual ~completion() = default;
    virtual void run(Target &target) = 0;
  };
  template <class F> struct holder final : completion {
    explicit holder(F f) : f(std::move(f)) {}
    void run(Target &target) override { f(target); }
    F f;
  };

  std::mutex mu_;
  std::vector<std::unique_ptr<completion>> queued_; // guarded by mu_
  std::vector<std::unique_ptr<completion>>
      running_; // the consumer's; kept for its capacity
};

} // namespace annal::net
