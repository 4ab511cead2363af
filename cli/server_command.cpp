#include "cli/server_command.hpp"

#include <spdlog/spdlog.h>

#include <asio.hpp>
#include <cstdio>
#include <future>
#include <thread>
#include <vector>

#include "cli/address.hpp"
#include "net/binary_server.hpp"
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

  net::binary_server_options binary_options;
  binary_options.node_id = options.node.node_id;
  binary_options.partition_count = node->partition_count();
  binary_options.max_connections = options.max_connections;
  binary_options.idle_timeout = std::chrono::seconds(options.idle_timeout_seconds);
  net::binary_server binary(io, node->handler(), node->metrics(), binary_options);

  net::http_server_options http_options;
  http_options.node_id = options.node.node_id;
  net::http_server http(io, node->handler(), node->metrics(), http_options);

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

  std::promise<int> stop_signal;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const std::error_code& ec, int signal_number) {
    if (!ec) stop_signal.set_value(signal_number);
  });

  std::vector<std::thread> io_threads;
  for (std::size_t i = 0; i < std::max<std::size_t>(options.io_threads, 1); ++i) {
    io_threads.emplace_back([&io] { io.run(); });
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
  // actors never outlive asio. Then the servers, then asio.
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
