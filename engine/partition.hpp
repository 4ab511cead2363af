#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/checkpoint.hpp"
#include "engine/checkpoint_job.hpp"
#include "engine/clock.hpp"
#include "engine/errors.hpp"
#include "engine/event_id_window.hpp"
#include "engine/file_system.hpp"
#include "engine/node_log.hpp"
#include "engine/partition_log.hpp"
#include "engine/record_codec.hpp"
#include "engine/shipped_batch.hpp"
#include "engine/stream_index.hpp"
#include "engine/types.hpp"

namespace annal::engine {

struct partition_options {
  partition_log_options log;
  std::size_t max_batch_events = 10000;       // <= k_format_max_batch_events
  std::size_t max_event_bytes = 1u << 20;     // data + metadata of one event
  std::size_t max_batch_bytes = 32u << 20;    // a whole append
  std::size_t event_id_window = 10000;        // recent ids kept for idempotency
  // checkpoint_due() once the partition log grew this much since the last
  // checkpoint, or the node log grew four times this much (so that idle
  // partitions let node-log segments go).
  std::uint64_t checkpoint_bytes = 64u << 20;
  // Whether a checkpoint may be a delta of the one before (store format 3,
  // docs/storage.md "Delta checkpoints"). Off for stores of older formats,
  // whose readers know only full checkpoints.
  bool delta_checkpoints = true;
  // Deltas in a row before a full checkpoint; a full one also comes once the
  // deltas add up to the size of the last full one, so a chain never holds
  // more than twice the bytes of a full checkpoint.
  std::size_t max_checkpoint_deltas = 64;
};

// Result of any write. The write is acknowledged (durable under
// fsync=always) once node_log::durable_position() >= durable_after; reads
// see it only after advance_durable() has passed that position.
struct write_result {
  lsn position;                      // lsn of the record written (or found)
  node_log_position durable_after;   // 0 when already durable
};

struct append_result : write_result {
  stream_version first_version;
  stream_version last_version;
  bool duplicate = false;  // an idempotent retry: nothing new was written
};

// An event as read back. The string views point into `read_page::buffers`.
struct recorded_event {
  event_id id{};
  std::string_view type;
  std::string_view data;
  std::string_view metadata;
  stream_version version;
  timestamp_us timestamp = 0;
  lsn position;  // lsn of the event's record
};

enum class read_direction { forward, backward };

struct read_page {
  std::vector<recorded_event> events;
  // Where the next page starts in the same direction; nullopt at the end.
  std::optional<stream_version> next;
  // The stream's last version (what an append's expected version compares to).
  std::optional<stream_version> last_version;
  // Keeps the bytes behind the event views alive.
  std::vector<std::shared_ptr<const void>> buffers;
};

struct stream_info {
  stream_metadata metadata;
  std::optional<stream_version> last_version;  // nullopt: no stream
  std::uint64_t first_retained = 0;            // first version a read can return
  bool deleted = false;
  bool tombstoned = false;
};

struct snapshot_read {
  stream_version version;
  timestamp_us timestamp = 0;
  std::string_view payload;  // points into `buffers`
  std::vector<std::shared_ptr<const void>> buffers;
};

struct snapshot_and_events {
  std::optional<snapshot_read> snapshot;
  read_page events;  // forward from snapshot version + 1 (or the first retained)
};

// One partition: its segmented log, stream index, idempotency window and
// snapshots. Every write goes to the partition log and the node log.
//
// Not thread-safe: owned by one partition actor. Blocking only in
// checkpoint(), finish_checkpoint() (when it removes segment files), clear()
// and when reading cold records from segment files.
class partition {
 public:
  // A partition as loaded from its newest valid checkpoint (or empty).
  // Recovery then feeds it the node log with replay().
  static result<std::unique_ptr<partition>> open(file_system& fs, clock& clock,
                                                 node_log* wal, std::string dir,
                                                 partition_id id, partition_options options);

  partition_id id() const { return id_; }

  result<append_result> append(std::string_view stream, expected_version expected,
                               std::span<const event_input> events);
  result<write_result> set_metadata(std::string_view stream, const stream_metadata& metadata);
  // Soft delete (the stream can be written again, continuing its versions) or
  // tombstone (never writable again).
  result<write_result> delete_stream(std::string_view stream, expected_version expected,
                                     bool tombstone);
  // Requires: version <= the stream's last version.
  result<write_result> put_snapshot(std::string_view stream, stream_version version,
                                    std::string_view payload);

  result<read_page> read_stream(std::string_view stream, stream_version from,
                                std::size_t limit, read_direction direction);
  result<read_page> read_last(std::string_view stream);
  result<stream_info> get_stream_info(std::string_view stream);
  result<std::optional<snapshot_read>> get_snapshot(std::string_view stream);
  result<snapshot_and_events> read_from_snapshot(std::string_view stream, std::size_t limit);

  // Raw records from `from` (replication, subscriptions). Only acknowledged
  // records are returned.
  result<std::vector<record_ref>> read_log(lsn from, std::size_t max_bytes);

