// Model-based randomized test of a whole store: random operations run against
// the engine and against a plain in-memory model of the semantics (DESIGN.md,
// "Data model"), and every result is compared: the error code, the versions,
// the current version of a wrong_expected_version, the events returned. After
// every reopen (clean or after a crash) the whole state is compared too.
//
// The model follows DESIGN.md and the contracts in engine/partition.hpp.
// Where they leave a choice open, the model states what it expects and why
// (see model_store). One such choice is left to the
// engine on purpose: events past retention (max_count, max_age,
// truncate_before) are physically dropped at some later checkpoint, at
// segment granularity. Until then a lowered retention setting would show them
// again (as in KurrentDB before a scavenge) and an idempotent retry of them is
// still recognised; afterwards neither. The test therefore never lowers a
// retention setting, and accepts either outcome for a retry of events that
// are already past retention (then checks everything after it exactly).

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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
using engine::read_direction;

constexpr std::uint32_t k_partitions = 4;
constexpr std::size_t k_streams = 20;
// Streams from this index on may be tombstoned; the others never are, so
// that they stay writable for the whole run.
constexpr std::size_t k_first_doomed = 17;
constexpr timestamp_us k_us_per_second = 1'000'000;

// ------------------------------------------------------------------ model

struct model_event {
  event_input input;
  timestamp_us timestamp = 0;
  lsn position{};  // the record's lsn, as the engine reported it for the append
};

struct model_snapshot {
  std::uint64_t version = 0;
  std::string payload;
  timestamp_us timestamp = 0;
};

struct model_stream {
  std::string id;
  std::uint32_t partition = 0;
  bool has_entry = false;            // any write ever succeeded on it
  std::vector<model_event> history;  // every event ever appended, by version
  engine::stream_metadata metadata;
  bool deleted = false;
  bool tombstoned = false;
  std::optional<model_snapshot> snapshot;

  std::uint64_t next() const { return history.size(); }
  // What an expected-version check sees as an existing stream.
  bool exists() const { return has_entry && next() > 0 && !deleted && !tombstoned; }
};

struct expected_write {
  errc code = errc::ok;
  // An alternative the engine may choose instead (see the file comment).
  std::shared_ptr<const expected_write> or_else;
  std::optional<std::uint64_t> current_version;  // wrong_expected_version only
  // append
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  bool duplicate = false;
  lsn position{};  // duplicates only: the original record
  std::uint64_t start = 0;  // retries (duplicates and conflicts): where the batch would sit
};

expected_write failure(errc code) {
  expected_write w;
  w.code = code;
  return w;
}

struct expected_page {
  errc code = errc::ok;
  std::vector<std::pair<std::uint64_t, const model_event*>> events;
  std::optional<std::uint64_t> next;
  std::optional<std::uint64_t> last_version;
};

// The semantics, as plain data structures. Not thread-safe.
class model_store {
 public:
  model_store(engine::clock& clock, std::uint64_t seed) : clock_(clock) {
    for (std::size_t i = 0; i < k_streams; ++i) {
      model_stream s;
      s.id = fmt::format("model{}-{}", seed % 7, i);
      s.partition = engine::partition_for(s.id, k_partitions).value();
      streams_.push_back(std::move(s));
    }
  }

  const model_stream& stream(std::size_t i) const { return streams_[i]; }
  std::size_t size() const { return streams_.size(); }
  // Distinct event ids appended to partition p (the model's window never
  // evicts, so the engine's must be larger).
  std::size_t window_size(std::uint32_t p) const { return windows_[p].size(); }

  // First version a read returns.
  std::uint64_t first_retained(const model_stream& s) const {
    const std::uint64_t next = s.next();
    std::uint64_t lo = s.metadata.truncate_before;
    if (s.metadata.max_count > 0 && next > s.metadata.max_count) {
      lo = std::max(lo, next - s.metadata.max_count);
    }
    lo = std::min(lo, next);
    if (s.metadata.max_age_seconds > 0) {
      const timestamp_us cutoff =
          clock_.now_us() - static_cast<timestamp_us>(s.metadata.max_age_seconds) * k_us_per_second;
      while (lo < next && s.history[lo].timestamp < cutoff) ++lo;
    }
    return lo;
  }

  // ---- appends

