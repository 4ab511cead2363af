#include "actors/stats.hpp"

namespace annal::actors {

partition_stats stats_of(const engine::partition& p) {
  partition_stats s;
  s.partition = p.id();
  p.index().for_each([&](const engine::stream_entry& e) {
    if (e.next_version == 0) return;  // metadata only, never written
    ++s.streams;
    s.events += e.next_version;
  });
  s.end_lsn = p.visible_end();
  return s;
}

}  // namespace annal::actors
