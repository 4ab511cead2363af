#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "tests/support/test_rng.hpp"

// Writers that append to a node over the binary protocol until their
// connection fails, recording what was attempted and what was acknowledged;
// and the check that a (restarted) node holds every acknowledged event with
// dense versions, no duplicate ids and nothing that was never attempted.
// Header-only.
namespace annal::testing {

class write_load {
 public:
  static constexpr int k_streams = 8;

  static std::string stream(int i) { return "crash-" + std::to_string(i); }

  // Starts `writers` threads, each with its own connection to `port`.
  void start(std::uint16_t port, int writers, std::uint64_t seed) {
    stop_ = false;
    for (int w = 0; w < writers; ++w) {
      threads_.emplace_back([this, port, w, seed] { run(port, seed * 1000 + w); });
    }
  }

  // Joins the writers; they end when their connection fails or stop() was called.
  void join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  void stop() { stop_ = true; }

  std::uint64_t acknowledged() const { return acked_count_.load(); }

  // Reads every stream from `c` and checks the invariants. Returns the number
  // of events found.
  std::uint64_t verify(client::client& c) {
    std::lock_guard lock(mu_);
    std::set<event_id> seen;
    std::uint64_t found = 0;
    for (int s = 0; s < k_streams; ++s) {
      std::map<std::uint64_t, event_id> stored;
      actors::read_request r;
      r.stream = stream(s);
      r.limit = 1000;
      while (true) {
        auto page = c.read(r);
        if (!page.ok()) {
          EXPECT_EQ(page.err().code, engine::errc::stream_not_found) << page.err().message;
          break;
        }
        for (const auto& e : page->events) {
          EXPECT_EQ(e.version.value(), stored.size()) << r.stream << ": versions not dense";
          stored.emplace(e.version.value(), e.id);
          EXPECT_TRUE(seen.insert(e.id).second) << r.stream << ": an event id appears twice";
          EXPECT_TRUE(attempted_.count(e.id)) << r.stream << ": an event that was never appended";
          ++found;
        }
        if (!page->next) break;
        r.from = *page->next;
      }
      for (const auto& [version, id] : acked_[s]) {
        auto it = stored.find(version);
        if (it == stored.end()) {
          ADD_FAILURE() << r.stream << ": acknowledged version " << version << " lost";
          continue;
        }
        EXPECT_EQ(it->second, id) << r.stream << ": acknowledged version " << version
                                  << " holds another event";
      }
    }
    return found;
  }

 private:
  void run(std::uint16_t port, std::uint64_t seed) {
    client::client_options options;
    options.port = port;
    options.request_timeout = std::chrono::seconds(30);
    auto connected = client::client::connect(options);
    if (!connected) return;  // the node may already be gone
    auto& c = **connected;
    test_rng rng(seed);
    while (!stop_) {
      const int s = static_cast<int>(rng.below(k_streams));
      actors::append_request request;
      request.stream = stream(s);
      const auto n = 1 + rng.below(3);
      {
        std::lock_guard lock(mu_);
        for (std::uint64_t i = 0; i < n; ++i) {
          engine::event_input e;
          for (auto& b : e.id) b = static_cast<std::uint8_t>(rng.below(256));
          e.id[0] |= 1;  // never nil
          e.type = "Crash";
          e.data = std::to_string(seed) + ":" + std::to_string(i);
          attempted_.insert(e.id);
          request.events.push_back(std::move(e));
        }
      }
      auto ids = request.events;
      auto reply = c.append(std::move(request));
      if (!reply) return;
      std::lock_guard lock(mu_);
      for (std::uint64_t i = 0; i < n; ++i) {
        acked_[s][reply->first_version.value() + i] = ids[i].id;
      }
      acked_count_ += n;
    }
  }

  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::set<event_id> attempted_;                           // guarded by mu_
  std::map<std::uint64_t, event_id> acked_[k_streams];     // guarded by mu_
  std::atomic<std::uint64_t> acked_count_{0};
};

}  // namespace annal::testing