  // Idempotency (DESIGN.md): an append whose event ids already sit at the
  // positions it would take returns the original result. Where it would
  // start is where the partition's recent-id window saw its first event in
  // this stream, else (exact N) N + 1, else (no_stream) where a stream
  // written again after a delete starts. A batch that matches the stored
  // ids there only in part is an idempotency_conflict when the window
  // placed it; otherwise it is no retry and the expected version decides.
  // A retry that starts at events already past retention may instead be
  // taken as no retry (the engine dropped them): `or_else` is then unset
  // here and filled in by expect_append.
  std::optional<expected_write> expect_retry(std::size_t i, expected_version expected,
                                             const std::vector<event_input>& events) const {
    const model_stream& s = streams_[i];
    const auto& window = windows_[s.partition];
    std::optional<std::uint64_t> start;
    bool from_window = false;
    if (auto it = window.find(events[0].id); it != window.end() && it->second.first == i) {
      start = it->second.second;
      from_window = true;
    } else if (expected.what == expected_version::kind::exact) {
      start = expected.version.value() + 1;
    } else if (expected.what == expected_version::kind::no_stream) {
      start = s.metadata.truncate_before;
    }
    if (!start || *start >= s.next()) return std::nullopt;
    if (expected.what == expected_version::kind::exact &&
        *start != expected.version.value() + 1) {
      return std::nullopt;
    }
    std::size_t matched = 0;
    while (matched < events.size() && *start + matched < s.next() &&
           s.history[*start + matched].input.id == events[matched].id) {
      ++matched;
    }
    if (matched == events.size()) {
      expected_write w;
      w.start = *start;
      w.first = *start;
      w.last = *start + events.size() - 1;
      w.duplicate = true;
      w.position = s.history[*start].position;
      return w;
    }
    if (from_window && matched > 0) {
      expected_write w = failure(errc::idempotency_conflict);
      w.start = *start;
      return w;
    }
    return std::nullopt;
  }

  std::optional<expected_write> check_expected(const model_stream& s,
                                               expected_version expected) const {
    if (s.has_entry && s.tombstoned) return failure(errc::stream_deleted);
    bool ok = true;
    switch (expected.what) {
      case expected_version::kind::any: break;
      case expected_version::kind::no_stream: ok = !s.exists(); break;
      case expected_version::kind::stream_exists: ok = s.exists(); break;
      case expected_version::kind::exact:
        ok = s.exists() && s.next() - 1 == expected.version.value();
        break;
    }
    if (ok) return std::nullopt;
    expected_write w = failure(errc::wrong_expected_version);
    if (s.exists()) w.current_version = s.next() - 1;
    return w;
  }

  static bool valid_batch(const std::vector<event_input>& events) {
    if (events.empty()) return false;
    for (std::size_t a = 0; a < events.size(); ++a) {
      for (std::size_t b = a + 1; b < events.size(); ++b) {
        if (events[a].id == events[b].id) return false;
      }
    }
    return true;
  }

  expected_write expect_append(std::size_t i, expected_version expected,
                               const std::vector<event_input>& events) const {
    if (!valid_batch(events)) return failure(errc::invalid_event);
    const model_stream& s = streams_[i];
    if (s.has_entry && !s.tombstoned) {
      if (auto retry = expect_retry(i, expected, events)) {
        if (retry->start < first_retained(s)) {
          retry->or_else = std::make_shared<const expected_write>(expect_new_append(s, expected,
                                                                                    events));
        }
        return *retry;
      }
    }
    return expect_new_append(s, expected, events);
  }

  // An append that is no retry.
  expected_write expect_new_append(const model_stream& s, expected_version expected,
                                   const std::vector<event_input>& events) const {
    if (auto e = check_expected(s, expected)) return *e;
    expected_write w;
    w.first = s.next();
    w.last = s.next() + events.size() - 1;
    return w;
  }

  // Requires: expect_append said ok and not duplicate.
  void apply_append(std::size_t i, const std::vector<event_input>& events, lsn position) {
    model_stream& s = streams_[i];
    const timestamp_us ts = next_timestamp(s.partition);
    for (const auto& e : events) {
      windows_[s.partition][e.id] = {i, s.next()};
      s.history.push_back(model_event{e, ts, position});
    }
    s.has_entry = true;
    s.deleted = false;
  }

  // ---- other writes

