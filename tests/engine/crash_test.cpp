// Crashes, power losses and storage failures under a whole store, on real
// files through fault_injection_file_system (after leveldb's
// db/fault_injection_test.cc): what was acknowledged survives, nothing that
// was never written appears, a torn tail is cut, damage in the middle is
// refused with its file and offset, and failed syncs and writes are sticky.

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/file_names.hpp"
#include "engine/partitioning.hpp"
#include "engine/store.hpp"
#include "engine/verify.hpp"
#include "tests/support/event_factory.hpp"
#include "tests/support/fault_injection_file_system.hpp"
#include "tests/support/manual_clock.hpp"
#include "tests/support/quiet_log.hpp"
#include "tests/support/store_fixture.hpp"
#include "tests/support/stream_dump.hpp"
#include "tests/support/sync_free_file_system.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_rng.hpp"

namespace annal::testing {
namespace {

using engine::errc;
using engine::event_input;
using engine::expected_version;
using power_loss_mode = fault_injection_file_system::power_loss_mode;

constexpr std::uint32_t k_partitions = 4;

// Small segments so that partition and node-log segments roll, checkpoints
// release node-log segments and retention removes partition segments.
engine::store_options small_store_options(const std::string& dir, engine::file_system& fs,
                                          engine::clock& clock) {
  engine::store_options o;
  o.directory = dir + "/store";
  o.partition_count = k_partitions;
  o.fs = &fs;
  o.clock = &clock;
  o.node_log.segment_bytes = 4u << 10;
  o.node_log.mode = engine::fsync_mode::always;
  o.partition.log.segment_bytes = 4u << 10;
  o.partition.log.write_buffer_bytes = 1u << 10;
  o.partition.log.read_ahead_bytes = 4u << 10;
  o.partition.event_id_window = 1000;
  return o;
}

// ------------------------------------------------- the random crash workload

// One write the workload sent to a stream, in the order it was sent.
struct stream_op {
  enum class kind { append, soft_delete, set_metadata, snapshot };
  kind what = kind::append;
  std::vector<event_input> events;   // append
  engine::stream_metadata metadata;  // set_metadata
  std::uint64_t snapshot_version = 0;
  std::string snapshot_payload;
  node_log_position durable_after{0};
  // The call failed with an I/O error: the record may or may not have been
  // written, so it may or may not come back.
  bool failed = false;
};

// A stream after some prefix of its ops.
struct stream_state {
  bool has_entry = false;
  std::vector<const event_input*> events;  // by version, including hidden ones
  engine::stream_metadata metadata;
  bool deleted = false;
  std::optional<std::pair<std::uint64_t, std::string>> snapshot;

  bool exists() const { return has_entry && !deleted && !events.empty(); }
  std::uint64_t next() const { return events.size(); }
  // First version a read returns (the workload never lowers truncate_before
  // or max_count, so versions dropped by a checkpoint are hidden here too).
  std::uint64_t first_retained() const {
    std::uint64_t lo = metadata.truncate_before;
    if (metadata.max_count > 0 && next() > metadata.max_count) {
      lo = std::max(lo, next() - metadata.max_count);
    }
    return std::min(lo, next());
  }
};

void apply(stream_state& s, const stream_op& op) {
  s.has_entry = true;
  switch (op.what) {
    case stream_op::kind::append:
      for (const auto& e : op.events) s.events.push_back(&e);
      s.deleted = false;
      break;
    case stream_op::kind::soft_delete:
      s.metadata.truncate_before = s.next();
      s.deleted = true;
      // A snapshot describes events that the delete removed.
      s.snapshot.reset();
      break;
    case stream_op::kind::set_metadata:
      s.metadata = op.metadata;
      break;
    case stream_op::kind::snapshot:
      s.snapshot.emplace(op.snapshot_version, op.snapshot_payload);
      break;
  }
}

stream_state state_after(const std::vector<stream_op>& ops, std::size_t count) {
  stream_state s;
  for (std::size_t i = 0; i < count; ++i) apply(s, ops[i]);
  return s;
}

// What dump_stream must return for a stream in state `s`.
stream_dump expected_dump(const stream_state& s, timestamp_us timestamp) {
  stream_dump d;
  if (!s.exists()) {
    d.read_code = errc::stream_not_found;
  } else {
    d.last_version = s.next() - 1;
    for (std::uint64_t v = s.first_retained(); v < s.next(); ++v) {
      const auto& e = *s.events[v];
      d.events.push_back({v, e.id, e.type, e.data, e.metadata, timestamp});
    }
    d.backward_reversed = d.events;
  }
  if (s.has_entry) {
    d.metadata = s.metadata;
    d.deleted = s.deleted;
    if (s.exists()) d.info_last_version = s.next() - 1;
    d.first_retained = s.first_retained();
    if (!s.deleted) d.snapshot = s.snapshot;
  }
  return d;
}

struct sent_event {
  std::string stream;
  std::uint64_t version = 0;
  const event_input* input = nullptr;
};

// A random workload over a few streams, run until it ends or the engine
// reports an error, recording what it sent and what was acknowledged.
class crash_workload {
 public:
  static constexpr std::size_t k_streams = 20;
  static constexpr std::size_t k_steps = 120;

