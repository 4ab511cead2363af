#pragma once

#include <string>
#include <string_view>

#include "actors/metrics.hpp"

// Prometheus text exposition (format 0.0.4) of a node's metrics, served at
// GET /metrics. Pure and thread-safe: reads the relaxed atomics of
// node_metrics once each, so figures of one scrape may be a few updates
// apart, but every histogram is internally consistent (+Inf == _count).
namespace annal::net {

inline constexpr std::string_view k_prometheus_content_type =
    "text/plain; version=0.0.4; charset=utf-8";

std::string render_prometheus(const actors::node_metrics& metrics, std::string_view node_id);

}  // namespace annal::net