  expected_write set_metadata(std::size_t i, const engine::stream_metadata& metadata) {
    model_stream& s = streams_[i];
    if (s.has_entry && s.tombstoned) return failure(errc::stream_deleted);
    next_timestamp(s.partition);
    s.has_entry = true;
    s.metadata = metadata;
    return {};
  }

  expected_write delete_stream(std::size_t i, expected_version expected, bool tombstone) {
    model_stream& s = streams_[i];
    if (auto e = check_expected(s, expected)) return *e;
    if (!tombstone && !s.exists()) return failure(errc::stream_not_found);
    next_timestamp(s.partition);
    s.has_entry = true;
    s.metadata.truncate_before = s.next();
    s.deleted = !tombstone;
    s.tombstoned = tombstone;
    // A snapshot describes events the delete removed: a stream written again
    // does not start from it.
    s.snapshot.reset();
    return {};
  }

  expected_write put_snapshot(std::size_t i, std::uint64_t version, const std::string& payload) {
    model_stream& s = streams_[i];
    if (!s.exists()) {
      return failure(s.has_entry && s.tombstoned ? errc::stream_deleted
                                                        : errc::stream_not_found);
    }
    if (version >= s.next()) return failure(errc::invalid_argument);
    s.snapshot = model_snapshot{version, payload, next_timestamp(s.partition)};
    return {};
  }

  // ---- reads

  expected_page read_stream(std::size_t i, std::uint64_t from, std::size_t limit,
                            read_direction direction) const {
    const model_stream& s = streams_[i];
    expected_page page;
    if (limit == 0) {  // a pager following `next` would never stop
      page.code = errc::invalid_argument;
      return page;
    }
    if (s.has_entry && s.tombstoned) {
      page.code = errc::stream_deleted;
      return page;
    }
    const std::uint64_t next = s.next();
    if (!s.has_entry || s.deleted || next == 0) {
      page.code = errc::stream_not_found;
      return page;
    }
    const std::uint64_t lo = first_retained(s);
    page.last_version = next - 1;
    if (direction == read_direction::forward) {
      const std::uint64_t start = std::max(from, lo);
      if (start >= next) return page;
      const std::uint64_t count = std::min<std::uint64_t>(limit, next - start);
      if (start + count < next) page.next = start + count;
      for (std::uint64_t v = start; v < start + count; ++v)
        page.events.push_back({v, &s.history[v]});
    } else {
      const std::uint64_t start = std::min(from, next - 1);
      if (start < lo) return page;
      const std::uint64_t count = std::min<std::uint64_t>(limit, start - lo + 1);
      if (start - lo + 1 > count) page.next = start - count;
      for (std::uint64_t k = 0; k < count; ++k) {
        page.events.push_back({start - k, &s.history[start - k]});
      }
    }
    return page;
  }

  std::optional<model_snapshot> get_snapshot(std::size_t i) const {
    const model_stream& s = streams_[i];
    if (!s.has_entry || s.deleted || s.tombstoned) return std::nullopt;
    return s.snapshot;
  }

  // What dump_stream returns for stream i.
  stream_dump expected_dump(std::size_t i) const {
    const model_stream& s = streams_[i];
    stream_dump d;
    const auto page = read_stream(i, 0, SIZE_MAX, read_direction::forward);
    d.read_code = page.code;
    d.last_version = page.last_version;
    for (const auto& [v, e] : page.events) {
      d.events.push_back(dumped_event{v, e->input.id, e->input.type, e->input.data,
                                      e->input.metadata, e->timestamp});
    }
    if (page.code == errc::ok) d.backward_reversed = d.events;
    if (s.has_entry) {
      d.metadata = s.metadata;
      d.deleted = s.deleted;
      d.tombstoned = s.tombstoned;
      if (s.exists()) d.info_last_version = s.next() - 1;
      d.first_retained = first_retained(s);
    }
    if (auto snap = get_snapshot(i)) d.snapshot.emplace(snap->version, snap->payload);
    return d;
  }

 private:
  timestamp_us next_timestamp(std::uint32_t partition) {
    last_timestamp_[partition] = std::max(last_timestamp_[partition], clock_.now_us());
    return last_timestamp_[partition];
  }

  engine::clock& clock_;
  std::vector<model_stream> streams_;
  // Per partition: event id -> (stream index, version) of its newest append.
  // The test's window is large enough that nothing is ever evicted.
  std::map<event_id, std::pair<std::size_t, std::uint64_t>> windows_[k_partitions];
  timestamp_us last_timestamp_[k_partitions] = {};
};