  explicit crash_workload(std::uint64_t seed) : seed_(seed) {
    for (std::size_t i = 0; i < k_streams; ++i) {
      streams_.push_back(fmt::format("crash-{}", i));
      ops_.emplace_back();
      current_.emplace_back();
    }
  }

  // Runs on `st` until the end or the first error. Errors other than
  // io_error are test failures (the workload only sends valid writes).
  void run(engine::store& st) {
    test_rng r(seed_);
    for (std::size_t step = 0; step < k_steps; ++step) {
      if (!run_step(st, r)) return;
      if (r.percent(30) && !sync(st)) return;
    }
    sync(st);
  }

  const std::vector<std::string>& streams() const { return streams_; }
  const std::vector<stream_op>& ops(std::size_t stream) const { return ops_[stream]; }
  node_log_position acknowledged() const { return acknowledged_; }
  // Ops of `stream` acknowledged by a successful sync: always a prefix.
  std::size_t acknowledged_ops(std::size_t stream) const {
    std::size_t n = 0;
    while (n < ops_[stream].size() && !ops_[stream][n].failed &&
           ops_[stream][n].durable_after <= acknowledged_) {
      ++n;
    }
    for (std::size_t i = n; i < ops_[stream].size(); ++i) {
      EXPECT_FALSE(!ops_[stream][i].failed && ops_[stream][i].durable_after <= acknowledged_)
          << "acknowledged op " << i << " of " << streams_[stream]
          << " after an unacknowledged one";
    }
    return n;
  }
  const std::map<event_id, sent_event>& sent() const { return sent_; }

 private:
  // False once the engine reported an error.
  bool run_step(engine::store& st, test_rng& r) {
    const std::size_t i = r.below(k_streams);
    const std::string& stream = streams_[i];
    auto got = st.get(st.partition_for(stream));
    if (!got) return unexpected("get", got.err());
    engine::partition& p = **got;
    stream_state& now = current_[i];
    const std::uint64_t kind = r.below(100);
    stream_op op;
    if (kind < 76) {
      op.what = stream_op::kind::append;
      const std::size_t count = r.between(1, 5);
      for (std::size_t k = 0; k < count; ++k) {
        const std::uint64_t n = next_event_++;
        event_input e;
        e.id = make_event_id(n, seed_);
        e.type = fmt::format("type-{}", n % 3);
        e.data = fmt::format("{}:{}:{}", stream, n, r.letters(r.between(8, 300)));
        if (r.percent(20)) e.metadata = fmt::format("meta-{}", n);
        op.events.push_back(std::move(e));
      }
      expected_version expected = expected_version::any();
      if (r.percent(50)) {
        expected = now.exists() ? expected_version::exact(now.next() - 1)
                                : expected_version::no_stream();
      }
      auto a = p.append(stream, expected, op.events);
      if (!a) return record_failure(i, std::move(op), "append", a.err());
      EXPECT_EQ(a->first_version.value(), now.next()) << stream;
      EXPECT_FALSE(a->duplicate) << stream;
      op.durable_after = a->durable_after;
    } else if (kind < 81) {
      if (!now.exists()) return true;
      op.what = stream_op::kind::soft_delete;
      auto w = p.delete_stream(stream, expected_version::any(), false);
      if (!w) return record_failure(i, std::move(op), "delete_stream", w.err());
      op.durable_after = w->durable_after;
    } else if (kind < 87) {
      op.what = stream_op::kind::set_metadata;
      // Never lowered, and max_count is fixed per stream: hidden versions
      // stay hidden, so that dropping them at a checkpoint is invisible.
      op.metadata.truncate_before = r.between(now.metadata.truncate_before, now.next());
      op.metadata.max_count = i % 4 == 0 ? 6 : 0;
      auto w = p.set_metadata(stream, op.metadata);
      if (!w) return record_failure(i, std::move(op), "set_metadata", w.err());
      op.durable_after = w->durable_after;
    } else if (kind < 93) {
      if (!now.exists()) return true;
      op.what = stream_op::kind::snapshot;
      op.snapshot_version = r.below(now.next());
      op.snapshot_payload = fmt::format("snap-{}-{}", stream, r.letters(r.between(1, 100)));
      auto w = p.put_snapshot(stream, stream_version{op.snapshot_version}, op.snapshot_payload);
      if (!w) return record_failure(i, std::move(op), "put_snapshot", w.err());
      op.durable_after = w->durable_after;
    } else {
      if (auto s = st.checkpoint_all(); !s) return unexpected("checkpoint_all", s.err());
      return true;
    }
    record(i, std::move(op));
    return true;
  }

