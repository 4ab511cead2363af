#include "actors/cluster_router.hpp"

#include <fmt/format.h>

#include "engine/partitioning.hpp"

namespace annal::actors {
namespace {

const error& invalid_stream() {
  static const error e{errc::invalid_stream_id,
                       "a stream id is 1..256 bytes of valid UTF-8 without control characters"};
  return e;
}

// `x` itself on the last attempt, a copy when a retry may still need it.
template <class X>
X take(X& x, bool last) {
  return last ? std::move(x) : x;
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

 private:
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
  if (retried || !refresh_ || table->owner_ids[p] == table->self_id) {
    return send(owner, std::move(reply), true);
  }
  // A remote owner: on not_owner, bring the map up to date and retry once.
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

}  // namespace annal::actors
