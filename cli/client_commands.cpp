#include "cli/client_commands.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <map>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

#include "cli/address.hpp"
#include "client/client.hpp"
#include "client/subscription.hpp"
#include "net/json_codec.hpp"
#include "net/query_json.hpp"
#include "net/read_all_token.hpp"

namespace annal::cli {
namespace {

int fail(const engine::error& e) {
  std::fprintf(stderr, "annal: %s: %s\n", engine::errc_name(e.code), e.message.c_str());
  return 1;
}

int usage(const std::string& message) {
  std::fprintf(stderr, "annal: %s\n", message.c_str());
  return 2;
}

int print(const std::string& json_text) {
  std::printf("%s\n", json_text.c_str());
  return 0;
}

engine::result<std::unique_ptr<client::client>> connect(const connection_flags& c) {
  const auto address = parse_host_port(c.server);
  if (!address || address->port == 0) {
    return engine::error(engine::errc::invalid_argument,
                         "invalid --server '" + c.server + "' (expected HOST:PORT)");
  }
  client::client_options options;
  options.host = address->host;
  options.port = address->port;
  options.client_name = "annal-cli";
  options.request_timeout = std::chrono::milliseconds(c.timeout_ms);
  return client::client::connect(options);
}

// Compact JSON text if `text` is JSON, else the text as given.
std::string stored_bytes(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? text : parsed.dump();
}

template <class T>
int run(const connection_flags& c, T&& body) {
  auto connected = connect(c);
  if (!connected) {
    return connected.err().code == engine::errc::invalid_argument ? usage(connected.err().message)
                                                                  : fail(connected.err());
  }
  return body(**connected);
}

}  // namespace

int run_append(const connection_flags& c, const append_flags& f) {
  auto expected = net::json::parse_expected_version(f.expected);
  if (!expected) return usage("invalid --expected '" + f.expected + "'");
  actors::append_request request;
  if (f.events) {
    if (!f.type.empty() || f.data || f.metadata || f.id) {
      return usage("--events excludes --type, --data, --metadata and --id");
    }
    std::string text = *f.events;
    if (text == "-") text.assign(std::istreambuf_iterator<char>(std::cin), {});
    auto events = nlohmann::json::parse(text, nullptr, false);
    if (events.is_discarded() || !events.is_array()) {
      return usage("--events must be a JSON array of events");
    }
    auto decoded = net::json::decode_append(f.stream, nlohmann::json{{"events", events}}.dump(),
                                            std::numeric_limits<std::size_t>::max());
    if (!decoded) return fail(decoded.err());
    request = std::move(decoded).value();
  } else {
    if (f.type.empty()) return usage("give --type (and --data), or --events");
    engine::event_input event;
    event.type = f.type;
    if (f.data) event.data = stored_bytes(*f.data);
    if (f.metadata) event.metadata = stored_bytes(*f.metadata);
    if (f.id) {
      auto id = net::json::parse_uuid(*f.id);
      if (!id) return usage("invalid --id '" + *f.id + "' (expected a UUID)");
      event.id = *id;
    }
    request.stream = f.stream;
    request.events.push_back(std::move(event));
  }
  request.expected = *expected;
  return run(c, [&](client::client& cl) {
    auto reply = cl.append(std::move(request));
    return reply ? print(net::json::encode_append_reply(*reply)) : fail(reply.err());
  });
}

int run_read(const connection_flags& c, const read_flags& f) {
  if (f.limit == 0) return usage("--limit must be at least 1");
  actors::read_request request;
  request.stream = f.stream;
  request.limit = f.limit;
  request.direction = f.backward ? engine::read_direction::backward : engine::read_direction::forward;
  if (f.from) {
    request.from = stream_version{*f.from};
  } else {
    request.from_end = f.backward;
  }
  return run(c, [&](client::client& cl) {
    auto page = cl.read(std::move(request));
    return page ? print(net::json::encode_read_page(*page, false)) : fail(page.err());
  });
}

int run_head(const connection_flags& c, const std::string& stream) {
  return run(c, [&](client::client& cl) {
    auto page = cl.read_last(stream);
    if (!page) return fail(page.err());
    if (page->events.empty()) {
      return fail(engine::error(engine::errc::stream_not_found, "stream '" + stream + "' is empty"));
    }
    return print(net::json::encode_event(page->events.front(), false));
  });
}

int run_delete(const connection_flags& c, const delete_flags& f) {
  auto expected = net::json::parse_expected_version(f.expected);
  if (!expected) return usage("invalid --expected '" + f.expected + "'");
  return run(c, [&](client::client& cl) {
    auto reply = cl.delete_stream(f.stream, *expected, f.tombstone);
    return reply ? print(net::json::encode_write_reply(*reply)) : fail(reply.err());
  });
}

int run_meta(const connection_flags& c, const meta_flags& f) {
  return run(c, [&](client::client& cl) {
    auto info = cl.get_stream_info(f.stream);
    if (!info) return fail(info.err());
    if (!f.max_count && !f.max_age && !f.truncate_before) {
      return print(net::json::encode_stream_info(*info));
    }
    engine::stream_metadata metadata = info->metadata;
    if (f.max_count) metadata.max_count = *f.max_count;
    if (f.max_age) metadata.max_age_seconds = *f.max_age;
    if (f.truncate_before) metadata.truncate_before = *f.truncate_before;
    auto written = cl.set_metadata(f.stream, metadata);
    if (!written) return fail(written.err());
    auto after = cl.get_stream_info(f.stream);
    return after ? print(net::json::encode_stream_info(*after)) : fail(after.err());
  });
}

int run_snapshot(const connection_flags& c, const snapshot_flags& f) {
  if (f.version.has_value() != f.data.has_value()) {
    return usage("storing a snapshot needs both --version and --data");
  }
  return run(c, [&](client::client& cl) {
    if (f.version) {
      auto reply = cl.put_snapshot(f.stream, stream_version{*f.version}, stored_bytes(*f.data));
      return reply ? print(net::json::encode_write_reply(*reply)) : fail(reply.err());
    }
    auto snapshot = cl.get_snapshot(f.stream);
    if (!snapshot) return fail(snapshot.err());
    if (!*snapshot) {
      return fail(engine::error(engine::errc::not_found,
                                "stream '" + f.stream + "' has no snapshot"));
    }
    return print(net::json::encode_snapshot(**snapshot, false));
  });
}

namespace {

// 2024-06-10T06:13:20.123456Z
std::string utc_time(timestamp_us us) {
  const std::time_t seconds = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(us % 1000000));
  return text;
}

}  // namespace

