// The meta_store contract, run against the in-process store and against a
// real etcd (one per test process, started on first use).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/memory_meta_store.hpp"
#include "cluster/meta_store.hpp"
#include "net/etcd_meta_store.hpp"
#include "tests/support/etcd_process.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace annal::cluster {
namespace {

using namespace std::chrono_literals;
using engine::errc;
using clock = std::chrono::steady_clock;

// The shared etcd of this test process. Test-only process-wide state: gtest
// owns the environment and tears it down (killing etcd) after the last test.
class etcd_environment : public ::testing::Environment {
 public:
  static testing::etcd_process& get() {
    if (!process_) process_ = std::make_unique<testing::etcd_process>();
    return *process_;
  }
  void TearDown() override { process_.reset(); }

 private:
  static inline std::unique_ptr<testing::etcd_process> process_;
};
[[maybe_unused]] ::testing::Environment* const g_etcd_env =
    ::testing::AddGlobalTestEnvironment(new etcd_environment);

struct memory_kind {
  static std::unique_ptr<meta_store> make() { return std::make_unique<memory_meta_store>(); }
};

struct etcd_kind {
  static std::unique_ptr<meta_store> make() {
    net::etcd_options opts;
    opts.endpoints = {etcd_environment::get().client_url()};
    return std::make_unique<net::etcd_meta_store>(opts);
  }
};

// Polls `condition` until it holds or `deadline` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::seconds deadline = 15s) {
  const auto until = clock::now() + deadline;
  while (clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

// Collects what a watch delivers.
struct watch_log {
  struct entry {
    std::int64_t revision;
    watch_event event;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<entry> entries;           // guarded by mu
  std::vector<std::int64_t> callbacks;  // revision of each callback; guarded by mu
  std::vector<watch_error> errors;      // guarded by mu

  watch_callback on_events() {
    return [this](const std::vector<watch_event>& events, std::int64_t revision) {
      std::lock_guard lock(mu);
      callbacks.push_back(revision);
      for (const auto& e : events) entries.push_back({revision, e});
      cv.notify_all();
    };
  }
  watch_error_callback on_error() {
    return [this](const watch_error& e) {
      std::lock_guard lock(mu);
      errors.push_back(e);
      cv.notify_all();
    };
  }
  bool wait_for_events(std::size_t n, std::chrono::seconds deadline = 15s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, deadline, [&] { return entries.size() >= n; });
  }
  bool wait_for_error(std::chrono::seconds deadline = 15s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, deadline, [&] { return !errors.empty(); });
  }
  std::vector<entry> snapshot() {
    std::lock_guard lock(mu);
    return entries;
  }
};

template <class Kind>
class meta_store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = Kind::make();
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = std::string("/test/") + info->test_suite_name() + "/" + info->name() + "/";
  }
  std::string key(const std::string& name) const { return prefix_ + name; }

  std::unique_ptr<meta_store> store_;
  std::string prefix_;
};

using store_kinds = ::testing::Types<memory_kind, etcd_kind>;
class kind_names {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, memory_kind> ? "memory" : "etcd";
  }
};
TYPED_TEST_SUITE(meta_store_test, store_kinds, kind_names);

TYPED_TEST(meta_store_test, put_then_range_one_key_and_prefix) {
  auto& s = *this->store_;
  ASSERT_TRUE(s.put(this->key("a/x"), "1").ok());
  ASSERT_TRUE(s.put(this->key("a/y"), "2").ok());
  ASSERT_TRUE(s.put(this->key("b/z"), "3").ok());
  ASSERT_TRUE(s.put(this->key("a"), "not under a/").ok());

  auto one = s.range(this->key("a/y"));
  ASSERT_TRUE(one.ok()) << one.err().message;
  ASSERT_EQ(one->kvs.size(), 1u);
  EXPECT_EQ(one->kvs[0].key, this->key("a/y"));
  EXPECT_EQ(one->kvs[0].value, "2");
  EXPECT_EQ(one->kvs[0].version, 1);

  auto prefixed = s.range(this->key("a/"), true);
  ASSERT_TRUE(prefixed.ok()) << prefixed.err().message;
  ASSERT_EQ(prefixed->kvs.size(), 2u);
  EXPECT_EQ(prefixed->kvs[0].key, this->key("a/x"));
  EXPECT_EQ(prefixed->kvs[0].value, "1");
  EXPECT_EQ(prefixed->kvs[1].key, this->key("a/y"));

  auto everything = s.range(this->prefix_, true);
  ASSERT_TRUE(everything.ok());
  EXPECT_EQ(everything->kvs.size(), 4u);

  auto missing = s.range(this->key("nope"));
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->kvs.empty());
  EXPECT_GE(missing->revision, one->revision);
}

