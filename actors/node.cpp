#include "actors/node.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <latch>
#include <mutex>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <caf/settings.hpp>
#include <caf/send.hpp>

#include "actors/checkpointer.hpp"
#include "actors/fan_in.hpp"
#include "actors/group_commit.hpp"
#include "actors/live_watches.hpp"
#include "actors/messages.hpp"
#include "actors/partition_actor.hpp"
#include "actors/partition_list.hpp"
#include "actors/router.hpp"
#include "actors/scheduler_policy.hpp"
#include "actors/uuid.hpp"
#include "engine/query/plan.hpp"
#include "engine/store.hpp"

namespace annal::actors {

// Threads that checkpoint the partitions side by side when the node stops.
constexpr std::uint32_t k_final_checkpoint_threads = 16;

// Runs round_timer_msg callbacks (live_watches' round deadlines). A class,
// not a function-based actor: CAF 0.17 spawns a function without arguments
// by dereferencing a null argument tuple (UBSan reports it).
class timer_actor : public caf::event_based_actor {
 public:
  using caf::event_based_actor::event_based_actor;
  caf::behavior make_behavior() override {
    return {[](round_timer_msg& m) { m.fire(); }};
  }
};

// The node's request_handler: routes each request to its partition actor by
// one asynchronous message (no round trip on the calling thread).
struct node::impl final : request_handler {
  explicit impl(node_options o) : options(std::move(o)) {}
  ~impl() override { stop(); }

  engine::status open();
  void stop();

  // --- request_handler ---
  void append(append_request request, reply_fn<append_reply> reply) override;
  void read(read_request request, reply_fn<engine::read_page> reply) override;
  void read_last(std::string stream, reply_fn<engine::read_page> reply) override;
  void get_stream_info(std::string stream, reply_fn<engine::stream_info> reply) override;
  void set_metadata(std::string stream, engine::stream_metadata metadata,
                    reply_fn<write_reply> reply) override;
  void delete_stream(std::string stream, engine::expected_version expected, bool tombstone,
                     reply_fn<write_reply> reply) override;
  void put_snapshot(std::string stream, stream_version version, std::string payload,
                    reply_fn<write_reply> reply) override;
  void get_snapshot(std::string stream,
                    reply_fn<std::optional<engine::snapshot_read>> reply) override;
  void read_all(read_all_request request, reply_fn<read_all_page> reply) override;
  // The second half of a long-poll read-all: every partition of `request`
  // stood at its end at `positions`; waits until one of them has more (then
  // reads again) or the wait ends (then answers an empty page at the end).
  void wait_then_read_all(read_all_request request, std::vector<all_position> positions,
                          reply_fn<read_all_page> reply);
  void stats(reply_fn<std::vector<partition_stats>> reply) override;
  void query(query_request request, reply_fn<engine::query::partial_result> reply) override;

  // Counts a request while it is being routed, so that stop() knows when no
  // thread can still send to an actor. Requires: ok() before routing.
  class admission {
   public:
    explicit admission(impl& n) : n_(n) {
      n_.routing_.fetch_add(1);
      ok_ = n_.accepting_.load();
    }
    ~admission() { n_.routing_.fetch_sub(1, std::memory_order_release); }
    bool ok() const { return ok_; }

   private:
    impl& n_;
    bool ok_;
  };

  // Sends Msg{args...} to the partition of `stream`, or replies with why not.
  template <class Msg, class T, class... Args>
  void dispatch(const std::string& stream, reply_fn<T>& reply, Args&&... args) {
    admission admitted(*this);
    if (!admitted.ok()) {
      return fail(reply, engine::error{engine::errc::shutting_down, "the node is stopping"});
    }
    const auto& route = router_->at(router_->partition_for(stream));
    if (route.unavailable) return fail(reply, *route.unavailable);
    caf::anon_send(route.actor, Msg{std::forward<Args>(args)...});
  }

