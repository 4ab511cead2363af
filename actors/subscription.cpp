#include "actors/subscription.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <random>
#include <utility>

#include "engine/partitioning.hpp"

namespace annal::actors {
namespace {

using steady = std::chrono::steady_clock;

// A random non-zero key: long-polls of different subscriptions never
// replace each other.
std::uint64_t random_watch_key() {
  std::random_device rd;
  std::uint64_t key = 0;
  while (key == 0) key = (std::uint64_t{rd()} << 32) ^ rd();
  return key;
}

// Failures a later read may not meet: the partition moved (not_owner, then
// the router's map catches up), a node restarts, the cluster is busy.
bool retryable(errc code) {
  switch (code) {
    case errc::not_owner:
    case errc::node_unavailable:
    case errc::connection_lost:
    case errc::timeout:
    case errc::partition_unavailable:
    case errc::metadata_unavailable:
    case errc::overloaded:
    case errc::shutting_down:
      return true;
    default:
      return false;
  }
}

// A resume position against the ends of the log it is used on.
engine::status check_positions(const std::vector<all_position>& positions,
                               const std::vector<all_position>& ends) {
  if (positions.size() != ends.size()) {
    return error{errc::invalid_argument,
                 fmt::format("the resume position names {} partitions; the cluster has {} (a "
                             "position from another cluster?)",
                             positions.size(), ends.size())};
  }
  for (std::size_t p = 0; p < ends.size(); ++p) {
    if (position_record(positions[p]) > position_record(ends[p])) {
      return error{
          errc::invalid_argument,
          fmt::format("the resume position is past the end of partition {} (lsn {} > "
                      "{}): a position from another store?",
                      p, position_record(positions[p]).value(), position_record(ends[p]).value())};
    }
  }
  return {};
}

}  // namespace

std::shared_ptr<subscription> subscription::start(request_handler& handler,
                                                  subscription_request request,
                                                  subscription_options options,
                                                  subscription_callbacks callbacks,
                                                  schedule_fn schedule, node_metrics* metrics,
                                                  std::uint64_t credits) {
  auto s =
      std::make_shared<subscription>(private_tag{}, handler, std::move(request), std::move(options),
                                     std::move(callbacks), std::move(schedule), metrics, credits);
  s->resolve();
  return s;
}

subscription::subscription(private_tag, request_handler& handler, subscription_request request,
                           subscription_options options, subscription_callbacks callbacks,
                           schedule_fn schedule, node_metrics* metrics, std::uint64_t credits)
    : handler_(handler),
      request_(std::move(request)),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      schedule_(std::move(schedule)),
      metrics_(metrics),
      watch_(random_watch_key()),
      credits_(credits),
      backoff_(options_.initial_backoff) {}

subscription::~subscription() {
  // Owners cancel; this only keeps the gauges right if one did not.
  if (phase_ == phase::running && metrics_) {
    metrics_->subscriptions_open.fetch_sub(1, std::memory_order_relaxed);
    release_held(held_);
  }
}

// --- Start ---

void subscription::resolve() {
  // The ends of every partition come first (they also give the partition
  // count): a start at a stream version looks the version up afterwards, so
  // an event written in between is after the ends, never lost.
  read_all_request ends;
  ends.from_end = true;
  ends.limit = 1;
  handler_.read_all(std::move(ends), [self = shared_from_this()](result<read_all_page> page) {
    self->on_ends(std::move(page));
  });
}

void subscription::on_ends(result<read_all_page> page) {
  if (!page) return fail_start(std::move(page.err()));
  auto ends = std::move(page->next);
  const auto count = static_cast<std::uint32_t>(ends.size());
  if (count == 0) return fail_start(error{errc::invalid_argument, "the store has no partitions"});
  const auto& target = request_.target;
  const auto& from = request_.from;
  using start_kind = subscription_start::kind;
  if (from.what == start_kind::version && target.what != subscription_target::kind::stream) {
    return fail_start(
        error{errc::invalid_argument, "a start at a version needs a one-stream subscription"});
  }
  if (target.what == subscription_target::kind::stream) {
    if (!engine::valid_stream_id(target.name)) {
      return fail_start(error{errc::invalid_stream_id,
                              "a stream id is 1..256 bytes of UTF-8 without control characters"});
    }
    partitions_ = {engine::partition_for(target.name, count)};
    if (from.what == start_kind::start || from.what == start_kind::version) {
      // The record of the first event at or after the version; the events
      // of the stream before it in that record are filtered out.
      min_version_ = from.what == start_kind::start ? stream_version{0} : from.version;
      read_request read;
      read.stream = target.name;
      read.from = min_version_;
      read.limit = 1;
      return handler_.read(std::move(read), [self = shared_from_this(), ends = std::move(ends)](
                                                result<engine::read_page> first) mutable {
        self->on_stream_start(std::move(ends), std::move(first));
      });
    }
  }
  switch (from.what) {
    case start_kind::end:
      return begin(std::move(ends));
    case start_kind::position:
      if (auto checked = check_positions(from.positions, ends); !checked) {
        return fail_start(checked.err());
      }
      return begin(from.positions);
    default:
      return begin(std::vector<all_position>(count));
  }
}

void subscription::on_stream_start(std::vector<all_position> ends,
                                   result<engine::read_page> first) {
  auto positions = std::move(ends);
  if (first) {
    if (!first->events.empty()) {
      positions[partitions_.front().value()] = make_all_position(first->events.front().position, 0);
    }
  } else if (first.err().code != errc::stream_not_found &&
             first.err().code != errc::stream_deleted) {
    return fail_start(std::move(first.err()));
  }
  // Not there yet: its events at or after the version all come after the ends.
  begin(std::move(positions));
}

void subscription::begin(std::vector<all_position> positions) {
  {
    std::lock_guard lock(mu_);
    if (phase_ != phase::resolving) return;  // cancelled
    positions_ = positions;
    phase_ = phase::running;
    if (metrics_) metrics_->subscriptions_open.fetch_add(1, std::memory_order_relaxed);
  }
  // Called once, then let go (it may hold its owner alive until the start).
  if (auto started = std::exchange(callbacks_.started, nullptr)) started(std::move(positions));
  run();
}

void subscription::fail_start(error e) {
  {
    std::lock_guard lock(mu_);
    if (phase_ != phase::resolving) return;
    phase_ = phase::ended;
  }
  if (auto started = std::exchange(callbacks_.started, nullptr)) started(std::move(e));
}

// --- Reading ---

void subscription::grant(std::uint64_t credits) {
  {
    std::lock_guard lock(mu_);
    credits_ = credits > std::numeric_limits<std::uint64_t>::max() - credits_
                   ? std::numeric_limits<std::uint64_t>::max()
                   : credits_ + credits;
  }
  run();
}

void subscription::ack() {
  {
    std::lock_guard lock(mu_);
    release_held(held_);
    held_ = 0;
  }
  run();
}

void subscription::cancel() {
  std::lock_guard lock(mu_);
  if (phase_ == phase::ended) return;
  if (phase_ == phase::running && metrics_) {
    metrics_->subscriptions_open.fetch_sub(1, std::memory_order_relaxed);
  }
  phase_ = phase::ended;
  release_held(held_);
  held_ = 0;
}

std::size_t subscription::held_events() const {
  std::lock_guard lock(mu_);
  return held_;
}

void subscription::run() {
  std::unique_lock lock(mu_);
  if (running_) {
    again_ = true;
    return;
  }
  running_ = true;
  do {
    again_ = false;
    if (phase_ != phase::running || reading_ || held_ > 0 || credits_ == 0) continue;
    read_all_request read;
    read.from = positions_;
    read.limit = static_cast<std::size_t>(
        std::min<std::uint64_t>(credits_, std::max<std::size_t>(options_.page_events, 1)));
    read.partitions = partitions_;
    if (catching_up_one_by_one()) {
      read.partitions = {partition_id{static_cast<std::uint32_t>(catch_up_cursor_)}};
    }
    read.max_bytes = options_.page_bytes;
    if (live_) {
      read.wait_ms = static_cast<std::uint32_t>(options_.wait.count());
      read.watch = watch_;
      read.watch_seq = ++seq_;
    }
    reading_ = true;
    lock.unlock();
    // A reply given before read_all returns re-enters run(), which only
    // sets again_: this loop goes on instead of the stack growing.
    handler_.read_all(std::move(read), [self = shared_from_this()](result<read_all_page> page) {
      self->on_page(std::move(page));
    });
    lock.lock();
  } while (again_);
  running_ = false;
}

bool subscription::matches(const all_event& e) const {
  const auto& target = request_.target;
  switch (target.what) {
    case subscription_target::kind::stream:
      if (e.stream != target.name || e.event.version < min_version_) return false;
      break;
    case subscription_target::kind::category:
      if (stream_category(e.stream) != target.name) return false;
      break;
    case subscription_target::kind::all:
      break;
  }
  return !request_.where || request_.where(e);
}

void subscription::on_page(result<read_all_page> page) {
  std::unique_lock lock(mu_);
  reading_ = false;
  if (phase_ != phase::running) return;
  if (!page) return on_failure(lock, std::move(page.err()));
  failing_since_.reset();
  not_owner_in_a_row_ = 0;
  backoff_ = options_.initial_backoff;

  subscription_batch batch;
  batch.events = std::move(page->events);
  std::erase_if(batch.events, [this](const all_event& e) { return !matches(e); });
  batch.from = std::move(positions_);
  positions_ = std::move(page->next);
  if (catching_up_one_by_one()) {
    // The partition read is done for this round at its end, or after
    // k_catch_up_pages_per_partition pages (so that a partition written
    // faster than it is read cannot hold back the others).
    if (page->at_end || ++catch_up_pages_ >= k_catch_up_pages_per_partition) {
      ++catch_up_cursor_;
      catch_up_pages_ = 0;
    }
  } else {
    live_ = page->at_end;
    // Not at the end of every partition: another round one by one.
    if (!live_ && partitions_.empty()) catch_up_cursor_ = 0;
  }
  if (batch.events.empty()) {
    lock.unlock();
    return run();
  }
  batch.next = positions_;
  batch.buffers = std::move(page->buffers);
  const std::size_t n = batch.events.size();
  credits_ -= std::min<std::uint64_t>(n, credits_);
  held_ = n;
  if (metrics_) {
    metrics_->subscription_events.fetch_add(n, std::memory_order_relaxed);
    metrics_->subscription_held_events.fetch_add(n, std::memory_order_relaxed);
    auto seen = metrics_->subscription_held_events_max.load(std::memory_order_relaxed);
    while (n > seen && !metrics_->subscription_held_events_max.compare_exchange_weak(
                           seen, n, std::memory_order_relaxed)) {
    }
  }
  lock.unlock();
  if (callbacks_.events) callbacks_.events(std::move(batch));
}

void subscription::on_failure(std::unique_lock<std::mutex>& lock, error e) {
  const auto now = steady::now();
  if (!failing_since_) failing_since_ = now;
  not_owner_in_a_row_ = e.code == errc::not_owner ? not_owner_in_a_row_ + 1 : 0;
  if (!retryable(e.code) || now - *failing_since_ >= options_.give_up_after ||
      not_owner_in_a_row_ > options_.max_not_owner || !schedule_) {
    return end(lock, std::move(e));
  }
  const auto delay = backoff_;
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
  reading_ = true;  // the retry is pending
  lock.unlock();
  spdlog::debug("subscription: {} ({}); retrying in {} ms", e.message, engine::errc_name(e.code),
                delay.count());
  schedule_(delay, [weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self) return;
    {
      std::lock_guard relock(self->mu_);
      self->reading_ = false;
    }
    self->run();
  });
}

void subscription::end(std::unique_lock<std::mutex>& lock, error e) {
  phase_ = phase::ended;
  release_held(held_);
  held_ = 0;
  if (metrics_) metrics_->subscriptions_open.fetch_sub(1, std::memory_order_relaxed);
  lock.unlock();
  if (callbacks_.ended) callbacks_.ended(std::move(e));
}

void subscription::release_held(std::size_t n) {
  if (metrics_ && n > 0) metrics_->subscription_held_events.fetch_sub(n, std::memory_order_relaxed);
}

}  // namespace annal::actors