TYPED_TEST(meta_store_test, binary_values_round_trip) {
  auto& s = *this->store_;
  const std::string value("\0\xff\x01 \n{\"x\"", 9);
  ASSERT_TRUE(s.put(this->key("bin"), value).ok());
  auto r = s.range(this->key("bin"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].value, value);
}

TYPED_TEST(meta_store_test, revisions_and_versions_increase) {
  auto& s = *this->store_;
  auto r1 = s.put(this->key("k"), "v1");
  ASSERT_TRUE(r1.ok()) << r1.err().message;
  auto r2 = s.put(this->key("k"), "v2");
  ASSERT_TRUE(r2.ok());
  EXPECT_GT(*r2, *r1);

  auto read = s.range(this->key("k"));
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->kvs.size(), 1u);
  const auto& kv = read->kvs[0];
  EXPECT_EQ(kv.value, "v2");
  EXPECT_EQ(kv.create_revision, *r1);
  EXPECT_EQ(kv.mod_revision, *r2);
  EXPECT_EQ(kv.version, 2);
  EXPECT_EQ(kv.lease, 0);
  EXPECT_GE(read->revision, *r2);

  auto r3 = s.del(this->key("k"));
  ASSERT_TRUE(r3.ok());
  EXPECT_GT(*r3, *r2);
  auto gone = s.range(this->key("k"));
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->kvs.empty());

  // Recreated: a new life, version starts again.
  auto r4 = s.put(this->key("k"), "v3");
  ASSERT_TRUE(r4.ok());
  auto again = s.range(this->key("k"));
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->kvs.size(), 1u);
  EXPECT_EQ(again->kvs[0].create_revision, *r4);
  EXPECT_EQ(again->kvs[0].version, 1);
}

TYPED_TEST(meta_store_test, cas_on_mod_revision_succeeds_then_fails_after_concurrent_change) {
  auto& s = *this->store_;
  const auto epoch = this->key("map");
  // Create only if missing: the first one wins, the second sees it exists.
  auto created = s.txn({compare::missing(epoch)}, {op::put(epoch, "epoch-1")}, {op::range(epoch)});
  ASSERT_TRUE(created.ok()) << created.err().message;
  EXPECT_TRUE(created->succeeded);
  auto again = s.txn({compare::missing(epoch)}, {op::put(epoch, "epoch-x")}, {op::range(epoch)});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->succeeded);
  ASSERT_EQ(again->responses.size(), 1u);
  ASSERT_EQ(again->responses[0].kvs.size(), 1u);
  EXPECT_EQ(again->responses[0].kvs[0].value, "epoch-1");

  const std::int64_t seen = again->responses[0].kvs[0].mod_revision;
  auto cas = s.txn({compare::mod_revision_is(epoch, compare::op::equal, seen)}, {op::put(epoch, "epoch-2")}, {});
  ASSERT_TRUE(cas.ok());
  EXPECT_TRUE(cas->succeeded);
  EXPECT_GT(cas->revision, seen);

  // Someone else changed it in between: the same CAS now fails and reads
  // the current value in the failure branch.
  ASSERT_TRUE(s.put(epoch, "epoch-3-by-other").ok());
  auto stale = s.txn({compare::mod_revision_is(epoch, compare::op::equal, cas->revision)},
                     {op::put(epoch, "epoch-3")}, {op::range(epoch)});
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->succeeded);
  ASSERT_EQ(stale->responses.size(), 1u);
  ASSERT_EQ(stale->responses[0].kvs.size(), 1u);
  EXPECT_EQ(stale->responses[0].kvs[0].value, "epoch-3-by-other");

  auto now = s.range(epoch);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->kvs.at(0).value, "epoch-3-by-other");
}