// ------------------------------------------------------------- the runner

std::string describe(expected_version e) {
  switch (e.what) {
    case expected_version::kind::any: return "any";
    case expected_version::kind::no_stream: return "no_stream";
    case expected_version::kind::stream_exists: return "stream_exists";
    case expected_version::kind::exact: return fmt::format("exact({})", e.version.value());
  }
  return "?";
}

std::string describe_ids(const std::vector<event_input>& events) {
  std::string out;
  for (const auto& e : events) out += hex_of(e.id).substr(24) + " ";
  return out;
}

// One successful, new append: material for retries.
struct sent_batch {
  std::size_t stream = 0;
  expected_version expected;
  std::vector<event_input> events;
};

class model_run {
 public:
  model_run(std::uint64_t seed, std::size_t steps)
      : seed_(seed),
        steps_(steps),
        r_(seed),
        files_(engine::posix_file_system()),
        fs_(files_),
        model_(clock_, seed) {
    options_.directory = dir_.path() + "/store";
    options_.partition_count = k_partitions;
    options_.fs = &fs_;
    options_.clock = &clock_;
    options_.node_log.segment_bytes = 16u << 10;
    options_.partition.log.segment_bytes = 4u << 10;
    options_.partition.log.write_buffer_bytes = 1u << 10;
    options_.partition.log.read_ahead_bytes = 4u << 10;
    options_.partition.event_id_window = 16384;  // more than a run appends: never evicts
  }

  void run() {
    open();
    if (::testing::Test::HasFailure()) return;
    for (step_ = 0; step_ < steps_; ++step_) {
      step();
      if (::testing::Test::HasFailure()) return;
    }
    compare_all("at the end");
  }

  int reopens() const { return reopens_; }
  // What happened, for the log: outcome -> count.
  std::string summary() const {
    std::string out = fmt::format("seed {}: {} steps, {} reopens, {} retries of dropped events "
                                  "taken as new appends;",
                                  seed_, steps_, reopens_, unrecognised_retries_);
    for (const auto& [what, n] : outcomes_) out += fmt::format(" {}={}", what, n);
    return out;
  }

 private:
  // ---- helpers

  std::string where() const { return fmt::format("seed {} step {}: {}", seed_, step_, op_); }

  void fail(const std::string& what) { ADD_FAILURE() << where() << "\n  " << what; }

  engine::partition& partition_of(std::size_t i) {
    return *must(store_->get(partition_id{model_.stream(i).partition}), "get");
  }

  void open() {
    auto st = engine::store::open(options_);
    if (!st) {
      fail(fmt::format("open: {}", st.err().message));
      return;
    }
    store_ = std::move(*st);
    for (std::uint32_t p = 0; p < k_partitions; ++p) {
      if (auto got = store_->get(partition_id{p}); !got) {
        fail(fmt::format("partition {}: {}", p, got.err().message));
      }
    }
  }

  void sync() {
    if (auto d = store_->sync(); !d) fail(fmt::format("sync: {}", d.err().message));
  }

  void compare_all(const char* when) {
    for (std::size_t i = 0; i < model_.size(); ++i) {
      const auto got = dump_stream(partition_of(i), model_.stream(i).id);
      const auto want = model_.expected_dump(i);
      if (got != want) {
        const auto* entry = partition_of(i).index().find(model_.stream(i).id);
        fail(fmt::format("{}: stream {} differs\n  engine: {}\n  model:  {}\n  engine entry: {}",
                         when, model_.stream(i).id, describe(got), describe(want),
                         entry ? fmt::format("next_version={} first_located={} locations={}",
                                             entry->next_version, entry->first_located,
                                             entry->locations.size())
                               : "none"));
        return;
      }
    }
  }

  // How a write's outcome differs from the expected one; empty if it does not.
  template <class R>
  static std::string write_mismatch(const R& got, const expected_write& want) {
    if (got.ok() && want.code == errc::ok) return {};
    if (!got.ok() && got.err().code == want.code) {
      if (want.code != errc::wrong_expected_version) return {};
      const auto& cv = got.err().current_version;
      std::optional<std::uint64_t> current;
      if (cv) current = cv->value();
      if (current == want.current_version) return {};
      return fmt::format("wrong_expected_version with current version {}, model says {}",
                         current ? std::to_string(*current) : "none",
                         want.current_version ? std::to_string(*want.current_version) : "none");
    }
    return fmt::format("engine: {} ({}), model: {}",
                       got.ok() ? "ok" : engine::errc_name(got.err().code),
                       got.ok() ? "" : got.err().message, engine::errc_name(want.code));
  }

