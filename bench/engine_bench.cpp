// Named engine scenarios with their settings printed next to each figure.
// Usage: engine_bench [--scenario NAME|all] [--dir DIR] [--events N] [--inflight N]
//                     [--segment-bytes N] [--wal-segment-bytes N] [--syncers N]
// Scenarios: append, append_sync, append_single_sync, append_single_sync_64,
// read_forward, recovery. Results and commands: docs/benchmarks.md.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "engine/store.hpp"

namespace {

using namespace annal;
using namespace annal::engine;
using steady = std::chrono::steady_clock;

struct settings {
  std::string dir = "/tmp/annal-bench";
  std::uint64_t events = 0;    // 0: the scenario's default
  std::size_t inflight = 0;    // 0: the scenario's default
  std::uint64_t segment_bytes = 64u << 20;      // partition log segments
  std::uint64_t wal_segment_bytes = 64u << 20;  // node log segments
  std::size_t syncers = 1;  // group-commit threads
};

double seconds_since(steady::time_point start) {
  return std::chrono::duration<double>(steady::now() - start).count();
}

void report(const std::string& scenario, const std::string& config, std::uint64_t events,
            double seconds, const std::string& extra = "") {
  fmt::print("{:<24} {:<64} events={:<9} seconds={:<7.3f} events/s={:>12.0f}{}\n", scenario,
             config, events, seconds, events / seconds, extra.empty() ? "" : " " + extra);
  std::fflush(stdout);
}

// Unique, well-spread 16-byte ids.
event_id make_id(std::uint64_t n) {
  auto mix = [](std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  };
  event_id id;
  const std::uint64_t a = mix(n), b = mix(n ^ 0x5555555555555555ull);
  std::memcpy(id.data(), &a, 8);
  std::memcpy(id.data() + 8, &b, 8);
  return id;
}

std::vector<event_input> make_batch(std::uint64_t first_id, std::size_t count,
                                    std::size_t data_bytes) {
  std::vector<event_input> batch(count);
  for (std::size_t i = 0; i < count; ++i) {
    batch[i].id = make_id(first_id + i);
    batch[i].type = "OrderPlaced";
    batch[i].data.assign(data_bytes, 'x');
  }
  return batch;
}

std::unique_ptr<store> open_fresh(const settings& s, std::uint32_t partitions, fsync_mode mode) {
  std::filesystem::remove_all(s.dir);
  // Start from a clean page cache: write-back of an earlier scenario's
  // gigabytes would otherwise land in this one's fdatasyncs.
  ::sync();
  store_options o;
  o.directory = s.dir;
  o.partition_count = partitions;
  o.node_log.mode = mode;
  o.partition.log.segment_bytes = s.segment_bytes;
  o.node_log.segment_bytes = s.wal_segment_bytes;
  auto st = store::open(o);
  if (!st) {
    fmt::print(stderr, "open {}: {}\n", s.dir, st.err().message);
    std::exit(1);
  }
  return std::move(*st);
}

std::string stream_name(std::size_t i) { return fmt::format("order-{}", i); }

// One thread appends batches of `batch` events round-robin over `streams`
// streams, never waiting for durability; the node log is written to the OS
// every 64 appends.
void append_unsynced(const settings& s) {
  const std::uint64_t total = s.events ? s.events : 5'000'000;
  const std::size_t batch = 100, streams = 1000, size = 100;
  auto st = open_fresh(s, 1, fsync_mode::none);
  partition* p = *st->get(partition_id{0});
  auto events = make_batch(0, batch, size);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < streams; ++i) names.push_back(stream_name(i));

  const auto start = steady::now();
  std::uint64_t written = 0, n = 0;
  while (written < total) {
    for (auto& e : events) e.id = make_id(written + (&e - events.data()));
    auto r = p->append(names[n % streams], expected_version::any(), events);
    if (!r) {
      fmt::print(stderr, "append: {}\n", r.err().message);
      std::exit(1);
    }
    written += batch;
    if (++n % 64 == 0) (void)st->sync();
  }
  (void)st->sync();
  report("append", fmt::format("batch={} size={} streams={} fsync=none threads=1", batch, size,
                               streams),
         written, seconds_since(start));
}

