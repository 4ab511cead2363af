#include "tests/support/sse_client.hpp"

#include <poll.h>

#include <algorithm>
#include <asio/write.hpp>
#include <cctype>
#include <stdexcept>

namespace annal::testing {
namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

sse_client::sse_client(asio::ip::tcp::endpoint server, const std::string& target,
                       const std::string& last_event_id, std::chrono::milliseconds timeout)
    : socket_(io_) {
  socket_.connect(server);
  std::string request =
      "GET " + target + " HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n";
  if (!last_event_id.empty()) request += "Last-Event-ID: " + last_event_id + "\r\n";
  request += "\r\n";
  asio::write(socket_, asio::buffer(request));
  http_parser_init(&parser_, HTTP_RESPONSE);
  parser_.data = this;
  http_parser_settings_init(&settings_);
  settings_.on_header_field = &sse_client::on_header_field;
  settings_.on_header_value = &sse_client::on_header_value;
  settings_.on_headers_complete = &sse_client::on_headers_complete;
  settings_.on_body = &sse_client::on_body;
  settings_.on_message_complete = &sse_client::on_message_complete;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!head_done_) {
    if (!read_some(deadline)) throw std::runtime_error("sse_client: no response head");
  }
}

sse_client::~sse_client() { close(); }

void sse_client::close() {
  asio::error_code ignored;
  socket_.close(ignored);
}

std::string sse_client::header(const std::string& name) const {
  auto it = headers_.find(name);
  return it == headers_.end() ? std::string{} : it->second;
}

int sse_client::on_header_field(http_parser* p, const char* at, std::size_t length) {
  auto* self = static_cast<sse_client*>(p->data);
  if (self->in_value_) {
    self->field_.clear();
    self->in_value_ = false;
  }
  self->field_.append(at, length);
  return 0;
}

int sse_client::on_header_value(http_parser* p, const char* at, std::size_t length) {
  auto* self = static_cast<sse_client*>(p->data);
  if (!self->in_value_) {
    self->field_ = lower(self->field_);
    self->headers_[self->field_].clear();
    self->in_value_ = true;
  }
  self->headers_[self->field_].append(at, length);
  return 0;
}

int sse_client::on_headers_complete(http_parser* p) {
  auto* self = static_cast<sse_client*>(p->data);
  self->head_done_ = true;
  self->status_ = static_cast<int>(p->status_code);
  return 0;
}

int sse_client::on_body(http_parser* p, const char* at, std::size_t length) {
  auto* self = static_cast<sse_client*>(p->data);
  self->body_.append(at, length);
  self->all_body_.append(at, length);
  return 0;
}

int sse_client::on_message_complete(http_parser* p) {
  static_cast<sse_client*>(p->data)->closed_ = true;
  return 0;
}

bool sse_client::read_some(std::chrono::steady_clock::time_point deadline) {
  if (closed_) return false;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd fd{socket_.native_handle(), POLLIN, 0};
  if (::poll(&fd, 1, static_cast<int>(left.count())) <= 0) return false;
  char buffer[64 * 1024];
  asio::error_code ec;
  const std::size_t n = socket_.read_some(asio::buffer(buffer), ec);
  if (ec) {
    http_parser_execute(&parser_, &settings_, nullptr, 0);  // EOF
    closed_ = true;
    return false;
  }
  const std::size_t parsed = http_parser_execute(&parser_, &settings_, buffer, n);
  if (parsed != n || HTTP_PARSER_ERRNO(&parser_) != HPE_OK) {
    throw std::runtime_error(std::string("sse_client: bad HTTP: ") +
                             http_errno_name(HTTP_PARSER_ERRNO(&parser_)));
  }
  return true;
}

std::string sse_client::read_body() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!closed_ && read_some(deadline)) {
  }
  return all_body_;
}

void sse_client::parse_events() {
  // Lines end with CR LF, LF or CR; a line may still be incomplete.
  while (true) {
    const auto end = body_.find_first_of("\r\n");
    if (end == std::string::npos) return;
    std::size_t skip = 1;
    if (body_[end] == '\r') {
      if (end + 1 == body_.size()) return;  // CR LF split across reads
      if (body_[end + 1] == '\n') skip = 2;
    }
    const std::string line = body_.substr(0, end);
    body_.erase(0, end + skip);
    if (line.empty()) {
      if (has_data_) {
        building_.id = last_id_;
        ready_.push_back(std::move(building_));
      }
      building_ = {};
      has_data_ = false;
      continue;
    }
    if (line.front() == ':') {
      ++comments_;
      continue;
    }
    const auto colon = line.find(':');
    const std::string name = line.substr(0, colon);
    std::string value = colon == std::string::npos ? std::string{} : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (name == "id") {
      last_id_ = value;
    } else if (name == "event") {
      building_.event = value;
    } else if (name == "data") {
      if (has_data_) building_.data += '\n';
      building_.data += value;
      has_data_ = true;
    }
  }
}

std::optional<sse_event> sse_client::next(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    parse_events();
    if (!ready_.empty()) {
      auto e = std::move(ready_.front());
      ready_.pop_front();
      return e;
    }
    if (!read_some(deadline)) {
      parse_events();
      if (!ready_.empty()) continue;
      return std::nullopt;
    }
  }
}

}  // namespace annal::testing
