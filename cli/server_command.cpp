#include "cli/server_command.hpp"

#include <fmt/format.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <asio.hpp>
#include <cstdio>
#include <future>
#include <thread>
#include <vector>

#include "actors/handoff.hpp"
#include "actors/membership.hpp"
#include "cli/address.hpp"
#include "client/peer_link.hpp"
#include "cluster/memory_meta_store.hpp"
#include "net/binary_server.hpp"
#include "net/etcd_meta_store.hpp"
#include "net/http_server.hpp"

namespace annal::cli {
namespace {

// Runs `fn` on the io_context and waits for it: server objects are used
// from their io threads only.
template <class Fn>
void run_on(asio::io_context& io, Fn fn) {
  std::promise<void> done;
  asio::post(io, [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

// The metadata store: etcd when endpoints are given, else in-process.
std::unique_ptr<cluster::meta_store> open_meta_store(const server_options& options) {
  if (options.etcd_endpoints.empty()) return std::make_unique<cluster::memory_meta_store>();
  net::etcd_options etcd;
  etcd.endpoints = options.etcd_endpoints;
  return std::make_unique<net::etcd_meta_store>(std::move(etcd));
}

// A link to another node of the cluster, over the binary protocol.
actors::membership::peer_factory peer_links(asio::io_context& io, const std::string& self) {
  return [&io, self](const cluster::node_entry& node) -> std::shared_ptr<actors::peer> {
    client::peer_link_options options;
    options.node_id = node.id;
    options.connection.client_name = "annal-peer " + self;
    if (auto at = parse_host_port(node.address)) {
      options.connection.host = at->host;
      options.connection.port = at->port;
    }
    options.connection.connect_timeout = std::chrono::seconds(2);
    options.connection.request_timeout = std::chrono::seconds(10);
    return client::peer_link::make(io, std::move(options));
  };
}

}  // namespace

int run_server(const server_options& options) {
  const auto http_at = parse_host_port(options.http_address);
  const auto listen_at = parse_host_port(options.listen_address);
  if (!http_at) {
    std::fprintf(stderr, "annal: invalid --http address '%s' (expected HOST:PORT)\n",
                 options.http_address.c_str());
    return 2;
  }
  if (!listen_at) {
    std::fprintf(stderr, "annal: invalid --listen address '%s' (expected HOST:PORT)\n",
                 options.listen_address.c_str());
    return 2;
  }

  auto started = actors::node::start(options.node);
  if (!started) {
    std::fprintf(stderr, "annal: cannot open %s: %s: %s\n", options.node.data_dir.c_str(),
                 engine::errc_name(started.err().code), started.err().message.c_str());
    return 1;
  }
  std::unique_ptr<actors::node> node = std::move(started).value();

  asio::io_context io;
  auto work = asio::make_work_guard(io);

  // Membership: registers the node, forms or joins the cluster map and
  // routes every request to its partition's owner (docs/cluster.md).
  auto meta = open_meta_store(options);
  actors::membership_options cluster;
  cluster.node_id = options.node.node_id;
  cluster.data_dir = options.node.data_dir;
  cluster.partition_count = node->partition_count();
  cluster.bootstrap_expect = options.etcd_endpoints.empty() ? 1 : options.bootstrap_expect;
  actors::membership membership(cluster, *meta, node->handler(),
                                peer_links(io, options.node.node_id));
  actors::request_handler& handler = membership.router();
  // Partition handoff: moves partitions as the map's pins ask (docs/cluster.md).
  actors::handoff_options handoff_options;
  handoff_options.node_id = options.node.node_id;
  actors::handoff_manager handoff(handoff_options, *meta, *node, membership);
  membership.set_ownership_listener(
      [&node = *node](partition_id p, bool owned) { node.set_owned(p, owned); });
  membership.set_applied_listener(
      [&handoff](const cluster::cluster_map& map) { handoff.on_map_applied(map); });

  net::binary_server_options binary_options;
  binary_options.node_id = options.node.node_id;
  binary_options.partition_count = node->partition_count();
  binary_options.max_connections = options.max_connections;
  binary_options.idle_timeout = std::chrono::seconds(options.idle_timeout_seconds);
  binary_options.transfer = &handoff;
  net::binary_server binary(io, handler, node->metrics(), binary_options);

  net::http_server_options http_options;
  http_options.node_id = options.node.node_id;
  http_options.admin = &membership;
  http_options.max_connections = options.http_max_connections;
  net::http_server http(io, handler, node->metrics(), http_options);

  auto binary_endpoint = binary.listen(listen_at->host, listen_at->port);
  if (!binary_endpoint) {
    std::fprintf(stderr, "annal: cannot listen on %s: %s\n", options.listen_address.c_str(),
                 binary_endpoint.err().message.c_str());
    node->stop();
    return 1;
  }
  auto http_endpoint = http.listen(http_at->host, http_at->port);
  if (!http_endpoint) {
    std::fprintf(stderr, "annal: cannot listen on %s: %s\n", options.http_address.c_str(),
                 http_endpoint.err().message.c_str());
    binary.stop();
    node->stop();
    return 1;
  }

  const auto advertised = [](const std::string& configured, const asio::ip::tcp::endpoint& bound) {
    return configured.empty() ? fmt::format("{}:{}", bound.address().to_string(), bound.port())
                              : configured;
  };
  membership.set_addresses(advertised(options.advertise_address, *binary_endpoint),
                           advertised("", *http_endpoint));
  membership.start();
  handoff.start();
  if (options.etcd_endpoints.empty() &&
      !membership.wait_until_serving(std::chrono::seconds(30))) {
    std::fprintf(stderr, "annal: the one-node cluster map was not formed\n");
    binary.stop();
    node->stop();
    return 1;
  }

  std::promise<int> stop_signal;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const std::error_code& ec, int signal_number) {
    if (!ec) stop_signal.set_value(signal_number);
  });

  std::vector<std::thread> io_threads;
  for (std::size_t i = 0; i < std::max<std::size_t>(options.io_threads, 1); ++i) {
    io_threads.emplace_back([&io] {
      pthread_setname_np(pthread_self(), "annal-io");
      io.run();
    });
  }

  // The lines tests and scripts wait for; stdout is the CLI's own channel.
  std::printf("annal: node %s, data in %s, %u partitions, fsync=%s\n",
              options.node.node_id.c_str(), options.node.data_dir.c_str(),
              node->partition_count(),
              options.node.fsync == engine::fsync_mode::always     ? "always"
              : options.node.fsync == engine::fsync_mode::interval ? "interval"
                                                                    : "none");
  std::printf("annal: http http://%s:%u\n", http_endpoint->address().to_string().c_str(),
              http_endpoint->port());
  std::printf("annal: binary %s:%u\n", binary_endpoint->address().to_string().c_str(),
              binary_endpoint->port());
  std::printf("annal: ready\n");
  std::fflush(stdout);

  const int signal_number = stop_signal.get_future().get();
  spdlog::info("signal {}: stopping", signal_number);
  // The node first: requests in flight get their replies (new ones get
  // shutting_down) while the connections are still open to carry them, and
  // actors never outlive asio. Then the servers, then asio. Membership
  // first of all: it leaves the cluster and closes the links to peers.
  handoff.stop();
  membership.stop();
  node->stop();
  run_on(io, [&] {
    binary.stop();
    http.stop();
  });
  work.reset();
  io.stop();
  for (auto& t : io_threads) t.join();
  std::printf("annal: stopped\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace annal::cli