  template <class R>
  bool compare_code(const R& got, const expected_write& want) {
    const std::string problem = write_mismatch(got, want);
    if (!problem.empty()) fail(problem);
    return problem.empty();
  }

  static std::string append_mismatch(const engine::result<engine::append_result>& got,
                                     const expected_write& want) {
    if (auto problem = write_mismatch(got, want); !problem.empty() || !got) return problem;
    if (got->first_version.value() == want.first && got->last_version.value() == want.last &&
        got->duplicate == want.duplicate && (!want.duplicate || got->position == want.position)) {
      return {};
    }
    return fmt::format("engine: v{}..v{} duplicate={} lsn {}; model: v{}..v{} duplicate={} lsn {}",
                       got->first_version.value(), got->last_version.value(), got->duplicate,
                       got->position.value(), want.first, want.last, want.duplicate,
                       want.position.value());
  }

  bool compare_page(const engine::result<engine::read_page>& got, const expected_page& want) {
    if (!got.ok() || want.code != errc::ok) {
      if (!got.ok() && got.err().code == want.code) return true;
      fail(fmt::format("read: engine {} ({}), model {}",
                       got.ok() ? "ok" : engine::errc_name(got.err().code),
                       got.ok() ? "" : got.err().message, engine::errc_name(want.code)));
      return false;
    }
    std::string problem;
    auto opt = [](const std::optional<stream_version>& v) {
      return v ? std::optional<std::uint64_t>(v->value()) : std::nullopt;
    };
    if (opt(got->next) != want.next) problem += "next differs; ";
    if (opt(got->last_version) != want.last_version) problem += "last_version differs; ";
    if (got->events.size() != want.events.size()) {
      problem += fmt::format("{} events, model {}; ", got->events.size(), want.events.size());
    } else {
      for (std::size_t k = 0; k < want.events.size(); ++k) {
        const auto& g = got->events[k];
        const auto& [v, e] = want.events[k];
        if (g.version.value() != v || g.id != e->input.id || g.type != e->input.type ||
            g.data != e->input.data || g.metadata != e->input.metadata ||
            g.timestamp != e->timestamp || g.position != e->position) {
          problem +=
              fmt::format("event {} differs: engine {} lsn {}, model v{} id={} ts={} lsn {}; ", k,
                          describe(to_dumped(g)), g.position.value(), v, hex_of(e->input.id),
                          e->timestamp, e->position.value());
        }
      }
    }
    if (problem.empty()) return true;
    std::string listing = "\n  engine:";
    for (const auto& g : got->events) listing += fmt::format(" v{}", g.version.value());
    listing += fmt::format(" next={} last={}\n  model: ",
                           got->next ? std::to_string(got->next->value()) : "none",
                           got->last_version ? std::to_string(got->last_version->value()) : "none");
    for (const auto& [v, e] : want.events) listing += fmt::format(" v{}", v);
    listing += fmt::format(" next={} last={}", want.next ? std::to_string(*want.next) : "none",
                           want.last_version ? std::to_string(*want.last_version) : "none");
    fail(problem + listing);
    return false;
  }

  expected_version random_expected(std::size_t i) {
    const auto& s = model_.stream(i);
    const std::uint64_t last = s.next() > 0 ? s.next() - 1 : 0;
    switch (r_.below(10)) {
      case 0: case 1: case 2: return expected_version::any();
      case 3: return expected_version::no_stream();
      case 4: return expected_version::stream_exists();
      case 5: case 6: case 7: return expected_version::exact(last);
      case 8: return expected_version::exact(last + r_.between(1, 3));
      default: return expected_version::exact(last >= 2 ? last - r_.between(1, 2) : r_.below(3));
    }
  }

