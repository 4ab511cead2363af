#include "client/subscription.hpp"

#include <future>

namespace annal::client {

struct subscription::shared {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<actors::subscription_batch> batches;  // guarded by mu
  std::optional<engine::error> ended;              // guarded by mu
  bool unsubscribed = false;                       // guarded by mu
};

engine::result<std::unique_ptr<subscription>> subscription::open(
    client& c, net::wire_codec::subscribe_params params, std::uint32_t window) {
  if (window == 0) return engine::error{engine::errc::invalid_argument, "a window of 0 events"};
  auto s = std::make_unique<subscription>(private_tag{}, c, window);
  params.credits = window;
  auto started = std::make_shared<std::promise<engine::result<subscription_started>>>();
  auto future = started->get_future();
  subscription_handlers handlers;
  handlers.subscribed = [started](engine::result<subscription_started> r) {
    started->set_value(std::move(r));
  };
  handlers.events = [shared = s->shared_](actors::subscription_batch batch) {
    std::lock_guard lock(shared->mu);
    shared->batches.push_back(std::move(batch));
    shared->cv.notify_all();
  };
  handlers.ended = [shared = s->shared_](std::optional<engine::error> e) {
    std::lock_guard lock(shared->mu);
    if (e) {
      shared->ended = std::move(*e);
    } else {
      shared->unsubscribed = true;
    }
    shared->cv.notify_all();
  };
  c.async().subscribe(std::move(params), std::move(handlers));
  auto r = future.get();  // the connection answers every request (or times it out)
  if (!r) return r.err();
  s->id_ = r->id;
  s->position_ = std::move(r->position);
  return s;
}

subscription::subscription(private_tag, client& c, std::uint32_t window)
    : client_(c), window_(window), shared_(std::make_shared<shared>()) {}

subscription::~subscription() { close(); }

void subscription::close() {
  if (closed_ || id_ == 0) return;
  closed_ = true;
  client_.async().unsubscribe(id_);
}

engine::result<const actors::all_event*> subscription::next_view(
    std::chrono::milliseconds timeout) {
  // A loop only for a batch without events (the node sends none, but one
  // would still move the position).
  while (!current_ || current_index_ == current_->events.size()) {
    current_.reset();
    std::unique_lock lock(shared_->mu);
    const bool ready = shared_->cv.wait_for(lock, timeout, [&] {
      return !shared_->batches.empty() || shared_->ended || shared_->unsubscribed;
    });
    if (!shared_->batches.empty()) {
      current_ = std::move(shared_->batches.front());
      shared_->batches.pop_front();
      current_index_ = 0;
      if (current_->events.empty()) position_ = current_->next;
    } else if (shared_->ended) {
      return *shared_->ended;
    } else if (shared_->unsubscribed) {
      return engine::error{engine::errc::shutting_down, "the subscription was closed"};
    } else if (!ready) {
      return static_cast<const actors::all_event*>(nullptr);
    }
  }
  const auto& batch = *current_;
  const auto& e = batch.events[current_index_];
  // The resume position after e: only e's partition moved, except after
  // the batch's last event, where `next` also covers the filtered events
  // that followed it.
  if (++current_index_ == batch.events.size()) {
    position_ = batch.next;
  } else if (e.partition.value() < position_.size()) {
    position_[e.partition.value()] = e.after();
  }
  // Grant back what was taken once half the window is used: at most
  // `window` events are ever on their way or queued here.
  if (++taken_since_grant_ >= std::max<std::uint32_t>(window_ / 2, 1) && !closed_) {
    client_.async().grant_credits(id_, taken_since_grant_);
    taken_since_grant_ = 0;
  }
  return &e;
}

engine::result<std::optional<subscription_event>> subscription::next(
    std::chrono::milliseconds timeout) {
  auto view = next_view(timeout);
  if (!view) return view.err();
  if (*view == nullptr) return std::optional<subscription_event>{};
  const auto& e = **view;
  subscription_event out;
  out.stream = std::string(e.stream);
  out.partition = e.partition;
  out.index = e.index;
  out.id = e.event.id;
  out.type = std::string(e.event.type);
  out.data = std::string(e.event.data);
  out.metadata = std::string(e.event.metadata);
  out.version = e.event.version;
  out.timestamp = e.event.timestamp;
  out.position = e.event.position;
  out.after = position_;
  return std::optional<subscription_event>(std::move(out));
}

}  // namespace annal::client
