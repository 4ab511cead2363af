#include "net/prometheus.hpp"

#include <fmt/format.h>

#include <atomic>
#include <iterator>

namespace annal::net {
namespace {

using counter = std::atomic<std::uint64_t>;

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void scalar(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            const counter& value) {
  header(out, name, type, help);
  fmt::format_to(std::back_inserter(out), "{} {}\n", name, value.load(std::memory_order_relaxed));
}

void histogram(std::string& out, std::string_view name, std::string_view help,
               const actors::histogram& h) {
  header(out, name, "histogram", help);
  const auto counts = h.cumulative_counts();  // bounds, then +Inf
  const auto& bounds = h.upper_bounds();
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"{}\"}} {}\n", name, bounds[i],
                   counts[i]);
  }
  // _count is taken from the same snapshot as the buckets, so +Inf == _count
  // even while other threads observe.
  fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n",
                 name, counts.back(), name, h.sum(), name, counts.back());
}

// Label values escape backslash, double quote and newline.
std::string label_value(std::string_view value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string render_prometheus(const actors::node_metrics& m, std::string_view node_id) {
  std::string out;
  out.reserve(8192);
  header(out, "annal_node_info", "gauge", "The node this process serves (always 1).");
  fmt::format_to(std::back_inserter(out), "annal_node_info{{node=\"{}\"}} 1\n",
                 label_value(node_id));
  scalar(out, "annal_append_requests_total", "counter", "Append requests received.",
         m.append_requests);
  scalar(out, "annal_appended_events_total", "counter", "Events appended.", m.appended_events);
  scalar(out, "annal_appended_bytes_total", "counter",
         "Bytes appended (type + data + metadata).", m.appended_bytes);
  scalar(out, "annal_read_requests_total", "counter", "Read requests received.", m.read_requests);
  scalar(out, "annal_query_requests_total", "counter",
         "Queries this node scanned its partitions for.", m.query_requests);
  scalar(out, "annal_query_events_scanned_total", "counter", "Events scanned by queries.",
         m.query_events_scanned);
  scalar(out, "annal_read_events_total", "counter", "Events returned by reads.", m.read_events);
  scalar(out, "annal_read_bytes_total", "counter", "Bytes returned by reads.", m.read_bytes);
  scalar(out, "annal_sync_rounds_total", "counter", "Group-commit rounds (write + fdatasync).",
         m.sync_rounds);
  scalar(out, "annal_checkpoints_total", "counter", "Partition checkpoints written.",
         m.checkpoints);
  scalar(out, "annal_checkpoint_failures_total", "counter",
         "Partition checkpoints that failed (retried unless a sync failed).",
         m.checkpoint_failures);
  scalar(out, "annal_connections_open", "gauge", "Open binary-protocol connections.",
         m.connections_open);
  scalar(out, "annal_connections_accepted_total", "counter",
         "Binary-protocol connections accepted.", m.connections_accepted);
  scalar(out, "annal_http_requests_total", "counter", "HTTP requests received.", m.http_requests);
  scalar(out, "annal_subscriptions_open", "gauge", "Subscriptions open (binary protocol and SSE).",
         m.subscriptions_open);
  scalar(out, "annal_subscription_events_total", "counter", "Events delivered to subscriptions.",
         m.subscription_events);
  scalar(out, "annal_subscription_held_events", "gauge",
         "Events subscriptions have read and their clients not yet taken.",
         m.subscription_held_events);
  scalar(out, "annal_subscription_held_events_max", "gauge",
         "The most events one subscription ever held at once (at most one page).",
         m.subscription_held_events_max);

  header(out, "annal_errors_total", "counter", "Errors reported to clients, by code.");
  for (std::size_t i = 1; i < m.errors.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "annal_errors_total{{code=\"{}\"}} {}\n",
                   engine::errc_name(static_cast<engine::errc>(i)),
                   m.errors[i].load(std::memory_order_relaxed));
  }

  histogram(out, "annal_sync_seconds", "Duration of one group-commit round.", m.sync_seconds);
  histogram(out, "annal_append_seconds", "Append latency in the node, request in to reply out.",
            m.append_seconds);
  histogram(out, "annal_checkpoint_seconds",
            "Time to write one partition checkpoint; its partition serves meanwhile.",
            m.checkpoint_seconds);
  histogram(out, "annal_checkpoint_pause_seconds",
            "Time one partition checkpoint holds its partition up (encoding it).",
            m.checkpoint_pause_seconds);
  return out;
}

}  // namespace annal::net
