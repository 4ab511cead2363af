#include "actors/query_scans.hpp"

namespace annal::actors {

void query_budget::fail(const engine::error& e) {
  std::lock_guard lock(mu_);
  if (!failure_) failure_ = e;
}

std::optional<engine::error> query_budget::failure() const {
  {
    std::lock_guard lock(mu_);
    if (failure_) return failure_;
  }
  if (cancel && cancel->load(std::memory_order_relaxed)) {
    return engine::error{engine::errc::connection_lost,
                         "the query's client went away before its answer"};
  }
  return std::nullopt;
}

std::uint64_t query_scans::start(engine::partition& partition,
                                 std::shared_ptr<const engine::query::plan> plan,
                                 std::shared_ptr<query_budget> budget,
                                 reply_fn<engine::query::partial_result> reply) {
  const std::uint64_t id = next_id_++;
  running_.emplace(id, running{engine::query::partition_scan(std::move(plan), id_,
                                                             partition.visible_end()),
                               std::move(budget), std::move(reply)});
  return id;
}

bool query_scans::step(engine::partition& partition, std::uint64_t id) {
  auto it = running_.find(id);
  if (it == running_.end()) return false;
  auto& r = it->second;
  // A sibling's failure ends this scan before it reads more.
  auto failure = r.budget->failure();
  if (!failure) {
    auto done = r.scan.step(partition, k_query_step_bytes, r.budget->limits, r.budget->usage);
    if (done && !*done) return true;
    if (!done) {
      failure = std::move(done.err());
      r.budget->fail(*failure);
    }
  }
  auto reply = std::move(r.reply);
  auto answer = failure ? result<engine::query::partial_result>(std::move(*failure))
                        : result<engine::query::partial_result>(r.scan.take());
  running_.erase(it);
  reply(std::move(answer));
  return false;
}

void query_scans::fail_all(const engine::error& e) {
  auto running = std::move(running_);
  running_.clear();
  for (auto& [id, r] : running) {
    r.budget->fail(e);
    r.reply(e);
  }
}

}  // namespace annal::actors