  template <class T>
  void fail(reply_fn<T>& reply, const engine::error& e) {
    metrics.count_error(e.code);
    reply(e);
  }

  // Sends Msg{args...} to the actor of partition `p`, or replies (when
  // `reply` is given) with why not.
  template <class Msg, class T, class... Args>
  void send_to(partition_id p, reply_fn<T>* reply, Args&&... args) {
    admission admitted(*this);
    std::optional<engine::error> refused;
    if (!admitted.ok()) {
      refused = engine::error{engine::errc::shutting_down, "the node is stopping"};
    } else if (p.value() >= router_->partition_count()) {
      refused = engine::error{engine::errc::invalid_argument,
                              fmt::format("no partition {}", p.value())};
    } else if (const auto& route = router_->at(p); route.unavailable) {
      refused = *route.unavailable;
    } else {
      return caf::anon_send(route.actor, Msg{std::forward<Args>(args)...});
    }
    if (reply) fail(*reply, *refused);
  }
  template <class Msg, class... Args>
  void send_to(partition_id p, std::nullptr_t, Args&&... args) {
    send_to<Msg>(p, static_cast<reply_fn<lsn>*>(nullptr), std::forward<Args>(args)...);
  }

  const node_options options;
  node_metrics metrics;
  std::unique_ptr<engine::store> store_;
  std::unique_ptr<caf::actor_system_config> caf_config_;
  std::unique_ptr<caf::actor_system> system_;
  std::unique_ptr<router> router_;
  std::unique_ptr<group_commit> commit_;
  std::unique_ptr<checkpointer> checkpoints_;
  // Fires round_timer_msg callbacks (live_watches' round deadlines).
  caf::actor timer_;
  std::unique_ptr<live_watches> live_watches_;