TYPED_TEST(meta_store_test, txn_compares_version_value_and_orders) {
  auto& s = *this->store_;
  const auto k = this->key("k");
  ASSERT_TRUE(s.put(k, "b").ok());
  ASSERT_TRUE(s.put(k, "b").ok());  // version 2
  struct expectation {
    compare c;
    bool holds;
  };
  const std::vector<expectation> cases = {
      {compare::version_is(k, compare::op::equal, 2), true},
      {compare::version_is(k, compare::op::greater, 2), false},
      {compare::version_is(k, compare::op::less, 3), true},
      {compare::version_is(k, compare::op::not_equal, 2), false},
      {compare::value_is(k, compare::op::equal, "b"), true},
      {compare::value_is(k, compare::op::greater, "a"), true},
      {compare::value_is(k, compare::op::less, "a"), false},
      {compare::value_is(this->key("missing"), compare::op::not_equal, "x"), false},
      {compare::version_is(this->key("missing"), compare::op::equal, 0), true},
      {compare::create_revision_is(k, compare::op::greater, 0), true},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    auto r = s.txn({cases[i].c}, {}, {});
    ASSERT_TRUE(r.ok()) << i << ": " << r.err().message;
    EXPECT_EQ(r->succeeded, cases[i].holds) << "case " << i;
  }
}

TYPED_TEST(meta_store_test, txn_ops_share_one_revision_and_see_earlier_ops) {
  auto& s = *this->store_;
  ASSERT_TRUE(s.put(this->key("old"), "x").ok());
  auto r = s.txn({}, {op::put(this->key("a"), "1"), op::put(this->key("b"), "2"), op::del(this->key("old")),
                      op::range(this->prefix_, true)},
                 {});
  ASSERT_TRUE(r.ok()) << r.err().message;
  ASSERT_TRUE(r->succeeded);
  ASSERT_EQ(r->responses.size(), 4u);
  const auto& seen = r->responses[3].kvs;
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].key, this->key("a"));
  EXPECT_EQ(seen[1].key, this->key("b"));
  EXPECT_EQ(seen[0].mod_revision, r->revision);
  EXPECT_EQ(seen[1].mod_revision, r->revision);
}

TYPED_TEST(meta_store_test, racing_cas_exactly_one_wins) {
  auto& s = *this->store_;
  const auto k = this->key("epoch");
  ASSERT_TRUE(s.put(k, "0").ok());
  constexpr int k_rounds = 5;
  constexpr int k_threads = 6;
  for (int round = 0; round < k_rounds; ++round) {
    auto before = s.range(k);
    ASSERT_TRUE(before.ok());
    const std::int64_t rev = before->kvs.at(0).mod_revision;
    std::atomic<int> winners{0};
    std::atomic<int> failures{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
      threads.emplace_back([&, t] {
        while (!go) std::this_thread::yield();
        auto r = s.txn({compare::mod_revision_is(k, compare::op::equal, rev)},
                       {op::put(k, std::to_string(round) + "/" + std::to_string(t))}, {});
        if (!r.ok()) {
          ++failures;
        } else if (r->succeeded) {
          ++winners;
        }
      });
    }
    go = true;
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0) << "round " << round;
    EXPECT_EQ(winners.load(), 1) << "round " << round;
    auto after = s.range(k);
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->kvs.at(0).version, before->kvs.at(0).version + 1);
  }
}

TYPED_TEST(meta_store_test, lease_expiry_removes_bound_keys_and_is_watched) {
  auto& s = *this->store_;
  watch_log log;
  auto handle = s.watch(this->prefix_, 0, log.on_events(), log.on_error());
  auto lease = s.lease_grant(2s);
  ASSERT_TRUE(lease.ok()) << lease.err().message;
  EXPECT_NE(*lease, 0);
  ASSERT_TRUE(s.put(this->key("node"), "alive", *lease).ok());
  ASSERT_TRUE(s.put(this->key("unbound"), "stays").ok());
  auto bound = s.range(this->key("node"));
  ASSERT_TRUE(bound.ok());
  ASSERT_EQ(bound->kvs.size(), 1u);
  EXPECT_EQ(bound->kvs[0].lease, *lease);
  EXPECT_TRUE(s.lease_keep_alive(*lease).ok());

  const auto start = clock::now();
  EXPECT_TRUE(eventually([&] {
    auto r = s.range(this->key("node"));
    return r.ok() && r->kvs.empty();
  }));
  // Not before the TTL (2 s; etcd may round up, never down): generous margin.
  EXPECT_GE(clock::now() - start, 1s);
  auto status = s.lease_keep_alive(*lease);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.err().code, errc::not_found);

  // The watch saw put node, put unbound, then the delete of node.
  ASSERT_TRUE(log.wait_for_events(3));
  auto entries = log.snapshot();
  EXPECT_EQ(entries[2].event.type, watch_event::kind::del);
  EXPECT_EQ(entries[2].event.kv.key, this->key("node"));
  auto unbound = s.range(this->key("unbound"));
  ASSERT_TRUE(unbound.ok());
  EXPECT_EQ(unbound->kvs.size(), 1u);
}

