// Query evaluation scenarios (engine/query/partition_scan.hpp): events
// scanned per second by one partition scan, on a real partition in a temp
// directory filled with 1M events of ~100-byte JSON data.
//
// Scenarios (the figure is items_per_second = events scanned per second):
//   query_count_type      count() where type = "OrderPlaced" (no JSON parsed)
//   query_sum_by_region   sum(data.amount) by data.region
//   query_p99_by_region   p99(data.amount), count_distinct(data.customer) by data.region
//   query_last_100        last 100 where data.amount > 900
// each on batches of 100 events per record (batch100) and of 1 (batch1), and
// with 2 threads scanning 2 partitions (the 2-core node).
// Usage: query_bench [--benchmark_filter=REGEX] [google benchmark flags].
// Env ANNAL_QUERY_BENCH_DIR: where the store goes (default /tmp).

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <stdlib.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/query/partition_scan.hpp"
#include "engine/query/plan.hpp"
#include "engine/query/result_table.hpp"
#include "engine/store.hpp"

namespace {

using namespace annal;
using namespace annal::engine;
using namespace annal::engine::query;
using annal::engine::query::query;  // the struct, not its namespace

constexpr std::uint64_t k_events = 1'000'000;
constexpr std::size_t k_streams = 1000;
constexpr std::size_t k_step_bytes = 1u << 20;  // what a partition actor scans per step

const char* const k_regions[] = {"eu-west", "eu-east", "us-west", "us-east", "ap-south"};
const char* const k_types[] = {"OrderPlaced", "OrderShipped", "OrderPaid", "OrderCancelled"};

event_id make_id(std::uint64_t n) {
  event_id id{};
  std::memcpy(id.data(), &n, 8);
  id[15] = 1;  // never the nil UUID
  return id;
}

// ~100 bytes of JSON.
std::string data_for(std::uint64_t n) {
  return fmt::format(
      "{{\"amount\":{}.{:02},\"region\":\"{}\",\"customer\":\"c-{}\",\"items\":{},"
      "\"currency\":\"EUR\",\"channel\":\"web\"}}",
      (n * 7919) % 1000, n % 100, k_regions[n % 5], (n * 31) % 10000, n % 9 + 1);
}

// A store of two partitions; each is filled with k_events events in batches
// of `batch` the first time a benchmark asks for it. Lives for the process.
class dataset {
 public:
  static dataset& get(std::size_t batch) {
    static std::mutex m;
    static std::map<std::size_t, std::unique_ptr<dataset>> sets;
    std::lock_guard lock(m);
    auto& d = sets[batch];
    if (!d) d = std::make_unique<dataset>(batch);
    return *d;
  }

  explicit dataset(std::size_t batch) : batch_(batch) {
    const char* base = std::getenv("ANNAL_QUERY_BENCH_DIR");
    std::string pattern = std::string(base ? base : "/tmp") + "/annal-query-bench-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    dir_ = pattern;
    store_options o;
    o.directory = dir_ + "/store";
    o.partition_count = 2;
    o.node_log.mode = fsync_mode::none;
    auto st = store::open(o);
    if (!st) {
      fmt::print(stderr, "open {}: {}\n", o.directory, st.err().message);
      std::abort();
    }
    store_ = std::move(*st);
  }

  partition& filled(std::uint32_t p) {
    std::lock_guard lock(m_);
    partition& part = **store_->get(partition_id{p});
    if (!filled_[p]) {
      fill(part);
      filled_[p] = true;
    }
    return part;
  }

