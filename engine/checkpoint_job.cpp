#include "engine/checkpoint_job.hpp"

#include <spdlog/spdlog.h>

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
  for (const auto& path : removable_files_) {
    spdlog::info("partition {}: removing {}: every event in it is past retention",
                 partition_.value(), path);
    if (auto ec = fs_->remove_file(path)) {
      spdlog::error("partition {}: removing {}: {} (retried when the partition opens)",
                    partition_.value(), path, ec.message());
    }
  }
  return {};
}

}  // namespace annal::engine
