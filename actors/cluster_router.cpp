#include "actors/cluster_router.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>

#include "actors/fan_in.hpp"
#include "actors/partition_list.hpp"
#include "engine/query/plan.hpp"
#include "engine/partitioning.hpp"

namespace annal::actors {
namespace {

const error& invalid_stream() {
  static const error e{errc::invalid_stream_id,
                       "a stream id is 1..256 bytes of valid UTF-8 without control characters"};
  return e;
}

// The longest a long-poll read-all waits on a node when it is fanned out
// (peer links time requests out after 10 s).
constexpr std::uint32_t k_forwarded_wait_ms = 5000;

// `x` itself on the last attempt, a copy when a retry may still need it.
template <class X>
X take(X& x, bool last) {
  return last ? std::move(x) : x;
}

// The partitions one node serves in a fan-out, and the handler to reach it.
struct node_group {
  std::string node;
  std::shared_ptr<request_handler> handler;
  std::vector<partition_id> partitions;
};

// Groups `partitions` by owner, in order of first appearance;
// partition_unavailable for a partition without one.
result<std::vector<node_group>> group_by_owner(const routing_table& table,
                                               const std::vector<partition_id>& partitions) {
  std::vector<node_group> groups;
  for (const auto p : partitions) {
    const auto i = p.value();
    if (i >= table.owners.size() || !table.owners[i]) {
      return error{errc::partition_unavailable,
                   fmt::format("partition {} has no owner at map epoch {}", i, table.epoch)};
    }
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const node_group& g) { return g.node == table.owner_ids[i]; });
    if (it == groups.end()) {
      groups.push_back(node_group{table.owner_ids[i], table.owners[i], {}});
      it = std::prev(groups.end());
    }
    it->partitions.push_back(p);
  }
  return groups;
}

std::vector<partition_id> every_partition(std::uint32_t count) {
  std::vector<partition_id> all;
  all.reserve(count);
  for (std::uint32_t p = 0; p < count; ++p) all.emplace_back(p);
  return all;
}

}  // namespace

// The handler forwarded requests see: local partitions only.
class cluster_router::local_view final : public request_handler {
 public:
  explicit local_view(cluster_router& router) : router_(router) {}