  ~dataset() {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

 private:
  void fill(partition& part) {
    std::vector<std::string> streams;
    for (std::size_t i = 0; i < k_streams; ++i) streams.push_back(fmt::format("order-{}", i));
    std::vector<event_input> events(batch_);
    for (std::uint64_t n = 0, appends = 0; n < k_events; n += batch_, ++appends) {
      for (std::size_t i = 0; i < batch_; ++i) {
        events[i].id = make_id(next_id_++);
        events[i].type = k_types[(n + i) % 4];
        events[i].data = data_for(n + i);
      }
      auto r = part.append(streams[appends % k_streams], expected_version::any(), events);
      if (!r) {
        fmt::print(stderr, "append: {}\n", r.err().message);
        std::abort();
      }
      if (appends % 256 == 0) (void)store_->sync();
    }
    (void)store_->sync();
    (void)store_->checkpoint_all();  // segment files on disk, as a running node has them
  }

  std::size_t batch_;
  std::string dir_;
  std::unique_ptr<store> store_;
  std::mutex m_;
  bool filled_[2] = {false, false};
  std::uint64_t next_id_ = 1;
};

field data_field(const char* name) { return field{field::kind::data, {name}}; }

query count_type() {
  query q;
  q.where = expr{expr::kind::compare,
                 comparison{field{field::kind::type, {}}, compare_op::eq, {"OrderPlaced"}},
                 {}};
  q.result = aggregation{{aggregate{aggregate_kind::count, std::nullopt, 0}}, {}, 0, 0};
  return q;
}

query sum_by_region() {
  query q;
  q.result = aggregation{
      {aggregate{aggregate_kind::sum, data_field("amount"), 0}}, {data_field("region")}, 0, 0};
  return q;
}

query p99_by_region() {
  query q;
  q.result = aggregation{{aggregate{aggregate_kind::percentile, data_field("amount"), 99},
                          aggregate{aggregate_kind::count_distinct, data_field("customer"), 0}},
                         {data_field("region")},
                         0,
                         0};
  return q;
}

query last_100() {
  query q;
  q.where =
      expr{expr::kind::compare, comparison{data_field("amount"), compare_op::gt, {900.0}}, {}};
  q.result = event_listing{100, true};
  return q;
}

// Each thread scans its own partition (thread i: partition i).
void scan(benchmark::State& state, query (*make)(), std::size_t batch) {
  auto& data = dataset::get(batch);
  partition& part = data.filled(static_cast<std::uint32_t>(state.thread_index()));
  auto p = plan::compile(make());
  if (!p) {
    state.SkipWithError(p.err().message.c_str());
    return;
  }
  std::uint64_t scanned_total = 0;
  std::uint64_t rows = 0;
  for (auto _ : state) {
    partition_scan s(*p, part.id(), part.visible_end());
    scan_usage usage;
    while (true) {
      auto done = s.step(part, k_step_bytes, scan_limits{}, usage);
      if (!done) {
        state.SkipWithError(done.err().message.c_str());
        return;
      }
      if (*done) break;
    }
    auto answer = finish(s.take(), **p);
    scanned_total += answer.events_scanned;
    if (auto* t = std::get_if<result_table>(&answer.body)) rows = t->rows.size();
    benchmark::DoNotOptimize(answer);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(scanned_total));
  state.counters["rows"] = static_cast<double>(rows);
  state.SetLabel(fmt::format("events={} batch={} step_bytes={}", k_events, batch, k_step_bytes));
}

#define ANNAL_QUERY_BENCH(name, make)                                                            \
  BENCHMARK_CAPTURE(scan, name##_batch100, make, 100)                                            \
      ->Unit(benchmark::kMillisecond)                                                            \
      ->UseRealTime();                                                                           \
  BENCHMARK_CAPTURE(scan, name##_batch1, make, 1)->Unit(benchmark::kMillisecond)->UseRealTime(); \
  BENCHMARK_CAPTURE(scan, name##_batch100, make, 100)                                            \
      ->Threads(2)                                                                               \
      ->Unit(benchmark::kMillisecond)                                                            \
      ->UseRealTime();

ANNAL_QUERY_BENCH(query_count_type, count_type)
ANNAL_QUERY_BENCH(query_sum_by_region, sum_by_region)
ANNAL_QUERY_BENCH(query_p99_by_region, p99_by_region)
ANNAL_QUERY_BENCH(query_last_100, last_100)

}  // namespace

BENCHMARK_MAIN();
