#include "actors/membership.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cluster/map_codec.hpp"
#include "cluster/placement.hpp"

namespace annal::actors {
namespace {

using steady = std::chrono::steady_clock;

std::string map_file(const std::string& data_dir) { return data_dir + "/cluster-map.json"; }

// The value of /annal/nodes/<id>: {"id", "address", "httpAddress"}.
std::string registration_json(const cluster::node_entry& node) {
  return nlohmann::json{
      {"id", node.id}, {"address", node.address}, {"httpAddress", node.http_address}}
      .dump();
}

std::optional<cluster::node_entry> registration_from_json(const std::string& text) {
  const auto json = nlohmann::json::parse(text, nullptr, false);
  if (!json.is_object() || !json.contains("id") || !json["id"].is_string() ||
      !json.contains("address") || !json["address"].is_string()) {
    return std::nullopt;
  }
  cluster::node_entry node;
  node.id = json["id"].get<std::string>();
  node.address = json["address"].get<std::string>();
  if (json.contains("httpAddress") && json["httpAddress"].is_string()) {
    node.http_address = json["httpAddress"].get<std::string>();
  }
  return node;
}

// Pins every partition whose replica set `after` would change to where it
// is in `before`: no map change moves data by itself; a handoff moves the
// partition and drops the pin (docs/cluster.md). Pins that agree with the
// computed placement are dropped.
void pin_moved_partitions(const cluster::cluster_map& before, cluster::cluster_map& after) {
  const auto old_sets = cluster::placement(before);
  const auto new_sets = cluster::placement(after);
  for (std::uint32_t p = 0; p < before.partition_count; ++p) {
    if (!old_sets[p].empty() && old_sets[p] != new_sets[p]) {
      after.overrides[partition_id{p}] = old_sets[p];
    }
  }
  const auto wanted = cluster::targets(after);
  std::erase_if(after.overrides,
                [&](const auto& pin) { return wanted[pin.first.value()] == pin.second; });
}

}  // namespace

membership::membership(membership_options options, cluster::meta_store& store,
                       request_handler& local, peer_factory make_peer)
    : options_(std::move(options)), store_(store), local_(local), make_peer_(std::move(make_peer)) {
  auto empty = std::make_shared<routing_table>();
  empty->partition_count = options_.partition_count;
  empty->self_id = options_.node_id;
  router_ = std::make_unique<cluster_router>(std::move(empty), [this](std::function<void()> done) {
    post(
        [this, done] {
          refresh_map();
          done();
        },
        done);
  });
}

membership::~membership() { stop(); }

void membership::start() {
  if (auto persisted = load_persisted()) {
    spdlog::info("membership: serving the persisted cluster map at epoch {}", persisted->epoch);
    apply(*persisted);
  }
  thread_ = std::thread([this] { run(); });
}

void membership::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  // What was queued and never run still owes its callers an answer.
  std::deque<task> cancelled;
  {
    std::lock_guard lock(mu_);
    cancelled.swap(tasks_);
  }
  for (auto& t : cancelled) {
    if (t.cancel) t.cancel();
  }
  for (auto& [id, p] : peers_) p->close();
}

void membership::set_addresses(std::string address, std::string http_address) {
  options_.address = std::move(address);
  options_.http_address = std::move(http_address);
}

bool membership::wait_until_serving(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return applied_.wait_for(lock, timeout, [&] {
    return map_ &&
           std::any_of(map_->nodes.begin(), map_->nodes.end(),
                       [&](const cluster::node_entry& n) { return n.id == options_.node_id; });
  });
}

std::optional<cluster::cluster_map> membership::current_map() const {
  std::lock_guard lock(mu_);
  return map_;
}

bool membership::registered() const {
  std::lock_guard lock(mu_);
  return lease_ != 0;
}

void membership::post(std::function<void()> run, std::function<void()> cancel) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      tasks_.push_back({std::move(run), std::move(cancel)});
      wake_.notify_all();
      return;
    }
  }
  if (cancel) cancel();
}