  void append(append_request request, reply_fn<append_reply> reply) override {
    auto owner = local_owner(request.stream);
    if (!owner) return reply(std::move(owner).err());
    owner.value()->append(std::move(request), std::move(reply));
  }
  void read(read_request request, reply_fn<engine::read_page> reply) override {
    auto owner = local_owner(request.stream);
    if (!owner) return reply(std::move(owner).err());
    owner.value()->read(std::move(request), std::move(reply));
  }
  void read_last(std::string stream, reply_fn<engine::read_page> reply) override {
    auto owner = local_owner(stream);
    if (!owner) return reply(std::move(owner).err());
    owner.value()->read_last(std::move(stream), std::move(reply));
  }
  void get_stream_info(std::string stream, reply_fn<engine::stream_info> reply) override {
    auto owner = local_owner(stream);
    if (!owner) return reply(std::move(owner).err());
    owner.value()->get_stream_info(std::move(stream), std::move(reply));
  }
  void set_metadata(std::string stream, engine::stream_metadata metadata,
                    reply_fn<write_reply> reply) override {
    auto owner = local_owner(stream);
    if (!owner) return reply(std::move(owner).err());
    owner.value()->set_metadata(std::move(stream), std::move(metadata), std::move(reply));
  }
  void delete_stream(std::string stream, engine::expected_version expected, bool tombstone,
                     reply_fn<write_reply> reply) override {
    auto owner = local_owner(stream);
    if (!owner) return reply(std::move(owner).err());
    owner.value()->delete_stream(std::move(stream), expected, tombstone, std::move(reply));
  }
  void put_snapshot(std::string stream, stream_version version, std::string payload,
                    reply_fn<write_reply> reply) override {
    auto owner = local_owner(stream);
    if (!owner) return reply(std::move(owner).err());
    owner.value()->put_snapshot(std::move(stream), version, std::move(payload), std::move(reply));
  }
  void get_snapshot(std::string stream,
                    reply_fn<std::optional<engine::snapshot_read>> reply) override {
    auto owner = local_owner(stream);
    if (!owner) return reply(std::move(owner).err());
    owner.value()->get_snapshot(std::move(stream), std::move(reply));
  }
  // Only partitions this node owns (all it owns when none are listed).
  void read_all(read_all_request request, reply_fn<read_all_page> reply) override {
    const auto table = router_.table();
    if (auto checked = check_read_all(request, table->partition_count); !checked) {
      return reply(checked.err());
    }
    if (request.partitions.empty()) {
      for (std::uint32_t p = 0; p < table->owners.size(); ++p) {
        if (owns(*table, p)) request.partitions.emplace_back(p);
      }
    }
    for (const auto p : request.partitions) {
      if (!owns(*table, p.value())) return reply(not_owned(*table, p.value()));
    }
    if (request.partitions.empty()) {  // this node owns nothing
      read_all_page empty;
      empty.next = request.from.empty() ? std::vector<all_position>(table->partition_count)
                                        : std::move(request.from);
      empty.at_end = true;
      return reply(std::move(empty));
    }
    const auto local = table->owners[request.partitions.front().value()];
    local->read_all(std::move(request), std::move(reply));
  }
  // Only partitions this node owns (all it owns when none are listed).
  void query(query_request request, reply_fn<engine::query::partial_result> reply) override {
    const auto table = router_.table();
    if (auto checked = check_partition_list(request.partitions, table->partition_count);
        !checked) {
      return reply(checked.err());
    }
    if (request.partitions.empty()) {
      for (std::uint32_t p = 0; p < table->owners.size(); ++p) {
        if (owns(*table, p)) request.partitions.emplace_back(p);
      }
      if (request.partitions.empty()) {  // this node owns nothing
        return reply(engine::query::partial_result{});
      }
    }
    for (const auto p : request.partitions) {
      if (!owns(*table, p.value())) return reply(not_owned(*table, p.value()));
    }
    const auto local = table->owners[request.partitions.front().value()];
    local->query(std::move(request), std::move(reply));
  }
  // This node's report of the partitions it owns.
  void stats(reply_fn<std::vector<partition_stats>> reply) override {
    const auto table = router_.table();
    std::shared_ptr<request_handler> local;
    for (std::uint32_t p = 0; p < table->owners.size() && !local; ++p) {
      if (owns(*table, p)) local = table->owners[p];
    }
    if (!local) return reply(std::vector<partition_stats>{});
    local->stats([table, reply = std::move(reply)](result<std::vector<partition_stats>> r) {
      if (!r) return reply(std::move(r));
      std::erase_if(*r,
                    [&](const partition_stats& s) { return !owns(*table, s.partition.value()); });
      reply(std::move(r));
    });
  }

 private:
  static bool owns(const routing_table& table, std::uint32_t p) {
    return p < table.owners.size() && table.owners[p] && table.owner_ids[p] == table.self_id;
  }
  static error not_owned(const routing_table& table, std::uint32_t p) {
    return error{errc::not_owner, fmt::format("node {} does not own partition {} at map epoch {}",
                                              table.self_id, p, table.epoch)};
  }

  result<std::shared_ptr<request_handler>> local_owner(std::string_view stream) const {
    if (!engine::valid_stream_id(stream)) return invalid_stream();
    const auto table = router_.table();
    const auto p = engine::partition_for(stream, table->partition_count).value();
    if (p < table->owners.size() && table->owners[p] && table->owner_ids[p] == table->self_id) {
      return table->owners[p];
    }
    return error{errc::not_owner, fmt::format("node {} does not own partition {} at map epoch {}",
                                              table->self_id, p, table->epoch)};
  }

  cluster_router& router_;
};

cluster_router::cluster_router(std::shared_ptr<const routing_table> table, refresh_fn refresh)
    : table_(std::move(table)),
      refresh_(std::move(refresh)),
      local_view_(std::make_unique<local_view>(*this)) {}

cluster_router::~cluster_router() = default;

void cluster_router::set(std::shared_ptr<const routing_table> table) {
  table_.store(std::move(table));
}

std::shared_ptr<const routing_table> cluster_router::table() const { return table_.load(); }

