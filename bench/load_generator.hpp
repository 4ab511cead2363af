#pragma once

#include <cstdint>
#include <string>

#include "engine/errors.hpp"

namespace annal::bench {

struct load_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7071;
  enum class operation { append, read, query } op = operation::append;
  std::size_t connections = 16;
  std::size_t inflight = 1;       // requests in flight per connection
  std::size_t batch = 1;          // events per append, or per read page
  std::size_t event_bytes = 100;  // data bytes per event
  // Data: `event_bytes` of 'x', or a JSON object of about `event_bytes`
  // {"amount": A, "region": R, "customer": C, "pad": "..."} with 5 regions
  // and event types cycling over 4 names (OrderPlaced one in four).
  bool json_data = false;
  std::size_t streams = 1000;
  std::string query;  // op query: the query each request runs
  double duration_seconds = 10;
};

struct load_report {
  load_options options;
  std::uint64_t requests = 0;
  std::uint64_t events = 0;  // appended or read
  // From the start to the last request completed within the duration:
  // events / seconds is the rate of the counted requests.
  double seconds = 0;
  double events_per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double p999_ms = 0;
  double max_ms = 0;
  std::uint64_t errors = 0;
  std::string first_error;  // "code: message" of the first failed request
};

// Drives a node over the binary protocol: `connections` pipelined
// connections each keeping `inflight` requests outstanding for the
// duration, on one client thread. Appends go to streams picked round-robin
// with expected version `any` and ids chosen by the node. Reads first fill
// every stream with 4 pages of `batch` events, then read pages forward.
// Queries run `query` over and over; their "events" are the events scanned.
// Latency is per request, from send to reply. Fails only if no connection
// can be made (or the fill fails).
engine::result<load_report> run_load(const load_options& options);

// One line of text, or the JSON object of "Load generator shape" in DESIGN.md.
std::string format_text(const load_report& report);
std::string format_json(const load_report& report);

}  // namespace annal::bench