  alignas(64) std::atomic<bool> accepting_{false};
  alignas(64) std::atomic<std::int64_t> routing_{0};
  std::mutex stop_mu_;
  bool stopped_ = false;  // guarded by stop_mu_
};

engine::status node::impl::open() {
  engine::store_options so;
  so.directory = options.data_dir;
  so.partition_count = options.partition_count;
  so.node_log.mode = options.fsync;
  so.node_log.sync_interval = options.sync_interval;
  so.partition = options.partition;
  so.fs = options.fs;
  auto opened = engine::store::open(std::move(so));
  if (!opened) return opened.err();
  store_ = std::move(opened).value();
  const std::uint32_t count = store_->partition_count();

  caf_config_ = std::make_unique<caf::actor_system_config>();
  caf_config_->set("scheduler.max-threads", std::max<std::size_t>(options.actor_threads, 1));
  caf::put(caf_config_->content, spin_then_park::spin_key,
           static_cast<std::size_t>(options.actor_spin_us));
  caf_config_->load<caf::scheduler::coordinator<spin_then_park>>();
  system_ = std::make_unique<caf::actor_system>(*caf_config_);
  router_ = std::make_unique<router>(count);

  group_commit::options gc;
  gc.threads = options.sync_threads;
  gc.mode = options.fsync;
  gc.interval = options.sync_interval;
  gc.tick_bytes = std::max<std::uint64_t>(options.partition.checkpoint_bytes, 1);
  commit_ = std::make_unique<group_commit>(
      store_->wal(), count, gc, metrics,
      [this](partition_id p) { caf::anon_send(router_->at(p).actor, durable_atom::value); },
      [this] {
        for (const auto& r : router_->routes()) {
          if (r.actor) caf::anon_send(r.actor, tick_atom::value);
        }
      });
  checkpoints_ = std::make_unique<checkpointer>(
      metrics,
      [this](partition_id p) { caf::anon_send(router_->at(p).actor, checkpoint_go_atom::value); },
      [this](partition_id p) {
        caf::anon_send(router_->at(p).actor, checkpoint_begun_atom::value);
      },
      [this](partition_id p, checkpointer::job_ptr job, std::optional<engine::error> failure) {
        caf::anon_send(router_->at(p).actor,
                       checkpoint_done_msg{std::move(job), std::move(failure)});
      });

  std::vector<router::route> routes(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    auto p = store_->get(partition_id{i});
    if (!p) {
      routes[i].unavailable = p.err();
      continue;
    }
    routes[i].actor = system_->spawn<partition_actor>(
        partition_context{*p, &store_->wal(), commit_.get(), checkpoints_.get(), &metrics});
  }
  router_->set(std::move(routes));
  timer_ = system_->spawn<timer_actor>();
  live_watches::hooks hooks;
  hooks.read = [this](read_all_request request, reply_fn<read_all_page> reply) {
    read_all(std::move(request), std::move(reply));
  };
  hooks.park = [this](partition_id p, wait_msg m) {
    // `m` is moved into the message only once it is sent; else m.reply fails.
    send_to<wait_msg>(p, &m.reply, std::move(m));
  };
  hooks.after = [this](std::chrono::milliseconds delay, std::function<void()> fire) {
    admission admitted(*this);  // stop() releases timer_ only after every admission
    if (admitted.ok()) caf::delayed_anon_send(timer_, delay, round_timer_msg{std::move(fire)});
  };
  live_watches_ = std::make_unique<live_watches>(std::move(hooks));
  commit_->start();
  checkpoints_->start();
  accepting_.store(true);
  spdlog::info("node {}: serving {} partitions from {} (fsync={}, {} actor threads, {} sync threads)",
               options.node_id, count, options.data_dir,
               options.fsync == engine::fsync_mode::always     ? "always"
               : options.fsync == engine::fsync_mode::interval ? "interval"
                                                               : "none",
               options.actor_threads, options.sync_threads);
  return {};
}

void node::impl::stop() {
  std::lock_guard lock(stop_mu_);
  if (stopped_ || !store_) return;
  stopped_ = true;
  const auto started = std::chrono::steady_clock::now();

  // 1. No new requests; wait out the calls that are routing one right now
  //    (a few instructions each, so yielding is enough).
  accepting_.store(false);
  while (routing_.load() != 0) std::this_thread::yield();

  // 2. The checkpoint in progress finishes; queued ones are dropped (every
  //    partition is checkpointed at the end anyway).
  checkpoints_->stop();

  // 3. Every accepted request is applied: its write waits for a sync.
  std::size_t live = 0;
  for (const auto& r : router_->routes()) live += r.actor ? 1 : 0;
  auto drained = std::make_shared<std::latch>(static_cast<std::ptrdiff_t>(live));
  for (const auto& r : router_->routes()) {
    if (r.actor) caf::anon_send(r.actor, drain_msg{drained});
  }
  drained->wait();

  // 4. One last sync covers every write; the actors reply and exit.
  commit_->stop();
  auto synced = store_->wal().sync_to_disk();
  std::optional<engine::error> failure;
  if (!synced) failure = synced.err();
  for (const auto& r : router_->routes()) {
    if (r.actor) caf::anon_send(r.actor, final_msg{failure});
  }
  router_->clear();
  caf::anon_send_exit(timer_, caf::exit_reason::user_shutdown);
  timer_ = caf::actor{};
  system_.reset();  // waits for every actor to exit

  const auto actors_done = std::chrono::steady_clock::now();

  // 5. The partitions are ours again: checkpoint each, so that the next
  //    start replays nothing. In parallel: each checkpoint waits on a few
  //    fsyncs, which the device serves side by side.
  const std::uint32_t count = store_->partition_count();
  std::atomic<std::uint32_t> next{0};
  auto checkpoint_some = [&] {
    for (std::uint32_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      auto p = store_->get(partition_id{i});
      if (!p) continue;
      if (auto s = (*p)->checkpoint(); !s) {
        spdlog::error("partition {}: final checkpoint failed: {}", i, s.err().message);
      } else {
        metrics.checkpoints.fetch_add(1, std::memory_order_relaxed);
      }
    }
  };
  std::vector<std::thread> workers;
  const std::uint32_t threads = std::min(count, k_final_checkpoint_threads);
  for (std::uint32_t t = 1; t < threads; ++t) workers.emplace_back(checkpoint_some);
  checkpoint_some();
  for (auto& w : workers) w.join();
  spdlog::debug("node {}: stop: actors done after {:.1f} ms, checkpoints took {:.1f} ms",
                options.node_id,
                std::chrono::duration<double, std::milli>(actors_done - started).count(),
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                          actors_done)
                    .count());
  spdlog::info("node {}: stopped in {:.1f} ms", options.node_id,
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                         started)
                   .count());
}

