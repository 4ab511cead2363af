#include "actors/handoff.hpp"

#include <fmt/format.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <future>
#include <nlohmann/json.hpp>

#include "cluster/map_codec.hpp"
#include "cluster/placement.hpp"

namespace annal::actors {
namespace {

using clock_type = std::chrono::steady_clock;

// Calls `start(reply)` and waits for its reply, at most `timeout`.
template <class T, class Start>
result<T> await(Start start, std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<result<T>>>();
  auto future = promise->get_future();
  start([promise](result<T> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(timeout) != std::future_status::ready) {
    return error{errc::timeout, fmt::format("no reply within {} ms", timeout.count())};
  }
  return future.get();
}

std::string record_key(partition_id p) { return k_partition_prefix + std::to_string(p.value()); }

std::string record_json(const std::string& owner, std::uint64_t owner_epoch) {
  return nlohmann::json{{"owner", owner}, {"ownerEpoch", owner_epoch}, {"state", "serving"}}.dump();
}

bool owns(const std::vector<cluster::replica_set>& placement, std::uint32_t p,
          const std::string& id) {
  return p < placement.size() && !placement[p].empty() && placement[p].front() == id;
}

}  // namespace

handoff_manager::handoff_manager(handoff_options options, cluster::meta_store& store, node& local,
                                 membership& members)
    : options_(std::move(options)), store_(store), local_(local), members_(members) {}

handoff_manager::~handoff_manager() { stop(); }

void handoff_manager::start() {
  thread_ = std::thread([this] { run(); });
}

void handoff_manager::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void handoff_manager::on_map_applied(const cluster::cluster_map&) {
  {
    std::lock_guard lock(mu_);
    map_changed_ = true;
  }
  wake_.notify_all();
}

std::uint64_t handoff_manager::completed_moves() const {
  std::lock_guard lock(mu_);
  return completed_;
}

std::chrono::microseconds handoff_manager::longest_pause() const {
  std::lock_guard lock(mu_);
  return longest_pause_;
}

// --- source side ---

void handoff_manager::ship_log(partition_id p, lsn from, std::size_t max_bytes,
                               reply_fn<engine::shipped_batch> reply) {
  local_.ship_log(p, from, max_bytes, std::move(reply));
}

void handoff_manager::seal(partition_id p, std::chrono::milliseconds hold_for,
                           reply_fn<lsn> reply) {
  // The deadline is set before the seal so that it covers the seal from its
  // first moment; a seal refused because one is running keeps that one's.
  bool inserted = false;
  {
    std::lock_guard lock(mu_);
    inserted = seals_.try_emplace(p.value(), clock_type::now() + hold_for).second;
  }
  local_.seal(p, [this, p, inserted, reply = std::move(reply)](result<lsn> r) {
    if (!r && inserted) {
      std::lock_guard lock(mu_);
      seals_.erase(p.value());
    }
    reply(std::move(r));
  });
}

void handoff_manager::unseal(partition_id p, reply_fn<lsn> reply) {
  {
    std::lock_guard lock(mu_);
    seals_.erase(p.value());
  }
  local_.unseal(p, std::move(reply));
}

// --- worker ---

void handoff_manager::run() {
  pthread_setname_np(pthread_self(), "annal-handoff");
  while (true) {
    bool changed = false;
    {
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, std::chrono::milliseconds(200),
                     [&] { return stopping_ || map_changed_; });
      if (stopping_) return;
      changed = std::exchange(map_changed_, false);
    }
    end_expired_seals();
    const auto map = members_.current_map();
    if (!map) continue;
    if (changed) delete_stale_copies(*map);
    // Pending moves change only with the map, or when a failed one is due
    // again: an idle pass computes no placement.
    if (!changed && failed_.empty()) continue;

    const auto actual = cluster::placement(*map);
    const auto wanted = cluster::targets(*map);
    const auto now = clock_type::now();
    for (std::uint32_t p = 0; p < map->partition_count; ++p) {
      if (actual[p].empty() || wanted[p].empty() || actual[p] == wanted[p]) continue;
      if (wanted[p].front() != options_.node_id || actual[p].front() == options_.node_id) continue;
      if (auto it = failed_.find(p); it != failed_.end() && it->second > now) continue;
      if (move(partition_id{p}, actual[p].front(), wanted[p])) {
        failed_.erase(p);
      } else {
        failed_[p] = clock_type::now() + options_.retry_after;
      }
      break;  // one move per pass: the next pass sees the map it produced
    }
  }
}

bool handoff_manager::move(partition_id p, const std::string& source,
                           const cluster::replica_set& target) {
  const auto timeout = options_.call_timeout;
  const auto table = members_.router().table();
  auto link = p.value() < table->owners.size()
                  ? std::dynamic_pointer_cast<peer>(table->owners[p.value()])
                  : nullptr;
  if (!link || table->owner_ids[p.value()] != source) {
    spdlog::debug("handoff: partition {}: no link to its owner {} yet", p.value(), source);
    return false;
  }
  auto failed = [&](std::string_view step, const error& e) {
    spdlog::warn("handoff: partition {} from {}: {} failed: {}", p.value(), source, step,
                 e.message);
    return false;
  };

  // 1. Copy while the source serves.
  auto end = await<lsn>([&](auto reply) { local_.partition_end(p, std::move(reply)); }, timeout);
  if (!end) return failed("reading the copy's end", end.err());
  const auto copy_started = clock_type::now();
  spdlog::info("handoff: partition {}: copying from {} (copy at lsn {})", p.value(), source,
               end->value());
  auto ship_until = [&](std::optional<lsn> until) -> result<lsn> {
    while (true) {
      auto batch = await<engine::shipped_batch>(
          [&](auto reply) { link->ship_log(p, *end, options_.batch_bytes, std::move(reply)); },
          timeout);
      if (!batch) return std::move(batch).err();
      const auto source_end = batch->source_end;
      if (!batch->bytes.empty()) {
        auto written = await<engine::shipped_write>(
            [&](auto reply) {
              local_.apply_shipped(p, std::move(batch).value(), std::move(reply));
            },
            timeout);
        if (!written) return std::move(written).err();
        *end = written->next;
      }
      if (until) {
        if (end->value() >= until->value()) return *end;
      } else if (source_end.value() <= end->value() + options_.seal_lag_bytes) {
        return *end;
      }
    }
  };
  if (auto copied = ship_until(std::nullopt); !copied) return failed("copying", copied.err());

  // 2. The record as it is before the seal: the commit succeeds only if the
  //    source has not fenced the handoff off since.
  auto record = read_record(p);
  if (!record) return failed("reading the partition record", record.err());
  if (record->mod_revision != 0 && record->owner != source) {
    return failed(
        "checking the partition record",
        error{errc::conflict, fmt::format("the record names {} as the owner", record->owner)});
  }

  // 3. The write pause: seal, ship the rest, commit.
  const auto sealed_at = clock_type::now();
  auto sealed =
      await<lsn>([&](auto reply) { link->seal(p, options_.hold_for, std::move(reply)); }, timeout);
  if (!sealed) return failed("sealing", sealed.err());
  auto abort = [&](std::string_view step, const error& e) {
    auto unsealed = await<lsn>([&](auto reply) { link->unseal(p, std::move(reply)); }, timeout);
    if (!unsealed) {
      spdlog::warn("handoff: partition {}: unseal failed ({}); {} ends the hold by itself",
                   p.value(), unsealed.err().message, source);
    }
    return failed(step, e);
  };
  if (auto rest = ship_until(*sealed); !rest) return abort("shipping the rest", rest.err());

  for (int attempt = 0; attempt < 8; ++attempt) {
    auto current = store_.range(k_map_key);
    if (!current) return abort("reading the map", current.err());
    if (current->kvs.empty()) {
      return abort("reading the map", error{errc::not_found, "no cluster map"});
    }
    auto map = cluster::map_from_json(current->kvs.front().value);
    if (!map) return abort("reading the map", map.err());
    if (!owns(cluster::placement(*map), p.value(), source)) {
      return abort("checking the map", error{errc::conflict,
                                             "the partition is no longer the "
                                             "source's"});
    }
    auto edited = *map;
    edited.overrides[p] = target;
    if (cluster::targets(edited)[p.value()] == target) edited.overrides.erase(p);
    edited.epoch = map->epoch + 1;
    const auto key = record_key(p);
    auto committed = store_.txn(
        {cluster::compare::mod_revision_is(k_map_key, cluster::compare::op::equal,
                                           current->kvs.front().mod_revision),
         record->mod_revision == 0 ? cluster::compare::missing(key)
                                   : cluster::compare::mod_revision_is(
                                         key, cluster::compare::op::equal, record->mod_revision)},
        {cluster::op::put(k_map_key, cluster::to_json(edited)),
         cluster::op::put(key, record_json(options_.node_id, record->owner_epoch + 1))},
        {});
    if (!committed) {
      // Outcome unknown: the source's hold deadline settles it (fence or map).
      return failed("committing", committed.err());
    }
    if (committed->succeeded) {
      const auto pause =
          std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - sealed_at);
      members_.adopt(edited);
      {
        std::lock_guard lock(mu_);
        ++completed_;
        longest_pause_ = std::max(longest_pause_, pause);
      }
      spdlog::info(
          "handoff: partition {} moved from {} to {} at epoch {} (owner epoch {}): {} bytes, "
          "{:.1f} ms in all, writes held {:.1f} ms",
          p.value(), source, options_.node_id, edited.epoch, record->owner_epoch + 1, end->value(),
          std::chrono::duration<double, std::milli>(clock_type::now() - copy_started).count(),
          pause.count() / 1000.0);
      return true;
    }
    auto now_record = read_record(p);
    if (!now_record) return abort("re-reading the partition record", now_record.err());
    if (now_record->mod_revision != record->mod_revision) {
      return abort("committing", error{errc::conflict, "the source fenced the handoff off"});
    }
    // Only the map changed (another move or an admin change): try again.
  }
  return abort("committing", error{errc::conflict, "the map kept changing"});
}

