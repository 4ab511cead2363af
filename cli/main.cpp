// The `annal` binary: server, client and admin tool. This file only parses
// flags (CLI11 is a heavy header: it stays in this one translation unit);
// each subcommand lives in its own file.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <map>

#include "bench/load_generator.hpp"
#include "cli/address.hpp"
#include "cli/admin_commands.hpp"
#include "cli/check_command.hpp"
#include "cli/client_commands.hpp"
#include "cli/server_command.hpp"

namespace {

using namespace annal;

void add_server_flags(CLI::App& app, cli::server_options& o, std::string& fsync) {
  app.add_option("--data", o.node.data_dir, "Data directory")->capture_default_str();
  app.add_option("--http", o.http_address, "HTTP API address HOST:PORT (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--listen", o.listen_address,
                 "Binary protocol address HOST:PORT (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--fsync", fsync, "Durability: always (group commit), interval or none")
      ->check(CLI::IsMember({"always", "interval", "none"}))
      ->capture_default_str();
  app.add_option("--partitions", o.node.partition_count,
                 "Partition count when the data directory is created")
      ->check(CLI::Range(1u, 65536u))
      ->capture_default_str();
  app.add_option("--sync-threads", o.node.sync_threads, "Group-commit sync threads")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  app.add_option("--actor-threads", o.node.actor_threads, "CAF scheduler threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--actor-spin-us", o.node.actor_spin_us,
                 "Microseconds an idle CAF worker spins before it parks")
      ->check(CLI::Range(0u, 100'000u))
      ->capture_default_str();
  app.add_option("--io-threads", o.io_threads, "Network threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--idle-timeout", o.idle_timeout_seconds,
                 "Close binary-protocol connections idle this many seconds")
      ->check(CLI::Range(1, 86400 * 365))
      ->capture_default_str();
  app.add_option("--max-connections", o.max_connections, "Binary-protocol connection limit")
      ->capture_default_str();
  app.add_option("--http-max-connections", o.http_max_connections,
                 "HTTP connection limit; more are closed at once")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--query-max-scan", o.node.query.max_events_scanned,
                 "Events one query may scan on this node before it stops (query_too_large)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--query-timeout-ms", o.node.query.timeout_ms,
                 "Longest a query may run on this node (query_timeout)")
      ->check(CLI::Range(1u, 3'600'000u))
      ->capture_default_str();
}

engine::fsync_mode parse_fsync(const std::string& name) {
  if (name == "interval") return engine::fsync_mode::interval;
  if (name == "none") return engine::fsync_mode::none;
  return engine::fsync_mode::always;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Annal: an event store. Server, client and admin tool in one binary."};
  app.require_subcommand(1);
  app.fallthrough();  // --log-level also after the subcommand
  app.set_help_all_flag("--help-all", "Help for every subcommand");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  // Server commands.
  cli::server_options dev;
  dev.node.data_dir = "./annal-data";
  std::string dev_fsync = "always";
  auto* dev_cmd = app.add_subcommand(
      "dev", "Run a single-node store for development (data in ./annal-data, HTTP on "
             "127.0.0.1:7070, binary protocol on 127.0.0.1:7071)");
  add_server_flags(*dev_cmd, dev, dev_fsync);

  cli::server_options start;
  std::string start_fsync = "always";
  std::string etcd;
  auto* start_cmd = app.add_subcommand("start", "Run a node");
  start_cmd->add_option("--node-id", start.node.node_id, "This node's id")->required();
  add_server_flags(*start_cmd, start, start_fsync);
  start_cmd->add_option("--advertise", start.advertise_address,
                        "Binary protocol address HOST:PORT peers use to reach this node "
                        "(default: the bound --listen address)");
  start_cmd->add_option("--etcd", etcd,
                        "etcd endpoints URL[,URL...]: join the cluster they hold (without it: "
                        "a one-node cluster with an in-process metadata store)");
  start_cmd->add_option("--bootstrap-expect", start.bootstrap_expect,
                        "Form a new cluster once this many nodes have registered")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();

  // Client commands.
  cli::connection_flags connection;
  auto add_connection_flags = [&](CLI::App* cmd) {
    cmd->add_option("--server", connection.server, "Node's binary protocol address HOST:PORT")
        ->capture_default_str();
    cmd->add_option("--timeout-ms", connection.timeout_ms, "Request timeout")
        ->capture_default_str();
  };
  auto add_stream = [](CLI::App* cmd, std::string& stream) {
    cmd->add_option("stream", stream, "Stream id")->required();
  };

  cli::append_flags append;
  auto* append_cmd = app.add_subcommand(
      "append", "Append events to a stream: one from --type/--data, or a JSON array from --events");
  add_connection_flags(append_cmd);
  add_stream(append_cmd, append.stream);
  append_cmd->add_option("--expected", append.expected,
                         "Expected version: any, no_stream, stream_exists or a number")
      ->capture_default_str();
  append_cmd->add_option("--type", append.type, "Event type");
  append_cmd->add_option("--data", append.data, "Event data (JSON, else stored as text)");
  append_cmd->add_option("--metadata", append.metadata, "Event metadata (JSON, else text)");
  append_cmd->add_option("--id", append.id, "Event id (UUID); default: the node picks one");
  append_cmd->add_option("--events", append.events,
                         "JSON array of events as in the HTTP API ('-': read stdin)");

  cli::read_flags read;
  auto* read_cmd = app.add_subcommand("read", "Read a stream forward (or --backward)");
  add_connection_flags(read_cmd);
  add_stream(read_cmd, read.stream);
  read_cmd->add_option("--from", read.from, "First version (backward default: the last)");
  read_cmd->add_option("--limit", read.limit, "Events per page")->capture_default_str();
  read_cmd->add_flag("--backward", read.backward, "Newest first");

  std::string head_stream;
  auto* head_cmd = app.add_subcommand("head", "Print a stream's last event");
  add_connection_flags(head_cmd);
  add_stream(head_cmd, head_stream);

  cli::delete_flags del;
  auto* delete_cmd = app.add_subcommand(
      "delete", "Delete a stream (soft: it can be written again), or --tombstone it for good");
  add_connection_flags(delete_cmd);
  add_stream(delete_cmd, del.stream);
  delete_cmd->add_option("--expected", del.expected, "Expected version")->capture_default_str();
  delete_cmd->add_flag("--tombstone", del.tombstone, "Hard delete: never writable again");

  cli::meta_flags meta;
  auto* meta_cmd = app.add_subcommand(
      "meta", "Print a stream's metadata, or change it with --max-count/--max-age/--truncate-before");
  add_connection_flags(meta_cmd);
  add_stream(meta_cmd, meta.stream);
  meta_cmd->add_option("--max-count", meta.max_count, "Keep at most this many events (0: all)");
  meta_cmd->add_option("--max-age", meta.max_age, "Hide events older than this many seconds");
  meta_cmd->add_option("--truncate-before", meta.truncate_before, "Hide versions below this");

  cli::snapshot_flags snapshot;
  auto* snapshot_cmd = app.add_subcommand(
      "snapshot", "Print a stream's latest snapshot, or store one with --version and --data");
  add_connection_flags(snapshot_cmd);
  add_stream(snapshot_cmd, snapshot.stream);
  snapshot_cmd->add_option("--version", snapshot.version, "Stream version the snapshot covers");
  snapshot_cmd->add_option("--data", snapshot.data, "Snapshot payload (JSON, else text)");

  cli::read_all_flags read_all;
  auto* read_all_cmd = app.add_subcommand(
      "read-all", "Read all streams in timestamp order, one page from --from (a `next` token)");
  add_connection_flags(read_all_cmd);
  read_all_cmd->add_option("--from", read_all.from, "Token to continue from (default: the start)");
  read_all_cmd->add_option("--limit", read_all.limit, "Events per page")->capture_default_str();
  read_all_cmd->add_flag("--json", read_all.json, "Print the HTTP API's JSON");

  cli::tail_flags tail;
  auto* tail_cmd = app.add_subcommand(
      "tail", "Follow events as they are appended (a subscription: catch-up from --from, then live)");
  add_connection_flags(tail_cmd);
  auto* tail_stream = tail_cmd->add_option("--stream", tail.stream, "One stream");
  tail_cmd->add_option("--category", tail.category, "Streams whose id up to the first '-' is this")
      ->excludes(tail_stream);
  tail_cmd->add_option("--filter", tail.filter,
                       "A query `where` filter, e.g. \"type = 'Paid' and data.amount > 10\"");
  tail_cmd->add_option("--from", tail.from,
                       "start, end, a resume token, or (with --stream) a version")
      ->capture_default_str();
  tail_cmd->add_flag("--json", tail.json, "One JSON object per event (GET /all's, plus \"next\")");
  tail_cmd->add_option("--count", tail.count, "Exit after this many events");
  tail_cmd->add_option("--window", tail.window, "Events granted to the node at a time")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();

  cli::query_flags query;
  auto* query_cmd = app.add_subcommand(
      "query", "Run a query across all partitions, e.g. \"from $all | count() by type\"");
  add_connection_flags(query_cmd);
  query_cmd->add_option("query", query.text, "The query (docs/queries.md)")->required();
  query_cmd->add_flag("--json", query.json, "Print the HTTP API's JSON");
  query_cmd->add_flag("--allow-partial", query.allow_partial,
                      "At a scan or time limit, print what was found (marked partial)");
  query_cmd->add_option("--query-timeout-ms", query.query_timeout_ms,
                        "Stop the query after this long (default: the node's limit)");

  bool stats_json = false;
  auto* stats_cmd =
      app.add_subcommand("stats", "Streams, events and bytes per partition and per node");
  add_connection_flags(stats_cmd);
  stats_cmd->add_flag("--json", stats_json, "Print the HTTP API's JSON");

  std::string check_dir;
  bool check_json = false;
  // Admin commands (the admin HTTP API of any node).
  cli::admin_flags admin;
  auto add_admin_flags = [&](CLI::App* cmd, bool change) {
    cmd->add_option("--admin", admin.admin, "Any node's HTTP address HOST:PORT")
        ->capture_default_str();
    cmd->add_flag("--json", admin.json, "Print the API's JSON");
    if (change) {
      cmd->add_option("--expected-epoch", admin.expected_epoch,
                      "Fail with conflict unless the cluster map is at this epoch");
    }
  };
  auto* cluster_cmd = app.add_subcommand("cluster", "Cluster-wide views");
  cluster_cmd->require_subcommand(1);
  auto* cluster_status_cmd = cluster_cmd->add_subcommand(
      "status", "Epoch, nodes (up/down), partition owners, handoffs pending");
  add_admin_flags(cluster_status_cmd, false);
  std::string approval;
  auto* cluster_approval_cmd = cluster_cmd->add_subcommand(
      "require-approval", "Whether new nodes wait for 'annal node approve' (on or off)");
  cluster_approval_cmd->add_option("setting", approval, "on or off")
      ->required()
      ->check(CLI::IsMember({"on", "off"}));
  add_admin_flags(cluster_approval_cmd, true);
  auto* node_cmd = app.add_subcommand("node", "Cluster membership");
  node_cmd->require_subcommand(1);
  auto* node_ls_cmd = node_cmd->add_subcommand("ls", "List the nodes");
  add_admin_flags(node_ls_cmd, false);
  std::string node_id, node_address, node_http;
  auto* node_add_cmd = node_cmd->add_subcommand("add", "Add a node to the cluster map");
  node_add_cmd->add_option("id", node_id, "Node id")->required();
  node_add_cmd->add_option("address", node_address, "Its binary protocol address HOST:PORT")
      ->required();
  node_add_cmd->add_option("--node-http", node_http, "Its HTTP address HOST:PORT");
  add_admin_flags(node_add_cmd, true);
  auto* node_drain_cmd =
      node_cmd->add_subcommand("drain", "Move a node's partitions away before removing it");
  node_drain_cmd->add_option("id", node_id, "Node id")->required();
  add_admin_flags(node_drain_cmd, true);
  auto* node_approve_cmd =
      node_cmd->add_subcommand("approve", "Let a joining node hold partitions");
  node_approve_cmd->add_option("id", node_id, "Node id")->required();
  add_admin_flags(node_approve_cmd, true);
  auto* node_remove_cmd =
      node_cmd->add_subcommand("remove", "Remove a node that holds no partition");
  node_remove_cmd->add_option("id", node_id, "Node id")->required();
  add_admin_flags(node_remove_cmd, true);

  auto* check_cmd = app.add_subcommand("check", "Verify a data directory offline");
  check_cmd->add_option("dir", check_dir, "Data directory")->required();
  check_cmd->add_flag("--json", check_json, "Print a JSON report");

  bench::load_options load;
  std::string target = "127.0.0.1:7071";
  std::string op = "append";
  bool bench_json = false;
  auto* bench_cmd = app.add_subcommand("bench", "Load generator over the binary protocol");
  bench_cmd->add_option("--target", target, "Node address HOST:PORT")->capture_default_str();
  bench_cmd->add_option("--op", op, "append, read or query (events: scanned)")
      ->check(CLI::IsMember({"append", "read", "query"}))
      ->capture_default_str();
  bench_cmd->add_option("--connections", load.connections, "Connections")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  bench_cmd->add_option("--inflight", load.inflight, "Requests in flight per connection")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  bench_cmd->add_option("--batch", load.batch, "Events per append, or per read page")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  bench_cmd->add_option("--size", load.event_bytes, "Data bytes per event")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  bench_cmd->add_option("--streams", load.streams, "Streams written or read")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  bench_cmd->add_option("--duration", load.duration_seconds, "Seconds of load")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  bench_cmd->add_flag("--json-data", load.json_data,
                     "Append JSON events of about --size bytes (amount, region, customer)");
  bench_cmd->add_option("--query", load.query, "The query --op query runs");
  bench_cmd->add_flag("--json", bench_json, "Print one JSON object");

  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));

