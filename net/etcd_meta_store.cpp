#include "net/etcd_meta_store.hpp"

#include <curl/curl.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace annal::net {

using cluster::compare;
using cluster::key_value;
using cluster::op;
using cluster::range_result;
using cluster::txn_result;
using cluster::watch_event;
using engine::errc;
using engine::error;
using json = nlohmann::json;

namespace {

// gRPC status codes that etcd's gateway puts in "code".
constexpr int k_grpc_invalid_argument = 3;
constexpr int k_grpc_not_found = 5;
constexpr int k_grpc_failed_precondition = 9;
constexpr int k_grpc_out_of_range = 11;

// How often a watch thread checks whether it was cancelled.
constexpr long k_watch_poll_ms = 100;
// TCP keep-alive on watch streams, so a silently dead peer is noticed.
constexpr long k_watch_keepalive_idle_s = 5;
constexpr long k_watch_keepalive_interval_s = 2;

constexpr std::string_view k_b64_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string b64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = (std::uint32_t(std::uint8_t(bytes[i])) << 16) |
                            (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) | std::uint8_t(bytes[i + 2]);
    out += k_b64_alphabet[(n >> 18) & 63];
    out += k_b64_alphabet[(n >> 12) & 63];
    out += k_b64_alphabet[(n >> 6) & 63];
    out += k_b64_alphabet[n & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t n = std::uint32_t(std::uint8_t(bytes[i])) << 16;
    if (rest == 2) n |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
    out += k_b64_alphabet[(n >> 18) & 63];
    out += k_b64_alphabet[(n >> 12) & 63];
    out += rest == 2 ? k_b64_alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> b64_decode(std::string_view text) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char ch : text) {
    if (ch == '=') break;
    const auto pos = k_b64_alphabet.find(ch);
    if (pos == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | std::uint32_t(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  return out;
}

// etcd encodes int64 as JSON strings and leaves out zero values.
std::int64_t get_int(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return 0;
  if (it->is_string()) {
    try {
      return std::stoll(it->get<std::string>());
    } catch (const std::exception&) {
      return 0;
    }
  }
  if (it->is_number()) return it->get<std::int64_t>();
  return 0;
}

std::string get_bytes(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_string()) return {};
  return b64_decode(it->get<std::string>()).value_or(std::string{});
}

std::int64_t header_revision(const json& j) {
  auto it = j.find("header");
  return it == j.end() ? 0 : get_int(*it, "revision");
}

key_value parse_kv(const json& j) {
  key_value kv;
  kv.key = get_bytes(j, "key");
  kv.value = get_bytes(j, "value");
  kv.create_revision = get_int(j, "create_revision");
  kv.mod_revision = get_int(j, "mod_revision");
  kv.version = get_int(j, "version");
  kv.lease = get_int(j, "lease");
  return kv;
}

std::vector<key_value> parse_kvs(const json& j) {
  std::vector<key_value> out;
  if (auto it = j.find("kvs"); it != j.end() && it->is_array()) {
    for (const auto& kv : *it) out.push_back(parse_kv(kv));
  }
  return out;
}

// {"key": ..., "range_end": ...} for one key or a prefix.
json key_range(const std::string& key, bool prefix) {
  json j;
  j["key"] = b64_encode(key);
  if (prefix) {
    const std::string end = cluster::prefix_end(key);
    // "\0" as range_end means "every key >= key".
    j["range_end"] = b64_encode(end.empty() ? std::string(1, '\0') : end);
  }
  return j;
}

json to_json(const compare& c) {
  json j;
  j["key"] = b64_encode(c.key);
  switch (c.relation) {
    case compare::op::equal: j["result"] = "EQUAL"; break;
    case compare::op::not_equal: j["result"] = "NOT_EQUAL"; break;
    case compare::op::greater: j["result"] = "GREATER"; break;
    case compare::op::less: j["result"] = "LESS"; break;
  }
  switch (c.what) {
    case compare::target::version:
      j["target"] = "VERSION";
      j["version"] = std::to_string(c.number);
      break;
    case compare::target::create_revision:
      j["target"] = "CREATE";
      j["create_revision"] = std::to_string(c.number);
      break;
    case compare::target::mod_revision:
      j["target"] = "MOD";
      j["mod_revision"] = std::to_string(c.number);
      break;
    case compare::target::value:
      j["target"] = "VALUE";
      j["value"] = b64_encode(c.value);
      break;
  }
  return j;
}

json to_json(const op& o) {
  json j;
  switch (o.what) {
    case op::kind::put: {
      json put;
      put["key"] = b64_encode(o.key);
      put["value"] = b64_encode(o.value);
      if (o.lease != 0) put["lease"] = std::to_string(o.lease);
      j["request_put"] = std::move(put);
      break;
    }
    case op::kind::del: j["request_delete_range"] = key_range(o.key, o.prefix); break;
    case op::kind::range: j["request_range"] = key_range(o.key, o.prefix); break;
  }
  return j;
}

std::optional<json> parse_json(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

engine::result<json> parse_reply(const std::string& text, const std::string& what) {
  auto j = parse_json(text);
  if (!j || !j->is_object()) {
    return error(errc::metadata_unavailable, "etcd: undecodable reply to " + what + ": " + text.substr(0, 200));
  }
  return std::move(*j);
}

std::once_flag g_curl_init;

size_t append_to_string(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// Whether a failed transfer never reached the server (safe to retry anywhere).
bool never_sent(CURLcode rc, CURL* easy) {
  if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY) {
    return true;
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    curl_off_t connected = 0;
    curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connected);
    return connected == 0;
  }
  return false;
}

}  // namespace

std::vector<std::string> etcd_options::parse_endpoints(std::string_view list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    auto comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    auto item = list.substr(start, comma - start);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.remove_prefix(1);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.remove_suffix(1);
    while (!item.empty() && item.back() == '/') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

etcd_meta_store::etcd_meta_store(etcd_options opts) : opts_(std::move(opts)) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

etcd_meta_store::~etcd_meta_store() {
  std::lock_guard lock(pool_mu_);
  for (void* h : pool_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* etcd_meta_store::acquire_handle() {
  {
    std::lock_guard lock(pool_mu_);
    if (!pool_.empty()) {
      void* h = pool_.back();
      pool_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void etcd_meta_store::release_handle(void* handle) {
  std::lock_guard lock(pool_mu_);
  pool_.push_back(handle);
}

engine::result<std::string> etcd_meta_store::post(const std::string& path, const std::string& body, bool idempotent) {
  if (opts_.endpoints.empty()) return error(errc::invalid_argument, "etcd: no endpoints configured");
  const std::size_t n = opts_.endpoints.size();
  const std::size_t first = preferred_.load() % n;
  std::string last_failure;
  for (std::size_t attempt = 0; attempt < n; ++attempt) {
    const std::size_t index = (first + attempt) % n;
    const std::string url = opts_.endpoints[index] + path;
    CURL* easy = static_cast<CURL*>(acquire_handle());
    if (easy == nullptr) return error(errc::metadata_unavailable, "etcd: curl_easy_init failed");
    std::string response;
    std::array<char, CURL_ERROR_SIZE> curl_error{};
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_reset(easy);
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts_.connect_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(opts_.request_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &append_to_string);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, curl_error.data());
    const CURLcode rc = curl_easy_perform(easy);
    long http_status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &http_status);
    const bool retry_anywhere = rc != CURLE_OK && never_sent(rc, easy);
    curl_slist_free_all(headers);
    release_handle(easy);

    if (rc != CURLE_OK) {
      last_failure = opts_.endpoints[index] + ": " + (curl_error[0] != '\0' ? curl_error.data() : curl_easy_strerror(rc));
      spdlog::debug("etcd: {} failed: {}", path, last_failure);
      if (retry_anywhere || idempotent) continue;
      return error(errc::metadata_unavailable,
                   "etcd: " + path + " failed after it was sent, outcome unknown: " + last_failure);
    }
    if (http_status == 200) {
      preferred_.store(index);
      return response;
    }
    // etcd's gateway reports failures as {"error": ..., "code": <gRPC code>}.
    auto j = parse_json(response);
    const int code = j && j->is_object() ? static_cast<int>(get_int(*j, "code")) : 0;
    const std::string message = j && j->is_object() && j->contains("error") && (*j)["error"].is_string()
                                    ? (*j)["error"].get<std::string>()
                                    : response.substr(0, 200);
    switch (code) {
      case k_grpc_not_found: return error(errc::not_found, "etcd: " + message);
      case k_grpc_invalid_argument:
      case k_grpc_failed_precondition:
      case k_grpc_out_of_range: return error(errc::invalid_argument, "etcd: " + message);
      default: break;
    }
    // Unavailable, no leader, request timed out...: this member cannot serve.
    last_failure = opts_.endpoints[index] + ": HTTP " + std::to_string(http_status) + ": " + message;
    if (!idempotent) {
      return error(errc::metadata_unavailable, "etcd: " + path + " failed, outcome unknown: " + last_failure);
    }
  }
  return error(errc::metadata_unavailable, "etcd unreachable (" + path + "): " + last_failure);
}

engine::result<range_result> etcd_meta_store::range(const std::string& key, bool prefix) {
  auto reply = post("/v3/kv/range", key_range(key, prefix).dump(), true);
  if (!reply) return reply.err();
  auto j = parse_reply(*reply, "range");
  if (!j) return j.err();
  return range_result{parse_kvs(*j), header_revision(*j)};
}

engine::result<txn_result> etcd_meta_store::txn(const std::vector<compare>& compares,
                                                const std::vector<op>& on_success,
                                                const std::vector<op>& on_failure) {
  json req;
  req["compare"] = json::array();
  for (const auto& c : compares) req["compare"].push_back(to_json(c));
  req["success"] = json::array();
  for (const auto& o : on_success) req["success"].push_back(to_json(o));
  req["failure"] = json::array();
  for (const auto& o : on_failure) req["failure"].push_back(to_json(o));
  const bool read_only = std::all_of(on_success.begin(), on_success.end(), [](const op& o) { return o.what == op::kind::range; }) &&
                         std::all_of(on_failure.begin(), on_failure.end(), [](const op& o) { return o.what == op::kind::range; });
  auto reply = post("/v3/kv/txn", req.dump(), read_only);
  if (!reply) return reply.err();
  auto j = parse_reply(*reply, "txn");
  if (!j) return j.err();
  txn_result out;
  out.succeeded = j->value("succeeded", false);
  out.revision = header_revision(*j);
  const auto& ops = out.succeeded ? on_success : on_failure;
  const json empty = json::array();
  const json& responses = j->contains("responses") ? (*j)["responses"] : empty;
  if (responses.size() != ops.size()) {
    return error(errc::metadata_unavailable, "etcd: txn reply has " + std::to_string(responses.size()) +
                                                 " responses for " + std::to_string(ops.size()) + " ops");
  }
  for (const auto& r : responses) {
    range_result rr;
    rr.revision = out.revision;
    if (auto it = r.find("response_range"); it != r.end()) rr.kvs = parse_kvs(*it);
    out.responses.push_back(std::move(rr));
  }
  return out;
}

engine::result<std::int64_t> etcd_meta_store::lease_grant(std::chrono::seconds ttl) {
  if (ttl.count() <= 0) return error(errc::invalid_argument, "etcd: lease TTL must be at least 1 s");
  json req;
  req["TTL"] = std::to_string(ttl.count());
  auto reply = post("/v3/lease/grant", req.dump(), false);
  if (!reply) return reply.err();
  auto j = parse_reply(*reply, "lease grant");
  if (!j) return j.err();
  const std::int64_t id = get_int(*j, "ID");
  if (id == 0) return error(errc::metadata_unavailable, "etcd: lease grant returned no id: " + reply->substr(0, 200));
  return id;
}

engine::status etcd_meta_store::lease_keep_alive(std::int64_t id) {
  json req;
  req["ID"] = std::to_string(id);
  // Keep-alive is idempotent: sending it twice only restarts the TTL twice.
  auto reply = post("/v3/lease/keepalive", req.dump(), true);
  if (!reply) return reply.err();
  // A streaming call: the gateway wraps the message in {"result": ...}. It
  // may end with a newline; only the first line matters.
  const std::string first_line = reply->substr(0, reply->find('\n'));
  auto j = parse_reply(first_line, "lease keep-alive");
  if (!j) return j.err();
  if (j->contains("error")) {
    return error(errc::metadata_unavailable, "etcd: lease keep-alive failed: " + first_line.substr(0, 200));
  }
  const json& result = j->contains("result") ? (*j)["result"] : *j;
  if (get_int(result, "TTL") <= 0) return error(errc::not_found, "etcd: lease " + std::to_string(id) + " not found");
  return {};
}

engine::status etcd_meta_store::lease_revoke(std::int64_t id) {
  json req;
  req["ID"] = std::to_string(id);
  auto reply = post("/v3/lease/revoke", req.dump(), false);
  if (!reply) return reply.err();
  return {};
}

engine::status etcd_meta_store::compact(std::int64_t revision) {
  json req;
  req["revision"] = std::to_string(revision);
  auto reply = post("/v3/kv/compaction", req.dump(), true);
  if (!reply) return reply.err();
  return {};
}

namespace {

// One watch: a thread that keeps a streaming POST /v3/watch open and
// reconnects it from the revision after the last one delivered.
class etcd_watch final : public cluster::watch_handle {
 public:
  etcd_watch(etcd_options opts, std::string prefix, std::int64_t from_revision, cluster::watch_callback on_events,
             cluster::watch_error_callback on_error)
      : state_(std::make_shared<state>()) {
    state_->opts = std::move(opts);
    state_->prefix = std::move(prefix);
    state_->next = from_revision;
    state_->on_events = std::move(on_events);
    state_->on_error = std::move(on_error);
    thread_ = std::thread([s = state_] {
      pthread_setname_np(pthread_self(), "annal-watch");
      run(*s);
    });
  }

  ~etcd_watch() override {
    {
      std::lock_guard lock(state_->mu);
      state_->cancelled = true;
    }
    state_->wake.notify_all();
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();  // cancelled from our own callback: the thread ends after it
    } else {
      thread_.join();
    }
  }

 private:
  struct state {
    etcd_options opts;
    std::string prefix;
    cluster::watch_callback on_events;
    cluster::watch_error_callback on_error;
    std::mutex mu;                  // guards nothing but the backoff wait
    std::condition_variable wake;   // notified on cancel
    std::atomic<bool> cancelled{false};
    // Only touched by the watch thread.
    std::int64_t next = 0;  // first revision not yet delivered (0: from now)
    bool ended = false;     // compacted: the watch is over
    bool established = false;
    std::string buffer;  // unparsed tail of the stream
    std::string failure;
  };

  // Handles one message of the stream. false: drop the connection.
  static bool on_message(state& s, const std::string& line) {
    auto j = parse_json(line);
    if (!j || !j->is_object()) {
      s.failure = "undecodable watch message: " + line.substr(0, 200);
      return false;
    }
    if (j->contains("error")) {
      s.failure = "watch error: " + line.substr(0, 200);
      return false;
    }
    const json& r = j->contains("result") ? (*j)["result"] : *j;
    if (r.value("created", false)) {
      s.established = true;
      if (s.next <= 0) s.next = header_revision(r) + 1;
    }
    if (r.value("canceled", false)) {
      const std::int64_t compact_revision = get_int(r, "compact_revision");
      if (compact_revision > 0) {
        cluster::watch_error e{cluster::watch_error::kind::compacted, compact_revision,
                               "etcd: revision " + std::to_string(s.next) + " is compacted; the oldest is " +
                                   std::to_string(compact_revision)};
        s.ended = true;
        if (!s.cancelled) {
          if (s.on_error) {
            s.on_error(e);
          } else {
            spdlog::warn("etcd: watch on '{}' ended: {}", s.prefix, e.message);
          }
        }
        return false;
      }
      s.failure = "watch canceled by etcd: " + r.value("cancel_reason", std::string{});
      return false;
    }
    auto events_it = r.find("events");
    if (events_it == r.end() || !events_it->is_array()) return true;
    // One callback per revision: a message may carry several.
    std::vector<watch_event> group;
    std::int64_t group_revision = 0;
    auto flush = [&] {
      if (group.empty()) return true;
      if (group_revision >= s.next) {  // never deliver a revision twice
        if (s.cancelled) return false;
        s.on_events(group, group_revision);
        s.next = group_revision + 1;
      }
      group.clear();
      return !s.cancelled.load();
    };
    for (const auto& ev : *events_it) {
      watch_event e;
      e.type = ev.value("type", std::string{}) == "DELETE" ? watch_event::kind::del : watch_event::kind::put;
      if (auto kv = ev.find("kv"); kv != ev.end()) e.kv = parse_kv(*kv);
      if (e.kv.mod_revision != group_revision && !flush()) return false;
      group_revision = e.kv.mod_revision;
      group.push_back(std::move(e));
    }
    return flush();
  }

  static size_t on_data(char* data, size_t size, size_t count, void* user) {
    auto& s = *static_cast<state*>(user);
    s.buffer.append(data, size * count);
    std::size_t newline;
    while ((newline = s.buffer.find('\n')) != std::string::npos) {
      std::string line = s.buffer.substr(0, newline);
      s.buffer.erase(0, newline + 1);
      if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
      if (!on_message(s, line)) return 0;  // aborts the transfer
    }
    return size * count;
  }

  // One connection: returns when it ends (dropped, failed, cancelled).
  static void stream_once(state& s, const std::string& endpoint) {
    json req;
    json create = key_range(s.prefix, true);
    if (s.next > 0) create["start_revision"] = std::to_string(s.next);
    req["create_request"] = std::move(create);
    const std::string body = req.dump();
    const std::string url = endpoint + "/v3/watch";

    CURL* easy = curl_easy_init();
    CURLM* multi = curl_multi_init();
    if (easy == nullptr || multi == nullptr) {
      s.failure = "curl init failed";
      if (easy) curl_easy_cleanup(easy);
      if (multi) curl_multi_cleanup(multi);
      return;
    }
    std::array<char, CURL_ERROR_SIZE> curl_error{};
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(s.opts.connect_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, k_watch_keepalive_idle_s);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, k_watch_keepalive_interval_s);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &on_data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, curl_error.data());
    curl_multi_add_handle(multi, easy);

    s.buffer.clear();
    s.established = false;
    int running = 1;
    while (running > 0 && !s.cancelled) {
      if (curl_multi_perform(multi, &running) != CURLM_OK) break;
      if (running > 0) curl_multi_poll(multi, nullptr, 0, k_watch_poll_ms, nullptr);
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE && s.failure.empty()) {
        s.failure = msg->data.result == CURLE_OK
                        ? std::string("stream closed by the server")
                        : (curl_error[0] != '\0' ? curl_error.data() : curl_easy_strerror(msg->data.result));
      }
    }
    curl_multi_remove_handle(multi, easy);
    curl_easy_cleanup(easy);
    curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
  }

  static void run(state& s) {
    const std::size_t n = s.opts.endpoints.size();
    if (n == 0) return;
    std::size_t index = 0;
    auto backoff = s.opts.watch_backoff_min;
    while (!s.cancelled && !s.ended) {
      s.failure.clear();
      stream_once(s, s.opts.endpoints[index]);
      if (s.cancelled || s.ended) return;
      if (s.established) backoff = s.opts.watch_backoff_min;
      spdlog::warn("etcd: watch on '{}' lost ({}: {}); reconnecting from revision {} in {} ms", s.prefix,
                   s.opts.endpoints[index], s.failure, s.next, backoff.count());
      index = (index + 1) % n;
      std::unique_lock lock(s.mu);
      s.wake.wait_for(lock, backoff, [&] { return s.cancelled.load(); });
      backoff = std::min(backoff * 2, s.opts.watch_backoff_max);
    }
  }

  std::shared_ptr<state> state_;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<cluster::watch_handle> etcd_meta_store::watch(const std::string& prefix, std::int64_t from_revision,
                                                              cluster::watch_callback on_events,
                                                              cluster::watch_error_callback on_error) {
  // Without a start revision a reconnect could not tell what it missed:
  // pin "now" to a revision before the watch starts.
  if (from_revision <= 0) {
    auto current = range(prefix, true);
    if (current) from_revision = current->revision + 1;
  }
  auto opts = opts_;
  if (!opts.endpoints.empty()) {
    std::rotate(opts.endpoints.begin(), opts.endpoints.begin() + (preferred_.load() % opts.endpoints.size()),
                opts.endpoints.end());
  }
  return std::make_unique<etcd_watch>(std::move(opts), prefix, from_revision, std::move(on_events),
                                       std::move(on_error));
}

}  // namespace annal::net
