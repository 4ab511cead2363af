#include "bench/load_generator.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "bench/latency_histogram.hpp"
#include "client/connection.hpp"

namespace annal::bench {
namespace {

using steady = std::chrono::steady_clock;

std::string stream_name(std::size_t i) { return fmt::format("bench-{}", i); }

// One request kind issued over and over on every connection until stopped.
// Runs entirely on the io thread: no locking.
class driver {
 public:
  using issue_fn = std::function<void(client::connection&, std::size_t sequence,
                                      std::function<void(bool ok, std::size_t events,
                                                         const engine::error*)>)>;

  driver(std::vector<std::shared_ptr<client::connection>>& connections, std::size_t inflight,
         issue_fn issue)
      : connections_(connections), inflight_(inflight), issue_(std::move(issue)) {}

  // Starts `inflight` requests per connection; stops issuing once `remaining`
  // requests were started (0: unlimited) or stop() was called.
  void start(std::uint64_t limit) {
    limit_ = limit;
    for (auto& c : connections_) {
      for (std::size_t i = 0; i < inflight_; ++i) issue_one(*c);
    }
  }
  void stop() { stopping_ = true; }
  bool idle() const { return outstanding_ == 0; }

  latency_histogram latencies;
  std::uint64_t requests = 0;
  std::uint64_t events = 0;
  std::uint64_t errors = 0;
  std::string first_error;
  bool counting = true;
  steady::time_point last_counted{};  // when the last counted request completed

 private:
  void issue_one(client::connection& c) {
    if (stopping_ || (limit_ != 0 && started_ >= limit_)) return;
    const std::size_t sequence = started_++;
    ++outstanding_;
    const auto sent = steady::now();
    issue_(c, sequence, [this, &c, sent](bool ok, std::size_t n, const engine::error* e) {
      --outstanding_;
      if (counting && !stopping_) {
        last_counted = steady::now();
        latencies.record(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(last_counted - sent).count()));
        ++requests;
        if (ok) events += n;
      }
      if (!ok) {
        ++errors;
        if (first_error.empty() && e) {
          first_error = fmt::format("{}: {}", engine::errc_name(e->code), e->message);
        }
      }
      issue_one(c);
    });
  }

  std::vector<std::shared_ptr<client::connection>>& connections_;
  std::size_t inflight_;
  issue_fn issue_;
  std::uint64_t limit_ = 0;
  std::uint64_t started_ = 0;
  std::uint64_t outstanding_ = 0;
  bool stopping_ = false;
};

// Runs the io_context until `done()` or the deadline; false on deadline.
template <class Done>
bool run_until(asio::io_context& io, Done done, std::chrono::seconds deadline) {
  const auto until = steady::now() + deadline;
  while (!done()) {
    if (steady::now() > until) return false;
    if (io.run_one_for(std::chrono::milliseconds(50)) == 0 && io.stopped()) io.restart();
  }
  return true;
}

}  // namespace