void node::impl::append(append_request request, reply_fn<append_reply> reply) {
  metrics.append_requests.fetch_add(1, std::memory_order_relaxed);
  const auto received = request_clock::now();
  for (auto& e : request.events) {
    if (is_nil(e.id)) e.id = random_uuid_v4();
  }
  const std::string& stream = request.stream;
  admission admitted(*this);
  if (!admitted.ok()) {
    return fail(reply, engine::error{engine::errc::shutting_down, "the node is stopping"});
  }
  const auto& route = router_->at(router_->partition_for(stream));
  if (route.unavailable) return fail(reply, *route.unavailable);
  caf::anon_send(route.actor, append_msg{std::move(request), std::move(reply), received});
}

void node::impl::read(read_request request, reply_fn<engine::read_page> reply) {
  metrics.read_requests.fetch_add(1, std::memory_order_relaxed);
  const std::string stream = request.stream;
  dispatch<read_msg>(stream, reply, std::move(request), std::move(reply));
}

void node::impl::read_last(std::string stream, reply_fn<engine::read_page> reply) {
  metrics.read_requests.fetch_add(1, std::memory_order_relaxed);
  dispatch<read_last_msg>(stream, reply, stream, std::move(reply));
}

void node::impl::get_stream_info(std::string stream, reply_fn<engine::stream_info> reply) {
  dispatch<stream_info_msg>(stream, reply, stream, std::move(reply));
}

void node::impl::set_metadata(std::string stream, engine::stream_metadata metadata,
                              reply_fn<write_reply> reply) {
  dispatch<set_metadata_msg>(stream, reply, stream, metadata, std::move(reply));
}

void node::impl::delete_stream(std::string stream, engine::expected_version expected,
                               bool tombstone, reply_fn<write_reply> reply) {
  dispatch<delete_stream_msg>(stream, reply, stream, expected, tombstone, std::move(reply));
}

void node::impl::put_snapshot(std::string stream, stream_version version, std::string payload,
                              reply_fn<write_reply> reply) {
  dispatch<put_snapshot_msg>(stream, reply, stream, version, std::move(payload),
                             std::move(reply));
}

void node::impl::get_snapshot(std::string stream,
                              reply_fn<std::optional<engine::snapshot_read>> reply) {
  dispatch<get_snapshot_msg>(stream, reply, stream, std::move(reply));
}

