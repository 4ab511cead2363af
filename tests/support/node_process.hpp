#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

// A real `annal` node process for integration tests: started with `annal dev`
// on port 0 for both servers, so the OS picks free loopback ports; the ports
// are read from the "annal: http ..." / "annal: binary ..." lines it prints
// before "annal: ready". Stopped (SIGKILL) and reaped on destruction.
// Owned by one test thread.
namespace annal::testing {

class node_process {
 public:
  // The path of the annal binary under test (set by the build: ANNAL_BINARY).
  static std::string binary();

  // Starts `annal <command> --data <data_dir> ...extra_args` (command: dev,
  // or start for a cluster node) on free loopback ports and waits for
  // "ready". Throws std::runtime_error (the test fails) if it exits or is not
  // ready within `deadline`, with its output in the message.
  node_process(std::string data_dir, std::vector<std::string> extra_args = {},
               std::chrono::seconds deadline = std::chrono::seconds(60),
               std::string command = "dev");
  ~node_process();

  node_process(const node_process&) = delete;
  node_process& operator=(const node_process&) = delete;

  std::uint16_t binary_port() const { return binary_port_; }
  std::uint16_t http_port() const { return http_port_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Sends SIGKILL and reaps the process.
  void kill();
  // Sends SIGTERM and waits up to `deadline` for the exit. Returns the exit
  // status (as from waitpid) or -1 on deadline (the process is then killed).
  // `took` receives how long the stop took.
  int terminate(std::chrono::milliseconds deadline, std::chrono::milliseconds* took = nullptr);

  // Everything the process printed on stdout and stderr so far.
  std::string output();

 private:
  void read_available(std::chrono::milliseconds wait);

  std::string data_dir_;
  pid_t pid_ = -1;
  int out_fd_ = -1;  // stdout and stderr, merged
  std::string output_;
  std::uint16_t binary_port_ = 0;
  std::uint16_t http_port_ = 0;
};

// `annal start` as node `id` of a cluster whose map lives in the etcd at
// `etcd_url`, formed once `bootstrap_expect` nodes registered.
std::unique_ptr<node_process> start_cluster_node(const std::string& data_dir,
                                                 const std::string& id,
                                                 const std::string& etcd_url,
                                                 std::uint32_t bootstrap_expect,
                                                 std::uint32_t partitions);

// Runs `annal args...` to completion (bounded by `deadline`), returning its
// exit code and stdout/stderr.
struct command_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};
command_result run_annal(const std::vector<std::string>& args, const std::string& stdin_text = "",
                         std::chrono::seconds deadline = std::chrono::seconds(60));

}  // namespace annal::testing
