#include "tests/support/etcd_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace annal::testing {

namespace {

// Attempts with fresh ports when etcd exits at start (a port got taken
// between pick_free_port() and etcd's bind).
constexpr int k_start_attempts = 5;
constexpr auto k_poll_interval = std::chrono::milliseconds(50);

std::string etcd_binary() {
  const char* env = std::getenv("ANNAL_ETCD_BINARY");
  return env != nullptr && *env != '\0' ? env : "/usr/bin/etcd";
}

size_t append_to_string(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

bool healthy(const std::string& url) {
  CURL* easy = curl_easy_init();
  if (easy == nullptr) return false;
  std::string body;
  const std::string health = url + "/health";
  curl_easy_setopt(easy, CURLOPT_URL, health.c_str());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 500L);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &append_to_string);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(easy);
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(easy);
  return rc == CURLE_OK && status == 200 && body.find("\"true\"") != std::string::npos;
}

}  // namespace

std::uint16_t pick_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

etcd_process::etcd_process(std::chrono::seconds ready_deadline) : ready_deadline_(ready_deadline) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  for (int attempt = 0; attempt < k_start_attempts; ++attempt) {
    client_port_ = pick_free_port();
    do {
      peer_port_ = pick_free_port();
    } while (peer_port_ == client_port_);
    if (start_and_wait()) return;
  }
  throw std::runtime_error("etcd did not start in " + std::to_string(k_start_attempts) + " attempts; log:\n" + log());
}

etcd_process::~etcd_process() { stop(); }

std::string etcd_process::client_url() const { return "http://127.0.0.1:" + std::to_string(client_port_); }

void etcd_process::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void etcd_process::restart() {
  stop();
  if (!start_and_wait()) throw std::runtime_error("etcd exited on restart; log:\n" + log());
}

std::string etcd_process::log() const {
  std::ifstream in(dir_.file("etcd.log"));
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

bool etcd_process::start_and_wait() {
  const std::string client = client_url();
  const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> args = {etcd_binary(),
                                   "--name=default",
                                   "--data-dir=" + dir_.file("etcd"),
                                   "--listen-client-urls=" + client,
                                   "--advertise-client-urls=" + client,
                                   "--listen-peer-urls=" + peer,
                                   "--initial-advertise-peer-urls=" + peer,
                                   "--initial-cluster=default=" + peer,
                                   "--initial-cluster-state=new"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log_path = dir_.file("etcd.log");
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // Dies with the test process, even if that one crashes.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::close(fd);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;

  const auto deadline = std::chrono::steady_clock::now() + ready_deadline_;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    if (healthy(client)) return true;
    std::this_thread::sleep_for(k_poll_interval);
  }
  stop();
  throw std::runtime_error("etcd not healthy within " + std::to_string(ready_deadline_.count()) + " s; log:\n" +
                           log());
}

}  // namespace annal::testing
