#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/store.hpp"
#include "tests/support/event_factory.hpp"
#include "tests/support/manual_clock.hpp"
#include "tests/support/temp_dir.hpp"

// A GoogleTest fixture for partition semantics tests through engine::store:
// a store on real files in a fresh temp_dir, stamped by a manual_clock.
// Header-only so that it needs no build change.
//
// Owned by one test; not thread-safe. Derived fixtures adjust options_ in
// their constructor (SetUp opens the store with them).
namespace annal::testing {

// The value of `r`, or an exception naming `what` and the error, which
// GoogleTest reports as a failure of the test. For helpers that return a
// value (ASSERT_* only works in functions returning void).
template <class T>
T must(engine::result<T> r, std::string_view what) {
  if (!r) {
    std::string message(what);
    message += ": ";
    message += engine::errc_name(r.err().code);
    message += ": ";
    message += r.err().message;
    throw std::runtime_error(message);
  }
  return std::move(r).value();
}

inline void must(const engine::status& s, std::string_view what) {
  if (!s) {
    std::string message(what);
    message += ": ";
    message += engine::errc_name(s.err().code);
    message += ": ";
    message += s.err().message;
    throw std::runtime_error(message);
  }
}

// Versions of the events of a page, in page order.
inline std::vector<std::uint64_t> versions_of(const engine::read_page& page) {
  std::vector<std::uint64_t> out;
  for (const auto& e : page.events) out.push_back(e.version.value());
  return out;
}

// Data of the events of a page, in page order.
inline std::vector<std::string> data_of(const engine::read_page& page) {
  std::vector<std::string> out;
  for (const auto& e : page.events) out.emplace_back(e.data);
  return out;
}

// The data make_events gives event id `n`.
inline std::string data_for(std::uint64_t n) {
  std::string data = "{\"n\":";
  data += std::to_string(n);
  data += '}';
  return data;
}

class store_fixture : public ::testing::Test {
 protected:
  store_fixture() {
    options_.directory = dir_.path() + "/store";
    options_.partition_count = 4;
    options_.clock = &clock_;
  }

  void SetUp() override { open_store(); }

  // Opens the store in options_.directory with options_.
  void open_store() {
    store_ = must(engine::store::open(options_), "open store");
  }
  // A clean stop (store::close) and a new open with options_.
  void reopen() {
    must(store_->close(), "close store");
    store_.reset();
    open_store();
  }
  // Drops the store without close, as a process crash after the last sync
  // does, and opens it again: recovery replays the node log.
  void crash_and_reopen() {
    store_.reset();
    open_store();
  }

  engine::store& st() { return *store_; }
  engine::partition& partition_of(std::string_view stream) {
    return *must(store_->get(store_->partition_for(stream)), "get partition");
  }

  // `count` events with fresh ids (unique within the test) and data
  // data_for(id). The id of the first is next_id() before the call.
  std::vector<engine::event_input> fresh_events(std::size_t count,
                                                const std::string& type = "test-event") {
    auto events = make_events(next_id_, count, type);
    next_id_ += count;
    return events;
  }
  std::uint64_t next_id() const { return next_id_; }

  engine::result<engine::append_result> append(std::string_view stream,
                                               engine::expected_version expected,
                                               std::span<const engine::event_input> events) {
    return partition_of(stream).append(stream, expected, events);
  }
  // Appends and syncs; throws (failing the test) if the append fails.
  engine::append_result append_synced(std::string_view stream, engine::expected_version expected,
                                      std::span<const engine::event_input> events) {
    auto r = must(append(stream, expected, events), "append");
    must(store_->sync(), "sync");
    return r;
  }
  // Appends `count` fresh events one append (and one record) each, then syncs.
  // Returns the id of the first.
  std::uint64_t append_each_synced(std::string_view stream, std::size_t count,
                                   const std::string& type = "test-event") {
    const std::uint64_t first = next_id_;
    for (std::size_t i = 0; i < count; ++i) {
      const auto events = fresh_events(1, type);
      must(append(stream, engine::expected_version::any(), events), "append");
    }
    must(store_->sync(), "sync");
    return first;
  }

  engine::result<engine::read_page> read_forward(std::string_view stream, std::uint64_t from = 0,
                                                 std::size_t limit = 1000) {
    return partition_of(stream).read_stream(stream, stream_version{from}, limit,
                                            engine::read_direction::forward);
  }
  engine::result<engine::read_page> read_backward(std::string_view stream,
                                                  std::uint64_t from = UINT64_MAX,
                                                  std::size_t limit = 1000) {
    return partition_of(stream).read_stream(stream, stream_version{from}, limit,
                                            engine::read_direction::backward);
  }
  engine::stream_info info(std::string_view stream) {
    return must(partition_of(stream).get_stream_info(stream), "get_stream_info");
  }

  // A stream id other than `stream` that hashes to the same partition.
  std::string stream_in_partition_of(std::string_view stream, std::string_view stem = "other-") {
    const partition_id target = store_->partition_for(stream);
    for (int i = 0;; ++i) {
      std::string candidate(stem);
      candidate += std::to_string(i);
      if (candidate != stream && store_->partition_for(candidate) == target) return candidate;
    }
  }

  // Segment files (*.seg) of partition `p` on disk, sorted by name (= lsn).
  std::vector<std::string> segment_files(partition_id p) const {
    std::string dir = options_.directory + "/partitions/";
    const std::string number = std::to_string(p.value());
    dir.append(5 - std::min<std::size_t>(5, number.size()), '0');
    dir += number;
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.path().extension() == ".seg") names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  temp_dir dir_;
  manual_clock clock_;
  engine::store_options options_;
  std::unique_ptr<engine::store> store_;

 private:
  std::uint64_t next_id_ = 1;  // 0 would be the all-zero id
};

}  // namespace annal::testing
