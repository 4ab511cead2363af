// Throughput of the binary protocol: a binary_server over a store_handler
// (fsync=none) and async client connections in one process, each side on its
// own io thread. Single-event appends, C connections with F requests in
// flight each, for S seconds. Usage: binary_throughput [C] [F] [S] [null]
// `null`: a handler that acknowledges without storing (the network's ceiling).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>

#include <spdlog/spdlog.h>

#include "client/connection.hpp"
#include "tests/net/binary_fixture.hpp"
#include "tests/support/event_factory.hpp"

using namespace annal;

namespace {

// Acknowledges appends at once without storing them.
class null_handler final : public actors::request_handler {
 public:
  void append(actors::append_request r, actors::reply_fn<actors::append_reply> f) override {
    f(actors::append_reply{stream_version{0}, stream_version{r.events.size() - 1}, lsn{0},
                           partition_id{0}, false});
  }
  void read(actors::read_request, actors::reply_fn<engine::read_page> f) override { f(unsupported()); }
  void read_last(std::string, actors::reply_fn<engine::read_page> f) override { f(unsupported()); }
  void get_stream_info(std::string, actors::reply_fn<engine::stream_info> f) override {
    f(unsupported());
  }
  void set_metadata(std::string, engine::stream_metadata,
                    actors::reply_fn<actors::write_reply> f) override {
    f(unsupported());
  }
  void delete_stream(std::string, engine::expected_version, bool,
                     actors::reply_fn<actors::write_reply> f) override {
    f(unsupported());
  }
  void put_snapshot(std::string, stream_version, std::string,
                    actors::reply_fn<actors::write_reply> f) override {
    f(unsupported());
  }
  void get_snapshot(std::string,
                    actors::reply_fn<std::optional<engine::snapshot_read>> f) override {
    f(unsupported());
  }
  void read_all(actors::read_all_request, actors::reply_fn<actors::read_all_page> f) override {
    f(unsupported());
  }
  void stats(actors::reply_fn<std::vector<actors::partition_stats>> f) override {
    f(unsupported());
  }

 private:
  static engine::error unsupported() { return {engine::errc::invalid_argument, "null handler"}; }
};

struct driver {
  std::shared_ptr<client::connection> conn;
  std::string stream;
  std::uint64_t next = 1;
  std::uint64_t prefix = 0;
  std::atomic<std::uint64_t>* issued;
  std::atomic<std::uint64_t>* done;
  std::atomic<std::uint64_t>* errors;
  std::atomic<bool>* stop;

  void send() {
    actors::append_request request{stream, engine::expected_version::any(), {}};
    request.events.push_back(engine::event_input{annal::testing::make_event_id(next++, prefix),
                                                 "bench", std::string(100, 'x'), {}});
    issued->fetch_add(1, std::memory_order_relaxed);
    conn->append(std::move(request), [this](engine::result<actors::append_reply> r) {
      done->fetch_add(1, std::memory_order_relaxed);
      if (!r) errors->fetch_add(1, std::memory_order_relaxed);
      if (!stop->load(std::memory_order_relaxed)) send();
    });
  }
};

}  // namespace

int main(int argc, char** argv) {
  const int connections = argc > 1 ? std::atoi(argv[1]) : 16;
  const int inflight = argc > 2 ? std::atoi(argv[2]) : 16;
  const int seconds = argc > 3 ? std::atoi(argv[3]) : 5;
  spdlog::set_level(spdlog::level::warn);
  const bool null = argc > 4 && std::string(argv[4]) == "null";
  std::uint16_t port = 0;
  std::unique_ptr<annal::testing::binary_test_server> store_server;
  null_handler nothing;
  actors::node_metrics metrics;
  asio::io_context server_io;
  auto server_work = asio::make_work_guard(server_io);
  net::binary_server null_server(server_io, nothing, metrics, {});
  std::thread server_thread;
  if (null) {
    port = null_server.listen("127.0.0.1", 0)->port();
    server_thread = std::thread([&] { server_io.run(); });
  } else {
    store_server = std::make_unique<annal::testing::binary_test_server>();
    port = store_server->port();
  }
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });

  std::atomic<std::uint64_t> issued{0}, done{0}, errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<driver>> drivers;
  std::vector<std::shared_ptr<client::connection>> conns;
  for (int c = 0; c < connections; ++c) {
    std::promise<engine::result<std::shared_ptr<client::connection>>> p;
    client::client_options options;
    options.port = port;
    client::connection::connect(io, options, [&](auto r) { p.set_value(std::move(r)); });
    auto conn = p.get_future().get();
    if (!conn) {
      std::fprintf(stderr, "connect: %s\n", conn.err().message.c_str());
      return 1;
    }
    conns.push_back(*conn);
    for (int f = 0; f < inflight; ++f) {
      drivers.push_back(std::make_unique<driver>(
          driver{*conn, "bench-" + std::to_string(c * inflight + f), 1,
                 static_cast<std::uint64_t>(c * inflight + f), &issued, &done, &errors, &stop}));
    }
  }
  const auto start = std::chrono::steady_clock::now();
  for (auto& d : drivers) d->send();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const auto count = done.load();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stop = true;
  annal::testing::eventually([&] { return issued.load() == done.load(); });
  for (auto& c : conns) c->close();
  work.reset();
  runner.join();
  null_server.stop();
  server_work.reset();
  if (server_thread.joinable()) server_thread.join();
  std::printf(
      "{\"op\":\"append\",\"connections\":%d,\"inflight\":%d,\"size\":100,\"requests\":%llu,"
      "\"seconds\":%.2f,\"requestsPerSec\":%.0f,\"errors\":%llu}\n",
      connections, inflight, static_cast<unsigned long long>(count), elapsed, count / elapsed,
      static_cast<unsigned long long>(errors.load()));
  return 0;
}
