// The JSON mapping of the HTTP API: ids, base64, bodies, replies, errors.

#include "net/json_codec.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

namespace annal::net::json {
namespace {

using nlohmann::json;

TEST(http_json_codec_test, uuid_text_round_trips_bytes_in_order) {
  event_id id{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::uint8_t>(i * 17);
  const std::string text = format_uuid(id);
  EXPECT_EQ(text, "00112233-4455-6677-8899-aabbccddeeff");
  EXPECT_EQ(parse_uuid(text), id);
  EXPECT_EQ(parse_uuid("00112233-4455-6677-8899-AABBCCDDEEFF"), id);
}

TEST(http_json_codec_test, malformed_uuids_are_rejected) {
  for (const char* bad : {"", "00112233445566778899aabbccddeeff", "00112233-4455-6677-8899-aabbccddeef",
                          "00112233-4455-6677-8899-aabbccddeeffa", "0011223-34455-6677-8899-aabbccddeeff",
                          "g0112233-4455-6677-8899-aabbccddeeff", "{0112233-4455-6677-8899-aabbccddeef}"}) {
    EXPECT_FALSE(parse_uuid(bad).has_value()) << bad;
  }
}

TEST(http_json_codec_test, base64_matches_rfc4648_vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(base64_decode(encoded), plain);
  }
  EXPECT_EQ(base64_decode("Zm9vYg"), "foob");  // padding optional
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  EXPECT_EQ(base64_decode(base64_encode(all)), all);
  EXPECT_FALSE(base64_decode("Zm9v!").has_value());
  EXPECT_FALSE(base64_decode("Z").has_value());
}

TEST(http_json_codec_test, decode_append_maps_every_field) {
  const auto r = decode_append("s", R"({"expectedVersion":7,"events":[
      {"id":"00112233-4455-6677-8899-aabbccddeeff","type":"a","data":{"x": [1, 2]},"metadata":"m"},
      {"type":"b","data":"AAE=","dataEncoding":"base64"}]})", 10);
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(r->stream, "s");
  EXPECT_EQ(r->expected.what, engine::expected_version::kind::exact);
  EXPECT_EQ(r->expected.version.value(), 7u);
  ASSERT_EQ(r->events.size(), 2u);
  EXPECT_EQ(format_uuid(r->events[0].id), "00112233-4455-6677-8899-aabbccddeeff");
  EXPECT_EQ(r->events[0].type, "a");
  EXPECT_EQ(r->events[0].data, R"({"x":[1,2]})");  // compact JSON text
  EXPECT_EQ(r->events[0].metadata, R"("m")");
  EXPECT_EQ(r->events[1].id, event_id{});  // nil: the node picks one
  EXPECT_EQ(r->events[1].data, std::string("\x00\x01", 2));
  EXPECT_EQ(r->events[1].metadata, "");

  const auto any = decode_append("s", R"({"events":[{"type":"a"}]})", 10);
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->expected.what, engine::expected_version::kind::any);
  for (const auto& [text, kind] :
       {std::pair{"\"no_stream\"", engine::expected_version::kind::no_stream},
        std::pair{"\"stream_exists\"", engine::expected_version::kind::stream_exists},
        std::pair{"\"any\"", engine::expected_version::kind::any}}) {
    const auto e = decode_append(
        "s", std::string(R"({"expectedVersion":)") + text + R"(,"events":[{"type":"a"}]})", 10);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->expected.what, kind);
  }
}

TEST(http_json_codec_test, decode_append_errors_are_typed) {
  auto code = [](std::string_view body) {
    auto r = decode_append("s", body, 2);
    return r.ok() ? engine::errc::ok : r.err().code;
  };
  EXPECT_EQ(code("{"), engine::errc::malformed_request);
  EXPECT_EQ(code(R"({"events":3})"), engine::errc::malformed_request);
  EXPECT_EQ(code(R"({})"), engine::errc::malformed_request);
  EXPECT_EQ(code(R"({"events":[{"type":"a"},{"type":"a"},{"type":"a"}]})"),
            engine::errc::batch_too_large);
  EXPECT_EQ(code(R"({"events":[{"type":"a","id":"x"}]})"), engine::errc::invalid_event);
  EXPECT_EQ(code(R"({"events":[{"type":"a","dataEncoding":"hex"}]})"), engine::errc::invalid_argument);
  EXPECT_EQ(code(R"({"events":[{"type":"a","data":1,"dataEncoding":"base64"}]})"),
            engine::errc::malformed_request);
}

TEST(http_json_codec_test, payloads_are_embedded_or_base64) {
  engine::recorded_event e;
  e.id = parse_uuid("00112233-4455-6677-8899-aabbccddeeff").value();
  e.type = "t";
  e.data = R"({"a":[1,2]})";
  e.metadata = std::string_view("\xff\x00", 2);
  e.version = stream_version{3};
  e.timestamp = 1700000000000000;
  const auto doc = json::parse(encode_event(e, false));
  EXPECT_EQ(doc["id"], "00112233-4455-6677-8899-aabbccddeeff");
  EXPECT_EQ(doc["type"], "t");
  EXPECT_EQ(doc["version"], 3);
  EXPECT_EQ(doc["timestamp"], 1700000000000000);
  EXPECT_EQ(doc["data"], json::parse(R"({"a":[1,2]})"));
  EXPECT_FALSE(doc.contains("dataEncoding"));
  EXPECT_EQ(doc["metadata"], base64_encode(std::string("\xff\x00", 2)));
  EXPECT_EQ(doc["metadataEncoding"], "base64");

  const auto forced = json::parse(encode_event(e, true));
  EXPECT_EQ(forced["data"], base64_encode(R"({"a":[1,2]})"));
  EXPECT_EQ(forced["dataEncoding"], "base64");

  e.data = {};
  EXPECT_TRUE(json::parse(encode_event(e, false))["data"].is_null());
}

TEST(http_json_codec_test, errors_carry_code_message_and_current_version) {
  engine::error e{engine::errc::wrong_expected_version, "expected 1"};
  auto doc = json::parse(encode_error(e));
  EXPECT_EQ(doc["error"]["code"], "wrong_expected_version");
  EXPECT_EQ(doc["error"]["message"], "expected 1");
  EXPECT_TRUE(doc["error"]["currentVersion"].is_null());
  e.current_version = stream_version{4};
  EXPECT_EQ(json::parse(encode_error(e))["error"]["currentVersion"], 4);
  // Messages with invalid UTF-8 still produce valid JSON.
  doc = json::parse(encode_error(engine::error{engine::errc::io_error, "bad \xff byte"}));
  EXPECT_EQ(doc["error"]["code"], "io_error");
  EXPECT_FALSE(doc["error"].contains("currentVersion"));
}

TEST(http_json_codec_test, metadata_and_snapshot_bodies) {
  const auto m = decode_metadata(R"({"maxCount":10,"maxAge":null,"truncateBefore":3})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->max_count, 10u);
  EXPECT_EQ(m->max_age_seconds, 0u);
  EXPECT_EQ(m->truncate_before, 3u);
  EXPECT_EQ(decode_metadata(R"({"maxCount":-1})").err().code, engine::errc::invalid_argument);
  EXPECT_EQ(decode_metadata(R"({"maxCount":1.5})").err().code, engine::errc::malformed_request);

  const auto s = decode_snapshot(R"({"version":2,"data":{"total":5}})");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->version.value(), 2u);
  EXPECT_EQ(s->payload, R"({"total":5})");
}

}  // namespace
}  // namespace annal::net::json