  bool sync(engine::store& st) {
    auto d = st.sync();
    if (!d) return unexpected("sync", d.err());
    acknowledged_ = std::max(acknowledged_, *d);
    return true;
  }

  void record(std::size_t i, stream_op op) {
    ops_[i].push_back(std::move(op));
    const stream_op& stored = ops_[i].back();
    if (stored.what == stream_op::kind::append) {
      std::uint64_t v = current_[i].next();
      for (const auto& e : stored.events) {
        EXPECT_TRUE(sent_.emplace(e.id, sent_event{streams_[i], v++, &e}).second);
      }
    }
    apply(current_[i], stored);
  }

  bool record_failure(std::size_t i, stream_op op, const char* what, const engine::error& e) {
    if (e.code == errc::io_error) {
      op.failed = true;
      record(i, std::move(op));
    }
    return unexpected(what, e);
  }

  // Stops the workload; anything but an I/O error is a test failure.
  bool unexpected(const char* what, const engine::error& e) {
    EXPECT_EQ(e.code, errc::io_error) << what << ": " << engine::errc_name(e.code) << ": "
                                      << e.message;
    return false;
  }

  std::uint64_t seed_;
  std::vector<std::string> streams_;
  // ops_ elements hold the events that sent_ points into: never copied after
  // being recorded (vectors of ops only grow; their elements' event vectors
  // move with them, and the event_input objects stay in place).
  std::vector<std::vector<stream_op>> ops_;
  std::vector<stream_state> current_;
  std::map<event_id, sent_event> sent_;
  node_log_position acknowledged_{0};
  std::uint64_t next_event_ = 1;
};

// Everything a client sees of the workload's streams.
std::vector<stream_dump> dump_all(engine::store& st, const std::vector<std::string>& streams) {
  std::vector<stream_dump> out;
  for (const auto& s : streams) {
    auto p = st.get(st.partition_for(s));
    if (!p) {
      stream_dump d;
      d.failure = fmt::format("partition unavailable: {}", p.err().message);
      out.push_back(std::move(d));
      continue;
    }
    out.push_back(dump_stream(**p, s));
  }
  return out;
}

// What the checks of one run covered, for the test's log.
struct crash_coverage {
  std::uint64_t acknowledged_ops = 0;  // ops that had to survive
  std::uint64_t surviving_unacknowledged_ops = 0;  // ops past them that came back
  std::uint64_t lost_unacknowledged_ops = 0;       // ops past them that did not
};

// Checks the recovered dumps against what the workload sent and acknowledged.
crash_coverage check_recovered(const crash_workload& w, const std::vector<stream_dump>& dumps,
                               timestamp_us timestamp) {
  crash_coverage coverage;
  for (std::size_t i = 0; i < w.streams().size(); ++i) {
    const std::string& stream = w.streams()[i];
    const stream_dump& d = dumps[i];
    SCOPED_TRACE(stream);
    EXPECT_EQ(d.failure, "");
    EXPECT_EQ(d.backward_reversed, d.events) << "backward read differs from forward read";

    // Nothing foreign, versions dense, no id twice.
    std::set<event_id> ids;
    for (std::size_t k = 0; k < d.events.size(); ++k) {
      const auto& e = d.events[k];
      if (k > 0) {
        EXPECT_EQ(e.version, d.events[k - 1].version + 1) << "versions are not dense";
      }
      EXPECT_TRUE(ids.insert(e.id).second) << "event id twice: " << describe(e);
      auto it = w.sent().find(e.id);
      if (it == w.sent().end()) {
        ADD_FAILURE() << "an event that was never appended: " << describe(e);
        continue;
      }
      const sent_event& s = it->second;
      EXPECT_EQ(s.stream, stream) << describe(e);
      EXPECT_EQ(s.version, e.version) << describe(e);
      EXPECT_EQ(s.input->type, e.type) << describe(e);
      EXPECT_EQ(s.input->data, e.data) << describe(e);
      EXPECT_EQ(s.input->metadata, e.metadata) << describe(e);
    }

    // Every acknowledged event that no later op hides is there.
    const auto& ops = w.ops(i);
    const std::size_t acked = w.acknowledged_ops(i);
    const stream_state all = state_after(ops, ops.size());
    if (all.exists()) {
      for (std::size_t k = 0; k < acked; ++k) {
        if (ops[k].what != stream_op::kind::append) continue;
        for (const auto& e : ops[k].events) {
          const auto& sent = w.sent().at(e.id);
          if (sent.version < all.first_retained()) continue;
          const bool found = std::any_of(d.events.begin(), d.events.end(), [&](const auto& r) {
            return r.id == e.id && r.version == sent.version && r.data == e.data;
          });
          EXPECT_TRUE(found) << "acknowledged event v" << sent.version << " id "
                             << hex_of(e.id) << " is missing";
        }
      }
    }

    // The whole stream is what some prefix of its ops, at least as long as
    // the acknowledged one, leaves.
    bool matched = false;
    std::size_t k = acked;
    for (; k <= ops.size(); ++k) {
      matched = expected_dump(state_after(ops, k), timestamp) == d;
      if (matched) break;
    }
    coverage.acknowledged_ops += acked;
    if (matched) {
      coverage.surviving_unacknowledged_ops += k - acked;
      coverage.lost_unacknowledged_ops += ops.size() - k;
    }
    if (!matched) {
      ADD_FAILURE() << "the recovered stream is no prefix of its " << ops.size() << " ops ("
                    << acked << " acknowledged)\n  recovered: " << describe(d)
                    << "\n  after the acknowledged ops: "
                    << describe(expected_dump(state_after(ops, acked), timestamp))
                    << "\n  after all ops: "
                    << describe(expected_dump(state_after(ops, ops.size()), timestamp));
    }
  }
  return coverage;
}

// Opens the store; every partition must be available.
std::unique_ptr<engine::store> open_all(const engine::store_options& options) {
  auto st = engine::store::open(options);
  if (!st) {
    ADD_FAILURE() << "open: " << engine::errc_name(st.err().code) << ": " << st.err().message;
    return nullptr;
  }
  for (std::uint32_t i = 0; i < (*st)->partition_count(); ++i) {
    auto p = (*st)->get(partition_id{i});
    if (!p) {
      ADD_FAILURE() << "partition " << i << ": " << engine::errc_name(p.err().code) << ": "
                    << p.err().message;
      return nullptr;
    }
  }
  return std::move(*st);
}

void expect_verified(engine::file_system& fs, const std::string& directory) {
  const auto report = engine::verify_store(fs, directory);
  std::string problems;
  for (const auto& p : report.problems) {
    problems += fmt::format("\n  {} {} at {}: {}",
                            p.level == engine::verify_problem::severity::error ? "error"
                                                                               : "warning",
                            p.file, p.offset, p.message);
  }
  EXPECT_TRUE(report.ok()) << "verify_store:" << problems;
}

struct crash_run {
  std::uint64_t mutating_operations = 0;  // of the workload, from the store's creation
  bool node_log_rolled = false;           // the workload filled a node-log segment
  crash_coverage coverage;
};

// One iteration: fresh directory, crash point, workload, destroy, power loss,
// reopen and check, reopen again and compare.
crash_run run_crash_iteration(std::uint64_t seed, std::optional<std::uint64_t> crash_after,
                              power_loss_mode mode, std::uint64_t loss_seed) {
  crash_run out;
  temp_dir dir;
  // Real files without real fsyncs: the fault file system alone decides what
  // the power loss keeps, and a hundred runs of real fsyncs take minutes on a
  // busy disk. The targeted tests below sync for real.
  sync_free_file_system files(engine::posix_file_system());
  fault_injection_file_system fs(files);
  manual_clock clock;
  const timestamp_us timestamp = clock.now_us();
  auto options = small_store_options(dir.path(), fs, clock);
  // Both ways of zero-filling the next node-log segment: on its own thread
  // (file operations interleave differently from run to run) or in the sync
  // round (the same operations every run).
  options.node_log.prepare_in_background = (seed / 2) % 2 == 0;
  crash_workload w(seed);

  if (crash_after) fs.crash_after(*crash_after);
  {
    auto st = engine::store::open(options);
    if (st) {
      w.run(**st);
      out.node_log_rolled = (*st)->wal().segments().back().base.value() > 0;
    } else {
      EXPECT_TRUE(crash_after.has_value()) << "open: " << st.err().message;
    }
    out.mutating_operations = fs.mutating_operations();
  }  // the store is destroyed without close: a crash
  EXPECT_FALSE(fs.power_loss(mode, loss_seed));

  std::vector<stream_dump> first;
  {
    auto st = open_all(options);
    if (!st) return out;
    first = dump_all(*st, w.streams());
    out.coverage = check_recovered(w, first, timestamp);
  }
  expect_verified(fs, options.directory);
  {
    auto st = open_all(options);
    if (!st) return out;
    const auto second = dump_all(*st, w.streams());
    for (std::size_t i = 0; i < second.size(); ++i) {
      EXPECT_EQ(second[i], first[i])
          << w.streams()[i] << " differs on the second reopen\n  first:  " << describe(first[i])
          << "\n  second: " << describe(second[i]);
    }
    // The recovered store takes writes again.
    for (std::size_t i = 0; i < w.streams().size(); i += 5) {
      const auto& stream = w.streams()[i];
      auto p = st->get(st->partition_for(stream));
      if (!p) {
        ADD_FAILURE() << p.err().message;
        continue;
      }
      auto a = (*p)->append(stream, expected_version::any(), make_events(1u << 30, 1));
      EXPECT_TRUE(a) << stream << ": " << a.err().message;
    }
    auto d = st->sync();
    EXPECT_TRUE(d) << d.err().message;
  }
  return out;
}

TEST(crash_test, durable_appends_survive_random_crash_points) {
  // Each seed is one workload; its crash points are spread over the mutating
  // file operations a run without a crash makes.
  constexpr std::uint64_t k_seeds[] = {11, 23, 37, 41, 53, 67, 79, 97, 101, 113, 127, 131};
  constexpr int k_crashes_per_seed = 19;
  const quiet_log quiet;
  int iterations = 0;
  crash_coverage total_coverage;
  auto count = [&](const crash_run& run) {
    ++iterations;
    total_coverage.acknowledged_ops += run.coverage.acknowledged_ops;
    total_coverage.surviving_unacknowledged_ops += run.coverage.surviving_unacknowledged_ops;
    total_coverage.lost_unacknowledged_ops += run.coverage.lost_unacknowledged_ops;
  };
  for (const std::uint64_t seed : k_seeds) {
    test_rng r(seed * 7919);
    std::uint64_t total = 0;
    {
      SCOPED_TRACE(fmt::format("seed {} without a crash", seed));
      const auto run =
          run_crash_iteration(seed, std::nullopt, power_loss_mode::drop_unsynced, seed);
      total = run.mutating_operations;
      EXPECT_TRUE(run.node_log_rolled) << "the workload never filled a node-log segment";
      count(run);
    }
    ASSERT_GT(total, 100u) << "the workload is too small to crash in";
    for (int k = 0; k < k_crashes_per_seed; ++k) {
      const std::uint64_t crash_point = r.below(total + 1);
      const auto mode = r.percent(50) ? power_loss_mode::drop_unsynced
                                      : power_loss_mode::tear_unsynced;
      const std::uint64_t loss_seed = r.next();
      SCOPED_TRACE(fmt::format("seed {} iteration {}: crash_after({}) of {}, power_loss({}, {})",
                               seed, k, crash_point, total,
                               mode == power_loss_mode::drop_unsynced ? "drop_unsynced"
                                                                      : "tear_unsynced",
                               loss_seed));
      count(run_crash_iteration(seed, crash_point, mode, loss_seed));
      if (HasFailure()) return;  // one failing scenario is enough to debug
    }
  }
  EXPECT_GE(iterations, 100);
  std::printf("%d runs; ops checked: %llu acknowledged, %llu unacknowledged that survived, %llu "
              "unacknowledged that were lost\n",
              iterations, static_cast<unsigned long long>(total_coverage.acknowledged_ops),
              static_cast<unsigned long long>(total_coverage.surviving_unacknowledged_ops),
              static_cast<unsigned long long>(total_coverage.lost_unacknowledged_ops));
  EXPECT_GT(total_coverage.lost_unacknowledged_ops, 0u) << "no crash ever lost anything";
}

// ------------------------------------------------------ targeted scenarios

// A stream id hashing to partition `p` of a k_partitions store.
std::string stream_in(std::uint32_t p, std::string_view stem) {
  for (int i = 0;; ++i) {
    std::string s = fmt::format("{}-{}", stem, i);
    if (engine::partition_for(s, k_partitions) == partition_id{p}) return s;
  }
}

std::string node_log_file(const engine::store_options& o, std::uint64_t base) {
  return o.directory + "/node-log/" + engine::node_log::segment_name(node_log_position{base});
}

std::vector<std::string> data_read(engine::store& st, std::string_view stream) {
  auto p = must(st.get(st.partition_for(stream)), "get");
  auto page = must(p->read_stream(stream, stream_version{0}, 10000,
                                  engine::read_direction::forward),
                   "read");
  return data_of(page);
}

std::vector<std::string> data_list(std::uint64_t first, std::size_t count) {
  std::vector<std::string> out;
  for (std::uint64_t n = first; n < first + count; ++n) out.push_back(data_for(n));
  return out;
}

TEST(crash_test, torn_tail_is_truncated) {
  temp_dir dir;
  fault_injection_file_system fs(engine::posix_file_system());
  manual_clock clock;
  auto options = small_store_options(dir.path(), fs, clock);
  options.node_log.segment_bytes = 64u << 20;  // one node-log segment
  const std::string stream = "torn-1";
  std::uint64_t durable_size = 0;
  {
    auto st = must(engine::store::open(options), "open");
    auto* p = must(st->get(st->partition_for(stream)), "get");
    for (std::uint64_t n = 1; n <= 10; n += 2) {
      must(p->append(stream, expected_version::any(), make_events(n, 2)), "append");
    }
    must(st->sync(), "sync");
    durable_size = st->wal().durable_position().value();
    // The last write reaches the file but its fdatasync fails: a power loss
    // keeps part of it.
    fs.fail_syncs(std::errc::io_error);
    for (std::uint64_t n = 11; n <= 15; ++n) {
      must(p->append(stream, expected_version::any(), make_events(n, 1)), "append");
    }
    auto failed = st->sync();
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.err().code, errc::io_error);
  }
  const std::string wal = node_log_file(options, 0);
  // The segment is preallocated: what a write left is where non-zero bytes end.
  const auto written_extent = [&] {
    std::vector<std::byte> bytes;
    EXPECT_FALSE(fs.read_file(wal, bytes));
    EXPECT_EQ(bytes.size(), options.node_log.segment_bytes) << "the segment keeps its size";
    std::uint64_t end = bytes.size();
    while (end > 0 && bytes[end - 1] == std::byte{0}) --end;
    return end;
  };
  const std::uint64_t written = written_extent();
  ASSERT_GT(written, durable_size);
  // Seed 1 keeps a prefix of the unsynced bytes that ends inside a record
  // (not in the end mark after them).
  ASSERT_FALSE(fs.power_loss(power_loss_mode::tear_unsynced, 1));
  const std::uint64_t torn_size = written_extent();
  ASSERT_GT(torn_size, durable_size) << "the power loss kept none of the last write";
  ASSERT_LT(torn_size, written) << "the power loss kept all of the last write";