engine::result<load_report> run_load(const load_options& options) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);

  // Connect every connection.
  std::vector<std::shared_ptr<client::connection>> connections;
  std::optional<engine::error> connect_error;
  std::size_t pending = options.connections;
  client::client_options client_options;
  client_options.host = options.host;
  client_options.port = options.port;
  client_options.client_name = "annal-bench";
  for (std::size_t i = 0; i < options.connections; ++i) {
    client::connection::connect(io, client_options,
                                [&](engine::result<std::shared_ptr<client::connection>> r) {
                                  --pending;
                                  if (r) {
                                    connections.push_back(std::move(r).value());
                                  } else if (!connect_error) {
                                    connect_error = r.err();
                                  }
                                });
  }
  if (!run_until(io, [&] { return pending == 0; }, std::chrono::seconds(30))) {
    return engine::error(engine::errc::timeout, "connecting took longer than 30 s");
  }
  if (connect_error) return *connect_error;

  const std::string payload(options.event_bytes, 'x');
  static const char* const k_types[] = {"OrderPlaced", "OrderShipped", "OrderPaid",
                                        "OrderClosed"};
  static const char* const k_regions[] = {"eu-west", "eu-north", "us-east", "us-west",
                                          "ap-south"};
  std::uint64_t made = 0;
  auto json_payload = [&](std::uint64_t n) {
    std::string data =
        fmt::format(R"({{"amount":{}.{:02},"region":"{}","customer":"c-{}")", n * 7919 % 1000,
                    n % 100, k_regions[n % 5], n % 10007);
    const std::size_t closing = 12;  // ,"pad":"" and }
    if (data.size() + closing < options.event_bytes) {
      data += R"(,"pad":")";
      data.append(options.event_bytes - data.size() - 3, 'x');
      data += '"';
    }
    data += '}';
    return data;
  };
  auto make_events = [&](std::size_t n) {
    std::vector<engine::event_input> events(n);
    for (auto& e : events) {
      const std::uint64_t i = made++;
      if (options.json_data) {
        e.type = k_types[i % 4];
        e.data = json_payload(i);
      } else {
        e.type = "BenchEvent";
        e.data = payload;
      }
    }
    return events;
  };
  auto close_all = [&] {
    for (auto& c : connections) c->close();
    work.reset();
    io.run_for(std::chrono::seconds(5));  // lets the closes complete
  };

  const std::size_t pages_per_stream = 4;
  if (options.op == load_options::operation::read) {
    // Fill: pages_per_stream appends of `batch` events to every stream.
    const std::uint64_t fills = options.streams * pages_per_stream;
    driver fill(connections, 8,
                [&](client::connection& c, std::size_t seq, auto done) {
                  actors::append_request request;
                  request.stream = stream_name(seq % options.streams);
                  request.events = make_events(options.batch);
                  c.append(std::move(request), [done](engine::result<actors::append_reply> r) {
                    done(r.ok(), r.ok() ? r->last_version.value() - r->first_version.value() + 1 : 0,
                         r.ok() ? nullptr : &r.err());
                  });
                });
    fill.start(fills);
    if (!run_until(io, [&] { return fill.idle(); }, std::chrono::seconds(600))) {
      close_all();
      return engine::error(engine::errc::timeout, "filling the streams took over 10 min");
    }
    if (fill.errors != 0) {
      close_all();
      return engine::error(engine::errc::io_error, "fill failed: " + fill.first_error);
    }
  }

  driver::issue_fn issue;
  if (options.op == load_options::operation::append) {
    issue = [&](client::connection& c, std::size_t seq, auto done) {
      actors::append_request request;
      request.stream = stream_name(seq % options.streams);
      request.events = make_events(options.batch);
      c.append(std::move(request), [done](engine::result<actors::append_reply> r) {
        done(r.ok(), r.ok() ? r->last_version.value() - r->first_version.value() + 1 : 0,
             r.ok() ? nullptr : &r.err());
      });
    };
  } else if (options.op == load_options::operation::query) {
    issue = [&](client::connection& c, std::size_t, auto done) {
      c.query(options.query, false, 0, [done](engine::result<engine::query::query_answer> r) {
        done(r.ok(), r.ok() ? r->events_scanned : 0, r.ok() ? nullptr : &r.err());
      });
    };
  } else {
    issue = [&](client::connection& c, std::size_t seq, auto done) {
      actors::read_request request;
      request.stream = stream_name(seq % options.streams);
      request.from = stream_version{((seq / options.streams) % pages_per_stream) * options.batch};
      request.limit = options.batch;
      c.read(std::move(request), [done](engine::result<engine::read_page> r) {
        done(r.ok(), r.ok() ? r->events.size() : 0, r.ok() ? nullptr : &r.err());
      });
    };
  }

  driver load(connections, options.inflight, issue);
  const auto began = steady::now();
  const auto duration = std::chrono::duration_cast<steady::duration>(
      std::chrono::duration<double>(options.duration_seconds));
  asio::steady_timer timer(io, duration);
  bool expired = false;
  timer.async_wait([&](const std::error_code&) {
    expired = true;
    load.stop();
  });
  load.start(0);
  run_until(io, [&] { return expired; }, std::chrono::seconds(
      static_cast<long>(options.duration_seconds) + 60));
  // The rate is over the time the counted requests took: from the start to
  // the last completion before the duration ended. Requests still in flight
  // then are not counted, so the time they had run is not either (otherwise
  // one-second queries lose up to a whole query per run).
  const double seconds = std::chrono::duration<double>(
                             (load.requests > 0 ? load.last_counted : steady::now()) - began)
                             .count();
  // Let the requests in flight finish (not counted) before closing.
  run_until(io, [&] { return load.idle(); }, std::chrono::seconds(30));
  close_all();

  load_report report;
  report.options = options;
  report.requests = load.requests;
  report.events = load.events;
  report.seconds = seconds;
  report.events_per_second = seconds > 0 ? static_cast<double>(load.events) / seconds : 0;
  report.p50_ms = static_cast<double>(load.latencies.percentile(0.50)) / 1e6;
  report.p99_ms = static_cast<double>(load.latencies.percentile(0.99)) / 1e6;
  report.p999_ms = static_cast<double>(load.latencies.percentile(0.999)) / 1e6;
  report.max_ms = static_cast<double>(load.latencies.max()) / 1e6;
  report.errors = load.errors;
  report.first_error = load.first_error;
  return report;
}

namespace {
const char* op_name(load_options::operation op) {
  switch (op) {
    case load_options::operation::append: return "append";
    case load_options::operation::read: return "read";
    case load_options::operation::query: return "query";
  }
  return "?";
}
}  // namespace

std::string format_text(const load_report& r) {
  const auto& o = r.options;
  std::string text = fmt::format(
      "{} connections={} inflight={} batch={} size={} streams={}: {:.0f} events/s "
      "({} events in {:.2f} s), latency p50 {:.3f} ms, p99 {:.3f} ms, p99.9 {:.3f} ms, "
      "max {:.3f} ms, errors {}",
      op_name(o.op), o.connections, o.inflight, o.batch, o.event_bytes, o.streams,
      r.events_per_second, r.events, r.seconds, r.p50_ms, r.p99_ms, r.p999_ms, r.max_ms, r.errors);
  if (!r.first_error.empty()) text += fmt::format(" (first: {})", r.first_error);
  return text;
}

std::string format_json(const load_report& r) {
  const auto& o = r.options;
  nlohmann::json j = {{"op", op_name(o.op)},
                      {"connections", o.connections},
                      {"inflight", o.inflight},
                      {"batch", o.batch},
                      {"size", o.event_bytes},
                      {"streams", o.streams},
                      {"events", r.events},
                      {"requests", r.requests},
                      {"seconds", r.seconds},
                      {"eventsPerSec", r.events_per_second},
                      {"p50Ms", r.p50_ms},
                      {"p99Ms", r.p99_ms},
                      {"p999Ms", r.p999_ms},
                      {"maxMs", r.max_ms},
                      {"errors", r.errors}};
  if (!r.first_error.empty()) j["firstError"] = r.first_error;
  return j.dump();
}

}  // namespace annal::bench
