// Subscription benchmark (docs/benchmarks.md, "Subscriptions"), against a
// running node over the binary protocol:
//
//   subscription_bench catch-up HOST:PORT EVENTS [view|copy]
//     subscribes to $all from the start and reads EVENTS events as fast as
//     client::subscription hands them out (view: next_view(), the default;
//     copy: next(), which copies each event and its resume position); prints
//     events delivered per second.
//   subscription_bench live HOST:PORT SECONDS RATE
//     subscribes to $all from the end; a writer on its own connection appends
//     RATE single-event appends per second for SECONDS, each carrying its send
//     time; prints the append -> delivery latency percentiles (same process,
//     same steady clock) and, for comparison, the append -> acknowledgement
//     latency of the same appends (delivery follows the acknowledgement).
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench/latency_histogram.hpp"
#include "client/client.hpp"
#include "client/subscription.hpp"

namespace {

using namespace annal;
using steady = std::chrono::steady_clock;

std::unique_ptr<client::client> connect(const std::string& host, std::uint16_t port) {
  client::client_options options;
  options.host = host;
  options.port = port;
  options.client_name = "subscription-bench";
  auto c = client::client::connect(options);
  if (!c) {
    std::fprintf(stderr, "connect: %s\n", c.err().message.c_str());
    std::exit(1);
  }
  return std::move(c).value();
}

std::unique_ptr<client::subscription> subscribe(client::client& c, bool from_end,
                                                std::uint32_t window) {
  net::wire_codec::subscribe_params params;
  params.target.what = actors::subscription_target::kind::all;
  params.from.what = from_end ? actors::subscription_start::kind::end
                              : actors::subscription_start::kind::start;
  auto s = client::subscription::open(c, params, window);
  if (!s) {
    std::fprintf(stderr, "subscribe: %s\n", s.err().message.c_str());
    std::exit(1);
  }
  return std::move(s).value();
}

int catch_up(const std::string& host, std::uint16_t port, std::uint64_t events, bool copy) {
  auto c = connect(host, port);
  const auto began = steady::now();
  auto s = subscribe(*c, false, 65536);
  std::uint64_t received = 0;
  std::uint64_t bytes = 0;  // data bytes seen: the events are looked at
  while (received < events) {
    bool got = false;
    if (copy) {
      auto next = s->next(std::chrono::seconds(30));
      if (!next) {
        std::fprintf(stderr, "subscription ended: %s\n", next.err().message.c_str());
        return 1;
      }
      got = next->has_value();
      if (got) bytes += (*next)->data.size();
    } else {
      auto next = s->next_view(std::chrono::seconds(30));
      if (!next) {
        std::fprintf(stderr, "subscription ended: %s\n", next.err().message.c_str());
        return 1;
      }
      got = *next != nullptr;
      if (got) bytes += (*next)->event.data.size();
    }
    if (!got) {
      std::fprintf(stderr, "no event for 30 s after %llu\n",
                   static_cast<unsigned long long>(received));
      return 1;
    }
    ++received;
  }
  const double seconds = std::chrono::duration<double>(steady::now() - began).count();
  std::printf(
      "{\"op\":\"catch-up\",\"api\":\"%s\",\"events\":%llu,\"dataBytes\":%llu,"
      "\"seconds\":%.3f,\"eventsPerSec\":%.0f}\n",
      copy ? "next" : "next_view", static_cast<unsigned long long>(received),
      static_cast<unsigned long long>(bytes), seconds, static_cast<double>(received) / seconds);
  return 0;
}

int live(const std::string& host, std::uint16_t port, double seconds, double rate) {
  auto reader = connect(host, port);
  auto writer = connect(host, port);
  auto s = subscribe(*reader, true, 4096);
  const auto total = static_cast<std::uint64_t>(seconds * rate);
  std::atomic<bool> writer_failed{false};
  bench::latency_histogram acks;  // the writer thread's, read after join()
  // Per append (index i): when its acknowledgement and its event arrived
  // (steady ns; the writer fills one, the reader the other, read after join).
  std::vector<std::int64_t> acked_at(total, 0);
  std::vector<std::int64_t> delivered_at(total, 0);
  std::thread write([&] {
    const auto period = std::chrono::duration_cast<steady::duration>(
        std::chrono::duration<double>(1.0 / rate));
    auto due = steady::now();
    for (std::uint64_t i = 0; i < total; ++i) {
      std::this_thread::sleep_until(due);
      due += period;
      actors::append_request request;
      request.stream = fmt::format("live-{}", i % 64);
      engine::event_input e;
      e.type = "Tick";
      e.data = fmt::format(R"({{"sentNs":{},"i":{}}})", steady::now().time_since_epoch().count(),
                           i);
      request.events.push_back(std::move(e));
      const auto sent = steady::now();
      if (!writer->append(std::move(request))) writer_failed = true;
      const auto acked = steady::now();
      acks.record(static_cast<std::uint64_t>((acked - sent).count()));
      acked_at[i] = acked.time_since_epoch().count();
    }
  });
  bench::latency_histogram latencies;
  std::uint64_t received = 0;
  while (received < total) {
    auto next = s->next_view(std::chrono::seconds(30));
    if (!next || !*next) break;
    const auto now = steady::now().time_since_epoch().count();
    const std::string data((*next)->event.data);
    const auto at = data.find(':');
    const long long sent = std::atoll(data.c_str() + at + 1);
    const auto i = std::strtoull(data.c_str() + data.rfind(':') + 1, nullptr, 10);
    latencies.record(static_cast<std::uint64_t>(now - sent));
    if (i < total) delivered_at[i] = now;
    ++received;
  }
  write.join();
  // Delivery after the writer saw the acknowledgement (0 when the event came
  // first): what the subscription adds to the append's own durability.
  bench::latency_histogram after_ack;
  for (std::uint64_t i = 0; i < total; ++i) {
    if (acked_at[i] == 0 || delivered_at[i] == 0) continue;
    after_ack.record(static_cast<std::uint64_t>(std::max<std::int64_t>(
        delivered_at[i] - acked_at[i], 0)));
  }
  std::printf(
      "{\"op\":\"live\",\"events\":%llu,\"rate\":%.0f,\"p50Ms\":%.3f,\"p99Ms\":%.3f,"
      "\"p999Ms\":%.3f,\"maxMs\":%.3f,\"ackP50Ms\":%.3f,\"ackP99Ms\":%.3f,\"ackP999Ms\":%.3f,"
      "\"afterAckP50Ms\":%.3f,\"afterAckP99Ms\":%.3f,\"writerErrors\":%s}\n",
      static_cast<unsigned long long>(received), rate,
      static_cast<double>(latencies.percentile(0.50)) / 1e6,
      static_cast<double>(latencies.percentile(0.99)) / 1e6,
      static_cast<double>(latencies.percentile(0.999)) / 1e6,
      static_cast<double>(latencies.max()) / 1e6, static_cast<double>(acks.percentile(0.50)) / 1e6,
      static_cast<double>(acks.percentile(0.99)) / 1e6,
      static_cast<double>(acks.percentile(0.999)) / 1e6,
      static_cast<double>(after_ack.percentile(0.50)) / 1e6,
      static_cast<double>(after_ack.percentile(0.99)) / 1e6, writer_failed ? "true" : "false");
  return received == total && !writer_failed ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: subscription_bench catch-up HOST:PORT EVENTS [view|copy]\n"
                 "       subscription_bench live HOST:PORT SECONDS RATE\n");
    return 2;
  }
  const std::string mode = argv[1];
  const std::string address = argv[2];
  const auto colon = address.rfind(':');
  const std::string host = address.substr(0, colon);
  const auto port = static_cast<std::uint16_t>(std::atoi(address.c_str() + colon + 1));
  if (mode == "catch-up") {
    const bool copy = argc >= 5 && std::string(argv[4]) == "copy";
    return catch_up(host, port, std::strtoull(argv[3], nullptr, 10), copy);
  }
  if (mode == "live" && argc >= 5) return live(host, port, std::atof(argv[3]), std::atof(argv[4]));
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