// Appends from one thread with up to `inflight` appends waiting for
// durability at once (each models a client waiting for its reply), while a
// second thread runs group-commit rounds: write + fdatasync of the node log.
void append_group_commit(const settings& s, const std::string& name, std::size_t batch,
                         std::size_t inflight, std::uint32_t partitions,
                         std::uint64_t default_total) {
  const std::uint64_t total = s.events ? s.events : default_total;
  if (s.inflight) inflight = s.inflight;
  const std::size_t streams = std::max<std::size_t>(inflight, 64), size = 100;
  auto st = open_fresh(s, partitions, fsync_mode::always);
  node_log& wal = st->wal();
  std::vector<std::string> names;
  std::vector<partition*> owner;
  for (std::size_t i = 0; i < streams; ++i) {
    names.push_back(stream_name(i));
    owner.push_back(*st->get(st->partition_for(names.back())));
  }

  // The appender and the syncer block on futexes (std::atomic wait/notify)
  // rather than spin: spinning starves the I/O completion on two cores.
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> rounds{0};
  std::atomic<std::uint64_t> appends{0};   // bumped per append: wakes the syncer
  std::atomic<std::uint64_t> durable{0};   // published after each round: wakes the appender
  // Several sync threads: their rounds' fdatasyncs overlap.
  auto sync_loop = [&] {
    std::uint64_t seen = 0;
    while (!done.load(std::memory_order_acquire)) {
      appends.wait(seen, std::memory_order_acquire);
      seen = appends.load(std::memory_order_acquire);
      if (!wal.has_pending()) continue;
      auto d = wal.sync();
      if (!d) {
        fmt::print(stderr, "sync: {}\n", d.err().message);
        std::exit(1);
      }
      rounds.fetch_add(1, std::memory_order_relaxed);
      node_log::raise(durable, d->value());
      durable.notify_one();
    }
  };
  std::vector<std::thread> syncers;
  for (std::size_t i = 0; i < s.syncers; ++i) syncers.emplace_back(sync_loop);

  struct waiting {
    node_log_position ticket;
    partition* p;
  };
  std::deque<waiting> queue;
  constexpr std::size_t k_appends_per_wake = 16;
  std::size_t unannounced = 0;
  auto wake_syncers = [&] {
    appends.fetch_add(1, std::memory_order_release);
    appends.notify_one();
    unannounced = 0;
  };
  auto events = make_batch(0, batch, size);
  std::vector<double> latencies;
  const auto start = steady::now();
  std::uint64_t written = 0, n = 0;
  while (written < total) {
    while (queue.size() >= inflight) {
      const std::uint64_t seen = durable.load(std::memory_order_acquire);
      if (queue.front().ticket.value() > seen) {
        if (unannounced > 0) wake_syncers();
        durable.wait(seen, std::memory_order_acquire);
        continue;
      }
      while (!queue.empty() && queue.front().ticket.value() <= seen) {
        queue.front().p->advance_durable(node_log_position{seen});
        queue.pop_front();
      }
    }
    for (std::size_t i = 0; i < batch; ++i) events[i].id = make_id(written + i);
    const std::size_t stream = n++ % streams;
    auto r = owner[stream]->append(names[stream], expected_version::any(), events);
    if (!r) {
      fmt::print(stderr, "append: {}\n", r.err().message);
      std::exit(1);
    }
    queue.push_back({r->durable_after, owner[stream]});
    // Wake a sync thread now and then, not per append: a futex wake per
    // append costs more than the append.
    if (++unannounced >= k_appends_per_wake) wake_syncers();
    written += batch;
  }
  wake_syncers();
  while (!queue.empty()) {
    const std::uint64_t seen = durable.load(std::memory_order_acquire);
    if (queue.back().ticket.value() <= seen) break;
    durable.wait(seen, std::memory_order_acquire);
  }
  const double seconds = seconds_since(start);
  done = true;
  appends.fetch_add(1, std::memory_order_release);
  appends.notify_all();
  for (auto& t : syncers) t.join();
  report(name,
         fmt::format("batch={} size={} inflight={} partitions={} syncers={} wal_segment={} "
                     "fsync=always",
                     batch, size, inflight, partitions, s.syncers, s.wal_segment_bytes),
         written, seconds,
         fmt::format("sync_rounds={} events/round={:.1f}", rounds.load(),
                     double(written) / std::max<std::uint64_t>(rounds.load(), 1)));
}