void membership::run() {
  pthread_setname_np(pthread_self(), "annal-members");
  auto next_keep_alive = steady::now();
  auto next_attempt = steady::now();
  while (true) {
    std::deque<task> tasks;
    {
      std::unique_lock lock(mu_);
      const auto until = std::min(next_keep_alive, next_attempt);
      wake_.wait_until(lock, until, [&] { return stopping_ || !tasks_.empty(); });
      if (stopping_) break;
      tasks.swap(tasks_);
    }
    for (auto& t : tasks) t.run();

    const auto now = steady::now();
    if (now >= next_attempt) {
      if (!registered() || !formed_) {
        if (registered() || register_node()) form_or_join();
      }
      next_attempt = now + std::chrono::milliseconds(500);
    }
    if (registered() && now >= next_keep_alive) {
      keep_alive();
      next_keep_alive = now + options_.lease_ttl / 3;
    }
  }
  watch_.reset();
  std::int64_t lease = 0;
  {
    std::lock_guard lock(mu_);
    std::swap(lease, lease_);
  }
  if (lease != 0) (void)store_.lease_revoke(lease);  // best effort: peers see us leave now
}

bool membership::register_node() {
  auto lease = store_.lease_grant(options_.lease_ttl);
  if (!lease) {
    spdlog::warn("membership: cannot register node {}: {}", options_.node_id, lease.err().message);
    return false;
  }
  cluster::node_entry self;
  self.id = options_.node_id;
  self.address = options_.address;
  self.http_address = options_.http_address;
  auto put = store_.put(k_nodes_prefix + options_.node_id, registration_json(self), *lease);
  if (!put) {
    spdlog::warn("membership: cannot register node {}: {}", options_.node_id, put.err().message);
    return false;
  }
  std::lock_guard lock(mu_);
  lease_ = *lease;
  spdlog::info("membership: node {} registered (lease {:x})", options_.node_id, *lease);
  return true;
}

void membership::keep_alive() {
  std::int64_t lease;
  {
    std::lock_guard lock(mu_);
    lease = lease_;
  }
  auto kept = store_.lease_keep_alive(lease);
  if (kept.ok()) return;
  if (kept.err().code == engine::errc::not_found) {
    // The lease expired (we were cut off for over a TTL): register again.
    spdlog::warn("membership: lease of node {} expired; registering again", options_.node_id);
    std::lock_guard lock(mu_);
    lease_ = 0;
  } else {
    spdlog::warn("membership: keep-alive failed: {}", kept.err().message);
  }
}

