// The read-all resume token of the HTTP API and the CLI.
#include "net/read_all_token.hpp"

#include <gtest/gtest.h>

#include <random>

namespace annal::net {
namespace {

using actors::all_position;
using actors::make_all_position;
using engine::errc;

TEST(read_all_token, round_trips_every_position) {
  const std::vector<std::vector<all_position>> cases = {
      {},
      std::vector<all_position>(64),
      {make_all_position(lsn{0}, 0), make_all_position(lsn{123456}, 0),
       make_all_position(lsn{7}, 3), make_all_position(lsn{(std::uint64_t{1} << 48) - 1}, 65535)},
  };
  for (const auto& positions : cases) {
    const auto token = encode_read_all_token(positions);
    auto decoded = decode_read_all_token(token);
    ASSERT_TRUE(decoded) << token << ": " << decoded.err().message;
    EXPECT_EQ(*decoded, positions);
  }
}

TEST(read_all_token, is_url_safe_and_compact) {
  std::mt19937_64 rng(3);
  std::vector<all_position> positions;
  for (int p = 0; p < 64; ++p) positions.push_back(make_all_position(lsn{rng() % (1u << 24)}, 0));
  const auto token = encode_read_all_token(positions);
  for (const char c : token) {
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << token;
  }
  // 64 partitions at up to 16 MiB each: about 4 bytes per partition.
  EXPECT_LT(token.size(), 360u) << token;
  EXPECT_LT(encode_read_all_token(std::vector<all_position>(64)).size(), 100u);
}

TEST(read_all_token, any_changed_character_is_invalid_argument) {
  const auto token = encode_read_all_token(
      {make_all_position(lsn{4096}, 0), make_all_position(lsn{77}, 2), all_position{}});
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (std::size_t i = 0; i < token.size(); ++i) {
    for (const char c : alphabet) {
      if (c == token[i]) continue;
      auto changed = token;
      changed[i] = c;
      auto decoded = decode_read_all_token(changed);
      ASSERT_FALSE(decoded) << "position " << i << " -> " << c;
      EXPECT_EQ(decoded.err().code, errc::invalid_argument);
    }
  }
}

TEST(read_all_token, garbage_and_cut_tokens_are_invalid_argument) {
  const auto token = encode_read_all_token(std::vector<all_position>(16));
  for (const std::string& bad :
       {std::string(), std::string("!!!"), std::string("a b"), token.substr(0, token.size() - 1),
        token.substr(1), token + "A", token + "AAAA", std::string("AAAAAAAAAAAA")}) {
    auto decoded = decode_read_all_token(bad);
    ASSERT_FALSE(decoded) << bad;
    EXPECT_EQ(decoded.err().code, errc::invalid_argument);
    EXPECT_NE(decoded.err().message.find("invalid read-all token"), std::string::npos);
  }
}

}  // namespace
}  // namespace annal::net