  std::vector<event_input> new_events(std::size_t count) {
    std::vector<event_input> events;
    for (std::size_t k = 0; k < count; ++k) {
      const std::uint64_t n = next_event_++;
      event_input e;
      e.id = make_event_id(n, seed_);
      e.type = fmt::format("type-{}", r_.below(4));
      e.data = fmt::format("{{\"n\":{},\"pad\":\"{}\"}}", n, r_.letters(r_.below(160)));
      if (r_.percent(25)) e.metadata = fmt::format("m{}", n);
      events.push_back(std::move(e));
    }
    return events;
  }

  // ---- operations

  void do_append(std::size_t i, expected_version expected, std::vector<event_input> events,
                 bool remember) {
    const std::string& id = model_.stream(i).id;
    op_ = fmt::format("append {} {} [{}]", id, describe(expected), describe_ids(events));
    const expected_write first_choice = model_.expect_append(i, expected, events);
    auto got = partition_of(i).append(id, expected, events);
    const expected_write* want = &first_choice;
    std::string problem = append_mismatch(got, *want);
    if (!problem.empty() && want->or_else) {
      // A retry of events past retention, taken as a new append.
      want = want->or_else.get();
      if (append_mismatch(got, *want).empty()) {
        problem.clear();
        ++unrecognised_retries_;
      }
    }
    if (!problem.empty()) return fail(problem);
    ++outcomes_[got ? (got->duplicate ? "duplicate" : "appended")
                    : engine::errc_name(got.err().code)];
    if (!got) return;
    if (!want->duplicate) {
      model_.apply_append(i, events, got->position);
      const std::uint32_t p = model_.stream(i).partition;
      if (model_.window_size(p) >= options_.partition.event_id_window) {
        return fail("the run outgrew the event-id window, which the model does not evict");
      }
      if (remember) sent_.push_back({i, expected, std::move(events)});
    }
    sync();
  }

  void append_step() {
    const std::size_t i = r_.below(k_streams);
    do_append(i, random_expected(i), new_events(r_.between(1, 4)), true);
  }

  void retry_step() {
    if (sent_.empty()) return append_step();
    // Mostly recent batches: retries come soon after the original.
    const std::size_t pick = r_.percent(60) ? sent_.size() - 1 - r_.below(std::min<std::size_t>(
                                                                      sent_.size(), 10))
                                            : r_.below(sent_.size());
    const sent_batch& b = sent_[pick];
    std::vector<event_input> events = b.events;
    expected_version expected = b.expected;
    const std::uint64_t how = r_.below(10);
    if (how < 5) {
      // The same append again.
    } else if (how < 7) {
      expected = expected_version::any();
    } else if (how < 8 && events.size() > 1) {
      events.resize(r_.between(1, events.size() - 1));  // a prefix
      expected = expected_version::any();
    } else if (how < 9 && events.size() > 1) {
      events.erase(events.begin(), events.begin() + static_cast<std::ptrdiff_t>(
                                                        r_.between(1, events.size() - 1)));
      expected = expected_version::any();
    } else {
      // Some of the batch, then events it never had: a conflict.
      events.resize(r_.between(1, events.size()));
      for (auto& e : new_events(r_.between(1, 2))) events.push_back(std::move(e));
      expected = r_.percent(50) ? expected_version::any() : expected;
    }
    do_append(b.stream, expected, std::move(events), false);
  }

  void invalid_append_step() {
    const std::size_t i = r_.below(k_streams);
    std::vector<event_input> events;
    if (r_.percent(50)) {
      events = new_events(2);
      events[1].id = events[0].id;  // an id twice in one append
    }
    do_append(i, expected_version::any(), std::move(events), false);
  }

  template <class R>
  void finish_write(const R& got, const expected_write& want) {
    if (!compare_code(got, want)) return;
    ++outcomes_[got ? "written" : engine::errc_name(got.err().code)];
    if (got) sync();
  }

  void delete_step(bool tombstone) {
    const std::size_t i = tombstone ? k_first_doomed + r_.below(k_streams - k_first_doomed)
                                    : r_.below(k_streams);
    const expected_version expected =
        r_.percent(60) ? expected_version::any() : random_expected(i);
    const std::string& id = model_.stream(i).id;
    op_ = fmt::format("{} {} {}", tombstone ? "tombstone" : "delete", id, describe(expected));
    auto got = partition_of(i).delete_stream(id, expected, tombstone);
    finish_write(got, model_.delete_stream(i, expected, tombstone));
  }

