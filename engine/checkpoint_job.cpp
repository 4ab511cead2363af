#include "engine/checkpoint_job.hpp"

namespace annal::engine {

status checkpoint_job::write() {
  reached_ = step::node_log;
  if (wal_) {
    auto synced = wal_->sync_to_disk();
    if (!synced) return synced.err();
  }
  reached_ = step::segments;
  if (auto s = segments_.run(); !s) return s;
  reached_ = step::file;
  if (auto s = store_checkpoint(*fs_, dir_, sequence_, bytes_, keep_from_); !s) return s;
  reached_ = step::release;
  if (wal_) {
    if (auto s = wal_->release(partition_, release_before_); !s) return s;
  }
  reached_ = step::done;
  return {};
}

}  // namespace annal::engine
