#include "cluster/memory_meta_store.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include <pthread.h>
#include <spdlog/spdlog.h>

namespace annal::cluster {

using clock = std::chrono::steady_clock;
using engine::errc;
using engine::error;

namespace {

struct lease_state {
  std::chrono::seconds ttl{0};
  clock::time_point deadline;
  std::set<std::string> keys;  // keys bound to this lease
};

struct history_entry {
  std::int64_t revision = 0;
  std::vector<watch_event> events;
};

bool has_prefix(const std::string& key, const std::string& prefix) {
  return key.size() >= prefix.size() && key.compare(0, prefix.size(), prefix) == 0;
}

template <class T>
bool relation_holds(const T& lhs, compare::op relation, const T& rhs) {
  switch (relation) {
    case compare::op::equal: return lhs == rhs;
    case compare::op::not_equal: return lhs != rhs;
    case compare::op::greater: return lhs > rhs;
    case compare::op::less: return lhs < rhs;
  }
  return false;
}

}  // namespace

struct memory_meta_store::core {
  std::mutex mu;
  // Notified (with mu held) on every new revision, compaction and shutdown.
  std::condition_variable changed;
  // Notified (with mu held) when a lease deadline moves or on shutdown.
  std::condition_variable lease_changed;

  // All guarded by mu.
  std::size_t max_history = 0;
  std::int64_t revision = 1;
  std::int64_t compact_revision = 0;  // oldest revision still in history (0: none dropped)
  std::int64_t next_lease_id = 0x1000;
  std::map<std::string, key_value> kvs;
  std::map<std::int64_t, lease_state> leases;
  std::deque<history_entry> history;  // ascending revisions
  bool stopping = false;

  // Requires: mu held. Deletes the keys of `range` in one write at revision
  // `rev`, appending the events to `events`.
  void erase_key_locked(std::map<std::string, key_value>::iterator it, std::int64_t rev,
                        std::vector<watch_event>& events) {
    if (it->second.lease != 0) {
      if (auto l = leases.find(it->second.lease); l != leases.end()) l->second.keys.erase(it->first);
    }
    watch_event ev;
    ev.type = watch_event::kind::del;
    ev.kv.key = it->first;
    ev.kv.mod_revision = rev;
    events.push_back(std::move(ev));
    kvs.erase(it);
  }

  // Requires: mu held. Makes `events` (all at revision + 1) the next revision.
  void commit_locked(std::vector<watch_event> events) {
    ++revision;
    history.push_back(history_entry{revision, std::move(events)});
    while (history.size() > max_history) {
      compact_revision = history.front().revision + 1;
      history.pop_front();
    }
    changed.notify_all();
  }

  // Requires: mu held. Ends the lease and deletes its keys in one revision.
  void end_lease_locked(std::map<std::int64_t, lease_state>::iterator lease) {
    const std::set<std::string> keys = std::move(lease->second.keys);
    leases.erase(lease);
    std::vector<watch_event> events;
    for (const auto& key : keys) {
      if (auto it = kvs.find(key); it != kvs.end()) erase_key_locked(it, revision + 1, events);
    }
    if (!events.empty()) commit_locked(std::move(events));
  }

  // Requires: mu held. Expires every lease whose deadline passed.
  void expire_due_locked(clock::time_point now) {
    for (auto it = leases.begin(); it != leases.end();) {
      auto next = std::next(it);
      if (it->second.deadline <= now) {
        spdlog::debug("meta_store: lease {:x} expired", it->first);
        end_lease_locked(it);
      }
      it = next;
    }
  }

  // Requires: mu held.
  std::vector<key_value> read_locked(const std::string& key, bool prefix) const {
    std::vector<key_value> out;
    if (!prefix) {
      if (auto it = kvs.find(key); it != kvs.end()) out.push_back(it->second);
      return out;
    }
    for (auto it = kvs.lower_bound(key); it != kvs.end() && has_prefix(it->first, key); ++it) {
      out.push_back(it->second);
    }
    return out;
  }

