#pragma once

#include <chrono>
#include <latch>
#include <memory>
#include <optional>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "actors/query_scans.hpp"
#include "actors/requests.hpp"
#include "engine/checkpoint_job.hpp"
#include "engine/shipped_batch.hpp"

// Messages of the partition actors. Local only: they carry reply callbacks
// and pointers, so they are never serialized (CAF_ALLOW_UNSAFE_MESSAGE_TYPE).
// A peer link (cluster) will decode its wire requests into these.
namespace annal::actors {

using request_clock = std::chrono::steady_clock;

struct append_msg {
  append_request request;
  reply_fn<append_reply> reply;
  request_clock::time_point received;
};

struct read_msg {
  read_request request;
  reply_fn<engine::read_page> reply;
};

struct read_last_msg {
  std::string stream;
  reply_fn<engine::read_page> reply;
};

struct stream_info_msg {
  std::string stream;
  reply_fn<engine::stream_info> reply;
};

struct set_metadata_msg {
  std::string stream;
  engine::stream_metadata metadata;
  reply_fn<write_reply> reply;
};

struct delete_stream_msg {
  std::string stream;
  engine::expected_version expected;
  bool tombstone = false;
  reply_fn<write_reply> reply;
};

struct put_snapshot_msg {
  std::string stream;
  stream_version version;
  std::string payload;
  reply_fn<write_reply> reply;
};

struct get_snapshot_msg {
  std::string stream;
  reply_fn<std::optional<engine::snapshot_read>> reply;
};

// Read-all of one partition (actors::read_partition_all).
struct read_all_msg {
  all_position from;
  std::size_t limit = 0;
  std::size_t max_bytes = 0;
  reply_fn<read_all_part> reply;
  // Ignore `from`: reply with no events and the partition's visible end.
  bool from_end = false;
};

// A long-poll of one partition (docs/subscriptions.md): answered `ready` as
// soon as acknowledged records exist past `from` (at once if they already
// do), `timeout` at `deadline`, `superseded` when a wait with the same
// `watch` and a higher `seq` arrives. Gated like a read (not_owner when the
// partition moves away; held by a seal).
struct wait_msg {
  std::uint64_t watch = 0;
  std::uint64_t seq = 0;
  all_position from;
  request_clock::time_point deadline;
  reply_fn<wake_reason> reply;
};

// A query's scan of one partition (actors::query_scans), answered with the
// partition's partial result.
struct query_msg {
  std::shared_ptr<const engine::query::plan> plan;
  std::shared_ptr<query_budget> budget;
  reply_fn<engine::query::partial_result> reply;
};

// The next step of a running query scan (sent by the partition actor to itself).
struct query_step_msg {
  std::uint64_t scan = 0;
};

// The partition's counts (actors::stats_of). Served whether or not this node
// owns the partition, also while it is sealed: it reads nothing of the log.
struct stats_msg {
  reply_fn<partition_stats> reply;
};

// The checkpoint thread wrote the checkpoint (or failed to). `job` is nullptr
// if it could not even begin.
struct checkpoint_done_msg {
  std::shared_ptr<engine::checkpoint_job> job;
  std::optional<engine::error> failure;
};

// stop(): every request sent before this one has been applied; count down.
struct drain_msg {
  std::shared_ptr<std::latch> latch;
};

// stop(): the final sync ran (failure: it did not); release or fail every
// waiting write, then exit.
struct final_msg {
  std::optional<engine::error> failure;
};

// --- Partition handoff (docs/cluster.md, "Handoff") ---

// Whether this node owns the partition (the fence): a partition this node
// does not own answers every client request with not_owner, including the
// requests held by a seal.
struct set_owned_msg {
  bool owned = false;
};

struct ship_log_msg {
  lsn from;
  std::size_t max_bytes = 0;
  reply_fn<engine::shipped_batch> reply;
};

// Copy side: replies once the batch is durable.
struct apply_shipped_msg {
  engine::shipped_batch batch;
  reply_fn<engine::shipped_write> reply;
};

// Holds client requests until unseal_msg or set_owned_msg{false}; replies
// with the partition's end once every earlier write is durable.
struct seal_msg {
  reply_fn<lsn> reply;
};

struct unseal_msg {
  reply_fn<lsn> reply;
};

// The partition's end (all of it durable when no write is in flight).
struct end_msg {
  reply_fn<lsn> reply;
};

// Deletes the copy of a partition this node does not own
// (engine::partition::clear). Replies with the end after it (0).
struct clear_msg {
  reply_fn<lsn> reply;
};

// A sync round ended: the durable position moved or the node log failed.
using durable_atom = caf::atom_constant<caf::atom("durable")>;
// The node log grew: poll checkpoint_due().
using tick_atom = caf::atom_constant<caf::atom("tick")>;
// The checkpoint thread is ready for this partition: hand it over.
using checkpoint_go_atom = caf::atom_constant<caf::atom("ckpt_go")>;
// The checkpoint thread encoded the partition's checkpoint: it is the actor's
// again.
using checkpoint_begun_atom = caf::atom_constant<caf::atom("ckpt_begun")>;
// The earliest parked wait_msg is due: answer the expired ones.
using wait_sweep_atom = caf::atom_constant<caf::atom("wait_sweep")>;

// A delayed callback, run by the node's timer actor.
struct round_timer_msg {
  std::function<void()> fire;
};

}  // namespace annal::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::append_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::round_timer_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::read_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::read_last_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::stream_info_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::set_metadata_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::delete_stream_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::put_snapshot_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::get_snapshot_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::read_all_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::wait_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::stats_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::query_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::query_step_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::checkpoint_done_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::drain_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::final_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::set_owned_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::ship_log_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::apply_shipped_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::seal_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::unseal_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::end_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::clear_msg)