// Fills streams, then reads them forward in pages from the page cache.
void read_forward(const settings& s) {
  const std::uint64_t total = s.events ? s.events : 5'000'000;
  const std::size_t batch = 100, streams = 100, page = 1000, size = 100;
  auto st = open_fresh(s, 1, fsync_mode::none);
  partition* p = *st->get(partition_id{0});
  auto events = make_batch(0, batch, size);
  for (std::uint64_t written = 0, n = 0; written < total; written += batch, ++n) {
    for (std::size_t i = 0; i < batch; ++i) events[i].id = make_id(written + i);
    (void)p->append(stream_name(n % streams), expected_version::any(), events);
  }
  (void)st->sync();
  (void)p->log().flush();

  // Several passes: the first already finds every page in the page cache.
  const int passes = 3;
  const auto start = steady::now();
  std::uint64_t read = 0, checksum = 0;
  for (std::size_t i = 0; i < streams * passes; ++i) {
    const std::string name = stream_name(i % streams);
    std::optional<stream_version> from = stream_version{0};
    while (from) {
      auto r = p->read_stream(name, *from, page, read_direction::forward);
      if (!r) {
        fmt::print(stderr, "read: {}\n", r.err().message);
        std::exit(1);
      }
      for (const auto& e : r->events) checksum += e.data.size();
      read += r->events.size();
      from = r->next;
    }
  }
  report("read_forward",
         fmt::format("page={} size={} streams={} passes={} (page cache hot)", page, size, streams,
                     passes),
         read,
         seconds_since(start), fmt::format("bytes={}", checksum));
}

// Writes without any checkpoint, drops the store without closing it (an
// unclean stop), and times the reopen that replays the node log.
void recovery(const settings& s) {
  const std::uint64_t total = s.events ? s.events : 5'000'000;
  const std::size_t batch = 100, streams = 1000, size = 100;
  const std::uint32_t partitions = 8;
  {
    auto st = open_fresh(s, partitions, fsync_mode::none);
    auto events = make_batch(0, batch, size);
    for (std::uint64_t written = 0, n = 0; written < total; written += batch, ++n) {
      for (std::size_t i = 0; i < batch; ++i) events[i].id = make_id(written + i);
      const std::string name = stream_name(n % streams);
      (void)(*st->get(st->partition_for(name)))->append(name, expected_version::any(), events);
      if (n % 64 == 0) (void)st->sync();
    }
    (void)st->sync();
  }
  store_options o;
  o.directory = s.dir;
  o.partition_count = partitions;
  const auto start = steady::now();
  auto st = store::open(o);
  const double seconds = seconds_since(start);
  if (!st) {
    fmt::print(stderr, "reopen: {}\n", st.err().message);
    std::exit(1);
  }
  report("recovery",
         fmt::format("batch={} size={} streams={} partitions={} (node log replay)", batch, size,
                     streams, partitions),
         total, seconds, fmt::format("records={}", (*st)->recovery().replayed_records));
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  settings s;
  std::string scenario = "all";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--scenario") scenario = value;
    else if (flag == "--dir") s.dir = value;
    else if (flag == "--events") s.events = std::stoull(value);
    else if (flag == "--inflight") s.inflight = std::stoull(value);
    else if (flag == "--segment-bytes") s.segment_bytes = std::stoull(value);
    else if (flag == "--wal-segment-bytes") s.wal_segment_bytes = std::stoull(value);
    else if (flag == "--syncers") s.syncers = std::stoull(value);
    else {
      fmt::print(stderr, "unknown flag {}\n", flag);
      return 2;
    }
  }
  const std::map<std::string, std::function<void()>> scenarios = {
      {"append", [&] { append_unsynced(s); }},
      {"append_sync",
       [&] { append_group_commit(s, "append_sync", 100, 64, 1, 5'000'000); }},
      {"append_single_sync",
       [&] { append_group_commit(s, "append_single_sync", 1, 256, 1, 2'000'000); }},
      {"append_single_sync_64",
       [&] { append_group_commit(s, "append_single_sync_64", 1, 256, 64, 2'000'000); }},
      {"read_forward", [&] { read_forward(s); }},
      {"recovery", [&] { recovery(s); }},
  };
  fmt::print("engine_bench: dir={} (remove it afterwards)\n", s.dir);
  if (scenario == "all") {
    for (const auto& [name, run] : scenarios) run();
  } else if (auto it = scenarios.find(scenario); it != scenarios.end()) {
    it->second();
  } else {
    fmt::print(stderr, "unknown scenario {}\n", scenario);
    return 2;
  }
  std::filesystem::remove_all(s.dir);
  return 0;
}
