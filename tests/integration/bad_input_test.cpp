// Bad input against a real node process: each gets a typed error, the node
// keeps serving other clients, and nothing acknowledged is lost.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <asio.hpp>
#include <capnp/message.h>
#include <capnp/serialize.h>

#include "net/framing.hpp"
#include "schema/protocol.capnp.h"
#include "tests/integration/node_fixture.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/test_rng.hpp"

namespace annal::testing {
namespace {

using engine::errc;

// A raw TCP connection to the binary port, for bytes no client would send.
class raw_connection {
 public:
  explicit raw_connection(std::uint16_t port) : socket_(io_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  }

  void send(const std::vector<std::byte>& bytes) { asio::write(socket_, asio::buffer(bytes)); }
  void send_frame(capnp::MessageBuilder& message) { send(net::make_frame(message)); }
  void half_close() { socket_.shutdown(asio::ip::tcp::socket::shutdown_send); }

  void hello() {
    capnp::MallocMessageBuilder m;
    auto r = m.initRoot<wire::Request>();
    r.setId(1);
    r.initHello().setProtocolVersion(wire::PROTOCOL_VERSION);
    send_frame(m);
    auto reply = next_response();
    ASSERT_TRUE(reply.has_value());
    ASSERT_EQ(reply->code, "");  // not an error
  }

  struct response {
    std::uint64_t id = 0;
    std::string code;  // empty unless an error
    std::string message;
  };

  // The next response frame, or nullopt when the node closed the connection.
  // Reads with a deadline: a node that neither answers nor closes fails.
  std::optional<response> next_response() {
    while (true) {
      net::frame_view frame;
      const auto status = net::next_frame(
          {reinterpret_cast<const std::byte*>(received_.data()), received_.size()},
          net::k_default_max_frame_bytes, frame);
      if (status == net::frame_status::ok) {
        std::vector<capnp::word> words(frame.payload.size() / sizeof(capnp::word));
        std::memcpy(words.data(), frame.payload.data(), frame.payload.size());
        received_.erase(0, frame.consumed);
        capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), words.size()));
        auto r = reader.getRoot<wire::Response>();
        response out;
        out.id = r.getId();
        if (r.isError()) {
          out.code = r.getError().getCode();
          out.message = r.getError().getMessage();
        }
        return out;
      }
      EXPECT_EQ(status, net::frame_status::need_more);
      if (!read_some()) return std::nullopt;
    }
  }

 private:
  bool read_some() {
    char buffer[4096];
    std::size_t n = 0;
    std::error_code error;
    bool done = false;
    socket_.async_read_some(asio::buffer(buffer), [&](std::error_code ec, std::size_t got) {
      error = ec;
      n = got;
      done = true;
    });
    io_.restart();
    io_.run_for(std::chrono::seconds(30));
    if (!done) throw std::runtime_error("the node neither answered nor closed within 30 s");
    if (error) return false;
    received_.append(buffer, n);
    return true;
  }

  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  std::string received_;
};

std::vector<std::byte> length_prefix(std::uint32_t n) {
  return {std::byte(n & 0xff), std::byte((n >> 8) & 0xff), std::byte((n >> 16) & 0xff),
          std::byte(n >> 24)};
}

class bad_input_test : public node_fixture {
 protected:
  void SetUp() override {
    node_fixture::SetUp();
    acked_ = event("Acked", R"({"keep":true})");
    ASSERT_TRUE(client_->append(
        append_of("keep-1", engine::expected_version::no_stream(), {acked_})));
  }

  // Another client still gets served, and the acknowledged event is intact.
  void expect_node_healthy() {
    auto fresh = connect();
    auto page = fresh->read_last("keep-1");
    ASSERT_TRUE(page.ok()) << page.err().message;
    ASSERT_EQ(page->events.size(), 1u);
    EXPECT_EQ(page->events[0].id, acked_.id);
    auto more = client_->append(
        append_of("other-1", engine::expected_version::any(), {event("A", "1")}));
    EXPECT_TRUE(more.ok()) << more.err().message;
  }

  engine::event_input acked_;
};

TEST_F(bad_input_test, oversized_frame_gets_frame_too_large_and_a_close) {
  raw_connection raw(node_->binary_port());
  raw.hello();
  raw.send(length_prefix(1u << 30));
  auto r = raw.next_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code, "frame_too_large");
  EXPECT_FALSE(raw.next_response().has_value());  // closed
  expect_node_healthy();
}

