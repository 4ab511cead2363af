#pragma once

#include <functional>

#include "actors/cluster_admin.hpp"

namespace annal::net {

struct http_request;
struct http_response;

// The admin HTTP API (docs/http-api.md, "Admin"): cluster status and
// membership changes, as JSON.
//
//   GET    /admin/cluster                  status: map, placement, nodes, pending moves
//   GET    /admin/nodes                    the nodes
//   POST   /admin/nodes                    add {"id", "address", "httpAddress"?}
//   PUT    /admin/cluster                  {"requireApproval": bool}
//   POST   /admin/nodes/{id}/approve       a joining node becomes active
//   POST   /admin/nodes/{id}/drain         move its partitions away
//   DELETE /admin/nodes/{id}               remove a node that holds nothing
//
// Changes take an optional ?expectedEpoch=N (409 conflict unless the map is
// still at N) and answer {"epoch", "map"}.
//
// `respond` is called exactly once, on any thread.
void handle_admin(actors::cluster_admin& admin, const http_request& request,
                  std::function<void(http_response)> respond);

}  // namespace annal::net