int run_read_all(const connection_flags& c, const read_all_flags& f) {
  if (f.limit == 0) return usage("--limit must be at least 1");
  actors::read_all_request request;
  request.limit = f.limit;
  if (f.from && !f.from->empty()) {
    auto positions = net::decode_read_all_token(*f.from);
    if (!positions) return usage(positions.err().message);
    request.from = std::move(positions).value();
  }
  return run(c, [&](client::client& cl) {
    auto page = cl.read_all(std::move(request));
    if (!page) return fail(page.err());
    const auto next = net::encode_read_all_token(page->next);
    if (f.json) return print(net::json::encode_all_page(*page, next, false));
    std::printf("%-27s %-9s %-8s %-32s %s\n", "TIMESTAMP", "PARTITION", "VERSION", "STREAM",
                "TYPE");
    for (const auto& e : page->events) {
      std::printf("%-27s %-9u %-8llu %-32.*s %.*s\n", utc_time(e.event.timestamp).c_str(),
                  e.partition.value(), static_cast<unsigned long long>(e.event.version.value()),
                  static_cast<int>(e.stream.size()), e.stream.data(),
                  static_cast<int>(e.event.type.size()), e.event.type.data());
    }
    std::printf("next: %s%s\n", next.c_str(), page->at_end ? " (end of the log)" : "");
    return 0;
  });
}