  if (*dev_cmd) {
    dev.node.node_id = "dev";
    dev.node.fsync = parse_fsync(dev_fsync);
    return cli::run_server(dev);
  }
  if (*start_cmd) {
    start.node.fsync = parse_fsync(start_fsync);
    start.etcd_endpoints = cli::split_list(etcd);
    return cli::run_server(start);
  }
  if (*append_cmd) return cli::run_append(connection, append);
  if (*read_cmd) return cli::run_read(connection, read);
  if (*head_cmd) return cli::run_head(connection, head_stream);
  if (*delete_cmd) return cli::run_delete(connection, del);
  if (*meta_cmd) return cli::run_meta(connection, meta);
  if (*snapshot_cmd) return cli::run_snapshot(connection, snapshot);
  if (*read_all_cmd) return cli::run_read_all(connection, read_all);
  if (*stats_cmd) return cli::run_stats(connection, stats_json);
  if (*query_cmd) return cli::run_query(connection, query);
  if (*tail_cmd) return cli::run_tail(connection, tail);
  if (*check_cmd) return cli::run_check(check_dir, check_json);
  if (*cluster_status_cmd) return cli::cluster_status(admin);
  if (*node_ls_cmd) return cli::node_list(admin);
  if (*node_add_cmd) return cli::node_add(admin, node_id, node_address, node_http);
  if (*node_drain_cmd) return cli::node_drain(admin, node_id);
  if (*node_remove_cmd) return cli::node_remove(admin, node_id);
  if (*node_approve_cmd) return cli::node_approve(admin, node_id);
  if (*cluster_approval_cmd) return cli::cluster_require_approval(admin, approval == "on");
  if (*bench_cmd) {
    const auto address = cli::parse_host_port(target);
    if (!address || address->port == 0) {
      std::fprintf(stderr, "annal: invalid --target '%s' (expected HOST:PORT)\n", target.c_str());
      return 2;
    }
    load.host = address->host;
    load.port = address->port;
    load.op = op == "read"    ? bench::load_options::operation::read
              : op == "query" ? bench::load_options::operation::query
                              : bench::load_options::operation::append;
    if (load.op == bench::load_options::operation::query && load.query.empty()) {
      std::fprintf(stderr, "annal: --op query needs --query\n");
      return 2;
    }
    auto report = bench::run_load(load);
    if (!report) {
      std::fprintf(stderr, "annal: %s: %s\n", engine::errc_name(report.err().code),
                   report.err().message.c_str());
      return 1;
    }
    std::printf("%s\n", (bench_json ? bench::format_json(*report) : bench::format_text(*report)).c_str());
    return report->errors == 0 ? 0 : 1;
  }
  return 0;
}