request_handler& cluster_router::forwarded(std::uint64_t sender_epoch) {
  auto seen = newest_sender_epoch_.load();
  while (sender_epoch > seen && !newest_sender_epoch_.compare_exchange_weak(seen, sender_epoch)) {
  }
  return *local_view_;
}

template <class T, class Send>
void cluster_router::dispatch(std::string stream, reply_fn<T> reply, Send send, bool retried) {
  if (!engine::valid_stream_id(stream)) return reply(invalid_stream());
  const auto table = table_.load();
  const auto p = engine::partition_for(stream, table->partition_count).value();
  if (p >= table->owners.size() || !table->owners[p]) {
    return reply(error{errc::partition_unavailable,
                       fmt::format("partition {} has no owner at map epoch {}", p, table->epoch)});
  }
  auto& owner = *table->owners[p];
  if (retried || !refresh_ || (!table->multi_node && table->owner_ids[p] == table->self_id)) {
    return send(owner, std::move(reply), true);
  }
  // On not_owner, bring the map up to date and retry once.
  // (`send` is copied: this attempt may not consume what the retry needs.)
  auto on_reply = [this, stream, reply = std::move(reply), send](result<T> r) mutable {
    if (r || r.err().code != errc::not_owner) return reply(std::move(r));
    refresh_([this, stream = std::move(stream), reply = std::move(reply), send]() mutable {
      dispatch<T>(std::move(stream), std::move(reply), std::move(send), true);
    });
  };
  send(owner, reply_fn<T>(std::move(on_reply)), false);
}

void cluster_router::append(append_request request, reply_fn<append_reply> reply) {
  auto stream = request.stream;
  dispatch<append_reply>(
      std::move(stream), std::move(reply),
      [request = std::move(request)](request_handler& h, auto done, bool last) mutable {
        h.append(take(request, last), std::move(done));
      });
}

void cluster_router::read(read_request request, reply_fn<engine::read_page> reply) {
  auto stream = request.stream;
  dispatch<engine::read_page>(
      std::move(stream), std::move(reply),
      [request = std::move(request)](request_handler& h, auto done, bool last) mutable {
        h.read(take(request, last), std::move(done));
      });
}

void cluster_router::read_last(std::string stream, reply_fn<engine::read_page> reply) {
  dispatch<engine::read_page>(stream, std::move(reply),
                              [stream](request_handler& h, auto done, bool last) mutable {
                                h.read_last(take(stream, last), std::move(done));
                              });
}

void cluster_router::get_stream_info(std::string stream, reply_fn<engine::stream_info> reply) {
  dispatch<engine::stream_info>(stream, std::move(reply),
                                [stream](request_handler& h, auto done, bool last) mutable {
                                  h.get_stream_info(take(stream, last), std::move(done));
                                });
}

void cluster_router::set_metadata(std::string stream, engine::stream_metadata metadata,
                                  reply_fn<write_reply> reply) {
  dispatch<write_reply>(
      stream, std::move(reply),
      [stream, metadata = std::move(metadata)](request_handler& h, auto done, bool last) mutable {
        h.set_metadata(take(stream, last), take(metadata, last), std::move(done));
      });
}

void cluster_router::delete_stream(std::string stream, engine::expected_version expected,
                                   bool tombstone, reply_fn<write_reply> reply) {
  dispatch<write_reply>(
      stream, std::move(reply),
      [stream, expected, tombstone](request_handler& h, auto done, bool last) mutable {
        h.delete_stream(take(stream, last), expected, tombstone, std::move(done));
      });
}

void cluster_router::put_snapshot(std::string stream, stream_version version, std::string payload,
                                  reply_fn<write_reply> reply) {
  dispatch<write_reply>(stream, std::move(reply),
                        [stream, version, payload = std::move(payload)](
                            request_handler& h, auto done, bool last) mutable {
                          h.put_snapshot(take(stream, last), version, take(payload, last),
                                         std::move(done));
                        });
}

void cluster_router::get_snapshot(std::string stream,
                                  reply_fn<std::optional<engine::snapshot_read>> reply) {
  dispatch<std::optional<engine::snapshot_read>>(
      stream, std::move(reply), [stream](request_handler& h, auto done, bool last) mutable {
        h.get_snapshot(take(stream, last), std::move(done));
      });
}

