#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/peer.hpp"

namespace annal::testing {

// Another node as a stand-in that cannot be reached: every request fails
// with node_unavailable. Records the epoch it was given and whether it was
// closed.
class unreachable_peer final : public actors::peer {
 public:
  void set_epoch(std::uint64_t epoch) override { epoch_ = epoch; }
  void close() override { closed_ = true; }
  void append(actors::append_request, actors::reply_fn<actors::append_reply> r) override {
    r(no());
  }
  void read(actors::read_request, actors::reply_fn<engine::read_page> r) override { r(no()); }
  void read_last(std::string, actors::reply_fn<engine::read_page> r) override { r(no()); }
  void get_stream_info(std::string, actors::reply_fn<engine::stream_info> r) override { r(no()); }
  void set_metadata(std::string, engine::stream_metadata,
                    actors::reply_fn<actors::write_reply> r) override {
    r(no());
  }
  void delete_stream(std::string, engine::expected_version, bool,
                     actors::reply_fn<actors::write_reply> r) override {
    r(no());
  }
  void put_snapshot(std::string, stream_version, std::string,
                    actors::reply_fn<actors::write_reply> r) override {
    r(no());
  }
  void get_snapshot(std::string,
                    actors::reply_fn<std::optional<engine::snapshot_read>> r) override {
    r(no());
  }
  void read_all(actors::read_all_request, actors::reply_fn<actors::read_all_page> r) override {
    r(no());
  }
  void stats(actors::reply_fn<std::vector<actors::partition_stats>> r) override { r(no()); }
  void ship_log(partition_id, lsn, std::size_t,
                actors::reply_fn<engine::shipped_batch> r) override {
    r(no());
  }
  void seal(partition_id, std::chrono::milliseconds, actors::reply_fn<lsn> r) override { r(no()); }
  void unseal(partition_id, actors::reply_fn<lsn> r) override { r(no()); }

  std::atomic<std::uint64_t> epoch_{0};
  std::atomic<bool> closed_{false};

 private:
  static engine::error no() { return {engine::errc::node_unavailable, "stand-in peer"}; }
};

}  // namespace annal::testing