  void metadata_step() {
    const std::size_t i = r_.below(k_streams);
    const auto& s = model_.stream(i);
    // Retention only ever tightens (see the file comment): 0 is unlimited.
    engine::stream_metadata m = s.metadata;
    if (r_.percent(40)) {
      m.max_count = r_.between(1, m.max_count == 0 ? 8 : m.max_count);
    }
    if (r_.percent(25)) {
      m.max_age_seconds = r_.between(5, m.max_age_seconds == 0 ? 60 : std::max<std::uint64_t>(
                                                                         5, m.max_age_seconds));
    }
    if (r_.percent(40)) {
      m.truncate_before = r_.between(m.truncate_before, std::max(m.truncate_before, s.next() + 2));
    }
    const std::string& id = s.id;
    op_ = fmt::format("set_metadata {} max_count={} max_age={} truncate_before={}", id,
                      m.max_count, m.max_age_seconds, m.truncate_before);
    auto got = partition_of(i).set_metadata(id, m);
    finish_write(got, model_.set_metadata(i, m));
  }

  void snapshot_step() {
    const std::size_t i = r_.below(k_streams);
    const auto& s = model_.stream(i);
    const std::uint64_t version = r_.below(s.next() + 2);
    const std::string payload = fmt::format("state-{}-{}", step_, r_.letters(r_.below(40)));
    const std::string& id = s.id;
    op_ = fmt::format("put_snapshot {} v{}", id, version);
    auto got = partition_of(i).put_snapshot(id, stream_version{version}, payload);
    finish_write(got, model_.put_snapshot(i, version, payload));
  }

  void read_step() {
    const std::size_t i = r_.below(k_streams);
    const auto& s = model_.stream(i);
    const auto direction = r_.percent(50) ? read_direction::forward : read_direction::backward;
    const std::uint64_t from = direction == read_direction::backward && r_.percent(30)
                                   ? UINT64_MAX
                                   : r_.below(s.next() + 3);
    const std::size_t limit = r_.below(12);
    op_ = fmt::format("read {} {} from {} limit {}", s.id,
                      direction == read_direction::forward ? "forward" : "backward", from, limit);
    compare_page(partition_of(i).read_stream(s.id, stream_version{from}, limit, direction),
                 model_.read_stream(i, from, limit, direction));
  }

  void read_last_step() {
    const std::size_t i = r_.below(k_streams);
    op_ = fmt::format("read_last {}", model_.stream(i).id);
    compare_page(partition_of(i).read_last(model_.stream(i).id),
                 model_.read_stream(i, UINT64_MAX, 1, read_direction::backward));
  }

  bool compare_snapshot(const std::optional<engine::snapshot_read>& got,
                        const std::optional<model_snapshot>& want) {
    const bool same = got.has_value() == want.has_value() &&
                      (!got || (got->version.value() == want->version &&
                                got->payload == want->payload &&
                                got->timestamp == want->timestamp));
    if (!same) {
      fail(fmt::format("snapshot: engine {}, model {}",
                       got ? fmt::format("v{} '{}' ts={}", got->version.value(), got->payload,
                                         got->timestamp)
                           : "none",
                       want ? fmt::format("v{} '{}' ts={}", want->version, want->payload,
                                          want->timestamp)
                            : "none"));
    }
    return same;
  }

  void get_snapshot_step() {
    const std::size_t i = r_.below(k_streams);
    op_ = fmt::format("get_snapshot {}", model_.stream(i).id);
    auto got = partition_of(i).get_snapshot(model_.stream(i).id);
    if (!got) return fail(fmt::format("get_snapshot: {}", got.err().message));
    compare_snapshot(*got, model_.get_snapshot(i));
  }

  void read_from_snapshot_step() {
    const std::size_t i = r_.below(k_streams);
    const std::size_t limit = r_.between(1, 12);
    op_ = fmt::format("read_from_snapshot {} limit {}", model_.stream(i).id, limit);
    auto got = partition_of(i).read_from_snapshot(model_.stream(i).id, limit);
    const auto snap = model_.get_snapshot(i);
    const auto want =
        model_.read_stream(i, snap ? snap->version + 1 : 0, limit, read_direction::forward);
    if (!got) {
      compare_page(got.err(), want);
      return;
    }
    if (!compare_snapshot(got->snapshot, snap)) return;
    compare_page(std::move(got->events), want);
  }