void cluster_router::read_all(read_all_request request, reply_fn<read_all_page> reply) {
  read_all_attempt(std::move(request), std::move(reply), false);
}

void cluster_router::read_all_attempt(read_all_request request, reply_fn<read_all_page> reply,
                                      bool retried) {
  const auto table = table_.load();
  const std::uint32_t count = table->partition_count;
  if (auto checked = check_read_all(request, count); !checked) return reply(checked.err());
  auto groups = group_by_owner(
      *table, request.partitions.empty() ? every_partition(count) : request.partitions);
  if (!groups) return reply(groups.err());
  if (request.from.empty()) request.from.resize(count);
  auto owners = std::move(groups).value();
  if (request.wait_ms > 0 && !request.from_end) {
    return read_all_waiting(std::move(request), std::move(reply), retried);
  }
  std::vector<read_all_request> requests;
  for (const auto& g : owners) {
    requests.push_back(request);
    requests.back().partitions = g.partitions;
  }
  auto gather = fan_in<read_all_page>::make(
      owners.size(), [this, request, reply = std::move(reply), owners,
                      retried](std::vector<result<read_all_page>> pages) mutable {
        std::vector<read_all_part> parts;
        parts.reserve(pages.size());
        for (std::size_t i = 0; i < pages.size(); ++i) {
          if (pages[i]) {
            parts.push_back(part_of(std::move(pages[i]).value(), owners[i].partitions));
            continue;
          }
          auto e = pages[i].err();
          if (e.code != errc::not_owner || retried || !refresh_) return reply(std::move(e));
          return refresh_([this, request = std::move(request), reply = std::move(reply)]() mutable {
            read_all_attempt(std::move(request), std::move(reply), true);
          });
        }
        reply(merge_read_all(std::move(parts), std::move(request.from), request.limit,
                             request.max_bytes));
      });
  for (std::size_t i = 0; i < owners.size(); ++i) {
    owners[i].handler->read_all(std::move(requests[i]), gather->slot(i));
  }
}

void cluster_router::read_all_waiting(read_all_request request, reply_fn<read_all_page> reply,
                                      bool retried) {
  const auto table = table_.load();
  auto groups = group_by_owner(*table, request.partitions.empty()
                                           ? every_partition(table->partition_count)
                                           : request.partitions);
  if (!groups) return reply(groups.err());
  auto owners = std::move(groups).value();
  // The first node with events (or an error) answers for the page: its
  // partitions advance, the others keep their `from`. Only when every node
  // answered with nothing is the page at its end. Later answers are dropped
  // (each node's waits end by themselves).
  struct gather_state {
    std::mutex mu;
    bool done = false;              // guarded by mu
    std::size_t missing = 0;        // guarded by mu
    std::vector<read_all_part> parts;  // guarded by mu: the empty answers
    read_all_request request;
    std::vector<node_group> owners;
    reply_fn<read_all_page> reply;
  };
  auto state = std::make_shared<gather_state>();
  state->missing = owners.size();
  state->request = request;
  state->owners = owners;
  state->reply = std::move(reply);
  for (std::size_t i = 0; i < owners.size(); ++i) {
    auto node_request = request;
    node_request.partitions = owners[i].partitions;
    // Well inside a peer link's request timeout; an earlier empty answer is
    // allowed (the reader just asks again).
    node_request.wait_ms = std::min(node_request.wait_ms, k_forwarded_wait_ms);
    owners[i].handler->read_all(
        std::move(node_request), [this, state, i, retried](result<read_all_page> page) {
          std::unique_lock lock(state->mu);
          if (state->done) return;
          if (!page) {
            state->done = true;
            lock.unlock();
            auto e = std::move(page.err());
            if (e.code != errc::not_owner || retried || !refresh_) {
              return state->reply(std::move(e));
            }
            return refresh_([this, state]() mutable {
              read_all_attempt(std::move(state->request), std::move(state->reply), true);
            });
          }
          const bool empty_at_end = page->events.empty() && page->at_end;
          state->parts.push_back(part_of(std::move(page).value(), state->owners[i].partitions));
          if (empty_at_end && --state->missing > 0) return;
          state->done = true;
          auto parts = empty_at_end ? std::move(state->parts)
                                    : std::vector<read_all_part>{std::move(state->parts.back())};
          lock.unlock();
          auto merged = merge_read_all(std::move(parts), std::move(state->request.from),
                                       state->request.limit, state->request.max_bytes);
          if (!empty_at_end) merged.at_end = false;  // the other nodes were not heard
          state->reply(std::move(merged));
        });
  }
}

