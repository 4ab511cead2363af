#include "tests/support/http_client.hpp"

#include <http_parser.h>

#include <algorithm>
#include <array>
#include <asio/connect.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <cctype>
#include <optional>
#include <stdexcept>

namespace annal::testing {
namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// What the http_parser callbacks fill in.
struct parse_state {
  http_reply reply;
  std::string field;
  bool in_value = false;
  bool complete = false;
};

int on_header_field(http_parser* p, const char* at, std::size_t length) {
  auto* s = static_cast<parse_state*>(p->data);
  if (s->in_value) {
    s->field.clear();
    s->in_value = false;
  }
  s->field.append(at, length);
  return 0;
}

int on_header_value(http_parser* p, const char* at, std::size_t length) {
  auto* s = static_cast<parse_state*>(p->data);
  if (!s->in_value) {
    s->field = lower(s->field);
    s->reply.headers[s->field].clear();
    s->in_value = true;
  }
  s->reply.headers[s->field].append(at, length);
  return 0;
}

int on_body(http_parser* p, const char* at, std::size_t length) {
  static_cast<parse_state*>(p->data)->reply.body.append(at, length);
  return 0;
}

int on_message_complete(http_parser* p) {
  auto* s = static_cast<parse_state*>(p->data);
  s->complete = true;
  s->reply.status = static_cast<int>(p->status_code);
  s->reply.keep_alive = http_should_keep_alive(p) != 0;
  http_parser_pause(p, 1);  // one response per request
  return 0;
}

}  // namespace

std::string http_reply::header(const std::string& name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? std::string{} : it->second;
}

http_client::http_client(asio::ip::tcp::endpoint server, std::chrono::milliseconds timeout)
    : server_(server), timeout_(timeout) {}

http_client::~http_client() { close(); }

template <class Done>
void http_client::run_until(Done&& done, const char* what) {
  io_.restart();
  io_.run_for(timeout_);
  if (!done()) {
    close();
    io_.restart();
    io_.run();  // let the cancelled operation finish
    throw std::runtime_error(std::string("http_client: timed out ") + what);
  }
}

void http_client::connect() {
  socket_ = std::make_unique<asio::ip::tcp::socket>(io_);
  std::optional<std::error_code> result;
  socket_->async_connect(server_, [&](std::error_code ec) { result = ec; });
  run_until([&] { return result.has_value(); }, "connecting");
  if (*result) {
    socket_.reset();
    throw std::runtime_error("http_client: connect failed: " + result->message());
  }
  socket_->set_option(asio::ip::tcp::no_delay(true));
}

void http_client::close() {
  if (!socket_) return;
  std::error_code ignored;
  socket_->close(ignored);
  socket_.reset();
}

http_reply http_client::request(std::string_view method, std::string_view target,
                                std::string_view body, std::string_view content_type) {
  if (!socket_) connect();
  std::string head;
  head.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  head.append("Host: 127.0.0.1\r\n");
  if (!body.empty() || method == "POST" || method == "PUT") {
    head.append("Content-Type: ").append(content_type).append("\r\n");
    head.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  head.append("\r\n");

  std::optional<std::error_code> written;
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(body.data(), body.size())};
  asio::async_write(*socket_, buffers, [&](std::error_code ec, std::size_t) { written = ec; });
  run_until([&] { return written.has_value(); }, "writing the request");
  // A server may answer (e.g. 413) and close before reading the whole body:
  // a write error is not fatal as long as a response can be read.

  parse_state state;
  http_parser parser;
  http_parser_init(&parser, HTTP_RESPONSE);
  parser.data = &state;
  http_parser_settings settings;
  http_parser_settings_init(&settings);
  settings.on_header_field = on_header_field;
  settings.on_header_value = on_header_value;
  settings.on_body = on_body;
  settings.on_message_complete = on_message_complete;

  std::array<char, 16384> buffer;
  while (!state.complete) {
    std::optional<std::error_code> read_ec;
    std::size_t n = 0;
    socket_->async_read_some(asio::buffer(buffer), [&](std::error_code ec, std::size_t bytes) {
      read_ec = ec;
      n = bytes;
    });
    run_until([&] { return read_ec.has_value(); }, "reading the response");
    if (*read_ec) {
      // EOF ends a response without Content-Length; tell the parser.
      if (*read_ec == asio::error::eof) http_parser_execute(&parser, &settings, nullptr, 0);
      if (state.complete) break;
      close();
      throw std::runtime_error("http_client: connection closed before a full response: " +
                               read_ec->message());
    }
    const std::size_t parsed = http_parser_execute(&parser, &settings, buffer.data(), n);
    if (state.complete) break;
    if (parsed != n || HTTP_PARSER_ERRNO(&parser) != HPE_OK) {
      close();
      throw std::runtime_error(std::string("http_client: bad response: ") +
                               http_errno_description(HTTP_PARSER_ERRNO(&parser)));
    }
  }
  if (!state.reply.keep_alive) close();
  return std::move(state.reply);
}

}  // namespace annal::testing
