#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/errors.hpp"

// The metadata store: a small, strongly consistent key-value store with a
// global revision, compare-and-swap transactions, leases and watches. The
// cluster map, per-partition leadership and node liveness live in it
// (DESIGN.md "Partitioning and placement"). Two implementations share these
// semantics, which are etcd v3's: net/etcd_meta_store.hpp (cluster mode) and
// cluster/memory_meta_store.hpp (dev mode, tests).
namespace annal::cluster {

// One key as stored. Revisions are the store's global revision counter: it
// starts at 1 (empty store) and grows by one for every transaction that
// writes (a put, a delete that removes something, a lease expiry or revoke
// that removes keys).
struct key_value {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;  // revision of the put that created the key
  std::int64_t mod_revision = 0;     // revision of the last put (or of the delete, in events)
  std::int64_t version = 0;          // puts since creation: 1 after the first put
  std::int64_t lease = 0;            // 0: not bound to a lease

  friend bool operator==(const key_value&, const key_value&) = default;
};

// Keys in ascending byte order and the store's revision when they were read.
struct range_result {
  std::vector<key_value> kvs;
  std::int64_t revision = 0;
};

// One comparison of a transaction. A missing key has version, create_revision
// and mod_revision 0, and no value: a value comparison on a missing key is
// false whatever the operator.
struct compare {
  enum class target { version, create_revision, mod_revision, value };
  enum class op { equal, not_equal, greater, less };

  std::string key;
  target what = target::mod_revision;
  op relation = op::equal;
  std::int64_t number = 0;  // for version, create_revision, mod_revision
  std::string value;        // for value (byte-wise comparison)

  static compare version_is(std::string key, op relation, std::int64_t v);
  static compare create_revision_is(std::string key, op relation, std::int64_t rev);
  static compare mod_revision_is(std::string key, op relation, std::int64_t rev);
  static compare value_is(std::string key, op relation, std::string value);
  // The key does not exist (create_revision == 0).
  static compare missing(std::string key);
};

// One operation of a transaction. `prefix`: delete / range every key that
// starts with `key` (the empty key with prefix covers the whole store).
struct op {
  enum class kind { put, del, range };

  kind what = kind::range;
  std::string key;
  std::string value;       // put only
  std::int64_t lease = 0;  // put only; 0: no lease. The lease must exist.
  bool prefix = false;     // del and range only

  static op put(std::string key, std::string value, std::int64_t lease = 0);
  static op del(std::string key, bool prefix = false);
  static op range(std::string key, bool prefix = false);
};

// Whether all comparisons held, the store's revision after the transaction,
// and one entry per executed operation, in order: the keys read for a range
// op, nothing (only the revision) for put and del. Ops of one transaction see
// the writes of the ops before them and share one revision.
struct txn_result {
  bool succeeded = false;
  std::int64_t revision = 0;
  std::vector<range_result> responses;
};

struct watch_event {
  enum class kind { put, del };
  kind type = kind::put;
  // For del: key and mod_revision (the revision of the delete) only.
  key_value kv;
};

// Why a watch ended on its own. After this callback the watch delivers
// nothing more; the handle still has to be destroyed.
struct watch_error {
  enum class kind {
    // The history from the requested revision was compacted away. The
    // caller re-reads the current state with range() and watches again from
    // range_result::revision + 1. `compact_revision` is the oldest revision
    // that can still be watched.
    compacted,
  };
  kind what = kind::compacted;
  std::int64_t compact_revision = 0;
  std::string message;
};

// Called with the events of one revision (all the changes of one
// transaction, in the order they were made) and that revision. Revisions
// arrive strictly increasing, without gaps in what matched the prefix.
using watch_callback = std::function<void(const std::vector<watch_event>& events, std::int64_t revision)>;
using watch_error_callback = std::function<void(const watch_error& error)>;

// Owned by the watcher. Destroying it cancels the watch: once the destructor
// returns no callback runs and none is running, except when the destructor
// is called from inside a callback of this same watch (allowed: the watch
// then stops after that callback returns).
class watch_handle {
 public:
  virtual ~watch_handle() = default;
};

// Thread-safe: any member may be called from any thread. Calls block the
// caller (no call waits longer than the implementation's configured request
// timeout); call them from a thread that may block, not a scheduler worker.
//
// Errors: errc::metadata_unavailable when the store cannot be reached or did
// not answer in time (for a write this means the outcome is unknown: it may
// have been applied); errc::not_found for a lease that does not exist (or
// expired); errc::invalid_argument for a malformed request. A transaction
// whose comparisons fail is not an error: txn_result::succeeded is false and
// the caller decides what that means (usually errc::conflict).
//
// Lives as long as its owner (one per node); outstanding watch_handles must
// be destroyed before the store.
class meta_store {
 public:
  virtual ~meta_store() = default;

  // The key (prefix = false) or every key starting with `key`.
  virtual engine::result<range_result> range(const std::string& key, bool prefix = false) = 0;

  // Runs on_success if every comparison holds, else on_failure, atomically.
  virtual engine::result<txn_result> txn(const std::vector<compare>& compares, const std::vector<op>& on_success,
                                         const std::vector<op>& on_failure) = 0;

  // A txn with one put and no comparison. Returns the new revision.
  engine::result<std::int64_t> put(const std::string& key, const std::string& value, std::int64_t lease = 0);
  // Deletes the key (or the prefix). Returns the store's revision afterwards.
  engine::result<std::int64_t> del(const std::string& key, bool prefix = false);

  // A lease that expires `ttl` after the last keep-alive (at least 1 s);
  // when it expires or is revoked every key bound to it is deleted in one
  // revision. Returns its id (never 0).
  virtual engine::result<std::int64_t> lease_grant(std::chrono::seconds ttl) = 0;
  // Restarts the lease's TTL. errc::not_found if it expired or was revoked.
  virtual engine::status lease_keep_alive(std::int64_t id) = 0;
  // Ends the lease now and deletes its keys. errc::not_found if unknown.
  virtual engine::status lease_revoke(std::int64_t id) = 0;

  // Drops the history before `revision`: watches from an older revision then
  // get watch_error::kind::compacted. Requires: revision <= current revision.
  virtual engine::status compact(std::int64_t revision) = 0;

  // Watches every key starting with `prefix`. from_revision > 0: delivers
  // every change since that revision first (history), then live changes;
  // from_revision == 0: live changes only, from the next revision.
  // Callbacks run on a thread owned by the store (one per watch), one at a
  // time, in revision order. on_error may be empty (a compacted watch then
  // just ends, with a warning in the log).
  virtual std::unique_ptr<watch_handle> watch(const std::string& prefix, std::int64_t from_revision,
                                              watch_callback on_events, watch_error_callback on_error = {}) = 0;
};

// The smallest key greater than every key that starts with `prefix` (etcd's
// range_end); empty when there is none (prefix empty or all 0xff bytes).
std::string prefix_end(const std::string& prefix);

}  // namespace annal::cluster
