#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "actors/cluster_admin.hpp"
#include "actors/cluster_router.hpp"
#include "actors/peer.hpp"
#include "cluster/cluster_map.hpp"
#include "cluster/meta_store.hpp"

namespace annal::actors {

struct membership_options {
  std::string node_id;
  std::string address;       // binary protocol, as other nodes reach it (host:port)
  std::string http_address;  // HTTP API, for operators and the console
  std::string data_dir;      // the last applied map is kept here
  std::uint32_t partition_count = 64;
  std::uint32_t replication_factor = 1;
  // The map is created once this many nodes have registered, all of them
  // active. Nodes registering after that join as described in
  // docs/cluster.md.
  std::uint32_t bootstrap_expect = 1;
  std::chrono::seconds lease_ttl{5};
};

// Keys in the metadata store (DESIGN.md "Partitioning and placement").
inline constexpr const char* k_map_key = "/annal/map";
inline constexpr const char* k_nodes_prefix = "/annal/nodes/";

// This node's part in the cluster: registers it under a lease it keeps alive,
// forms or joins the cluster map, watches the map, applies each committed
// version in order (routing table swapped into the router, peer links
// opened) and persists the last one applied, so that a restarted node keeps
// serving what it owns while the metadata store is unreachable.
//
// Runs on its own thread (every metadata call blocks); never on a CAF worker.
class membership final : public cluster_admin {
 public:
  // `local`: this node's own partitions; `make_peer`: a link to another node.
  using peer_factory = std::function<std::shared_ptr<peer>(const cluster::node_entry& node)>;

  membership(membership_options options, cluster::meta_store& store, request_handler& local,
             peer_factory make_peer);
  ~membership() override;  // stop()

  // The addresses this node registers (known once its servers listen).
  // Requires: before start().
  void set_addresses(std::string address, std::string http_address);

  // Called on the membership thread whenever a map is applied, for each
  // partition whose ownership by this node it changes (every partition on
  // the first map): gains before the router sees the map, losses after.
  // Requires: before start().
  using ownership_fn = std::function<void(partition_id, bool owned)>;
  void set_ownership_listener(ownership_fn listener) { on_ownership_ = std::move(listener); }
  // Called on the membership thread after each map is applied.
  using applied_fn = std::function<void(const cluster::cluster_map&)>;
  void set_applied_listener(applied_fn listener) { on_applied_ = std::move(listener); }
  // Applies `map`, a version just committed to the store by this node (a
  // handoff), without waiting for the watch to deliver it. Asynchronous.
  void adopt(cluster::cluster_map map);

  // Loads the persisted map (if any) and applies it, then starts the thread
  // that registers, forms/joins and watches. Never blocks on the store.
  void start();
  // Revokes the lease (best effort), stops the thread, closes peer links.
  void stop();

  // The handler to serve clients with: routes by the current map.
  cluster_router& router() { return *router_; }
  // The map applied last (nullopt before the first).
  std::optional<cluster::cluster_map> current_map() const;
  // Whether this node has registered and holds a live lease.
  bool registered() const;
  // Waits until a map that names this node is applied. False on timeout.
  bool wait_until_serving(std::chrono::milliseconds timeout) const;

  // cluster_admin: run on the membership thread.
  void status(reply_fn<cluster_status> reply) override;
  void add_node(cluster::node_entry node, std::optional<std::uint64_t> expected_epoch,
                reply_fn<cluster::cluster_map> reply) override;
  void drain_node(std::string id, std::optional<std::uint64_t> expected_epoch,
                  reply_fn<cluster::cluster_map> reply) override;
  void remove_node(std::string id, std::optional<std::uint64_t> expected_epoch,
                   reply_fn<cluster::cluster_map> reply) override;
  void approve_node(std::string id, std::optional<std::uint64_t> expected_epoch,
                    reply_fn<cluster::cluster_map> reply) override;
  void set_require_approval(bool required, std::optional<std::uint64_t> expected_epoch,
                            reply_fn<cluster::cluster_map> reply) override;

 private:
  void run();
  bool register_node();
  void keep_alive();
  void form_or_join();
  void start_watch(std::int64_t from_revision);
  void refresh_map();
  void apply(const cluster::cluster_map& map);
  void persist(const cluster::cluster_map& map);
  std::optional<cluster::cluster_map> load_persisted() const;
  // Queues `run` for the membership thread. `cancel` (optional) runs instead
  // when the membership stops first, at once if it already stopped: a task
  // that owes someone a reply answers in both cases.
  struct task {
    std::function<void()> run;
    std::function<void()> cancel;
  };
  void post(std::function<void()> run, std::function<void()> cancel = {});
  using map_edit = std::function<result<cluster::cluster_map>(const cluster::cluster_map&)>;
  void change_map(map_edit edit, std::optional<std::uint64_t> expected_epoch,
                  reply_fn<cluster::cluster_map> reply);
  cluster_status read_status();

  membership_options options_;
  cluster::meta_store& store_;
  request_handler& local_;
  peer_factory make_peer_;
  std::unique_ptr<cluster_router> router_;
  ownership_fn on_ownership_;
  applied_fn on_applied_;
  std::vector<bool> owned_;  // per partition, as last applied; membership thread only

  mutable std::mutex mu_;
  std::condition_variable wake_;
  mutable std::condition_variable applied_;             // a map was applied
  std::deque<task> tasks_;                              // guarded by mu_
  bool stopping_ = false;                               // guarded by mu_
  std::optional<cluster::cluster_map> map_;             // guarded by mu_
  std::map<std::string, std::shared_ptr<peer>> peers_;  // membership thread only
  std::map<std::string, std::string> addresses_;        // of peers_; membership thread only
  std::int64_t lease_ = 0;                              // guarded by mu_
  bool formed_ = false;                                 // membership thread only
  std::unique_ptr<cluster::watch_handle> watch_;        // membership thread only
  std::thread thread_;
};

}  // namespace annal::actors