void membership::form_or_join() {
  auto current = store_.range(k_map_key);
  if (!current) {
    spdlog::warn("membership: cannot read the cluster map: {}", current.err().message);
    return;
  }
  cluster::node_entry self;
  self.id = options_.node_id;
  self.address = options_.address;
  self.http_address = options_.http_address;
  self.state = cluster::node_state::active;

  if (current->kvs.empty()) {
    // Bootstrap: the first map, once the expected number of nodes registered.
    auto registered_nodes = store_.range(k_nodes_prefix, true);
    if (!registered_nodes) return;
    if (registered_nodes->kvs.size() < options_.bootstrap_expect) {
      spdlog::info("membership: {} of {} nodes registered; waiting to form the cluster",
                   registered_nodes->kvs.size(), options_.bootstrap_expect);
      return;
    }
    cluster::cluster_map map;
    map.epoch = 1;
    map.partition_count = options_.partition_count;
    map.replication_factor = options_.replication_factor;
    for (const auto& kv : registered_nodes->kvs) {
      auto node = registration_from_json(kv.value);
      if (!node) continue;
      node->state = cluster::node_state::active;
      map.nodes.push_back(std::move(*node));
    }
    map.layout = cluster::initial_layout(map);
    auto created = store_.txn({cluster::compare::missing(k_map_key)},
                              {cluster::op::put(k_map_key, cluster::to_json(map))}, {});
    if (!created || !created->succeeded) return;  // someone else formed it: next attempt joins
    spdlog::info("membership: formed the cluster at epoch 1 with {} nodes", map.nodes.size());
    formed_ = true;
    apply(map);
    start_watch(created->revision + 1);
    return;
  }

  const auto& kv = current->kvs.front();
  auto map = cluster::map_from_json(kv.value);
  if (!map) {
    spdlog::error("membership: the cluster map in the store is invalid: {}", map.err().message);
    return;
  }
  const auto it = std::find_if(map->nodes.begin(), map->nodes.end(),
                               [&](const cluster::node_entry& n) { return n.id == self.id; });
  std::optional<cluster::cluster_map> changed;
  if (it == map->nodes.end()) {
    // Joining a formed cluster: no data moves without a handoff, so the
    // partitions whose replica set the new node would change stay pinned
    // where they are (overrides) until a handoff moves them.
    self.state = cluster::initial_state(*map);
    auto joined = cluster::add_node(*map, self);
    if (!joined) {
      spdlog::error("membership: cannot join: {}", joined.err().message);
      return;
    }
    pin_moved_partitions(*map, *joined);
    changed = std::move(*joined);
  } else if (it->address != self.address || it->http_address != self.http_address) {
    // Restarted with new addresses: the same placement, reachable anew.
    changed = *map;
    auto& entry = *std::find_if(changed->nodes.begin(), changed->nodes.end(),
                                [&](const cluster::node_entry& n) { return n.id == self.id; });
    entry.address = self.address;
    entry.http_address = self.http_address;
    changed->epoch = map->epoch + 1;
  }
  std::int64_t revision = current->revision;
  if (changed) {
    auto cas = store_.txn({cluster::compare::mod_revision_is(k_map_key, cluster::compare::op::equal,
                                                             kv.mod_revision)},
                          {cluster::op::put(k_map_key, cluster::to_json(*changed))}, {});
    if (!cas || !cas->succeeded) return;  // the map changed meanwhile: next attempt
    spdlog::info("membership: node {} {} at epoch {}", self.id,
                 it == map->nodes.end() ? "joined" : "updated its addresses", changed->epoch);
    map = std::move(*changed);
    revision = cas->revision;
  }
  formed_ = true;
  apply(*map);
  start_watch(revision + 1);
}

void membership::start_watch(std::int64_t from_revision) {
  watch_ = store_.watch(
      k_map_key, from_revision,
      [this](const std::vector<cluster::watch_event>& events, std::int64_t) {
        for (const auto& e : events) {
          if (e.type != cluster::watch_event::kind::put) continue;
          auto map = cluster::map_from_json(e.kv.value);
          if (!map) {
            spdlog::error("membership: ignoring an invalid map: {}", map.err().message);
            continue;
          }
          post([this, map = std::move(*map)] { apply(map); });
        }
      },
      [this](const cluster::watch_error& error) {
        // History compacted: re-read the map and watch again from there.
        spdlog::warn("membership: map watch ended: {}; re-reading", error.message);
        post([this] {
          watch_.reset();
          formed_ = false;
        });
      });
}

void membership::refresh_map() {
  auto current = store_.range(k_map_key);
  if (!current || current->kvs.empty()) return;
  auto map = cluster::map_from_json(current->kvs.front().value);
  if (map) apply(*map);
}