  std::uint64_t kept_records = 0;
  {
    auto st = open_all(options);
    ASSERT_TRUE(st);
    EXPECT_GT(st->recovery().torn_bytes, 0u);
    EXPECT_GE(st->wal().appended_position().value(), durable_size);
    EXPECT_EQ(written_extent(), torn_size)
        << "the torn tail stays for new records to overwrite (no frame in it passes the salt)";
    // Everything acknowledged, then whole records of the last write in order.
    const auto data = data_read(*st, stream);
    ASSERT_GE(data.size(), 10u);
    ASSERT_LE(data.size(), 14u) << "a torn record came back";
    EXPECT_EQ(data, data_list(1, data.size()));
    kept_records = data.size() - 10;
    // The log continues after the cut.
    auto* p = must(st->get(st->partition_for(stream)), "get");
    auto a = must(p->append(stream, expected_version::any(), make_events(100, 1)), "append");
    EXPECT_EQ(a.first_version.value(), data.size());
    must(st->sync(), "sync");
  }
  expect_verified(fs, options.directory);
  {
    // What the new record did not overwrite of the torn tail is still there,
    // and still no record.
    auto st = open_all(options);
    ASSERT_TRUE(st);
    auto expected = data_list(1, 10 + kept_records);
    expected.push_back(data_for(100));
    EXPECT_EQ(data_read(*st, stream), expected);
  }
}

TEST(crash_test, checkpoint_under_fsync_none_leaves_no_node_log_gap_after_power_loss) {
  // Under fsync=none the node log acknowledges writes it never fdatasyncs. A
  // checkpoint must still record a node-log position that is on disk, or the
  // log restarts past its surviving end and later opens see a gap.
  temp_dir dir;
  fault_injection_file_system fs(engine::posix_file_system());
  manual_clock clock;
  auto options = small_store_options(dir.path(), fs, clock);
  options.node_log.mode = engine::fsync_mode::none;
  const std::string checkpointed = "cp-1";
  {
    auto st = must(engine::store::open(options), "open");
    auto* p = must(st->get(st->partition_for(checkpointed)), "get");
    must(p->append(checkpointed, expected_version::any(), make_events(1, 3)), "append");
    must(st->sync(), "sync");
    must(p->checkpoint(), "checkpoint");
    for (std::uint64_t n = 4; n <= 20; ++n) {
      const std::string other = "other-" + std::to_string(n % 5);
      auto* q = must(st->get(st->partition_for(other)), "get");
      must(q->append(other, expected_version::any(), make_events(n, 1)), "append");
      must(st->sync(), "sync");  // acknowledged, never fdatasynced
    }
  }
  ASSERT_FALSE(fs.power_loss(power_loss_mode::drop_unsynced));
  for (int round = 0; round < 2; ++round) {
    auto st = open_all(options);
    ASSERT_TRUE(st) << "round " << round;
    EXPECT_EQ(data_read(*st, checkpointed), data_list(1, 3)) << "round " << round;
    auto* p = must(st->get(st->partition_for("after-1")), "get");
    must(p->append("after-1", expected_version::any(), make_events(100 + round, 1)), "append");
    must(st->sync(), "sync");  // then a crash: no close, no checkpoint
  }
  expect_verified(fs, options.directory);
}

// Damages a record of partition 0 in the middle of the node log, in its first
// segment of `node_log_segment_bytes`: the last segment when that is large,
// a sealed one (read through visit_valid_frames first) when it is small.
void check_bit_flip_mid_log_is_refused(std::uint64_t node_log_segment_bytes) {
  temp_dir dir;
  fault_injection_file_system fs(engine::posix_file_system());
  manual_clock clock;
  auto options = small_store_options(dir.path(), fs, clock);
  options.node_log.segment_bytes = node_log_segment_bytes;
  options.partition.log.segment_bytes = 64u << 20;  // one segment per partition
  std::vector<std::string> streams;
  for (std::uint32_t p = 0; p < k_partitions; ++p) streams.push_back(stream_in(p, "flip"));

  std::uint64_t damaged_at = 0;  // node-log offset of the damaged record
  std::uint64_t next = 1;
  std::vector<std::vector<std::string>> acknowledged(k_partitions);
  auto append_all = [&](engine::store& st) {
    for (std::uint32_t p = 0; p < k_partitions; ++p) {
      auto* part = must(st.get(partition_id{p}), "get");
      must(part->append(streams[p], expected_version::any(), make_events(next, 2)), "append");
      acknowledged[p].push_back(data_for(next));
      acknowledged[p].push_back(data_for(next + 1));
      next += 2;
    }
    must(st.sync(), "sync");
  };
  {
    auto st = must(engine::store::open(options), "open");
    append_all(*st);
    // The record to damage: partition 0's, in the middle of the log.
    damaged_at = st->wal().appended_position().value();
    append_all(*st);
    append_all(*st);
    // Partitions 2 and 3 checkpoint past the damage; 0 and 1 still need the
    // node log from its start.
    must(must(st->get(partition_id{2}), "get")->checkpoint(), "checkpoint");
    must(must(st->get(partition_id{3}), "get")->checkpoint(), "checkpoint");
    // Valid, acknowledged records after the damage and after the checkpoints.
    append_all(*st);
    append_all(*st);
  }  // crash
  const std::string wal = node_log_file(options, 0);
  ASSERT_FALSE(fs.flip_bit(wal, damaged_at + engine::log_format::k_header_size + 8, 3));
  std::uint64_t segment_count = 0;
  for (const auto& f : std::filesystem::directory_iterator(options.directory + "/node-log")) {
    if (f.path().extension() == engine::k_node_log_suffix) ++segment_count;
  }
  if (node_log_segment_bytes < (1u << 20)) {
    ASSERT_GE(segment_count, 2u) << "the damaged segment should be sealed";
  } else {
    ASSERT_EQ(segment_count, 1u);
  }

  {
    auto st = must(engine::store::open(options), "open");
    for (std::uint32_t p : {0u, 1u}) {
      auto got = st->get(partition_id{p});
      ASSERT_FALSE(got) << "partition " << p << " opened over a damaged node log";
      EXPECT_EQ(got.err().code, errc::partition_unavailable);
      EXPECT_NE(got.err().message.find(wal), std::string::npos) << got.err().message;
      EXPECT_NE(got.err().message.find(fmt::format("offset {}", damaged_at)), std::string::npos)
          << got.err().message;
    }
    for (std::uint32_t p : {2u, 3u}) {
      auto got = st->get(partition_id{p});
      ASSERT_TRUE(got) << "partition " << p << ": " << got.err().message;
      EXPECT_EQ(data_read(*st, streams[p]), acknowledged[p])
          << "partition " << p << " lost acknowledged writes made after its checkpoint";
    }
  }
  // Damage is never repaired behind the operator's back: it is refused again.
  {
    auto st = must(engine::store::open(options), "open");
    EXPECT_FALSE(st->get(partition_id{0}));
    EXPECT_TRUE(st->get(partition_id{2}));
  }
  const auto report = engine::verify_store(fs, options.directory);
  EXPECT_FALSE(report.ok());
}

TEST(crash_test, bit_flip_mid_log_is_refused_with_file_and_offset) {
  check_bit_flip_mid_log_is_refused(64u << 20);
}

TEST(crash_test, bit_flip_in_a_sealed_node_log_segment_is_refused_with_file_and_offset) {
  check_bit_flip_mid_log_is_refused(2u << 10);
}

TEST(crash_test, bit_flip_in_checkpointed_segment_fails_the_read_with_file_and_offset) {
  temp_dir dir;
  fault_injection_file_system fs(engine::posix_file_system());
  manual_clock clock;
  auto options = small_store_options(dir.path(), fs, clock);
  options.partition.log.segment_bytes = 64u << 20;  // one segment per partition
  const std::string damaged = stream_in(1, "seg");
  const std::string intact = stream_in(1, "other");
  lsn damaged_position{};
  {
    auto st = must(engine::store::open(options), "open");
    auto* p = must(st->get(partition_id{1}), "get");
    must(p->append(intact, expected_version::any(), make_events(1, 3)), "append");
    damaged_position =
        must(p->append(damaged, expected_version::any(), make_events(10, 3)), "append").position;
    must(p->append(intact, expected_version::any(), make_events(4, 3)), "append");
    must(st->close(), "close");
  }
  const std::string segment = fmt::format("{}/partitions/{:05}/{}", options.directory, 1,
                                          engine::partition_log::segment_name(lsn{0}));
  ASSERT_FALSE(
      fs.flip_bit(segment, damaged_position.value() + engine::log_format::k_header_size + 16, 5));

  auto st = open_all(options);
  ASSERT_TRUE(st);
  auto* p = must(st->get(partition_id{1}), "get");
  auto page = p->read_stream(damaged, stream_version{0}, 100, engine::read_direction::forward);
  ASSERT_FALSE(page) << "a damaged record was read";
  EXPECT_EQ(page.err().code, errc::checksum_mismatch) << page.err().message;
  EXPECT_NE(page.err().message.find(segment), std::string::npos) << page.err().message;
  EXPECT_NE(page.err().message.find(fmt::format("offset {}", damaged_position.value())),
            std::string::npos)
      << page.err().message;
  // The other records of the partition still read.
  EXPECT_EQ(data_read(*st, intact), data_list(1, 6));
}

// Acknowledged writes, then a failure; checks that every later write and sync
// fails with io_error even once the file system works again, and that after a
// power loss the acknowledged writes are there and nothing else but the
// unacknowledged ones may be.
void check_sticky_failure(const std::function<void(fault_injection_file_system&)>& inject) {
  temp_dir dir;
  fault_injection_file_system fs(engine::posix_file_system());
  manual_clock clock;
  auto options = small_store_options(dir.path(), fs, clock);
  options.partition.log.write_buffer_bytes = 1u << 20;  // the node log fails first
  const std::string stream = "sticky-1";
  const std::string other = stream_in((engine::partition_for(stream, k_partitions).value() + 1) %
                                          k_partitions,
                                      "sticky-other");
  {
    auto st = must(engine::store::open(options), "open");
    auto* p = must(st->get(st->partition_for(stream)), "get");
    auto* q = must(st->get(st->partition_for(other)), "get");
    must(p->append(stream, expected_version::any(), make_events(1, 3)), "append");
    must(st->sync(), "sync");
    // Not acknowledged: the sync that would cover it fails.
    must(p->append(stream, expected_version::any(), make_events(4, 2)), "append");
    inject(fs);
    auto failed = st->sync();
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.err().code, errc::io_error) << failed.err().message;
    fs.clear_failures();

    // Never retried and pretended: every later write and sync fails.
    for (int round = 0; round < 3; ++round) {
      auto a = p->append(stream, expected_version::any(), make_events(10 + round, 1));
      ASSERT_FALSE(a) << "an append was accepted after a failed sync";
      EXPECT_EQ(a.err().code, errc::io_error);
      auto b = q->append(other, expected_version::any(), make_events(20 + round, 1));
      ASSERT_FALSE(b) << "another partition took an append after a failed sync";
      EXPECT_EQ(b.err().code, errc::io_error);
      auto m = p->set_metadata(stream, engine::stream_metadata{5, 0, 0});
      ASSERT_FALSE(m);
      EXPECT_EQ(m.err().code, errc::io_error);
      auto s = p->put_snapshot(stream, stream_version{0}, "snap");
      ASSERT_FALSE(s);
      EXPECT_EQ(s.err().code, errc::io_error);
      auto d = q->delete_stream(other, expected_version::any(), true);
      ASSERT_FALSE(d);
      EXPECT_EQ(d.err().code, errc::io_error);
      auto again = st->sync();
      ASSERT_FALSE(again) << "a sync succeeded after a failed one";
      EXPECT_EQ(again.err().code, errc::io_error);
    }
    EXPECT_TRUE(st->wal().failure().has_value());
    // Reads serve what was acknowledged, and not the unacknowledged append.
    EXPECT_EQ(data_read(*st, stream), data_list(1, 3));
    EXPECT_FALSE(st->close()) << "close succeeded after a failed sync";
  }  // crash
  ASSERT_FALSE(fs.power_loss(power_loss_mode::drop_unsynced, 1));