  // Requires: mu held.
  bool holds_locked(const compare& c) const {
    auto it = kvs.find(c.key);
    const key_value* kv = it == kvs.end() ? nullptr : &it->second;
    switch (c.what) {
      case compare::target::version: return relation_holds(kv ? kv->version : 0, c.relation, c.number);
      case compare::target::create_revision:
        return relation_holds(kv ? kv->create_revision : 0, c.relation, c.number);
      case compare::target::mod_revision: return relation_holds(kv ? kv->mod_revision : 0, c.relation, c.number);
      case compare::target::value: return kv != nullptr && relation_holds(kv->value, c.relation, c.value);
    }
    return false;
  }
};

namespace {

// One watch: a thread that follows the store's history from `next`.
class memory_watch final : public watch_handle {
 public:
  memory_watch(std::shared_ptr<memory_meta_store::core> core, std::string prefix, std::int64_t next,
               watch_callback on_events, watch_error_callback on_error)
      : state_(std::make_shared<state>()) {
    state_->core = std::move(core);
    state_->prefix = std::move(prefix);
    state_->next = next;
    state_->on_events = std::move(on_events);
    state_->on_error = std::move(on_error);
    thread_ = std::thread([s = state_] {
      pthread_setname_np(pthread_self(), "annal-watch");
      run(*s);
    });
  }

  ~memory_watch() override {
    {
      std::lock_guard lock(state_->core->mu);
      state_->cancelled = true;
      state_->core->changed.notify_all();
    }
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();  // cancelled from our own callback: the thread ends after it
    } else {
      thread_.join();
    }
  }

 private:
  struct state {
    std::shared_ptr<memory_meta_store::core> core;
    std::string prefix;
    std::int64_t next = 0;  // only touched by the watch thread
    watch_callback on_events;
    watch_error_callback on_error;
    std::atomic<bool> cancelled{false};
  };

  static void run(state& s) {
    auto& c = *s.core;
    for (;;) {
      std::vector<history_entry> batch;
      std::optional<watch_error> failure;
      {
        std::unique_lock lock(c.mu);
        c.changed.wait(lock, [&] { return s.cancelled || c.stopping || c.revision >= s.next; });
        if (s.cancelled || c.stopping) return;
        if (s.next < c.compact_revision) {
          failure = watch_error{watch_error::kind::compacted, c.compact_revision,
                                "revision " + std::to_string(s.next) + " is compacted; the oldest is " +
                                    std::to_string(c.compact_revision)};
        } else {
          auto it = std::lower_bound(c.history.begin(), c.history.end(), s.next,
                                     [](const history_entry& e, std::int64_t rev) { return e.revision < rev; });
          for (; it != c.history.end(); ++it) {
            history_entry picked{it->revision, {}};
            for (const auto& ev : it->events) {
              if (has_prefix(ev.kv.key, s.prefix)) picked.events.push_back(ev);
            }
            if (!picked.events.empty()) batch.push_back(std::move(picked));
          }
          s.next = c.revision + 1;
        }
      }
      if (failure) {
        if (!s.cancelled) {
          if (s.on_error) {
            s.on_error(*failure);
          } else {
            spdlog::warn("meta_store: watch on '{}' ended: {}", s.prefix, failure->message);
          }
        }
        return;
      }
      for (const auto& entry : batch) {
        if (s.cancelled) return;
        s.on_events(entry.events, entry.revision);
      }
    }
  }

  std::shared_ptr<state> state_;
  std::thread thread_;
};

}  // namespace

memory_meta_store::memory_meta_store() : memory_meta_store(options{}) {}

memory_meta_store::memory_meta_store(options opts) : core_(std::make_shared<core>()) {
  core_->max_history = std::max<std::size_t>(opts.max_history, 1);
  lease_thread_ = std::thread([c = core_] {
    pthread_setname_np(pthread_self(), "annal-leases");
    std::unique_lock lock(c->mu);
    while (!c->stopping) {
      c->expire_due_locked(clock::now());
      if (c->leases.empty()) {
        c->lease_changed.wait(lock);
        continue;
      }
      auto earliest = clock::time_point::max();
      for (const auto& [id, lease] : c->leases) earliest = std::min(earliest, lease.deadline);
      c->lease_changed.wait_until(lock, earliest);
    }
  });
}

memory_meta_store::~memory_meta_store() {
  {
    std::lock_guard lock(core_->mu);
    core_->stopping = true;
    core_->changed.notify_all();
    core_->lease_changed.notify_all();
  }
  lease_thread_.join();
}

engine::result<range_result> memory_meta_store::range(const std::string& key, bool prefix) {
  std::lock_guard lock(core_->mu);
  core_->expire_due_locked(clock::now());
  return range_result{core_->read_locked(key, prefix), core_->revision};
}

