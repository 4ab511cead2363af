#include "actors/router.hpp"

#include "engine/partitioning.hpp"

namespace annal::actors {

partition_id router::partition_for(std::string_view stream) const {
  return engine::partition_for(stream, partition_count_);
}

}  // namespace annal::actors