void handoff_manager::end_expired_seals() {
  std::vector<std::uint32_t> expired;
  {
    std::lock_guard lock(mu_);
    const auto now = clock_type::now();
    for (const auto& [p, deadline] : seals_) {
      if (deadline <= now) expired.push_back(p);
    }
  }
  if (expired.empty()) return;
  const auto map = members_.current_map();
  for (auto p : expired) {
    if (!map || !owns(cluster::placement(*map), p, options_.node_id)) {
      std::lock_guard lock(mu_);
      seals_.erase(p);  // moved away: the map apply turned the held requests away
      continue;
    }
    auto record = read_record(partition_id{p});
    if (!record) continue;  // the store is unreachable: stay sealed, try again
    if (record->mod_revision != 0 && record->owner != options_.node_id) {
      // The copy committed: apply the map that says so.
      auto current = store_.range(k_map_key);
      if (current && !current->kvs.empty()) {
        if (auto m = cluster::map_from_json(current->kvs.front().value)) members_.adopt(*m);
      }
      continue;
    }
    const auto key = record_key(partition_id{p});
    auto fenced = store_.txn(
        {record->mod_revision == 0 ? cluster::compare::missing(key)
                                   : cluster::compare::mod_revision_is(
                                         key, cluster::compare::op::equal, record->mod_revision)},
        {cluster::op::put(key, record_json(options_.node_id, record->owner_epoch + 1))}, {});
    if (!fenced || !fenced->succeeded) continue;
    spdlog::warn(
        "handoff: partition {}: the copy did not finish within the hold; fenced at "
        "owner epoch {}, serving again",
        p, record->owner_epoch + 1);
    {
      std::lock_guard lock(mu_);
      seals_.erase(p);
    }
    local_.unseal(partition_id{p}, [](result<lsn>) {});
  }
}