  // Log shipping, source side: the committed records from `from` as their
  // exact frames, at most `max_bytes` of them (but at least one record when
  // there is one, however large). Only records visible to reads (acknowledged
  // by the node log) are shipped, so a copy never holds what this partition
  // could lose. `from == visible_end()` gives an empty batch.
  // Requires: `from` is a record boundary (a copy's end() is one).
  // Errors: invalid_argument when `from` is past end() or not yet durable;
  // full_copy_needed when retention removed records at or after `from`.
  result<shipped_batch> ship_from(lsn from, std::size_t max_bytes);
  // Log shipping, copy side: checks `batch` whole (batch CRC, then every
  // frame's header, CRC, partition and lsn, then that every payload decodes
  // and continues its stream's versions), and only then writes the same
  // bytes at the same lsns through the node log and the partition log and
  // applies them to the index, as append does. On any error nothing is
  // written or applied. Visibility and durability are those of an append:
  // see shipped_write::durable_after.
  // Errors: lsn_gap when batch.from != end() (both lsns in the message) or
  // the records' lsns do not follow each other; checksum_mismatch for a bad
  // batch or record CRC; corruption for a truncated or malformed record, a
  // record of another partition, or a payload that does not apply; io_error
  // (sticky) when a write fails.
  result<shipped_write> apply_shipped(const shipped_batch& batch);

  // The node log has made everything below `durable` durable: writes whose
  // durable_after <= durable become visible to reads.
  void advance_durable(node_log_position durable);

  // Syncs the segment files, writes a new checkpoint of the index, removes
  // segments whose events are all past retention, and releases node-log
  // segments. Blocking. The same as begin_checkpoint(), write() and
  // finish_checkpoint() in a row.
  status checkpoint();

  // checkpoint() in three steps, so that the owner serves while the
  // checkpoint is written: this encodes the partition as it is now (and
  // writes buffered bytes to the OS); the job's write() makes it durable on
  // any thread; finish_checkpoint() applies it. In between, the owner may do
  // anything but clear() and another checkpoint, and must call
  // finish_checkpoint() once write() returned.
  // Errors: invalid_argument while another checkpoint is in progress; an
  // io_error (sticky) from writing out buffered bytes.
  result<checkpoint_job> begin_checkpoint();
  // Applies a written job: removes the segments past retention, and counts
  // the checkpoint for the next one. Returns write()'s error, if it failed
  // (the checkpoint then does not count; if the segment files failed to
  // sync, the partition refuses later writes: sticky).
  status finish_checkpoint(checkpoint_job job, status written);

  // Whether the owner should call checkpoint() now (see
  // partition_options::checkpoint_bytes). The engine has no timer: the owner
  // polls this, e.g. after each group-commit round.
  bool checkpoint_due() const;

  // Deletes this node's copy of the partition (after handing it to another
  // node): afterwards it is empty like a new partition, at lsn 0, with no
  // streams, event ids, snapshots or segment files, and a later copy starts
  // with apply_shipped from lsn 0. The last timestamp is kept, so that
  // timestamps of later appends do not go back. Blocking.
  //
  // Durable in this order: a node-log round that fdatasyncs (its position
  // covers every record of this partition), two checkpoints of the empty
  // partition at that position (so that the fallback checkpoint is empty
  // too and recovery never replays the old records), the in-memory reset,
  // the removal of every segment file with a directory sync, and the
  // release of the node log. A crash at any point leaves the old partition
  // or the empty one; open() finishes a clear interrupted between the two
  // checkpoints.
  //
  // Requires: no write pending (visible_end() == end(): every write
  // acknowledged and advance_durable() told so); the node log attached; no
  // checkpoint in progress.
  // Errors: invalid_argument, with nothing changed, when a write is pending,
  // a checkpoint is in progress or there is no node log; io_error with
  // nothing changed when the node-log round or the first checkpoint's write
  // fails. An io_error once the first
  // empty checkpoint may be on disk, or while removing segment files, is
  // sticky: the partition then refuses every write, shipped batch,
  // checkpoint and clear (reads see the old partition, or the empty one once
  // the segments were being removed), and a restart finishes or undoes the
  // clear. An io_error from releasing node-log segments comes after the
  // clear is complete.
  status clear();

  // Applies one checked record read from the node log (`file` at `offset`)
  // during recovery. Records below end() are skipped; a record past end()
  // is an lsn gap.
  status replay(std::span<const std::byte> frame, const std::string& file, std::uint64_t offset);
  // Connects the node log once recovery has replayed it; everything replayed
  // is visible from then on.
  void attach(node_log* wal) {
    wal_ = wal;
    visible_end_ = log_->end();
  }
  // The node-log position from which this partition must be replayed.
  node_log_position replay_from() const { return checkpoint_node_position_; }

  lsn end() const { return log_->end(); }
  lsn visible_end() const { return visible_end_; }
  const stream_index& index() const { return index_; }
  partition_log& log() { return *log_; }