TYPED_TEST(meta_store_test, keep_alive_keeps_the_lease) {
  auto& s = *this->store_;
  auto lease = s.lease_grant(2s);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(s.put(this->key("node"), "alive", *lease).ok());
  // Keep it alive for twice its TTL.
  const auto until = clock::now() + 4s;
  while (clock::now() < until) {
    ASSERT_TRUE(s.lease_keep_alive(*lease).ok());
    std::this_thread::sleep_for(300ms);
  }
  auto r = s.range(this->key("node"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kvs.size(), 1u);
  EXPECT_TRUE(s.lease_revoke(*lease).ok());
}

TYPED_TEST(meta_store_test, lease_revoke_deletes_keys_in_one_revision) {
  auto& s = *this->store_;
  auto lease = s.lease_grant(30s);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(s.put(this->key("a"), "1", *lease).ok());
  auto last = s.put(this->key("b"), "2", *lease);
  ASSERT_TRUE(last.ok());
  watch_log log;
  auto handle = s.watch(this->prefix_, *last + 1, log.on_events(), log.on_error());
  ASSERT_TRUE(s.lease_revoke(*lease).ok());
  auto r = s.range(this->prefix_, true);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->kvs.empty());
  ASSERT_TRUE(log.wait_for_events(2));
  std::lock_guard lock(log.mu);
  ASSERT_EQ(log.callbacks.size(), 1u);  // one revision for both deletes
  EXPECT_EQ(log.entries[0].event.type, watch_event::kind::del);
  EXPECT_EQ(log.entries[1].event.type, watch_event::kind::del);

  auto unknown = s.lease_revoke(*lease);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.err().code, errc::not_found);
}

TYPED_TEST(meta_store_test, put_with_unknown_lease_is_not_found) {
  auto& s = *this->store_;
  auto r = s.put(this->key("k"), "v", 0x7eadbeef);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::not_found);
  auto read = s.range(this->key("k"));
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(read->kvs.empty());
}

TYPED_TEST(meta_store_test, watch_from_revision_sees_past_and_new_events_in_order) {
  auto& s = *this->store_;
  auto r1 = s.put(this->key("k1"), "a");
  ASSERT_TRUE(r1.ok());
  ASSERT_TRUE(s.put(this->key("k2"), "b").ok());
  ASSERT_TRUE(s.put("/other" + this->prefix_, "not watched").ok());
  ASSERT_TRUE(s.del(this->key("k1")).ok());

  watch_log log;
  auto handle = s.watch(this->prefix_, *r1, log.on_events(), log.on_error());
  ASSERT_TRUE(log.wait_for_events(3));
  auto tx = s.txn({}, {op::put(this->key("k3"), "c"), op::put(this->key("k4"), "d")}, {});
  ASSERT_TRUE(tx.ok());
  ASSERT_TRUE(log.wait_for_events(5));

  auto entries = log.snapshot();
  ASSERT_EQ(entries.size(), 5u);
  const std::vector<std::pair<watch_event::kind, std::string>> expected = {
      {watch_event::kind::put, "k1"}, {watch_event::kind::put, "k2"}, {watch_event::kind::del, "k1"},
      {watch_event::kind::put, "k3"}, {watch_event::kind::put, "k4"}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(entries[i].event.type, expected[i].first) << i;
    EXPECT_EQ(entries[i].event.kv.key, this->key(expected[i].second)) << i;
    EXPECT_EQ(entries[i].event.kv.mod_revision, entries[i].revision) << i;
  }
  EXPECT_EQ(entries[0].revision, *r1);
  EXPECT_EQ(entries[0].event.kv.value, "a");
  EXPECT_EQ(entries[3].revision, tx->revision);
  EXPECT_EQ(entries[4].revision, tx->revision);
  std::lock_guard lock(log.mu);
  // One callback per revision, strictly increasing; the txn is one callback.
  ASSERT_EQ(log.callbacks.size(), 4u);
  for (std::size_t i = 1; i < log.callbacks.size(); ++i) EXPECT_GT(log.callbacks[i], log.callbacks[i - 1]);
  EXPECT_TRUE(log.errors.empty());
}

TYPED_TEST(meta_store_test, watch_from_now_sees_only_new_events) {
  auto& s = *this->store_;
  ASSERT_TRUE(s.put(this->key("before"), "x").ok());
  watch_log log;
  auto handle = s.watch(this->prefix_, 0, log.on_events(), log.on_error());
  ASSERT_TRUE(s.put(this->key("after"), "y").ok());
  ASSERT_TRUE(log.wait_for_events(1));
  auto entries = log.snapshot();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].event.kv.key, this->key("after"));
}