void membership::apply(const cluster::cluster_map& map) {
  {
    std::lock_guard lock(mu_);
    if (map_ && map.epoch <= map_->epoch) return;  // committed versions apply in order, once
  }
  const auto replicas = cluster::placement(map);
  auto table = std::make_shared<routing_table>();
  table->epoch = map.epoch;
  table->partition_count = map.partition_count;
  table->self_id = options_.node_id;
  std::shared_ptr<request_handler> local(&local_, [](request_handler*) {});

  std::map<std::string, std::shared_ptr<peer>> peers;
  for (const auto& node : map.nodes) {
    if (node.id == options_.node_id) continue;
    auto existing = peers_.find(node.id);
    if (existing != peers_.end() && existing->second && node.address == addresses_[node.id]) {
      peers[node.id] = existing->second;
    } else {
      if (existing != peers_.end() && existing->second) existing->second->close();
      peers[node.id] = make_peer_(node);
      addresses_[node.id] = node.address;
    }
    peers[node.id]->set_epoch(map.epoch);
  }
  for (auto& [id, p] : peers_) {
    if (!peers.count(id)) p->close();
  }
  peers_ = std::move(peers);

  for (std::uint32_t p = 0; p < map.partition_count; ++p) {
    const auto& set = replicas[p];
    if (set.empty()) {
      table->owners.push_back(nullptr);
      table->owner_ids.emplace_back();
    } else if (set.front() == options_.node_id) {
      table->owners.push_back(local);
      table->owner_ids.push_back(set.front());
    } else {
      auto it = peers_.find(set.front());
      table->owners.push_back(it == peers_.end() ? nullptr : it->second);
      table->owner_ids.push_back(set.front());
    }
  }
  table->multi_node = map.nodes.size() > 1;
  std::vector<bool> owned(map.partition_count);
  for (std::uint32_t p = 0; p < map.partition_count; ++p) {
    owned[p] = !replicas[p].empty() && replicas[p].front() == options_.node_id;
  }
  const bool first = owned_.size() != owned.size();
  // Persisted before it is served: a node never serves by a map that is not
  // on its disk yet (and readers of the file see at least this epoch once the
  // node routes by it).
  persist(map);
  auto announce = [&](bool gains) {
    if (!on_ownership_) return;
    for (std::uint32_t p = 0; p < owned.size(); ++p) {
      if (owned[p] == gains && (first || owned_[p] != owned[p])) {
        on_ownership_(partition_id{p}, gains);
      }
    }
  };
  announce(true);
  router_->set(std::move(table));
  announce(false);
  owned_ = std::move(owned);
  {
    std::lock_guard lock(mu_);
    map_ = map;
  }
  applied_.notify_all();
  spdlog::info("membership: applied the cluster map at epoch {} ({} nodes)", map.epoch,
               map.nodes.size());
  if (on_applied_) on_applied_(map);
}

void membership::adopt(cluster::cluster_map map) {
  post([this, map = std::move(map)] { apply(map); });
}

void membership::persist(const cluster::cluster_map& map) {
  const auto path = map_file(options_.data_dir);
  const auto tmp = path + ".tmp";
  const auto text = cluster::to_json(map);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fdatasync(fd) == 0;
  if (fd >= 0) ::close(fd);
  ok = ok && std::rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) spdlog::warn("membership: cannot persist the cluster map to {}", path);
}

std::optional<cluster::cluster_map> membership::load_persisted() const {
  std::ifstream in(map_file(options_.data_dir));
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  auto map = cluster::map_from_json(text.str());
  if (!map) {
    spdlog::warn("membership: ignoring the persisted cluster map: {}", map.err().message);
    return std::nullopt;
  }
  return std::move(*map);
}

void membership::change_map(map_edit edit, std::optional<std::uint64_t> expected_epoch,
                            reply_fn<cluster::cluster_map> reply) {
  auto shared_reply = std::make_shared<reply_fn<cluster::cluster_map>>(std::move(reply));
  const auto stopping = [shared_reply] {
    (*shared_reply)(error{errc::shutting_down, "the node is stopping"});
  };
  post(
      [this, edit = std::move(edit), expected_epoch, shared_reply] {
        auto& reply = *shared_reply;
        auto current = store_.range(k_map_key);
        if (!current) return reply(std::move(current).err());
        if (current->kvs.empty()) {
          return reply(error{errc::not_found, "no cluster map yet: the cluster is not formed"});
        }
        const auto& kv = current->kvs.front();
        auto map = cluster::map_from_json(kv.value);
        if (!map) return reply(std::move(map).err());
        if (expected_epoch && *expected_epoch != map->epoch) {
          return reply(error{errc::conflict, fmt::format("the cluster map is at epoch {}, not {}",
                                                         map->epoch, *expected_epoch)});
        }
        auto edited = edit(*map);
        if (!edited) return reply(std::move(edited).err());
        pin_moved_partitions(*map, *edited);
        auto cas = store_.txn({cluster::compare::mod_revision_is(
                                  k_map_key, cluster::compare::op::equal, kv.mod_revision)},
                              {cluster::op::put(k_map_key, cluster::to_json(*edited))}, {});
        if (!cas) return reply(std::move(cas).err());
        if (!cas->succeeded) {
          return reply(
              error{errc::conflict, fmt::format("the cluster map changed after epoch {} was "
                                                "read; read it again and retry",
                                                map->epoch)});
        }
        spdlog::info("membership: map changed to epoch {}", edited->epoch);
        apply(*edited);
        reply(std::move(*edited));
      },
      stopping);
}