engine::result<txn_result> memory_meta_store::txn(const std::vector<compare>& compares,
                                                  const std::vector<op>& on_success,
                                                  const std::vector<op>& on_failure) {
  auto& c = *core_;
  std::lock_guard lock(c.mu);
  c.expire_due_locked(clock::now());

  txn_result out;
  out.succeeded = std::all_of(compares.begin(), compares.end(), [&](const compare& cmp) { return c.holds_locked(cmp); });
  const auto& ops = out.succeeded ? on_success : on_failure;
  for (const auto& o : ops) {
    if (o.what == op::kind::put && o.lease != 0 && !c.leases.contains(o.lease)) {
      return error(errc::not_found, "meta_store: lease " + std::to_string(o.lease) + " not found");
    }
  }

  const std::int64_t write_rev = c.revision + 1;
  std::vector<watch_event> events;
  std::vector<std::size_t> range_slots;  // responses to fill with the final revision
  for (const auto& o : ops) {
    range_result response;
    switch (o.what) {
      case op::kind::range: response.kvs = c.read_locked(o.key, o.prefix); break;
      case op::kind::put: {
        auto [it, inserted] = c.kvs.try_emplace(o.key);
        key_value& kv = it->second;
        if (inserted) {
          kv.key = o.key;
          kv.create_revision = write_rev;
        }
        if (kv.lease != 0 && kv.lease != o.lease) {
          if (auto l = c.leases.find(kv.lease); l != c.leases.end()) l->second.keys.erase(o.key);
        }
        kv.value = o.value;
        kv.mod_revision = write_rev;
        kv.version += 1;
        kv.lease = o.lease;
        if (o.lease != 0) c.leases[o.lease].keys.insert(o.key);
        events.push_back(watch_event{watch_event::kind::put, kv});
        break;
      }
      case op::kind::del: {
        if (!o.prefix) {
          if (auto it = c.kvs.find(o.key); it != c.kvs.end()) c.erase_key_locked(it, write_rev, events);
        } else {
          for (auto it = c.kvs.lower_bound(o.key); it != c.kvs.end() && has_prefix(it->first, o.key);) {
            auto next = std::next(it);
            c.erase_key_locked(it, write_rev, events);
            it = next;
          }
        }
        break;
      }
    }
    out.responses.push_back(std::move(response));
  }
  if (!events.empty()) c.commit_locked(std::move(events));
  out.revision = c.revision;
  for (auto& r : out.responses) r.revision = c.revision;
  return out;
}

engine::result<std::int64_t> memory_meta_store::lease_grant(std::chrono::seconds ttl) {
  if (ttl.count() <= 0) return error(errc::invalid_argument, "meta_store: lease TTL must be at least 1 s");
  auto& c = *core_;
  std::lock_guard lock(c.mu);
  const std::int64_t id = c.next_lease_id++;
  c.leases[id] = lease_state{ttl, clock::now() + ttl, {}};
  c.lease_changed.notify_all();
  return id;
}

engine::status memory_meta_store::lease_keep_alive(std::int64_t id) {
  auto& c = *core_;
  std::lock_guard lock(c.mu);
  const auto now = clock::now();
  c.expire_due_locked(now);
  auto it = c.leases.find(id);
  if (it == c.leases.end()) return error(errc::not_found, "meta_store: lease " + std::to_string(id) + " not found");
  it->second.deadline = now + it->second.ttl;
  c.lease_changed.notify_all();
  return {};
}

engine::status memory_meta_store::lease_revoke(std::int64_t id) {
  auto& c = *core_;
  std::lock_guard lock(c.mu);
  c.expire_due_locked(clock::now());
  auto it = c.leases.find(id);
  if (it == c.leases.end()) return error(errc::not_found, "meta_store: lease " + std::to_string(id) + " not found");
  c.end_lease_locked(it);
  c.lease_changed.notify_all();
  return {};
}

engine::status memory_meta_store::compact(std::int64_t revision) {
  auto& c = *core_;
  std::lock_guard lock(c.mu);
  if (revision > c.revision) {
    return error(errc::invalid_argument, "meta_store: cannot compact to future revision " + std::to_string(revision));
  }
  if (revision <= c.compact_revision) {
    return error(errc::invalid_argument, "meta_store: revision " + std::to_string(revision) + " is already compacted");
  }
  while (!c.history.empty() && c.history.front().revision < revision) c.history.pop_front();
  c.compact_revision = revision;
  c.changed.notify_all();
  return {};
}

std::unique_ptr<watch_handle> memory_meta_store::watch(const std::string& prefix, std::int64_t from_revision,
                                                       watch_callback on_events, watch_error_callback on_error) {
  std::int64_t next = from_revision;
  if (next <= 0) {
    std::lock_guard lock(core_->mu);
    next = core_->revision + 1;
  }
  return std::make_unique<memory_watch>(core_, prefix, next, std::move(on_events), std::move(on_error));
}

}  // namespace annal::cluster