TYPED_TEST(meta_store_test, destroyed_watch_delivers_nothing_more) {
  auto& s = *this->store_;
  watch_log cancelled;
  watch_log witness;
  auto handle = s.watch(this->prefix_, 0, cancelled.on_events(), cancelled.on_error());
  auto witness_handle = s.watch(this->prefix_, 0, witness.on_events(), witness.on_error());
  ASSERT_TRUE(s.put(this->key("one"), "1").ok());
  ASSERT_TRUE(cancelled.wait_for_events(1));
  handle.reset();
  ASSERT_TRUE(s.put(this->key("two"), "2").ok());
  ASSERT_TRUE(witness.wait_for_events(2));  // "two" was delivered to live watches
  EXPECT_EQ(cancelled.snapshot().size(), 1u);
}

TYPED_TEST(meta_store_test, watch_may_be_destroyed_from_its_own_callback) {
  auto& s = *this->store_;
  std::mutex mu;
  std::unique_ptr<watch_handle> handle;
  std::atomic<int> calls{0};
  {
    std::lock_guard lock(mu);
    handle = s.watch(this->prefix_, 0, [&](const std::vector<watch_event>&, std::int64_t) {
      ++calls;
      std::lock_guard l(mu);
      handle.reset();
    });
  }
  auto first = s.put(this->key("a"), "1");
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return handle == nullptr;
  }));
  ASSERT_TRUE(s.put(this->key("b"), "2").ok());
  watch_log witness;
  auto w = s.watch(this->prefix_, *first, witness.on_events());
  ASSERT_TRUE(witness.wait_for_events(2));
  EXPECT_EQ(calls.load(), 1);
}

TYPED_TEST(meta_store_test, watch_from_compacted_revision_reports_compacted) {
  auto& s = *this->store_;
  auto r1 = s.put(this->key("k"), "1");
  ASSERT_TRUE(r1.ok());
  ASSERT_TRUE(s.put(this->key("k"), "2").ok());
  auto r3 = s.put(this->key("k"), "3");
  ASSERT_TRUE(r3.ok());
  ASSERT_TRUE(s.compact(*r3).ok());

  watch_log log;
  auto handle = s.watch(this->prefix_, *r1, log.on_events(), log.on_error());
  ASSERT_TRUE(log.wait_for_error());
  std::lock_guard lock(log.mu);
  EXPECT_EQ(log.errors[0].what, watch_error::kind::compacted);
  EXPECT_EQ(log.errors[0].compact_revision, *r3);
  EXPECT_TRUE(log.entries.empty());

  // From the compaction point itself the history is still there.
  watch_log from_compact;
  auto ok_handle = s.watch(this->prefix_, *r3, from_compact.on_events(), from_compact.on_error());
  ASSERT_TRUE(from_compact.wait_for_events(1));
  EXPECT_EQ(from_compact.snapshot()[0].event.kv.value, "3");
}

// --- etcd only: outages and failover ---

class etcd_meta_store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    etcd_ = &etcd_environment::get();
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = std::string("/test/etcd/") + info->name() + "/";
  }
  void TearDown() override {
    // Leave a running etcd for the next test, even when this one failed.
    if (!etcd_->running()) etcd_->restart();
  }
  net::etcd_options options() const {
    net::etcd_options opts;
    opts.endpoints = {etcd_->client_url()};
    return opts;
  }
  std::string key(const std::string& name) const { return prefix_ + name; }

  testing::etcd_process* etcd_ = nullptr;
  std::string prefix_;
};

TEST_F(etcd_meta_store_test, etcd_down_fails_with_metadata_unavailable_then_recovers) {
  net::etcd_meta_store s(options());
  ASSERT_TRUE(s.put(key("k"), "v").ok());
  etcd_->stop();

  auto timed = [](auto&& call) {
    const auto start = clock::now();
    auto r = call();
    return std::make_pair(std::move(r), clock::now() - start);
  };
  auto [read, read_took] = timed([&] { return s.range(key("k")); });
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.err().code, errc::metadata_unavailable);
  EXPECT_NE(read.err().message.find("etcd"), std::string::npos) << read.err().message;
  EXPECT_LT(read_took, 10s);
  auto [write, write_took] = timed([&] { return s.put(key("k"), "w"); });
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.err().code, errc::metadata_unavailable);
  EXPECT_LT(write_took, 10s);
  auto [lease, lease_took] = timed([&] { return s.lease_grant(5s); });
  ASSERT_FALSE(lease.ok());
  EXPECT_EQ(lease.err().code, errc::metadata_unavailable);
  EXPECT_LT(lease_took, 10s);

  etcd_->restart();
  auto after = s.range(key("k"));
  ASSERT_TRUE(after.ok()) << after.err().message;
  ASSERT_EQ(after->kvs.size(), 1u);
  EXPECT_EQ(after->kvs[0].value, "v");  // the data survived the restart
  EXPECT_TRUE(s.put(key("k"), "w").ok());
}

