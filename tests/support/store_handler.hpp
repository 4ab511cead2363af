#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "actors/requests.hpp"
#include "actors/uuid.hpp"
#include "engine/query/partial_result.hpp"
#include "engine/query/partition_scan.hpp"
#include "engine/query/plan.hpp"
#include "engine/store.hpp"

// A synchronous request_handler over a real engine::store (fsync=none) in a
// directory of the test's: what the network layers are tested against
// without the actor layer. Every call replies before it returns, on the
// calling thread. Thread-safe (one mutex). Header-only.
namespace annal::testing {

class store_handler final : public actors::request_handler {
 public:
  explicit store_handler(std::string dir, std::uint32_t partition_count = 4) {
    engine::store_options options;
    options.directory = std::move(dir);
    options.partition_count = partition_count;
    options.node_log.mode = engine::fsync_mode::none;
    auto opened = engine::store::open(std::move(options));
    if (!opened) throw std::runtime_error("store_handler: " + opened.err().message);
    store_ = std::move(opened).value();
  }

  engine::store& store() { return *store_; }

  void append(actors::append_request request,
              actors::reply_fn<actors::append_reply> reply) override {
    std::lock_guard lock(mu_);
    // As the node does: events without an id get a random one.
    for (auto& e : request.events) {
      if (actors::is_nil(e.id)) e.id = actors::random_uuid_v4();
    }
    auto p = partition(request.stream);
    if (!p) return reply(p.err());
    auto r = (*p)->append(request.stream, request.expected, request.events);
    if (!r) return reply(r.err());
    store_->sync();
    reply(actors::append_reply{r->first_version, r->last_version, r->position, (*p)->id(),
                               r->duplicate});
  }

  void read(actors::read_request request, actors::reply_fn<engine::read_page> reply) override {
    std::lock_guard lock(mu_);
    auto p = partition(request.stream);
    if (!p) return reply(p.err());
    auto from = request.from;
    if (request.from_end) {
      auto info = (*p)->get_stream_info(request.stream);
      if (info && info->last_version) from = *info->last_version;
    }
    reply((*p)->read_stream(request.stream, from, request.limit, request.direction));
  }

  void read_last(std::string stream, actors::reply_fn<engine::read_page> reply) override {
    std::lock_guard lock(mu_);
    auto p = partition(stream);
    if (!p) return reply(p.err());
    reply((*p)->read_last(stream));
  }

  void get_stream_info(std::string stream, actors::reply_fn<engine::stream_info> reply) override {
    std::lock_guard lock(mu_);
    auto p = partition(stream);
    if (!p) return reply(p.err());
    reply((*p)->get_stream_info(stream));
  }

  void set_metadata(std::string stream, engine::stream_metadata metadata,
                    actors::reply_fn<actors::write_reply> reply) override {
    std::lock_guard lock(mu_);
    auto p = partition(stream);
    if (!p) return reply(p.err());
    write_done(*p, (*p)->set_metadata(stream, metadata), reply);
  }

  void delete_stream(std::string stream, engine::expected_version expected, bool tombstone,
                     actors::reply_fn<actors::write_reply> reply) override {
    std::lock_guard lock(mu_);
    auto p = partition(stream);
    if (!p) return reply(p.err());
    write_done(*p, (*p)->delete_stream(stream, expected, tombstone), reply);
  }

  void put_snapshot(std::string stream, stream_version version, std::string payload,
                    actors::reply_fn<actors::write_reply> reply) override {
    std::lock_guard lock(mu_);
    auto p = partition(stream);
    if (!p) return reply(p.err());
    write_done(*p, (*p)->put_snapshot(stream, version, payload), reply);
  }

  void get_snapshot(std::string stream,
                    actors::reply_fn<std::optional<engine::snapshot_read>> reply) override {
    std::lock_guard lock(mu_);
    auto p = partition(stream);
    if (!p) return reply(p.err());
    reply((*p)->get_snapshot(stream));
  }

  // As the node does: every partition reads its page, then one merge.
  void read_all(actors::read_all_request request,
                actors::reply_fn<actors::read_all_page> reply) override {
    std::lock_guard lock(mu_);
    const std::uint32_t count = store_->partition_count();
    if (auto checked = actors::check_read_all(request, count); !checked) {
      return reply(checked.err());
    }
    if (request.partitions.empty()) {
      for (std::uint32_t p = 0; p < count; ++p) request.partitions.emplace_back(p);
    }
    if (request.from.empty()) request.from.resize(count);
    std::vector<actors::read_all_part> parts;
    for (const auto p : request.partitions) {
      auto partition = store_->get(p);
      if (!partition) return reply(partition.err());
      auto part = actors::read_partition_all(**partition, request.from[p.value()], request.limit,
                                             request.max_bytes);
      if (!part) return reply(part.err());
      parts.push_back(std::move(part).value());
    }
    reply(actors::merge_read_all(std::move(parts), std::move(request.from), request.limit,
                                 request.max_bytes));
  }

  // As a node does: every requested partition scanned to its visible end,
  // with the default limits, then one merge.
  void query(actors::query_request request,
             actors::reply_fn<engine::query::partial_result> reply) override {
    std::lock_guard lock(mu_);
    auto plan = engine::query::plan::compile(std::move(request.query));
    if (!plan) return reply(plan.err());
    if (request.partitions.empty()) {
      for (std::uint32_t p = 0; p < store_->partition_count(); ++p) {
        request.partitions.emplace_back(p);
      }
    }
    engine::query::scan_limits limits;
    limits.allow_partial = request.allow_partial;
    engine::query::scan_usage usage;
    engine::query::partial_result merged;
    for (const auto p : request.partitions) {
      auto partition = store_->get(p);
      if (!partition) return reply(partition.err());
      engine::query::partition_scan scan(*plan, p, (*partition)->visible_end());
      for (;;) {
        auto done = scan.step(**partition, 1u << 20, limits, usage);
        if (!done) return reply(done.err());
        if (*done) break;
      }
      if (auto merged_ok = engine::query::merge(merged, scan.take(), **plan); !merged_ok) {
        return reply(merged_ok.err());
      }
    }
    reply(std::move(merged));
  }

  void stats(actors::reply_fn<std::vector<actors::partition_stats>> reply) override {
    std::lock_guard lock(mu_);
    std::vector<actors::partition_stats> all;
    for (std::uint32_t p = 0; p < store_->partition_count(); ++p) {
      auto partition = store_->get(partition_id{p});
      if (!partition) return reply(partition.err());
      all.push_back(actors::stats_of(**partition));
      all.back().node = "store";
    }
    reply(std::move(all));
  }

 private:
  engine::result<engine::partition*> partition(const std::string& stream) {
    return store_->get(store_->partition_for(stream));
  }

  void write_done(engine::partition* p, engine::result<engine::write_result> r,
                  const actors::reply_fn<actors::write_reply>& reply) {
    if (!r) return reply(r.err());
    store_->sync();
    reply(actors::write_reply{r->position, p->id()});
  }

  std::mutex mu_;
  std::unique_ptr<engine::store> store_;
};

}  // namespace annal::testing
