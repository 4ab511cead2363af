#include "actors/partition_list.hpp"

#include <fmt/format.h>

namespace annal::actors {

engine::status check_partition_list(const std::vector<partition_id>& partitions,
                                    std::uint32_t partition_count) {
  using engine::errc;
  using engine::error;
  std::vector<bool> seen(partitions.empty() ? 0 : partition_count);
  for (const auto p : partitions) {
    if (p.value() >= partition_count) {
      return error{errc::invalid_argument,
                   fmt::format("no partition {}: the cluster has {}", p.value(), partition_count)};
    }
    if (seen[p.value()]) {
      return error{errc::invalid_argument, fmt::format("partition {} is listed twice", p.value())};
    }
    seen[p.value()] = true;
  }
  return {};
}

}  // namespace annal::actors
