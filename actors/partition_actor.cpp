#include "actors/partition_actor.hpp"

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include <caf/skip.hpp>

namespace annal::actors {
namespace {

engine::error shutting_down_error() {
  return {engine::errc::shutting_down, "the node stopped before the write was durable"};
}

std::uint64_t event_bytes(const std::vector<engine::event_input>& events) {
  std::uint64_t bytes = 0;
  for (const auto& e : events) bytes += e.type.size() + e.data.size() + e.metadata.size();
  return bytes;
}

}  // namespace

partition_actor::partition_actor(caf::actor_config& config, partition_context context)
    : caf::event_based_actor(config),
      context_(context),
      partition_(*context.partition),
      wal_(*context.wal),
      metrics_(*context.metrics),
      id_(context.partition->id()),
      acks_(context.commit->acks(context.partition->id())),
      queries_(id_) {}

caf::behavior partition_actor::make_behavior() {
  return {
      [this](append_msg& m) {
        if (!gated(m, &partition_actor::on_append)) on_append(m);
      },
      [this](read_msg& m) {
        if (!gated(m, &partition_actor::on_read)) on_read(m);
      },
      [this](read_last_msg& m) {
        if (!gated(m, &partition_actor::on_read_last)) on_read_last(m);
      },
      [this](stream_info_msg& m) {
        if (!gated(m, &partition_actor::on_stream_info)) on_stream_info(m);
      },
      [this](set_metadata_msg& m) {
        if (!gated(m, &partition_actor::on_set_metadata)) on_set_metadata(m);
      },
      [this](delete_stream_msg& m) {
        if (!gated(m, &partition_actor::on_delete_stream)) on_delete_stream(m);
      },
      [this](put_snapshot_msg& m) {
        if (!gated(m, &partition_actor::on_put_snapshot)) on_put_snapshot(m);
      },
      [this](get_snapshot_msg& m) {
        if (!gated(m, &partition_actor::on_get_snapshot)) on_get_snapshot(m);
      },
      [this](read_all_msg& m) {
        if (!gated(m, &partition_actor::on_read_all)) on_read_all(m);
      },
      [this](wait_msg& m) {
        if (!gated(m, &partition_actor::on_wait)) on_wait(m);
      },
      [this](wait_sweep_atom) { sweep_waits(); },
      [this](query_msg& m) {
        if (!gated(m, &partition_actor::on_query)) on_query(m);
      },
      [this](const query_step_msg& m) { on_query_step(m); },
      [this](stats_msg& m) {
        catch_up();
        m.reply(stats_of(partition_));
      },
      [this](const set_owned_msg& m) { on_set_owned(m); },
      [this](ship_log_msg& m) {
        catch_up();
        m.reply(partition_.ship_from(m.from, m.max_bytes));
      },
      [this](apply_shipped_msg& m) { on_apply_shipped(m); },
      [this](seal_msg& m) { on_seal(m); },
      [this](unseal_msg& m) { on_unseal(m); },
      [this](end_msg& m) {
        catch_up();
        m.reply(partition_.end());
      },
      [this](clear_msg& m) { on_clear(m); },
      [this](durable_atom) { release_ready(); },
      [this](tick_atom) {
        catch_up();
        maybe_checkpoint();
      },
      [this](checkpoint_go_atom) { begin_checkpoint(); },
      [this](checkpoint_done_msg& m) { finish_checkpoint(m); },
      [this](drain_msg& m) {
        stopping_ = true;
        // Held requests were never applied: they fail cleanly.
        end_seal(engine::error{engine::errc::shutting_down, "the node is stopping"});
        queries_.fail_all(engine::error{engine::errc::shutting_down, "the node is stopping"});
        fail_waits(engine::error{engine::errc::shutting_down, "the node is stopping"});
        release_ready();
        m.latch->count_down();
      },
      [this](final_msg& m) {
        end_seal(engine::error{engine::errc::shutting_down, "the node is stopping"});
        fail_waits(engine::error{engine::errc::shutting_down, "the node is stopping"});
        catch_up();
        acks_.release(wal_.durable_position());
        if (m.failure) {
          fail_all(*m.failure);
        } else if (const auto n = acks_.fail_all(shutting_down_error()); n != 0) {
          spdlog::error("partition {}: {} writes not covered by the final sync", id_.value(), n);
        }
        quit();
      },
  };
}

template <class Msg>
bool partition_actor::gated(Msg& m, void (partition_actor::*serve)(Msg&)) {
  catch_up();
  if (!owned_) {
    fail(m.reply, engine::error{engine::errc::not_owner,
                                fmt::format("partition {} is not served by this node; it moved "
                                            "to another node",
                                            id_.value())});
    return true;
  }
  if (!sealed_) return false;
  auto held = std::make_shared<Msg>(std::move(m));
  parked_.push_back(parked_request{[this, held, serve] { (this->*serve)(*held); },
                                   [this, held](const engine::error& e) { fail(held->reply, e); }});
  return true;
}

void partition_actor::on_read_last(read_last_msg& m) {
  auto page = partition_.read_last(m.stream);
  if (!page) return fail(m.reply, page.err());
  count_read(*page);
  m.reply(std::move(page));
}

void partition_actor::on_stream_info(stream_info_msg& m) {
  auto info = partition_.get_stream_info(m.stream);
  if (!info) return fail(m.reply, info.err());
  m.reply(std::move(info));
}

void partition_actor::on_set_metadata(set_metadata_msg& m) {
  on_write(partition_.set_metadata(m.stream, m.metadata), m.reply);
}

void partition_actor::on_delete_stream(delete_stream_msg& m) {
  on_write(partition_.delete_stream(m.stream, m.expected, m.tombstone), m.reply);
}

void partition_actor::on_put_snapshot(put_snapshot_msg& m) {
  on_write(partition_.put_snapshot(m.stream, m.version, m.payload), m.reply);
}

void partition_actor::on_get_snapshot(get_snapshot_msg& m) {
  auto snapshot = partition_.get_snapshot(m.stream);
  if (!snapshot) return fail(m.reply, snapshot.err());
  m.reply(std::move(snapshot));
}

void partition_actor::on_read_all(read_all_msg& m) {
  if (m.from_end) {
    read_all_part end;
    end.next.emplace_back(id_, make_all_position(partition_.visible_end(), 0));
    end.at_end = true;
    return m.reply(std::move(end));
  }
  auto part = read_partition_all(partition_, m.from, m.limit, m.max_bytes);
  if (!part) return fail(m.reply, part.err());
  std::uint64_t bytes = 0;
  for (const auto& e : part->events) {
    bytes += e.event.type.size() + e.event.data.size() + e.event.metadata.size();
  }
  metrics_.read_events.fetch_add(part->events.size(), std::memory_order_relaxed);
  metrics_.read_bytes.fetch_add(bytes, std::memory_order_relaxed);
  m.reply(std::move(part));
}

void partition_actor::on_query(query_msg& m) {
  const auto scan = queries_.start(partition_, std::move(m.plan), std::move(m.budget),
                                   std::move(m.reply));
  on_query_step(query_step_msg{scan});
}

// One step, then the rest later: requests that arrived meanwhile go first.
void partition_actor::on_query_step(const query_step_msg& m) {
  if (queries_.step(partition_, m.scan)) send(this, query_step_msg{m.scan});
}

void partition_actor::on_set_owned(const set_owned_msg& m) {
  if (owned_ == m.owned) return;
  owned_ = m.owned;
  if (!owned_) {
    queries_.fail_all(engine::error{engine::errc::not_owner,
                                    fmt::format("partition {} moved to another node during the "
                                                "query",
                                                id_.value())});
    end_seal(engine::error{engine::errc::not_owner,
                           fmt::format("partition {} moved to another node while this request "
                                       "waited for the handoff",
                                       id_.value())});
    fail_waits(engine::error{engine::errc::not_owner,
                             fmt::format("partition {} moved to another node", id_.value())});
  }
  spdlog::debug("partition {}: {} on this node", id_.value(), owned_ ? "served" : "not served");
}

void partition_actor::on_apply_shipped(apply_shipped_msg& m) {
  catch_up();
  if (owned_) {
    return fail(m.reply, engine::error{engine::errc::invalid_argument,
                                       fmt::format("partition {} is served by this node: only a "
                                                   "copy being built takes shipped records",
                                                   id_.value())});
  }
  auto r = partition_.apply_shipped(m.batch);
  if (!r) return fail(m.reply, r.err());
  hold(r->durable_after, durable_acks::held_shipped{std::move(m.reply), *r});
}

void partition_actor::on_seal(seal_msg& m) {
  catch_up();
  if (!owned_) {
    return fail(m.reply, engine::error{engine::errc::not_owner,
                                       fmt::format("partition {} is not served by this node",
                                                   id_.value())});
  }
  if (sealed_) {
    return fail(m.reply, engine::error{engine::errc::invalid_argument,
                                       fmt::format("partition {} is sealed already", id_.value())});
  }
  sealed_ = true;
  seal_reply_ = std::move(m.reply);
  spdlog::debug("partition {}: sealed for a handoff", id_.value());
  maybe_reply_seal();
}

void partition_actor::on_unseal(unseal_msg& m) {
  catch_up();
  if (sealed_) spdlog::debug("partition {}: unsealed", id_.value());
  end_seal(std::nullopt);
  m.reply(partition_.end());
}

void partition_actor::on_clear(clear_msg& m) {
  if (checkpoint_running_) {
    clears_after_checkpoint_.push_back(std::move(m));
    return;
  }
  catch_up();
  if (owned_ || !acks_.empty()) {
    const char* why = owned_ ? "this node serves it" : "writes are in flight";
    return fail(m.reply, engine::error{engine::errc::invalid_argument,
                                       fmt::format("partition {} cannot be cleared: {}",
                                                   id_.value(), why)});
  }
  if (auto s = partition_.clear(); !s) return fail(m.reply, s.err());
  spdlog::info("partition {}: copy deleted (the partition is served by another node)",
               id_.value());
  m.reply(partition_.end());
}

void partition_actor::end_seal(const std::optional<engine::error>& failure) {
  if (seal_reply_) {
    auto reply = std::move(*seal_reply_);
    seal_reply_.reset();
    reply(engine::error{failure ? failure->code : engine::errc::invalid_argument,
                        "the seal ended before the partition's writes were durable"});
  }
  if (!sealed_) return;
  sealed_ = false;
  auto parked = std::move(parked_);
  parked_.clear();
  for (auto& p : parked) {
    if (failure) {
      p.fail(*failure);
    } else {
      p.serve();
    }
  }
}

void partition_actor::maybe_reply_seal() {
  if (!seal_reply_) return;
  if (!acks_.empty()) {
    listen_for_releases();
    if (!acks_.empty()) return;
  }
  auto reply = std::move(*seal_reply_);
  seal_reply_.reset();
  reply(partition_.end());
}

void partition_actor::on_append(append_msg& m) {
  auto& request = m.request;
  auto r = partition_.append(request.stream, request.expected, request.events);
  if (!r) {
    metrics_.append_seconds.observe(
        std::chrono::duration<double>(request_clock::now() - m.received).count());
    return fail(m.reply, r.err());
  }
  if (!r->duplicate) {
    metrics_.appended_events.fetch_add(request.events.size(), std::memory_order_relaxed);
    metrics_.appended_bytes.fetch_add(event_bytes(request.events), std::memory_order_relaxed);
  }
  hold(r->durable_after,
       durable_acks::held_append{
           std::move(m.reply),
           append_reply{r->first_version, r->last_version, r->position, id_, r->duplicate},
           m.received});
}

void partition_actor::on_read(read_msg& m) {
  const auto& request = m.request;
  stream_version from = request.from;
  auto direction = request.direction;
  if (request.from_end) {
    direction = engine::read_direction::backward;
    auto info = partition_.get_stream_info(request.stream);
    if (!info) return fail(m.reply, info.err());
    if (info->last_version) from = *info->last_version;
  }
  auto page = partition_.read_stream(request.stream, from, request.limit, direction);
  if (!page) return fail(m.reply, page.err());
  count_read(*page);
  m.reply(std::move(page));
}

void partition_actor::on_write(engine::result<engine::write_result> r,
                               reply_fn<write_reply>& reply) {
  if (!r) return fail(reply, r.err());
  hold(r->durable_after, durable_acks::held_write{std::move(reply), write_reply{r->position, id_}});
}

void partition_actor::hold(node_log_position after, durable_acks::held reply) {
  // durable_after 0: an idempotent retry of a write that is already durable
  // and visible; it is answered at once, even behind waiting writes.
  if (after.value() == 0) return acks_.answer_now(std::move(reply));
  if (acks_.hold(after, std::move(reply), wal_.durable_position())) {
    context_.commit->wait_for_sync(id_);
  } else {
    // A round of other partitions' writes covered it already; no round will
    // tell this partition, so make it visible (and wake waits) here.
    catch_up();
  }
  maybe_checkpoint();
}

void partition_actor::catch_up() {
  const lsn visible = partition_.visible_end();
  partition_.advance_durable(wal_.durable_position());
  if (partition_.visible_end() != visible) wake_waits();
}

void partition_actor::release_ready() {
  catch_up();
  // Writes an earlier round made durable are acknowledged even if a later
  // round failed; only the rest fail.
  if (acks_.release(wal_.durable_position()) && context_.commit->failed()) {
    fail_all(context_.commit->failure());
  }
  maybe_reply_seal();
  if (waits_.empty() && !seal_reply_) acks_.listen(false);
  maybe_checkpoint();
}

void partition_actor::listen_for_releases() {
  if (acks_.listening()) return;
  acks_.listen(true);
  // Pairs with the fence in group_commit::round(): a round that released
  // before it did not send a durable_atom, so catch up with it here.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  catch_up();
}

void partition_actor::fail_all(const engine::error& e) {
  acks_.fail_all(e);
  if (seal_reply_) {
    auto reply = std::move(*seal_reply_);
    seal_reply_.reset();
    reply(e);
  }
  // The handoff cannot go on: serve what the seal held (writes then fail
  // with the node log's sticky error, reads are answered).
  end_seal(std::nullopt);
}

void partition_actor::maybe_checkpoint() {
  if (checkpoint_requested_ || checkpoint_failed_ || stopping_ || !partition_.checkpoint_due() ||
      std::chrono::steady_clock::now() < checkpoint_retry_at_) {
    return;
  }
  checkpoint_requested_ = true;
  context_.checkpoints->request(id_);
}

void partition_actor::begin_checkpoint() {
  context_.checkpoints->hand_over(&partition_);
  set_default_handler(caf::skip);
  become(caf::keep_behavior, [this](checkpoint_begun_atom) {
    set_default_handler(caf::print_and_drop);
    unbecome();
    checkpoint_running_ = true;
  });
}

void partition_actor::finish_checkpoint(checkpoint_done_msg& m) {
  checkpoint_running_ = false;
  checkpoint_requested_ = false;
  engine::status finished = m.failure ? engine::status{*m.failure} : engine::status{};
  bool retryable = false;
  if (m.job) {
    retryable = m.job->retryable();
    finished = partition_.finish_checkpoint(std::move(*m.job), std::move(finished));
  }
  if (!finished) {
    metrics_.checkpoint_failures.fetch_add(1, std::memory_order_relaxed);
    if (!m.failure) {
      spdlog::error("partition {}: checkpoint failed: {}", id_.value(), finished.err().message);
    }
    if (retryable) {
      // Storing the file failed (a full disk, say): the node log keeps
      // everything meanwhile, and the next checkpoint writes a new file.
      spdlog::warn("partition {}: retrying the checkpoint in {} ms", id_.value(),
                   checkpoint_backoff_.count());
      checkpoint_retry_at_ = std::chrono::steady_clock::now() + checkpoint_backoff_;
      checkpoint_backoff_ = std::min(2 * checkpoint_backoff_, k_last_checkpoint_retry);
    } else {
      // A failed sync is sticky: never retried.
      checkpoint_failed_ = true;
    }
  } else {
    checkpoint_backoff_ = k_first_checkpoint_retry;
  }
  for (auto& clear : std::exchange(clears_after_checkpoint_, {})) on_clear(clear);
  // The checkpoint synced the node log: replies may be due.
  release_ready();
}

void partition_actor::on_wait(wait_msg& m) {
  if (position_record(m.from) < partition_.visible_end()) return m.reply(wake_reason::ready);
  const auto now = request_clock::now();
  if (m.deadline <= now) return m.reply(wake_reason::timeout);
  const std::uint64_t key = m.watch != 0 ? m.watch : (std::uint64_t{1} << 63) | ++anonymous_waits_;
  if (auto it = waits_.find(key); it != waits_.end()) {
    // Only the newest round of a reader waits; the older is answered at once.
    if (m.watch != 0 && it->second.seq >= m.seq) return m.reply(wake_reason::superseded);
    auto older = std::move(it->second.reply);
    waits_.erase(it);
    older(wake_reason::superseded);
  }
  waits_.emplace(key, parked_wait{m.seq, m.from, m.deadline, std::move(m.reply)});
  schedule_sweep(m.deadline);
  listen_for_releases();
}

void partition_actor::wake_waits() {
  if (waits_.empty()) return;
  const lsn visible = partition_.visible_end();
  for (auto it = waits_.begin(); it != waits_.end();) {
    if (position_record(it->second.from) < visible) {
      auto reply = std::move(it->second.reply);
      it = waits_.erase(it);
      reply(wake_reason::ready);
    } else {
      ++it;
    }
  }
}

void partition_actor::sweep_waits() {
  sweep_at_.reset();
  const auto now = request_clock::now();
  std::optional<request_clock::time_point> next;
  for (auto it = waits_.begin(); it != waits_.end();) {
    if (it->second.deadline <= now) {
      auto reply = std::move(it->second.reply);
      it = waits_.erase(it);
      reply(wake_reason::timeout);
    } else {
      if (!next || it->second.deadline < *next) next = it->second.deadline;
      ++it;
    }
  }
  if (next) schedule_sweep(*next);
}

void partition_actor::schedule_sweep(request_clock::time_point at) {
  if (sweep_at_ && *sweep_at_ <= at) return;
  sweep_at_ = at;
  // One millisecond late rather than early: the sweep then finds it due.
  const auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(
                         at - request_clock::now()) +
                     std::chrono::milliseconds(1);
  delayed_send(this, std::max(delay, std::chrono::milliseconds(1)), wait_sweep_atom::value);
}

void partition_actor::fail_waits(const engine::error& e) {
  auto waits = std::move(waits_);
  waits_.clear();
  for (auto& [key, w] : waits) w.reply(e);
}

void partition_actor::count_read(const engine::read_page& page) {
  std::uint64_t bytes = 0;
  for (const auto& e : page.events) bytes += e.type.size() + e.data.size() + e.metadata.size();
  metrics_.read_events.fetch_add(page.events.size(), std::memory_order_relaxed);
  metrics_.read_bytes.fetch_add(bytes, std::memory_order_relaxed);
}

}  // namespace annal::actors
