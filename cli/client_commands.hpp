#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace annal::cli {

// The client subcommands. Each connects over the binary protocol, prints
// its result as JSON on stdout (the same shapes as the HTTP API; read-all and
// stats print text unless --json) and returns 0; on failure it prints one line "annal: <code>: <message>" on
// stderr and returns 1 (2 for bad arguments).

struct connection_flags {
  std::string server = "127.0.0.1:7071";
  std::uint32_t timeout_ms = 30000;
};

struct append_flags {
  std::string stream;
  std::string expected = "any";  // any | no_stream | stream_exists | N
  // Either one event from --type/--data/--metadata/--id, or a JSON array of
  // events (as in the HTTP API) from --events ("-": stdin).
  std::string type;
  std::optional<std::string> data;  // JSON text, or any text with --base64
  std::optional<std::string> metadata;
  std::optional<std::string> id;  // UUID
  std::optional<std::string> events;
};

struct read_flags {
  std::string stream;
  std::optional<std::uint64_t> from;
  std::uint32_t limit = 100;
  bool backward = false;
};

struct delete_flags {
  std::string stream;
  std::string expected = "any";
  bool tombstone = false;
};

struct meta_flags {
  std::string stream;
  // Any of these set: change the metadata (unset fields keep their value).
  std::optional<std::uint64_t> max_count;
  std::optional<std::uint64_t> max_age;
  std::optional<std::uint64_t> truncate_before;
};

struct snapshot_flags {
  std::string stream;
  // Set: store a snapshot at `version`; else print the latest.
  std::optional<std::uint64_t> version;
  std::optional<std::string> data;
};

struct read_all_flags {
  std::optional<std::string> from;  // a `next` token; unset: from the start
  std::uint32_t limit = 100;
  bool json = false;  // the HTTP API's JSON instead of one line per event
};

int run_append(const connection_flags& c, const append_flags& f);
int run_read(const connection_flags& c, const read_flags& f);
int run_head(const connection_flags& c, const std::string& stream);
int run_delete(const connection_flags& c, const delete_flags& f);
int run_meta(const connection_flags& c, const meta_flags& f);
int run_snapshot(const connection_flags& c, const snapshot_flags& f);
// One page of all streams in timestamp order; the last line (text) or
// "next" (JSON) is the token to continue from.
int run_read_all(const connection_flags& c, const read_all_flags& f);

struct query_flags {
  std::string text;  // the query (docs/queries.md)
  bool json = false;  // the HTTP API's JSON instead of a table
  bool allow_partial = false;
  std::uint32_t query_timeout_ms = 0;  // 0: the node's limit
};

// A query's answer as a table (aggregations) or one line per event
// (listings), then the events scanned; or the HTTP API's JSON.
int run_query(const connection_flags& c, const query_flags& f);

struct tail_flags {
  std::optional<std::string> stream;
  std::optional<std::string> category;
  std::optional<std::string> filter;  // a query `where` filter
  std::string from = "end";           // start | end | a resume token | a version (--stream)
  bool json = false;
  std::optional<std::uint64_t> count;  // exit after this many events
  std::uint32_t window = 256;          // credits granted at a time
};
// Subscribes and prints events as they come, one line each (text or JSON),
// until --count events (then "next: <token>" in text mode) or Ctrl-C. After
// a lost connection it reconnects and resumes from the last event printed
// (for up to 60 s).
int run_tail(const connection_flags& c, const tail_flags& f);
// Per-partition and per-node counts, as a table or (json) the HTTP API's JSON.
int run_stats(const connection_flags& c, bool json);

}  // namespace annal::cli