TEST_F(bad_input_test, random_bytes_get_a_typed_error_and_a_close) {
  raw_connection raw(node_->binary_port());
  test_rng rng(99);
  std::vector<std::byte> junk(256);
  for (auto& b : junk) b = std::byte(rng.below(256));
  raw.send(junk);
  auto r = raw.next_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->code == "frame_too_large" || r->code == "malformed_request") << r->code;
  EXPECT_FALSE(raw.next_response().has_value());
  expect_node_healthy();
}

TEST_F(bad_input_test, truncated_frame_then_close_leaves_the_node_serving) {
  raw_connection raw(node_->binary_port());
  raw.hello();
  auto bytes = length_prefix(64);
  bytes.resize(bytes.size() + 20, std::byte{0});
  raw.send(bytes);
  raw.half_close();
  // Either a malformed_request error or a plain close: never a hang.
  auto r = raw.next_response();
  if (r) {
    EXPECT_EQ(r->code, "malformed_request");
  }
  expect_node_healthy();
}

TEST_F(bad_input_test, undecodable_message_gets_malformed_request) {
  raw_connection raw(node_->binary_port());
  raw.hello();
  // A valid frame length, but the segment table says more than is there.
  auto bytes = length_prefix(16);
  const std::uint8_t table[16] = {0, 0, 0, 0, 200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  for (auto b : table) bytes.push_back(std::byte{b});
  raw.send(bytes);
  auto r = raw.next_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code, "malformed_request");
  expect_node_healthy();
}

TEST_F(bad_input_test, unknown_message_type_gets_unknown_request) {
  raw_connection raw(node_->binary_port());
  raw.hello();
  capnp::MallocMessageBuilder m;
  auto request = m.initRoot<wire::Request>();
  request.setId(77);
  request.setPing();
  auto frame = net::make_frame(m);
  // Request's data section: id (8 bytes), then the union discriminant.
  // Frame: 4-byte length, 8-byte segment table, 8-byte root pointer, data.
  const std::size_t discriminant = 4 + 8 + 8 + 8;
  frame[discriminant] = std::byte{200};
  frame[discriminant + 1] = std::byte{0};
  raw.send(frame);
  auto r = raw.next_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->id, 77u);
  EXPECT_EQ(r->code, "unknown_request");
  expect_node_healthy();
}

TEST_F(bad_input_test, requests_before_hello_are_refused) {
  raw_connection raw(node_->binary_port());
  capnp::MallocMessageBuilder m;
  auto request = m.initRoot<wire::Request>();
  request.setId(5);
  request.setPing();
  raw.send_frame(m);
  auto r = raw.next_response();
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->code.empty());
  EXPECT_FALSE(raw.next_response().has_value());
  expect_node_healthy();
}

TEST_F(bad_input_test, bad_stream_ids_get_invalid_stream_id) {
  for (std::string stream : {std::string("bad-\xff\xfe"), std::string(300, 's'), std::string(),
                             std::string("ctl-\x01")}) {
    auto r = client_->append(append_of(stream, engine::expected_version::any(), {event("A", "1")}));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::invalid_stream_id) << r.err().message;
  }
  expect_node_healthy();
}

TEST_F(bad_input_test, a_batch_over_the_limit_gets_batch_too_large) {
  std::vector<engine::event_input> events(10001);
  for (auto& e : events) e.type = "Big";
  auto r = client_->append(append_of("big-1", engine::expected_version::any(), std::move(events)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::batch_too_large) << r.err().message;
  actors::read_request read;
  read.stream = "big-1";
  EXPECT_EQ(client_->read(read).err().code, errc::stream_not_found);
  expect_node_healthy();
}

TEST_F(bad_input_test, http_bad_bodies_get_400_and_413) {
  http_client http(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), node_->http_port()));
  auto r = http.post("/streams/h-1", "{not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["code"], "malformed_request");
  r = http.post("/streams/h-1", R"({"events": "nope"})");
  EXPECT_EQ(r.status, 400);
  r = http.post("/streams/%FF%FE", R"({"events": [{"type": "A"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["code"], "invalid_stream_id");
  r = http.post("/streams/h-1", std::string(17u << 20, ' '));
  EXPECT_EQ(r.status, 413);
  expect_node_healthy();
}

}  // namespace
}  // namespace annal::testing
