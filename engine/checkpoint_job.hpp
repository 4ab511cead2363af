#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/checkpoint.hpp"
#include "engine/errors.hpp"
#include "engine/file_system.hpp"
#include "engine/node_log.hpp"
#include "engine/partition_log.hpp"
#include "engine/stream_index.hpp"
#include "engine/types.hpp"

namespace annal::engine {

// What a checkpoint holds of one stream, as far as telling whether the stream
// changed since goes (partition::changed_streams()).
struct checkpointed_stream {
  std::uint64_t next_version = 0;
  std::uint64_t first_located = 0;
  stream_metadata metadata;
  bool deleted = false;
  bool tombstoned = false;
  std::optional<snapshot_ref> snapshot;

  static checkpointed_stream of(const stream_entry& e) {
    return {e.next_version, e.first_located, e.metadata, e.deleted, e.tombstoned, e.snapshot};
  }
  friend bool operator==(const checkpointed_stream&, const checkpointed_stream&) = default;
};

// A partition checkpoint between partition::begin_checkpoint(), which encodes
// it, and partition::finish_checkpoint(), which applies it; both run where
// the partition is owned at the time. In between, write() makes it durable on
// any thread while the owner goes on serving: the partition waits only for
// the encoding and the bookkeeping, not for the fsyncs (docs/storage.md,
// "Checkpoints").
class checkpoint_job {
 public:
  // In this order: a node-log round that fdatasyncs (so that the node-log
  // position the checkpoint records is on disk), the fdatasyncs of the
  // segment files written since the last checkpoint, the checkpoint file
  // (stored durably; files older than the previous checkpoint's chain
  // removed), and the release of the node log before the previous
  // checkpoint's position. Stops at the first error. Then removes the
  // segment files retention emptied; a removal that fails is logged, and the
  // file is removed when the partition next opens (no checkpoint lists it).
  // Blocking; call once.
  status write();
  // After a failed write(): whether a later checkpoint may succeed. True when
  // storing the checkpoint file or releasing the node log failed (a full
  // disk, say): nothing is sticky, and the next checkpoint writes a new file.
  // False when the node log or a segment file failed to sync (sticky).
  bool retryable() const { return reached_ == step::file || reached_ == step::release; }

  std::uint64_t sequence() const { return sequence_; }
  bool delta() const { return delta_; }
  std::size_t bytes() const { return bytes_.size(); }

 private:
  friend class partition;

  partition_id partition_{};
  file_system* fs_ = nullptr;
  node_log* wal_ = nullptr;  // nullptr: no node log (offline tools)
  std::string dir_;
  partition_log::pending_sync segments_;

  // The checkpoint.
  std::uint64_t sequence_ = 0;
  std::uint64_t keep_from_ = 0;  // older checkpoint files are removed
  bool delta_ = false;
  std::vector<std::byte> bytes_;
  std::uint32_t crc_ = 0;
  lsn log_end_{};
  node_log_position node_position_{};
  node_log_position release_before_{};  // the previous checkpoint's position
  std::vector<partition_log::segment_info> listed_;
  // Segments past retention that neither this checkpoint nor the one before
  // lists: write() removes their files, finish_checkpoint() forgets them.
  std::vector<lsn> removable_;
  std::vector<std::string> removable_files_;

  // What it holds of the streams and ids, for the next delta: of every
  // stream (a full checkpoint), or of the changed ones (a delta), numbered
  // below stream_count_.
  std::vector<std::pair<std::uint32_t, checkpointed_stream>> streams_;
  std::uint32_t stream_count_ = 0;
  std::uint64_t ids_inserted_ = 0;

  // How far write() got: the step it failed at, or done. Past file, the
  // checkpoint is stored.
  enum class step { node_log, segments, file, release, done };
  step reached_ = step::node_log;
};

}  // namespace annal::engine
