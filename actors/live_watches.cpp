#include "actors/live_watches.hpp"

#include <algorithm>

namespace annal::actors {
namespace {

using clock_type = request_clock;

// One partition of a watch.
struct slot {
  std::optional<all_position> parked_at;  // a wait is parked (or woke) at this position
  bool ready = false;                     // that wait woke: records past parked_at
  std::uint64_t seq = 0;                  // of the newest wait sent; older answers are stale
};

struct waiting_round {
  read_all_request request;
  reply_fn<read_all_page> reply;
};

struct watch {
  std::mutex mu;
  std::unordered_map<std::uint32_t, slot> slots;  // guarded by mu
  std::optional<waiting_round> round;             // guarded by mu
  clock_type::time_point deadline;                // of `round`; guarded by mu
  bool timer_armed = false;                       // guarded by mu
  std::uint64_t next_seq = 1;                     // guarded by mu
  clock_type::time_point last_used;               // guarded by mu
};

void answer_empty(waiting_round r) {
  read_all_page empty;
  empty.next = std::move(r.request.from);
  empty.at_end = true;
  r.reply(std::move(empty));
}

}  // namespace

struct live_watches::state : std::enable_shared_from_this<live_watches::state> {
  explicit state(live_watches::hooks h) : io(std::move(h)) {}

  live_watches::hooks io;
  std::mutex mu;
  std::unordered_map<std::uint64_t, std::shared_ptr<watch>> watches;  // guarded by mu
  clock_type::time_point last_sweep;                                  // guarded by mu

  std::shared_ptr<watch> find(std::uint64_t key) {
    const auto now = clock_type::now();
    std::lock_guard lock(mu);
    if (now - last_sweep > k_idle_watch) {
      last_sweep = now;
      std::erase_if(watches, [&](const auto& entry) {
        std::lock_guard w_lock(entry.second->mu);
        return !entry.second->round && now - entry.second->last_used > k_idle_watch;
      });
    }
    auto& w = watches[key];
    if (!w) w = std::make_shared<watch>();
    return w;
  }

  void round(read_all_request request, reply_fn<read_all_page> reply) {
    auto w = find(request.watch);
    std::optional<waiting_round> older;
    std::vector<partition_id> to_read;
    {
      std::lock_guard lock(w->mu);
      w->last_used = clock_type::now();
      if (w->round) older = std::exchange(w->round, std::nullopt);
      for (const auto p : request.partitions) {
        auto& s = w->slots[p.value()];
        const bool parked_here = s.parked_at && *s.parked_at == request.from[p.value()];
        if (!parked_here || s.ready) {
          to_read.push_back(p);
          s.parked_at.reset();
          s.ready = false;
        }
      }
    }
    if (older) answer_empty(std::move(*older));
    if (to_read.empty()) return wait(std::move(w), std::move(request), std::move(reply), {});

    auto plain = request;
    plain.wait_ms = 0;
    plain.partitions = to_read;
    io.read(std::move(plain),
            [self = shared_from_this(), w, request = std::move(request), reply = std::move(reply),
             to_read = std::move(to_read)](result<read_all_page> page) mutable {
              if (!page || !page->events.empty() || !page->at_end) return reply(std::move(page));
              request.from = std::move(page->next);
              self->wait(std::move(w), std::move(request), std::move(reply), std::move(to_read));
            });
  }

  // Parks waits for `to_park` at request.from and the round itself, unless a
  // wait woke meanwhile (then the round starts over and reads it).
  void wait(std::shared_ptr<watch> w, read_all_request request, reply_fn<read_all_page> reply,
            std::vector<partition_id> to_park) {
    std::optional<waiting_round> older;
    std::vector<std::pair<partition_id, std::uint64_t>> waits;
    bool arm_timer = false;
    bool woke = false;
    const auto now = clock_type::now();
    const auto wait_for =
        std::chrono::milliseconds(std::min(request.wait_ms, k_read_all_max_wait_ms));
    {
      std::lock_guard lock(w->mu);
      woke = std::any_of(request.partitions.begin(), request.partitions.end(),
                         [&](partition_id p) { return w->slots[p.value()].ready; });
      if (!woke) {
        if (w->round) older = std::exchange(w->round, std::nullopt);
        for (const auto p : to_park) {
          auto& s = w->slots[p.value()];
          s.parked_at = request.from[p.value()];
          s.ready = false;
          s.seq = w->next_seq++;
          waits.emplace_back(p, s.seq);
        }
        w->deadline = now + wait_for;
        w->round = waiting_round{request, std::move(reply)};
        arm_timer = !std::exchange(w->timer_armed, true);
      }
    }
    if (older) answer_empty(std::move(*older));
    if (woke) return round(std::move(request), std::move(reply));  // read what woke
    for (const auto& [p, seq] : waits) {
      wait_msg m;
      m.watch = request.watch;
      m.seq = seq;
      m.from = request.from[p.value()];
      m.deadline = now + k_parked_wait;
      m.reply = [self = shared_from_this(), w, p = p, seq = seq](result<wake_reason> r) {
        self->on_wake(w, p, seq, std::move(r));
      };
      io.park(p, std::move(m));
    }
    if (arm_timer) {
      io.after(wait_for, [self = shared_from_this(), w] { self->on_timer(w); });
    }
  }

  void on_wake(const std::shared_ptr<watch>& w, partition_id p, std::uint64_t seq,
               result<wake_reason> r) {
    std::optional<waiting_round> taken;
    {
      std::lock_guard lock(w->mu);
      auto& s = w->slots[p.value()];
      if (s.seq != seq || !s.parked_at) return;  // a newer wait replaced this one
      if (!r || *r != wake_reason::ready) {
        s.parked_at.reset();  // the next round parks it again
        if (!r && w->round) taken = std::exchange(w->round, std::nullopt);
      } else if (w->round) {
        s.parked_at.reset();
        taken = std::exchange(w->round, std::nullopt);
      } else {
        s.ready = true;
      }
    }
    if (!taken) return;
    if (!r) return taken->reply(std::move(r.err()));
    auto read = std::move(taken->request);
    read.wait_ms = 0;
    read.partitions = {p};
    io.read(std::move(read), std::move(taken->reply));
  }

  void on_timer(const std::shared_ptr<watch>& w) {
    std::optional<waiting_round> taken;
    std::optional<std::chrono::milliseconds> rearm;
    {
      std::lock_guard lock(w->mu);
      w->timer_armed = false;
      if (!w->round) return;
      const auto now = clock_type::now();
      if (now >= w->deadline) {
        taken = std::exchange(w->round, std::nullopt);
      } else {
        w->timer_armed = true;
        rearm = std::chrono::ceil<std::chrono::milliseconds>(w->deadline - now);
      }
    }
    if (taken) return answer_empty(std::move(*taken));
    io.after(*rearm, [self = shared_from_this(), w] { self->on_timer(w); });
  }
};

live_watches::live_watches(hooks h) : state_(std::make_shared<state>(std::move(h))) {}

void live_watches::round(read_all_request request, reply_fn<read_all_page> reply) {
  state_->round(std::move(request), std::move(reply));
}

}  // namespace annal::actors