// Read-all: every requested partition reads its own page side by side (at
// most `limit` events each); the pages are merged and cut to `limit`.
void node::impl::read_all(read_all_request request, reply_fn<read_all_page> reply) {
  metrics.read_requests.fetch_add(1, std::memory_order_relaxed);
  const std::uint32_t count = router_->partition_count();
  if (auto checked = check_read_all(request, count); !checked) return fail(reply, checked.err());
  if (request.partitions.empty()) {
    for (std::uint32_t p = 0; p < count; ++p) request.partitions.emplace_back(p);
  }
  if (request.from.empty()) request.from.resize(count);
  if (request.wait_ms > 0 && !request.from_end && request.watch != 0) {
    return live_watches_->round(std::move(request), std::move(reply));
  }
  if (request.wait_ms > 0 && !request.from_end) {
    // A plain read first; only a page with nothing in it waits.
    auto again = request;
    request.wait_ms = 0;
    return read_all(std::move(request), [this, again = std::move(again), reply = std::move(reply)](
                                            result<read_all_page> page) mutable {
      if (!page || !page->events.empty() || !page->at_end) return reply(std::move(page));
      wait_then_read_all(std::move(again), std::move(page->next), std::move(reply));
    });
  }
  const std::size_t partition_bytes = std::min(request.max_bytes, k_read_all_partition_bytes);
  auto partitions = request.partitions;
  auto gather = fan_in<read_all_part>::make(
      partitions.size(),
      [request, reply = std::move(reply)](std::vector<result<read_all_part>> results) mutable {
        std::vector<read_all_part> parts;
        parts.reserve(results.size());
        for (auto& r : results) {
          // The partition actor counted its error.
          if (!r) return reply(std::move(r.err()));
          parts.push_back(std::move(r).value());
        }
        reply(merge_read_all(std::move(parts), std::move(request.from), request.limit,
                             request.max_bytes));
      });
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    const auto p = partitions[i];
    auto slot = gather->slot(i);
    send_to<read_all_msg>(p, &slot, request.from[p.value()], request.limit, partition_bytes,
                          std::move(slot), request.from_end);
  }
}

void node::impl::wait_then_read_all(read_all_request request, std::vector<all_position> positions,
                                    reply_fn<read_all_page> reply) {
  // The first partition to answer decides; the later answers are dropped
  // (their waits end by themselves: readiness, deadline, or the reader's
  // next round replacing them).
  struct first_wake {
    std::atomic<bool> done{false};
    read_all_request request;
    std::vector<all_position> positions;
    reply_fn<read_all_page> reply;
  };
  const auto wait = std::chrono::milliseconds(std::min(request.wait_ms, k_read_all_max_wait_ms));
  const auto deadline = request_clock::now() + wait;
  // Copies: a wake on another thread may take `first`'s before the loop ends.
  const auto partitions = request.partitions;
  const auto watch = request.watch;
  const auto seq = request.watch_seq;
  auto first = std::make_shared<first_wake>();
  first->request = std::move(request);
  first->request.wait_ms = 0;
  first->positions = positions;
  first->reply = std::move(reply);
  for (const auto p : partitions) {
    reply_fn<wake_reason> woken = [this, first, p](result<wake_reason> r) {
      if (first->done.exchange(true)) return;
      if (!r) return first->reply(std::move(r.err()));
      if (*r == wake_reason::ready) {
        // Only the partition that woke is read: one message instead of one
        // per partition between the sync and the delivery. The others keep
        // their positions; the reader's next round (a plain read of every
        // partition before it waits again) takes what they have.
        first->request.from = std::move(first->positions);
        first->request.partitions = {p};
        return read_all(std::move(first->request), std::move(first->reply));
      }
      read_all_page empty;
      empty.next = std::move(first->positions);
      empty.at_end = true;
      first->reply(std::move(empty));
    };
    send_to<wait_msg>(p, &woken, watch, seq, positions[p.value()], deadline, std::move(woken));
  }
}

void node::impl::stats(reply_fn<std::vector<partition_stats>> reply) {
  const std::uint32_t count = router_->partition_count();
  auto gather = fan_in<partition_stats>::make(
      count, [node_id = options.node_id,
              reply = std::move(reply)](std::vector<result<partition_stats>> results) mutable {
        std::vector<partition_stats> all;
        all.reserve(results.size());
        for (auto& r : results) {
          if (!r) return reply(std::move(r.err()));
          all.push_back(std::move(r).value());
          all.back().node = node_id;
        }
        reply(std::move(all));
      });
  for (std::uint32_t p = 0; p < count; ++p) {
    auto slot = gather->slot(p);
    send_to<stats_msg>(partition_id{p}, &slot, std::move(slot));
  }
}