 private:
  partition(file_system& fs, clock& clock, node_log* wal, std::string dir, partition_id id,
            partition_options options);

  status validate(std::string_view stream, std::span<const event_input> events);
  // Retry detection: the original result if `events` already sit in `entry`.
  result<std::optional<append_result>> find_retry(const stream_entry& entry,
                                                  expected_version expected,
                                                  std::span<const event_input> events);
  std::optional<error> check_expected(const stream_entry* entry, expected_version expected,
                                      std::string_view stream) const;
  timestamp_us next_timestamp();
  // Writes a sealed frame to both logs and applies it to the index.
  result<write_result> write_frame(std::span<const std::byte> frame);
  // Applies a checked record to the index. With `hide_from_reads` (live
  // writes, as opposed to recovery) metadata, delete, revive and snapshot
  // changes stay hidden from reads until the record is durable; the record
  // must then be the last one in the partition log.
  status apply(const log_format::record_header& header, std::span<const std::byte> payload,
               bool hide_from_reads = false);
  // Checks that the frames of a shipped batch decode and would apply in order
  // (stream versions continue) without changing anything.
  status check_shipped_payloads(std::span<const log_format::parsed_frame> frames) const;
  node_log_position ticket_for(lsn record) const;

  // What reads see of a stream's metadata, deletion and snapshot.
  struct stream_view {
    stream_metadata metadata;
    bool deleted = false;
    bool tombstoned = false;
    std::optional<snapshot_ref> snapshot;
  };
  // The view reads get of `entry`: its state before the oldest change to it
  // that is not yet visible, else its current state.
  stream_view visible_view(const stream_entry& entry) const;
  // Keeps the current state of `entry` for reads until the write just made
  // (ending at log_->end()) is visible. Call before changing the entry.
  void hide_change(const stream_entry& entry);

  std::uint64_t first_retained(const stream_entry& entry, const stream_metadata& metadata);
  std::uint64_t visible_next_version(const stream_entry& entry) const;
  result<timestamp_us> timestamp_of(const stream_entry& entry, std::uint64_t version);
  status read_events(const stream_entry& entry, std::uint64_t first, std::uint64_t count,
                     read_direction direction, read_page& page);
  std::vector<lsn> removable_segments();
  // The streams that changed since the last checkpoint, for a delta.
  std::vector<checkpoint_delta::stream_change> changed_streams() const;
  // Records that every stream is checkpointed as it is now (after a load).
  void mark_all_checkpointed();
  // A checkpoint of the empty partition at `node_position`.
  std::vector<std::byte> empty_checkpoint(std::uint64_t sequence,
                                          node_log_position node_position) const;
  // Finishes a clear() interrupted between its two checkpoints: when the
  // loaded checkpoint is empty but an older one still lists segments (which
  // open removes), replaces that older one with another empty checkpoint.
  status finish_interrupted_clear();

  file_system& fs_;
  clock& clock_;
  node_log* wal_;  // nullptr in offline tools (verify)
  std::string dir_;
  partition_id id_;
  partition_options options_;

  std::unique_ptr<partition_log> log_;
  stream_index index_;
  event_id_window recent_ids_;
  record_encoder encoder_;
  std::vector<std::uint32_t> id_scratch_;  // validate()'s duplicate check
  timestamp_us last_timestamp_ = 0;

  // Writes not yet acknowledged by the node log, oldest first.
  struct pending_write {
    lsn record_end;
    node_log_position ticket;
  };
  std::deque<pending_write> pending_;
  // Metadata, delete, revive and snapshot changes not yet visible, oldest
  // first, each with the stream state it replaced. Trimmed by advance_durable().
  struct hidden_change {
    lsn record_end;
    std::uint32_t stream;  // stream_index number
    stream_view before;
  };
  std::deque<hidden_change> hidden_;
  lsn visible_end_{};

  std::uint64_t checkpoint_sequence_ = 0;
  lsn checkpoint_end_{};
  node_log_position checkpoint_node_position_{};
  // Segments listed by the previous checkpoint: kept on disk so that it stays
  // loadable if the newest one is damaged.
  std::vector<std::uint64_t> previous_checkpoint_segments_;
  node_log_position previous_checkpoint_node_position_{};
  std::vector<std::uint64_t> removed_segments_;  // out of the index, file not yet deleted
  // The newest checkpoint's chain, and what it holds of each stream (by
  // number; streams past its end are new since) and of the event-id window
  // (recent_ids_.inserted() then): what the next delta leaves out.
  checkpoint_chain chain_;
  std::vector<checkpointed_stream> checkpointed_streams_;
  std::uint64_t checkpointed_ids_ = 0;
  bool checkpoint_in_progress_ = false;  // between begin_ and finish_checkpoint
  // Sticky: a clear() that failed once its empty checkpoint may be on disk.
  // The disk may then hold the old partition or the empty one, so nothing
  // more may be written until a restart.
  std::optional<error> failure_;
};

}  // namespace annal::engine