void membership::add_node(cluster::node_entry node, std::optional<std::uint64_t> expected_epoch,
                          reply_fn<cluster::cluster_map> reply) {
  change_map(
      [node = std::move(node)](const cluster::cluster_map& map) mutable {
        node.state = cluster::initial_state(map);
        return cluster::add_node(map, node);
      },
      expected_epoch, std::move(reply));
}

void membership::drain_node(std::string id, std::optional<std::uint64_t> expected_epoch,
                            reply_fn<cluster::cluster_map> reply) {
  change_map(
      [id = std::move(id)](const cluster::cluster_map& map) {
        return cluster::set_node_state(map, id, cluster::node_state::draining);
      },
      expected_epoch, std::move(reply));
}

void membership::remove_node(std::string id, std::optional<std::uint64_t> expected_epoch,
                             reply_fn<cluster::cluster_map> reply) {
  change_map([id = std::move(id)](
                 const cluster::cluster_map& map) { return cluster::remove_node(map, id); },
             expected_epoch, std::move(reply));
}

void membership::approve_node(std::string id, std::optional<std::uint64_t> expected_epoch,
                              reply_fn<cluster::cluster_map> reply) {
  change_map(
      [id = std::move(id)](const cluster::cluster_map& map) -> result<cluster::cluster_map> {
        const auto* node = map.find(id);
        if (node && node->state != cluster::node_state::joining) {
          return error{errc::invalid_argument,
                       fmt::format("node {} is {}, not joining", id,
                                   cluster::node_state_name(node->state))};
        }
        return cluster::set_node_state(map, id, cluster::node_state::active);
      },
      expected_epoch, std::move(reply));
}

void membership::set_require_approval(bool required, std::optional<std::uint64_t> expected_epoch,
                                      reply_fn<cluster::cluster_map> reply) {
  change_map(
      [required](const cluster::cluster_map& map) -> result<cluster::cluster_map> {
        auto changed = map;
        changed.require_approval = required;
        changed.epoch = map.epoch + 1;
        return changed;
      },
      expected_epoch, std::move(reply));
}

void membership::status(reply_fn<cluster_status> reply) {
  auto shared_reply = std::make_shared<reply_fn<cluster_status>>(std::move(reply));
  post([this, shared_reply] { (*shared_reply)(read_status()); },
       [shared_reply] {
         (*shared_reply)(error{errc::shutting_down, "the node is stopping"});
       });
}

cluster_status membership::read_status() {
  cluster_status status;
  status.self = options_.node_id;
  // The store's map when it can be read, else the one applied here.
  auto current = store_.range(k_map_key);
  status.metadata_available = static_cast<bool>(current);
  if (current && !current->kvs.empty()) {
    if (auto map = cluster::map_from_json(current->kvs.front().value)) status.map = std::move(*map);
  }
  if (!status.map) status.map = current_map();
  std::map<std::string, cluster::node_entry> registered;
  if (auto nodes = store_.range(k_nodes_prefix, true)) {
    for (const auto& kv : nodes->kvs) {
      if (auto node = registration_from_json(kv.value)) registered[node->id] = *node;
    }
  }
  if (status.map) {
    status.placement = cluster::placement(*status.map);
    const auto natural = cluster::targets(*status.map);
    for (const auto& [p, pinned] : status.map->overrides) {
      if (natural[p.value()] != pinned)
        status.pending_moves.push_back({p, pinned, natural[p.value()]});
    }
    for (const auto& entry : status.map->nodes) {
      node_status node;
      node.entry = entry;
      node.in_map = true;
      node.up = registered.count(entry.id) > 0;
      std::uint32_t primaries = 0;
      for (const auto& set : status.placement) primaries += !set.empty() && set.front() == entry.id;
      node.partitions = primaries;
      status.nodes.push_back(std::move(node));
      registered.erase(entry.id);
    }
  }
  for (auto& [id, entry] : registered) {
    node_status node;
    node.entry = std::move(entry);
    node.up = true;
    status.nodes.push_back(std::move(node));
  }
  return status;
}

}  // namespace annal::actors