  auto st = open_all(options);
  ASSERT_TRUE(st);
  // Acknowledged: there. The unacknowledged append may be there, whole.
  // Nothing written after the failure is.
  const auto data = data_read(*st, stream);
  EXPECT_TRUE(data == data_list(1, 3) || data == data_list(1, 5)) << fmt::format(
      "{}", fmt::join(data, ", "));
  auto q = must(st->get(st->partition_for(other)), "get");
  auto r = q->read_stream(other, stream_version{0}, 10, engine::read_direction::forward);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::stream_not_found) << r.err().message;
  // And the store takes writes again after the restart.
  auto* p = must(st->get(st->partition_for(stream)), "get");
  auto a = must(p->append(stream, expected_version::any(), make_events(50, 1)), "append");
  EXPECT_EQ(a.first_version.value(), data.size());
  must(st->sync(), "sync");
}

TEST(crash_test, failed_fsync_is_sticky) {
  check_sticky_failure([](fault_injection_file_system& fs) { fs.fail_syncs(std::errc::io_error); });
}

TEST(crash_test, enospc_on_write_is_sticky) {
  check_sticky_failure(
      [](fault_injection_file_system& fs) { fs.fail_writes(std::errc::no_space_on_device); });
}

}  // namespace
}  // namespace annal::testing