  void info_step() {
    const std::size_t i = r_.below(k_streams);
    const auto& s = model_.stream(i);
    op_ = fmt::format("get_stream_info {}", s.id);
    auto got = partition_of(i).get_stream_info(s.id);
    if (!got) return fail(fmt::format("get_stream_info: {}", got.err().message));
    const auto want = model_.expected_dump(i);
    std::optional<std::uint64_t> last;
    if (got->last_version) last = got->last_version->value();
    if (got->metadata != want.metadata || got->deleted != want.deleted ||
        got->tombstoned != want.tombstoned || last != want.info_last_version ||
        got->first_retained != want.first_retained) {
      fail(fmt::format("info: engine deleted={} tombstoned={} last={} first_retained={}; model "
                       "deleted={} tombstoned={} last={} first_retained={}",
                       got->deleted, got->tombstoned, last ? std::to_string(*last) : "none",
                       got->first_retained, want.deleted, want.tombstoned,
                       want.info_last_version ? std::to_string(*want.info_last_version) : "none",
                       want.first_retained));
    }
  }

  void checkpoint_step() {
    op_ = "checkpoint_all";
    if (auto s = store_->checkpoint_all(); !s) return fail(s.err().message);
  }

  void expect_verified() {
    const auto report = engine::verify_store(fs_, options_.directory);
    if (report.ok()) return;
    std::string problems;
    for (const auto& p : report.problems) {
      problems += fmt::format("\n  {} at {}: {}", p.file, p.offset, p.message);
    }
    fail("verify_store:" + problems);
  }

  void close_and_reopen_step() {
    op_ = "close and reopen";
    if (auto s = store_->close(); !s) return fail(s.err().message);
    store_.reset();
    expect_verified();
    open();
    ++reopens_;
    if (store_) compare_all("after close and reopen");
  }

  void crash_and_reopen_step() {
    op_ = "crash and reopen";
    store_.reset();  // every write was synced: nothing acknowledged may be lost
    if (auto ec = fs_.power_loss(fault_injection_file_system::power_loss_mode::drop_unsynced,
                                 r_.next())) {
      return fail(ec.message());
    }
    expect_verified();
    open();
    ++reopens_;
    if (store_) compare_all("after crash and reopen");
  }

  void step() {
    const std::uint64_t k = r_.below(1000);
    if (k < 330) return append_step();
    if (k < 430) return retry_step();
    if (k < 440) return invalid_append_step();
    if (k < 480) return delete_step(false);
    if (k < 484) return delete_step(true);
    if (k < 540) return metadata_step();
    if (k < 580) return snapshot_step();
    if (k < 760) return read_step();
    if (k < 800) return read_last_step();
    if (k < 830) return get_snapshot_step();
    if (k < 860) return read_from_snapshot_step();
    if (k < 890) return info_step();
    if (k < 915) return checkpoint_step();
    if (k < 980) {
      op_ = "advance the clock";
      clock_.advance_seconds(static_cast<std::int64_t>(r_.between(1, 20)));
      return;
    }
    if (k < 990) return close_and_reopen_step();
    return crash_and_reopen_step();
  }

  std::uint64_t seed_;
  std::size_t steps_;
  std::size_t step_ = 0;
  std::string op_ = "open";
  test_rng r_;
  temp_dir dir_;
  manual_clock clock_;
  // Real files; the fault file system decides what a power loss keeps, so
  // real fsyncs would only add their latency.
  sync_free_file_system files_;
  fault_injection_file_system fs_;
  engine::store_options options_;
  std::unique_ptr<engine::store> store_;
  model_store model_;
  std::vector<sent_batch> sent_;
  std::uint64_t next_event_ = 1;
  int reopens_ = 0;
  int unrecognised_retries_ = 0;
  std::map<std::string, int> outcomes_;
};

class model_test : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(model_test, engine_matches_the_model) {
  const quiet_log quiet;
  model_run run(GetParam(), 5000);
  run.run();
  std::printf("%s\n", run.summary().c_str());
  if (!HasFailure()) {
    EXPECT_GT(run.reopens(), 20) << "too few reopens to compare full states";
  }
}

INSTANTIATE_TEST_SUITE_P(seeds, model_test, ::testing::Values(1, 2, 3, 4, 5));

}  // namespace
}  // namespace annal::testing