// Query: every requested partition scans for it side by side (in steps, see
// query_scans), sharing one budget; the partial results are merged.
void node::impl::query(query_request request, reply_fn<engine::query::partial_result> reply) {
  metrics.query_requests.fetch_add(1, std::memory_order_relaxed);
  const std::uint32_t count = router_->partition_count();
  auto partitions = std::move(request.partitions);
  if (auto checked = check_partition_list(partitions, count); !checked) {
    return fail(reply, checked.err());
  }
  if (partitions.empty()) {
    for (std::uint32_t p = 0; p < count; ++p) partitions.emplace_back(p);
  }
  auto plan = engine::query::plan::compile(std::move(request.query));
  if (!plan) return fail(reply, plan.err());
  auto budget = std::make_shared<query_budget>();
  budget->limits.max_events_scanned = options.query.max_events_scanned;
  std::uint32_t timeout_ms = options.query.timeout_ms;
  if (request.timeout_ms > 0) timeout_ms = std::min(timeout_ms, request.timeout_ms);
  budget->limits.deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  budget->limits.allow_partial = request.allow_partial;
  budget->cancel = std::move(request.cancel);
  auto gather = fan_in<engine::query::partial_result>::make(
      partitions.size(),
      [this, plan = *plan, reply = std::move(reply)](
          std::vector<result<engine::query::partial_result>> results) mutable {
        engine::query::partial_result merged;
        for (auto& r : results) {
          // The partition actor counted its error.
          if (!r) return reply(std::move(r.err()));
          if (auto s = engine::query::merge(merged, std::move(r).value(), *plan); !s) {
            return fail(reply, s.err());
          }
        }
        metrics.query_events_scanned.fetch_add(merged.events_scanned, std::memory_order_relaxed);
        reply(std::move(merged));
      });
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    auto slot = gather->slot(i);
    send_to<query_msg>(partitions[i], &slot, *plan, budget, std::move(slot));
  }
}

// --- node ---

result<std::unique_ptr<node>> node::start(node_options options) {
  auto im = std::make_unique<impl>(std::move(options));
  if (auto s = im->open(); !s) {
    im->stop();
    return s.err();
  }
  return std::unique_ptr<node>(new node(std::move(im)));
}

node::node(std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}
node::~node() { stop(); }

request_handler& node::handler() { return *impl_; }
node_metrics& node::metrics() { return impl_->metrics; }
const node_options& node::options() const { return impl_->options; }
std::uint32_t node::partition_count() const { return impl_->router_->partition_count(); }

void node::stop() { impl_->stop(); }

void node::set_owned(partition_id p, bool owned) {
  impl_->send_to<set_owned_msg>(p, nullptr, owned);
}

void node::ship_log(partition_id p, lsn from, std::size_t max_bytes,
                    reply_fn<engine::shipped_batch> reply) {
  impl_->send_to<ship_log_msg>(p, &reply, from, max_bytes, std::move(reply));
}

void node::seal(partition_id p, reply_fn<lsn> reply) {
  impl_->send_to<seal_msg>(p, &reply, std::move(reply));
}

void node::unseal(partition_id p, reply_fn<lsn> reply) {
  impl_->send_to<unseal_msg>(p, &reply, std::move(reply));
}

void node::apply_shipped(partition_id p, engine::shipped_batch batch,
                         reply_fn<engine::shipped_write> reply) {
  impl_->send_to<apply_shipped_msg>(p, &reply, std::move(batch), std::move(reply));
}

void node::partition_end(partition_id p, reply_fn<lsn> reply) {
  impl_->send_to<end_msg>(p, &reply, std::move(reply));
}

void node::clear_partition(partition_id p, reply_fn<lsn> reply) {
  impl_->send_to<clear_msg>(p, &reply, std::move(reply));
}

}  // namespace annal::actors
