#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "tests/support/temp_dir.hpp"

namespace annal::testing {

// A real single-member etcd (/usr/bin/etcd, or $ANNAL_ETCD_BINARY) on
// loopback for tests: free client and peer ports, its data directory and log
// in a temp_dir, readiness by polling GET /health. Killed (SIGKILL) and
// reaped by the destructor, and also if the test process dies
// (PR_SET_PDEATHSIG). stop() and restart() simulate an outage: restart keeps
// the ports and the data directory, so the data and the revision survive.
// Owned by one test thread; not thread-safe.
class etcd_process {
 public:
  // Starts etcd and waits until it is healthy. Throws std::runtime_error
  // (with etcd's log) if it is not ready within `ready_deadline`.
  explicit etcd_process(std::chrono::seconds ready_deadline = std::chrono::seconds(30));
  ~etcd_process();

  etcd_process(const etcd_process&) = delete;
  etcd_process& operator=(const etcd_process&) = delete;

  // "http://127.0.0.1:<client port>"
  std::string client_url() const;
  std::uint16_t client_port() const { return client_port_; }
  bool running() const { return pid_ > 0; }

  // SIGKILL (a crash, not a clean shutdown) and reap. No-op when stopped.
  void stop();
  // Starts it again on the same ports and data directory and waits until it
  // is healthy. Throws like the constructor.
  void restart();

  // What etcd logged so far.
  std::string log() const;

 private:
  // Spawns etcd; true once healthy, false if it exited (e.g. a port was
  // taken). Throws on deadline.
  bool start_and_wait();

  temp_dir dir_;
  std::chrono::seconds ready_deadline_;
  std::uint16_t client_port_ = 0;
  std::uint16_t peer_port_ = 0;
  pid_t pid_ = -1;
};

// A loopback TCP port that was free a moment ago (bound to port 0, then
// released).
std::uint16_t pick_free_port();

}  // namespace annal::testing
