// The node's CAF scheduler policy (actors/scheduler_policy.hpp) on a real
// actor system with two workers: jobs from outside the workers and jobs a
// busy worker queues both reach a parked worker through its wake-up, not the
// periodic steal (which these tests push out to an hour).

#include "actors/scheduler_policy.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/settings.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace annal::actors {
namespace {

using namespace std::chrono_literals;

constexpr auto reply_deadline = 30s;

std::unique_ptr<caf::actor_system_config> config(std::size_t spin_us, std::size_t park_ms) {
  auto cfg = std::make_unique<caf::actor_system_config>();
  cfg->set("scheduler.max-threads", std::size_t{2});
  caf::put(cfg->content, spin_then_park::spin_key, spin_us);
  caf::put(cfg->content, spin_then_park::park_key, park_ms);
  cfg->load<caf::scheduler::coordinator<spin_then_park>>();
  return cfg;
}

// Adds its argument to `base` and replies with the sum.
caf::behavior adder(caf::event_based_actor*, int base) {
  return {[base](int x) { return base + x; }};
}

TEST(SchedulerPolicy, RequestsFromOutsideWakeParkedWorkers) {
  // No spinning and an hour between periodic steals: every request from the
  // test thread finds both workers parked and must wake one.
  auto cfg = config(0, 3'600'000);
  caf::actor_system sys{*cfg};
  auto actor = sys.spawn(adder, 1000);
  caf::scoped_actor self{sys};
  long sum = 0;
  int failures = 0;
  for (int i = 0; i < 200; ++i) {
    if (i % 50 == 0) std::this_thread::yield();
    self->request(actor, reply_deadline, i)
        .receive([&](int r) { sum += r; }, [&](caf::error&) { ++failures; });
  }
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(sum, 200 * 1000 + 199 * 200 / 2);
  self->send_exit(actor, caf::exit_reason::user_shutdown);
}

// A: told "go", queues a message to C and then one to B, and spins on the
// worker until B has run (or the deadline passes); replies whether B ran.
caf::behavior blocker(caf::event_based_actor* self, caf::actor b, caf::actor c,
                      std::shared_ptr<std::atomic<bool>> b_ran) {
  return {[self, b, c, b_ran](const std::string&) {
    self->send(c, 0);
    self->send(b, 0);  // A's worker now has a backlog: a parked peer is woken
    const auto deadline = std::chrono::steady_clock::now() + reply_deadline;
    while (!b_ran->load() && std::chrono::steady_clock::now() < deadline) {
    }
    return b_ran->load();
  }};
}

caf::behavior flag_setter(caf::event_based_actor*, std::shared_ptr<std::atomic<bool>> flag) {
  return {[flag](int) { flag->store(true); }};
}

TEST(SchedulerPolicy, BusyWorkerHandsQueuedWorkToParkedPeer) {
  auto cfg = config(0, 3'600'000);
  caf::actor_system sys{*cfg};
  for (int round = 0; round < 20; ++round) {
    auto b_ran = std::make_shared<std::atomic<bool>>(false);
    auto b = sys.spawn(flag_setter, b_ran);
    auto c = sys.spawn(adder, 0);
    auto a = sys.spawn(blocker, b, c, b_ran);
    caf::scoped_actor self{sys};
    bool ran = false;
    bool failed = false;
    self->request(a, reply_deadline * 2, std::string{"go"})
        .receive([&](bool r) { ran = r; }, [&](caf::error&) { failed = true; });
    EXPECT_FALSE(failed) << "round " << round;
    EXPECT_TRUE(ran) << "round " << round << ": B waited behind the busy worker";
    for (auto& x : {a, b, c}) self->send_exit(x, caf::exit_reason::user_shutdown);
  }
}

// A ring of actors passing a counter: every hop is an actor-to-actor send
// between workers that spin, steal and park.
caf::behavior ring_member(caf::event_based_actor* self, std::shared_ptr<caf::actor> next) {
  return {[self, next](int hops_left, const caf::actor& done) {
    if (hops_left == 0) {
      self->send(done, std::string{"done"});
    } else {
      self->send(*next, hops_left - 1, done);
    }
  }};
}

TEST(SchedulerPolicy, ManyActorsAndOutsideSendersLoseNothing) {
  auto cfg = config(spin_then_park::default_spin_us, spin_then_park::default_park_ms);
  caf::actor_system sys{*cfg};
  constexpr int ring_size = 32;
  std::vector<std::shared_ptr<caf::actor>> links(ring_size);
  for (auto& l : links) l = std::make_shared<caf::actor>();
  std::vector<caf::actor> ring;
  for (int i = 0; i < ring_size; ++i) ring.push_back(sys.spawn(ring_member, links[i]));
  for (int i = 0; i < ring_size; ++i) *links[i] = ring[(i + 1) % ring_size];

  // Outside threads send requests while tokens travel the ring.
  auto actor = sys.spawn(adder, 1);
  std::atomic<long> outside_sum{0};
  std::atomic<int> outside_failures{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < 3; ++t) {
    senders.emplace_back([&] {
      caf::scoped_actor self{sys};
      for (int i = 0; i < 500; ++i)
        self->request(actor, reply_deadline, i)
            .receive([&](int r) { outside_sum += r; }, [&](caf::error&) { ++outside_failures; });
    });
  }
  caf::scoped_actor self{sys};
  constexpr int tokens = 8;
  for (int t = 0; t < tokens; ++t) self->send(ring[t * 4], 20'000, caf::actor{self});
  int done = 0;
  bool timed_out = false;
  for (int t = 0; t < tokens && !timed_out; ++t)
    self->receive([&](const std::string& s) { done += s == "done" ? 1 : 0; },
                  caf::after(reply_deadline * 2) >> [&] { timed_out = true; });
  for (auto& s : senders) s.join();
  EXPECT_FALSE(timed_out);
  EXPECT_EQ(done, tokens);
  EXPECT_EQ(outside_failures.load(), 0);
  EXPECT_EQ(outside_sum.load(), 3 * (500 + 499 * 500 / 2));
  for (auto& l : links) *l = caf::actor{};  // break the ring's reference cycle
  for (auto& r : ring) self->send_exit(r, caf::exit_reason::user_shutdown);
  self->send_exit(actor, caf::exit_reason::user_shutdown);
}

}  // namespace
}  // namespace annal::actors
