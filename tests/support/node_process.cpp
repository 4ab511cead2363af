#include "tests/support/node_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <regex>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace annal::testing {
namespace {

using steady = std::chrono::steady_clock;

std::vector<char*> argv_of(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

// Spawns `args` with stdin/stdout/stderr connected to the given fds.
pid_t spawn(std::vector<std::string> args, int in_fd, int out_fd, int err_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (in_fd >= 0) posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  auto argv = argv_of(args);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("posix_spawn " + args[0] + ": " + std::strerror(rc));
  return pid;
}

// Reads what is available on `fd` into `out` for up to `wait`. False at EOF.
bool drain(int fd, std::string& out, std::chrono::milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return true;
  char buffer[4096];
  const ssize_t n = ::read(fd, buffer, sizeof buffer);
  if (n <= 0) return false;
  out.append(buffer, static_cast<std::size_t>(n));
  return true;
}

}  // namespace

std::string node_process::binary() { return ANNAL_BINARY; }

node_process::node_process(std::string data_dir, std::vector<std::string> extra_args,
                           std::chrono::seconds deadline, std::string command)
    : data_dir_(std::move(data_dir)) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::vector<std::string> args{binary(),      command,          "--data", data_dir_,
                                "--http",      "127.0.0.1:0",  "--listen", "127.0.0.1:0",
                                "--log-level", "warn"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_ = spawn(args, -1, fds[1], fds[1]);
  ::close(fds[1]);
  out_fd_ = fds[0];

  static const std::regex http_line(R"(annal: http http://127\.0\.0\.1:(\d+))");
  static const std::regex binary_line(R"(annal: binary 127\.0\.0\.1:(\d+))");
  const auto until = steady::now() + deadline;
  while (output_.find("annal: ready") == std::string::npos) {
    if (steady::now() > until) {
      kill();
      throw std::runtime_error("annal did not get ready in time; output:\n" + output_);
    }
    if (!drain(out_fd_, output_, std::chrono::milliseconds(100))) {
      kill();
      throw std::runtime_error("annal exited before it was ready; output:\n" + output_);
    }
  }
  std::smatch m;
  if (std::regex_search(output_, m, http_line)) http_port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
  if (std::regex_search(output_, m, binary_line)) {
    binary_port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
  }
  if (http_port_ == 0 || binary_port_ == 0) {
    kill();
    throw std::runtime_error("annal printed no ports; output:\n" + output_);
  }
}

node_process::~node_process() {
  kill();
  if (out_fd_ >= 0) ::close(out_fd_);
}

void node_process::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

int node_process::terminate(std::chrono::milliseconds deadline, std::chrono::milliseconds* took) {
  if (pid_ <= 0) return -1;
  const auto began = steady::now();
  ::kill(pid_, SIGTERM);
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      if (took) {
        *took = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - began);
      }
      return status;
    }
    if (steady::now() - began > deadline) {
      kill();
      return -1;
    }
    read_available(std::chrono::milliseconds(5));
  }
}

void node_process::read_available(std::chrono::milliseconds wait) {
  if (out_fd_ >= 0) drain(out_fd_, output_, wait);
}

std::string node_process::output() {
  while (out_fd_ >= 0) {
    const auto before = output_.size();
    read_available(std::chrono::milliseconds(0));
    if (output_.size() == before) break;
  }
  return output_;
}

std::unique_ptr<node_process> start_cluster_node(const std::string& data_dir,
                                                 const std::string& id,
                                                 const std::string& etcd_url,
                                                 std::uint32_t bootstrap_expect,
                                                 std::uint32_t partitions) {
  return std::make_unique<node_process>(
      data_dir,
      std::vector<std::string>{"--node-id", id, "--etcd", etcd_url, "--bootstrap-expect",
                               std::to_string(bootstrap_expect), "--partitions",
                               std::to_string(partitions)},
      std::chrono::seconds(60), "start");
}

command_result run_annal(const std::vector<std::string>& args, const std::string& stdin_text,
                         std::chrono::seconds deadline) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  std::vector<std::string> full{node_process::binary()};
  full.insert(full.end(), args.begin(), args.end());
  const pid_t pid = spawn(full, in[0], out[1], err[1]);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  // stdin is small in tests: write it all, then close.
  std::size_t written = 0;
  while (written < stdin_text.size()) {
    const ssize_t n = ::write(in[1], stdin_text.data() + written, stdin_text.size() - written);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  ::close(in[1]);

  command_result result;
  bool out_open = true, err_open = true;
  const auto until = steady::now() + deadline;
  while ((out_open || err_open) && steady::now() < until) {
    if (out_open) out_open = drain(out[0], result.out, std::chrono::milliseconds(10));
    if (err_open) err_open = drain(err[0], result.err, std::chrono::milliseconds(10));
  }
  ::close(out[0]);
  ::close(err[0]);
  if (out_open || err_open) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace annal::testing
