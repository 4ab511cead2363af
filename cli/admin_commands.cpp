#include "cli/admin_commands.hpp"

#include <curl/curl.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "engine/errors.hpp"

namespace annal::cli {
namespace {

using njson = nlohmann::json;

struct http_result {
  long status = 0;
  std::string body;
};

std::size_t collect(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// One request to the admin API; nullopt (after printing why) when the node
// cannot be reached.
std::optional<http_result> call(const admin_flags& flags, const char* method,
                                const std::string& path, const std::string& body = {}) {
  CURL* curl = curl_easy_init();
  if (!curl) return std::nullopt;
  http_result result;
  const std::string url = "http://" + flags.admin + path;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(flags.timeout_ms));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
  if (!body.empty() || std::string_view(method) == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    std::fprintf(stderr, "annal: node_unavailable: cannot reach the admin API at %s: %s\n",
                 flags.admin.c_str(), curl_easy_strerror(rc));
    return std::nullopt;
  }
  return result;
}

// The parsed body of a 2xx reply; otherwise prints the error line.
std::optional<njson> success(const std::optional<http_result>& result) {
  if (!result) return std::nullopt;
  auto body = njson::parse(result->body, nullptr, false);
  if (result->status >= 200 && result->status < 300 && !body.is_discarded()) return body;
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const auto& e = body["error"];
    std::fprintf(stderr, "annal: %s: %s\n", e.value("code", "unknown").c_str(),
                 e.value("message", "").c_str());
  } else {
    std::fprintf(stderr, "annal: HTTP %ld: %s\n", result->status, result->body.c_str());
  }
  return std::nullopt;
}

std::string epoch_query(const admin_flags& flags) {
  return flags.expected_epoch == 0 ? "" : "?expectedEpoch=" + std::to_string(flags.expected_epoch);
}

void print_nodes(const njson& nodes) {
  std::printf("%-16s %-22s %-10s %-5s %s\n", "NODE", "ADDRESS", "STATE", "UP", "PARTITIONS");
  for (const auto& n : nodes) {
    std::printf("%-16s %-22s %-10s %-5s %d\n", n.value("id", "").c_str(),
                n.value("address", "").c_str(), n.value("state", "").c_str(),
                n.value("up", false) ? "yes" : "no", n.value("partitions", 0));
  }
}

int change(const admin_flags& flags, const char* method, const std::string& path,
           const std::string& body = {}) {
  auto reply = success(call(flags, method, path + epoch_query(flags), body));
  if (!reply) return 1;
  if (flags.json) {
    std::printf("%s\n", reply->dump().c_str());
  } else {
    std::printf("cluster map now at epoch %llu\n",
                static_cast<unsigned long long>(reply->value("epoch", 0ull)));
  }
  return 0;
}

}  // namespace

int cluster_status(const admin_flags& flags) {
  auto status = success(call(flags, "GET", "/admin/cluster"));
  if (!status) return 1;
  if (flags.json) {
    std::printf("%s\n", status->dump().c_str());
    return 0;
  }
  if (status->value("epoch", njson()).is_null()) {
    std::printf("no cluster formed yet\n");
  } else {
    std::printf("epoch %llu, %u partitions, replication %u%s\n",
                static_cast<unsigned long long>((*status)["epoch"].get<std::uint64_t>()),
                status->value("partitionCount", 0u), status->value("replicationFactor", 0u),
                status->value("metadataAvailable", false) ? ""
                                                          : " (metadata store unreachable: "
                                                            "this node's last applied map)");
  }
  print_nodes((*status)["nodes"]);
  const auto& handoffs = status->value("handoffs", njson::array());
  std::printf("handoffs pending: %zu\n", handoffs.size());
  for (const auto& h : handoffs) {
    std::printf("  partition %d: %s -> %s\n", h.value("partition", 0), h["from"].dump().c_str(),
                h["to"].dump().c_str());
  }
  return 0;
}

int node_list(const admin_flags& flags) {
  auto reply = success(call(flags, "GET", "/admin/nodes"));
  if (!reply) return 1;
  if (flags.json) {
    std::printf("%s\n", reply->dump().c_str());
  } else {
    print_nodes((*reply)["nodes"]);
  }
  return 0;
}

int node_add(const admin_flags& flags, const std::string& id, const std::string& address,
             const std::string& http_address) {
  njson body{{"id", id}, {"address", address}};
  if (!http_address.empty()) body["httpAddress"] = http_address;
  return change(flags, "POST", "/admin/nodes", body.dump());
}

int node_drain(const admin_flags& flags, const std::string& id) {
  return change(flags, "POST", "/admin/nodes/" + id + "/drain");
}

int node_remove(const admin_flags& flags, const std::string& id) {
  return change(flags, "DELETE", "/admin/nodes/" + id);
}

int node_approve(const admin_flags& flags, const std::string& id) {
  return change(flags, "POST", "/admin/nodes/" + id + "/approve");
}

int cluster_require_approval(const admin_flags& flags, bool required) {
  return change(flags, "PUT", "/admin/cluster", njson{{"requireApproval", required}}.dump());
}

}  // namespace annal::cli