TEST_F(etcd_meta_store_test, watch_resumes_after_etcd_restart_without_losing_events) {
  auto opts = options();
  // Long enough that b and c are written before the watch reconnects: they
  // must come from the catch-up from the last seen revision.
  opts.watch_backoff_min = 1500ms;
  net::etcd_meta_store s(opts);
  watch_log log;
  auto handle = s.watch(prefix_, 0, log.on_events(), log.on_error());
  ASSERT_TRUE(s.put(key("a"), "1").ok());
  ASSERT_TRUE(log.wait_for_events(1));

  etcd_->stop();
  etcd_->restart();
  // Written before the watch had a chance to reconnect (it backs off).
  ASSERT_TRUE(s.put(key("b"), "2").ok());
  ASSERT_TRUE(s.put(key("c"), "3").ok());
  ASSERT_TRUE(log.wait_for_events(3, 30s));
  ASSERT_TRUE(s.put(key("d"), "4").ok());
  ASSERT_TRUE(log.wait_for_events(4, 30s));

  auto entries = log.snapshot();
  ASSERT_EQ(entries.size(), 4u);
  const std::vector<std::string> keys = {"a", "b", "c", "d"};
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(entries[i].event.kv.key, key(keys[i])) << i;
    if (i > 0) {
      EXPECT_GT(entries[i].revision, entries[i - 1].revision) << i;
    }
  }
  std::lock_guard lock(log.mu);
  EXPECT_TRUE(log.errors.empty());
}

TEST_F(etcd_meta_store_test, unreachable_endpoint_fails_over_to_the_next) {
  net::etcd_options opts = options();
  opts.endpoints.insert(opts.endpoints.begin(), "http://127.0.0.1:" + std::to_string(testing::pick_free_port()));
  net::etcd_meta_store s(opts);
  auto r = s.put(key("k"), "v");
  ASSERT_TRUE(r.ok()) << r.err().message;
  auto read = s.range(key("k"));
  ASSERT_TRUE(read.ok()) << read.err().message;
  ASSERT_EQ(read->kvs.size(), 1u);
  EXPECT_EQ(read->kvs[0].value, "v");
}

TEST_F(etcd_meta_store_test, no_reachable_endpoint_fails_fast) {
  net::etcd_options opts;
  opts.endpoints = net::etcd_options::parse_endpoints(
      "http://127.0.0.1:" + std::to_string(testing::pick_free_port()) + " , http://127.0.0.1:" +
      std::to_string(testing::pick_free_port()) + "/");
  ASSERT_EQ(opts.endpoints.size(), 2u);
  EXPECT_NE(opts.endpoints[1].back(), '/');
  EXPECT_EQ(opts.endpoints[0].find(' '), std::string::npos);
  net::etcd_meta_store s(opts);
  const auto start = clock::now();
  auto r = s.range(key("k"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::metadata_unavailable);
  EXPECT_LT(clock::now() - start, 10s);
}

// A peer that accepts TCP connections (the kernel completes them from the
// backlog) but never answers: the request timeout, not a hang.
TEST_F(etcd_meta_store_test, silent_endpoint_times_out_with_metadata_unavailable) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);

  net::etcd_options opts;
  opts.endpoints = {"http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port))};
  opts.request_timeout = 1s;
  net::etcd_meta_store s(opts);
  auto start = clock::now();
  auto read = s.range(key("k"));
  auto took = clock::now() - start;
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.err().code, errc::metadata_unavailable);
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 5s);

  start = clock::now();
  auto write = s.put(key("k"), "v");
  took = clock::now() - start;
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.err().code, errc::metadata_unavailable);
  EXPECT_NE(write.err().message.find("outcome unknown"), std::string::npos) << write.err().message;
  EXPECT_LT(took, 5s);
  ::close(fd);
}

}  // namespace
}  // namespace annal::cluster