namespace {

// The subscription `annal tail` asks for; a usage message when malformed.
engine::result<net::wire_codec::subscribe_params> tail_params(const tail_flags& f) {
  net::wire_codec::subscribe_params p;
  if (f.stream) {
    p.target = {actors::subscription_target::kind::stream, *f.stream};
  } else if (f.category) {
    p.target = {actors::subscription_target::kind::category, *f.category};
  }
  if (f.filter) p.filter = *f.filter;
  using start_kind = actors::subscription_start::kind;
  if (f.from == "start") return p;
  if (f.from == "end") {
    p.from.what = start_kind::end;
    return p;
  }
  if (f.stream && !f.from.empty() && f.from.size() <= 19 &&
      f.from.find_first_not_of("0123456789") == std::string::npos) {
    p.from.what = start_kind::version;
    p.from.version = stream_version{std::stoull(f.from)};
    return p;
  }
  auto positions = net::decode_read_all_token(f.from);
  if (!positions) return positions.err();
  p.from.what = start_kind::position;
  p.from.positions = std::move(positions).value();
  return p;
}

bool reconnectable(engine::errc code) {
  return code == engine::errc::connection_lost || code == engine::errc::node_unavailable ||
         code == engine::errc::shutting_down || code == engine::errc::timeout;
}

}  // namespace

int run_tail(const connection_flags& c, const tail_flags& f) {
  auto params = tail_params(f);
  if (!params) return usage(params.err().message);
  if (f.count && *f.count == 0) return 0;
  std::uint64_t printed = 0;
  std::optional<std::vector<actors::all_position>> resume;  // after the last event printed
  auto last_ok = std::chrono::steady_clock::now();
  constexpr auto k_reconnect_for = std::chrono::seconds(60);
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) {
      if (std::chrono::steady_clock::now() - last_ok > k_reconnect_for) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100 * attempt, 1000)));
    }
    auto connected = connect(c);
    if (!connected) {
      if (connected.err().code == engine::errc::invalid_argument) {
        return usage(connected.err().message);
      }
      if (attempt > 0 && reconnectable(connected.err().code)) continue;
      return fail(connected.err());
    }
    auto request = *params;
    if (resume) {
      request.from.what = actors::subscription_start::kind::position;
      request.from.positions = *resume;
    }
    auto sub = client::subscription::open(**connected, std::move(request), f.window);
    if (!sub) {
      if (attempt > 0 && reconnectable(sub.err().code)) continue;
      return fail(sub.err());
    }
    if (!resume) resume = (*sub)->position();
    last_ok = std::chrono::steady_clock::now();
    while (true) {
      auto next = (*sub)->next(std::chrono::seconds(1));
      if (!next) {
        if (reconnectable(next.err().code)) {
          std::fprintf(stderr, "annal: %s: %s; reconnecting\n", engine::errc_name(next.err().code),
                       next.err().message.c_str());
          break;
        }
        return fail(next.err());
      }
      last_ok = std::chrono::steady_clock::now();
      if (!*next) continue;
      const auto& e = **next;
      resume = e.after;
      const auto token = net::encode_read_all_token(e.after);
      if (f.json) {
        actors::all_event view;
        view.stream = e.stream;
        view.partition = e.partition;
        view.index = e.index;
        view.event = engine::recorded_event{e.id, e.type, e.data, e.metadata, e.version,
                                            e.timestamp, e.position};
        auto line = net::json::encode_all_event(view, false);
        line.pop_back();  // the closing brace
        std::printf("%s,\"next\":%s}\n", line.c_str(), net::json::quote(token).c_str());
      } else {
        std::printf("%-27s %-9u %-8llu %-32s %s\n", utc_time(e.timestamp).c_str(),
                    e.partition.value(), static_cast<unsigned long long>(e.version.value()),
                    e.stream.c_str(), e.type.c_str());
      }
      std::fflush(stdout);
      if (f.count && ++printed >= *f.count) {
        if (!f.json) std::printf("next: %s\n", token.c_str());
        return 0;
      }
    }
  }
  return fail(engine::error(engine::errc::node_unavailable,
                            "the node could not be reached again within 60 s"));
}

