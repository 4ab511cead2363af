#pragma once

#include <chrono>
#include <latch>
#include <memory>
#include <optional>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "actors/requests.hpp"

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

// The checkpoint thread finished the partition handed to it.
struct checkpoint_done_msg {
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

// A sync round ended: the durable position moved or the node log failed.
using durable_atom = caf::atom_constant<caf::atom("durable")>;
// The node log grew: poll checkpoint_due().
using tick_atom = caf::atom_constant<caf::atom("tick")>;
// The checkpoint thread is ready for this partition: hand it over.
using checkpoint_go_atom = caf::atom_constant<caf::atom("ckpt_go")>;

}  // namespace annal::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::append_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::read_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::read_last_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::stream_info_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::set_metadata_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::delete_stream_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::put_snapshot_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::get_snapshot_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::checkpoint_done_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::drain_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(annal::actors::final_msg)
