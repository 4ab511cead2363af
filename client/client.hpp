#pragma once

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include "client/connection.hpp"
#include "client/options.hpp"

namespace annal::client {

// A blocking client: one connection on an io_context run by a thread of its
// own. Every call waits for its reply and returns it as engine::result<T>
// (errors as described on `connection`).
//
// Thread-safe: any number of threads may call it at once (their requests are
// pipelined on the one connection). Requires: never called from a callback
// of async() (that thread is the one that would deliver the reply).
class client {
  struct private_tag {};

 public:
  static engine::result<std::unique_ptr<client>> connect(client_options options);

  explicit client(private_tag);
  ~client();  // closes the connection and joins the thread

  client(const client&) = delete;
  client& operator=(const client&) = delete;

  engine::result<actors::append_reply> append(actors::append_request request);
  engine::result<engine::read_page> read(actors::read_request request);
  engine::result<engine::read_page> read_last(std::string stream);
  engine::result<engine::stream_info> get_stream_info(std::string stream);
  engine::result<actors::write_reply> set_metadata(std::string stream,
                                                   engine::stream_metadata metadata);
  engine::result<actors::write_reply> delete_stream(std::string stream,
                                                    engine::expected_version expected,
                                                    bool tombstone = false);
  engine::result<actors::write_reply> put_snapshot(std::string stream, stream_version version,
                                                   std::string payload);
  engine::result<std::optional<engine::snapshot_read>> get_snapshot(std::string stream);
  engine::result<actors::read_all_page> read_all(actors::read_all_request request);
  engine::result<std::vector<actors::partition_stats>> stats();
  // A query by its text (docs/queries.md); timeout_ms 0: the node's limit.
  engine::result<engine::query::query_answer> query(std::string text, bool allow_partial = false,
                                                    std::uint32_t timeout_ms = 0);
  engine::status ping();

  const server_info& server() const { return connection_->server(); }
  // The underlying pipelined connection (callbacks run on this client's thread).
  connection& async() { return *connection_; }

 private:
  template <class T, class Start>
  engine::result<T> call(Start start);

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::shared_ptr<connection> connection_;
};

}  // namespace annal::client