namespace {

std::string cell_text(const engine::query::value& v) {
  if (std::holds_alternative<engine::query::null_value>(v)) return "null";
  if (const bool* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const double* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
  return std::get<std::string>(v);
}

void print_table(const engine::query::result_table& table) {
  std::vector<std::size_t> widths;
  for (const auto& c : table.columns) widths.push_back(c.size());
  std::vector<std::vector<std::string>> cells;
  for (const auto& row : table.rows) {
    auto& texts = cells.emplace_back();
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      texts.push_back(cell_text(row[i]));
      widths[i] = std::max(widths[i], texts.back().size());
    }
  }
  auto line = [&](const std::vector<std::string>& texts) {
    std::string out;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      if (i > 0) out += "  ";
      out += fmt::format("{:<{}}", texts[i], widths[i]);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::printf("%s\n", out.c_str());
  };
  line(table.columns);
  for (const auto& texts : cells) line(texts);
}

}  // namespace

int run_query(const connection_flags& c, const query_flags& f) {
  return run(c, [&](client::client& cl) {
    auto answer = cl.query(f.text, f.allow_partial, f.query_timeout_ms);
    if (!answer) return fail(answer.err());
    if (f.json) return print(net::json::encode_query_answer(*answer, false));
    if (const auto* table = std::get_if<engine::query::result_table>(&answer->body)) {
      print_table(*table);
    } else {
      std::printf("%-27s %-9s %-8s %-32s %s\n", "TIMESTAMP", "PARTITION", "VERSION", "STREAM",
                  "TYPE");
      for (const auto& e : std::get<std::vector<engine::query::listed_event>>(answer->body)) {
        std::printf("%-27s %-9u %-8llu %-32s %s\n", utc_time(e.timestamp).c_str(),
                    e.partition.value(), static_cast<unsigned long long>(e.version.value()),
                    e.stream.c_str(), e.type.c_str());
      }
    }
    std::printf("(%llu events scanned%s)\n",
                static_cast<unsigned long long>(answer->events_scanned),
                answer->partial ? "; partial: a limit stopped the scan" : "");
    return 0;
  });
}

int run_stats(const connection_flags& c, bool json) {
  return run(c, [&](client::client& cl) {
    auto stats = cl.stats();
    if (!stats) return fail(stats.err());
    if (json) return print(net::json::encode_stats(*stats));
    struct totals {
      std::uint64_t partitions = 0, streams = 0, events = 0, bytes = 0;
    };
    std::map<std::string, totals> nodes;
    totals all;
    std::printf("%-9s %-16s %10s %12s %14s\n", "PARTITION", "NODE", "STREAMS", "EVENTS", "END LSN");
    for (const auto& s : *stats) {
      std::printf("%-9u %-16s %10llu %12llu %14llu\n", s.partition.value(), s.node.c_str(),
                  static_cast<unsigned long long>(s.streams),
                  static_cast<unsigned long long>(s.events),
                  static_cast<unsigned long long>(s.end_lsn.value()));
      for (auto* t : {&nodes[s.node], &all}) {
        ++t->partitions;
        t->streams += s.streams;
        t->events += s.events;
        t->bytes += s.end_lsn.value();
      }
    }
    std::printf("\n%-16s %10s %10s %12s %14s\n", "NODE", "PARTITIONS", "STREAMS", "EVENTS",
                "BYTES");
    auto row = [](const std::string& name, const totals& t) {
      std::printf(
          "%-16s %10llu %10llu %12llu %14llu\n", name.c_str(),
          static_cast<unsigned long long>(t.partitions), static_cast<unsigned long long>(t.streams),
          static_cast<unsigned long long>(t.events), static_cast<unsigned long long>(t.bytes));
    };
    for (const auto& [node, t] : nodes) row(node, t);
    row("total", all);
    return 0;
  });
}

}  // namespace annal::cli