void cluster_router::stats(reply_fn<std::vector<partition_stats>> reply) {
  stats_attempt(std::move(reply), false);
}

void cluster_router::stats_attempt(reply_fn<std::vector<partition_stats>> reply, bool retried) {
  const auto table = table_.load();
  auto groups = group_by_owner(*table, every_partition(table->partition_count));
  if (!groups) return reply(groups.err());
  auto owners = std::move(groups).value();
  auto gather = fan_in<std::vector<partition_stats>>::make(
      owners.size(), [this, reply = std::move(reply), owners, epoch = table->epoch,
                      retried](std::vector<result<std::vector<partition_stats>>> reports) mutable {
        std::vector<partition_stats> all;
        std::optional<error> failure;
        for (std::size_t i = 0; i < reports.size() && !failure; ++i) {
          if (!reports[i]) {
            failure = reports[i].err();
            break;
          }
          // Exactly the partitions this node's map gives that node.
          for (const auto p : owners[i].partitions) {
            auto it = std::find_if(reports[i]->begin(), reports[i]->end(),
                                   [&](const partition_stats& s) { return s.partition == p; });
            if (it == reports[i]->end()) {
              failure = error{errc::not_owner,
                              fmt::format("node {} does not report partition {}, which it owns "
                                          "at map epoch {}",
                                          owners[i].node, p.value(), epoch)};
              break;
            }
            all.push_back(std::move(*it));
            all.back().node = owners[i].node;
          }
        }
        if (failure) {
          if (failure->code != errc::not_owner || retried || !refresh_) {
            return reply(std::move(*failure));
          }
          return refresh_([this, reply = std::move(reply)]() mutable {
            stats_attempt(std::move(reply), true);
          });
        }
        std::sort(all.begin(), all.end(), [](const partition_stats& a, const partition_stats& b) {
          return a.partition < b.partition;
        });
        reply(std::move(all));
      });
  for (std::size_t i = 0; i < owners.size(); ++i) owners[i].handler->stats(gather->slot(i));
}

void cluster_router::query(query_request request,
                           reply_fn<engine::query::partial_result> reply) {
  query_attempt(std::move(request), std::move(reply), false);
}

void cluster_router::query_attempt(query_request request,
                                   reply_fn<engine::query::partial_result> reply, bool retried) {
  const auto table = table_.load();
  const std::uint32_t count = table->partition_count;
  if (auto checked = check_partition_list(request.partitions, count); !checked) {
    return reply(checked.err());
  }
  auto plan = engine::query::plan::compile(request.query);
  if (!plan) return reply(plan.err());
  auto groups = group_by_owner(
      *table, request.partitions.empty() ? every_partition(count) : request.partitions);
  if (!groups) return reply(groups.err());
  auto owners = std::move(groups).value();
  auto gather = fan_in<engine::query::partial_result>::make(
      owners.size(),
      [this, request, reply = std::move(reply), plan = *plan,
       retried](std::vector<result<engine::query::partial_result>> parts) mutable {
        engine::query::partial_result merged;
        for (auto& part : parts) {
          if (!part) {
            auto e = part.err();
            if (e.code != errc::not_owner || retried || !refresh_) return reply(std::move(e));
            return refresh_(
                [this, request = std::move(request), reply = std::move(reply)]() mutable {
                  query_attempt(std::move(request), std::move(reply), true);
                });
          }
          if (auto s = engine::query::merge(merged, std::move(part).value(), *plan); !s) {
            return reply(s.err());
          }
        }
        reply(std::move(merged));
      });
  for (std::size_t i = 0; i < owners.size(); ++i) {
    query_request part{request.query, owners[i].partitions, request.allow_partial,
                       request.timeout_ms, request.cancel};
    owners[i].handler->query(std::move(part), gather->slot(i));
  }
}

}  // namespace annal::actors