void handoff_manager::delete_stale_copies(const cluster::cluster_map& map) {
  const auto actual = cluster::placement(map);
  const auto wanted = cluster::targets(map);
  for (std::uint32_t p = 0; p < map.partition_count; ++p) {
    if (owns(actual, p, options_.node_id) || owns(wanted, p, options_.node_id)) continue;
    auto end =
        await<lsn>([&](auto reply) { local_.partition_end(partition_id{p}, std::move(reply)); },
                   options_.call_timeout);
    if (!end || end->value() == 0) continue;
    // Only a copy whose partition the store says moved to another node.
    auto record = read_record(partition_id{p});
    if (!record || record->mod_revision == 0 || record->owner == options_.node_id) continue;
    auto cleared =
        await<lsn>([&](auto reply) { local_.clear_partition(partition_id{p}, std::move(reply)); },
                   options_.call_timeout);
    if (!cleared) {
      spdlog::warn("handoff: partition {}: deleting this node's old copy failed: {}", p,
                   cleared.err().message);
    }
  }
}

result<handoff_manager::partition_record> handoff_manager::read_record(partition_id p) {
  auto found = store_.range(record_key(p));
  if (!found) return std::move(found).err();
  partition_record record;
  if (found->kvs.empty()) return record;
  const auto& kv = found->kvs.front();
  auto parsed = nlohmann::json::parse(kv.value, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("owner") ||
      !parsed["owner"].is_string() || !parsed.contains("ownerEpoch") ||
      !parsed["ownerEpoch"].is_number_unsigned()) {
    return error{errc::corruption,
                 fmt::format("partition record {} is not valid: {}", kv.key, kv.value)};
  }
  record.owner = parsed["owner"].get<std::string>();
  record.owner_epoch = parsed["ownerEpoch"].get<std::uint64_t>();
  record.mod_revision = kv.mod_revision;
  return record;
}

}  // namespace annal::actors
