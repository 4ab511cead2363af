#include "net/admin_api.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cluster/map_codec.hpp"
#include "net/http_api.hpp"
#include "net/http_query.hpp"
#include "net/json_codec.hpp"

namespace annal::net {
namespace {

using engine::errc;
using engine::error;
using njson = nlohmann::json;
using respond_fn = std::function<void(http_response)>;

constexpr std::string_view k_nodes_prefix = "/admin/nodes/";

void fail(const respond_fn& respond, const error& e) { respond(error_response(e)); }

njson node_json(const actors::node_status& node) {
  return njson{{"id", node.entry.id},
               {"address", node.entry.address},
               {"httpAddress", node.entry.http_address},
               {"state", node.in_map ? cluster::node_state_name(node.entry.state) : "registered"},
               {"up", node.up},
               {"partitions", node.partitions}};
}

njson nodes_json(const actors::cluster_status& status) {
  njson nodes = njson::array();
  for (const auto& node : status.nodes) nodes.push_back(node_json(node));
  return nodes;
}

std::string status_json(const actors::cluster_status& status) {
  njson out{{"node", status.self}, {"metadataAvailable", status.metadata_available}};
  if (!status.map) {
    out["epoch"] = nullptr;
    out["nodes"] = nodes_json(status);
    return out.dump();
  }
  const auto& map = *status.map;
  out["epoch"] = map.epoch;
  out["partitionCount"] = map.partition_count;
  out["replicationFactor"] = map.replication_factor;
  out["requireApproval"] = map.require_approval;
  out["nodes"] = nodes_json(status);
  njson partitions = njson::array();
  for (std::uint32_t p = 0; p < status.placement.size(); ++p) {
    partitions.push_back({{"partition", p},
                          {"replicas", status.placement[p]},
                          {"pinned", map.overrides.count(partition_id{p}) > 0}});
  }
  out["partitions"] = std::move(partitions);
  njson moves = njson::array();
  for (const auto& move : status.pending_moves) {
    moves.push_back({{"partition", move.partition.value()},
                     {"from", move.pinned},
                     {"to", move.target},
                     {"state", "pending"}});
  }
  out["handoffs"] = std::move(moves);
  return out.dump();
}

// Answers a membership change with {"epoch", "map"}.
actors::reply_fn<cluster::cluster_map> change_reply(respond_fn respond) {
  return [respond = std::move(respond)](engine::result<cluster::cluster_map> r) {
    if (!r) return fail(respond, r.err());
    respond(
        json_response(200, fmt::format(R"({{"epoch":{},"map":{}}})", r->epoch, cluster::to_json(*r))));
  };
}

}  // namespace

void handle_admin(actors::cluster_admin& admin, const http_request& request, respond_fn respond) {
  auto params = parse_query(request.query);
  if (!params) return fail(respond, params.err());
  auto expected_epoch = unsigned_param(*params, "expectedEpoch");
  if (!expected_epoch) return fail(respond, expected_epoch.err());
  const std::string_view path = request.path;

  if (path == "/admin/cluster" && request.method == "PUT") {
    const auto body = njson::parse(request.body, nullptr, false);
    if (!body.is_object() || !body.contains("requireApproval") ||
        !body["requireApproval"].is_boolean()) {
      return fail(respond,
                  error{errc::invalid_argument, R"(the body must be {"requireApproval": true|false})"});
    }
    return admin.set_require_approval(body["requireApproval"].get<bool>(), *expected_epoch,
                                      change_reply(std::move(respond)));
  }
  if (path == "/admin/cluster" || path == "/admin/nodes") {
    if (path == "/admin/nodes" && request.method == "POST") {
      const auto body = njson::parse(request.body, nullptr, false);
      if (!body.is_object() || !body.contains("id") || !body["id"].is_string() ||
          !body.contains("address") || !body["address"].is_string()) {
        return fail(respond, error{errc::invalid_argument,
                                   R"(the body must be {"id": "...", "address": "host:port"})"});
      }
      cluster::node_entry node;
      node.id = body["id"].get<std::string>();
      node.address = body["address"].get<std::string>();
      if (body.contains("httpAddress") && body["httpAddress"].is_string()) {
        node.http_address = body["httpAddress"].get<std::string>();
      }
      return admin.add_node(std::move(node), *expected_epoch, change_reply(std::move(respond)));
    }
    if (request.method != "GET") {
      return respond(
          method_not_allowed(path == "/admin/nodes" ? "GET, POST" : "GET, PUT", request.method));
    }
    const bool nodes_only = path == "/admin/nodes";
    return admin.status(
        [respond = std::move(respond), nodes_only](engine::result<actors::cluster_status> r) {
          if (!r) return fail(respond, r.err());
          respond(json_response(
              200, nodes_only ? njson{{"nodes", nodes_json(*r)}}.dump() : status_json(*r)));
        });
  }

  if (path.starts_with(k_nodes_prefix)) {
    std::string_view rest = path.substr(k_nodes_prefix.size());
    const bool drain = rest.ends_with("/drain");
    const bool approve = rest.ends_with("/approve");
    if (drain) rest.remove_suffix(std::string_view("/drain").size());
    if (approve) rest.remove_suffix(std::string_view("/approve").size());
    auto id = percent_decode(rest, false);
    if (!id || id->empty() || id->find('/') != std::string::npos) {
      return fail(respond, error{errc::not_found, fmt::format("no route for {}", path)});
    }
    if (drain || approve) {
      if (request.method != "POST") return respond(method_not_allowed("POST", request.method));
      if (approve) {
        return admin.approve_node(std::move(*id), *expected_epoch, change_reply(std::move(respond)));
      }
      return admin.drain_node(std::move(*id), *expected_epoch, change_reply(std::move(respond)));
    }
    if (request.method != "DELETE") return respond(method_not_allowed("DELETE", request.method));
    return admin.remove_node(std::move(*id), *expected_epoch, change_reply(std::move(respond)));
  }
  fail(respond, error{errc::not_found, fmt::format("no route for {}", path)});
}

}  // namespace annal::net
