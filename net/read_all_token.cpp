#include "net/read_all_token.hpp"

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "engine/crc32c.hpp"

namespace annal::net {
namespace {

constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// nullopt when the bytes end early or the varint is longer than 64 bits.
std::optional<std::uint64_t> get_varint(std::string_view& in) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return std::nullopt;
    const auto byte = static_cast<std::uint8_t>(in.front());
    in.remove_prefix(1);
    if (shift == 63 && byte > 1) return std::nullopt;
    v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return v;
  }
  return std::nullopt;
}

std::uint32_t checksum(std::string_view bytes) {
  return engine::crc32c(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())));
}

std::string base64url(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = (static_cast<std::uint8_t>(bytes[i]) << 16) |
                            (static_cast<std::uint8_t>(bytes[i + 1]) << 8) |
                            static_cast<std::uint8_t>(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(k_alphabet[(n >> s) & 0x3f]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t n = static_cast<std::uint8_t>(bytes[i]) << 16;
    if (rest == 2) n |= static_cast<std::uint8_t>(bytes[i + 1]) << 8;
    out.push_back(k_alphabet[(n >> 18) & 0x3f]);
    out.push_back(k_alphabet[(n >> 12) & 0x3f]);
    if (rest == 2) out.push_back(k_alphabet[(n >> 6) & 0x3f]);
  }
  return out;
}

// The value of a base64url digit; -1 for any other character.
int digit_of(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

std::optional<std::string> unbase64url(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t bits = 0;
  int count = 0;
  for (const char c : text) {
    const int v = digit_of(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  // Leftover bits must be zero (one canonical text per token).
  if ((bits & ((1u << count) - 1)) != 0) return std::nullopt;
  return out;
}

engine::error invalid(std::string_view why) {
  return engine::error{engine::errc::invalid_argument,
                       fmt::format("invalid read-all token: {} (pass a `next` read-all returned, "
                                   "unchanged)",
                                   why)};
}

}  // namespace

std::string encode_read_all_token(const std::vector<actors::all_position>& positions) {
  std::string bytes;
  bytes.reserve(8 + positions.size() * 4);
  bytes.push_back(static_cast<char>(k_read_all_token_version));
  put_varint(bytes, positions.size());
  for (const auto p : positions) {
    const std::uint64_t record = actors::position_record(p).value();
    const std::uint32_t index = actors::position_index(p);
    put_varint(bytes, (record << 1) | (index != 0 ? 1 : 0));
    if (index != 0) put_varint(bytes, index);
  }
  const std::uint32_t crc = checksum(bytes);
  for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return base64url(bytes);
}

engine::result<std::vector<actors::all_position>> decode_read_all_token(std::string_view token) {
  if (token.empty()) return invalid("it is empty");
  auto decoded = unbase64url(token);
  if (!decoded) return invalid("it is not base64url");
  std::string_view bytes = *decoded;
  if (bytes.size() < 6) return invalid("it is too short");
  const auto body = bytes.substr(0, bytes.size() - 4);
  std::uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) {
    stored |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes[body.size() + i]))
              << (8 * i);
  }
  if (stored != checksum(body)) return invalid("its checksum does not match");
  std::string_view in = body;
  if (static_cast<std::uint8_t>(in.front()) != k_read_all_token_version) {
    return invalid(fmt::format("unknown version {}", static_cast<std::uint8_t>(in.front())));
  }
  in.remove_prefix(1);
  const auto count = get_varint(in);
  if (!count || *count > k_read_all_token_max_partitions) return invalid("bad partition count");
  std::vector<actors::all_position> positions;
  positions.reserve(*count);
  for (std::uint64_t i = 0; i < *count; ++i) {
    const auto packed = get_varint(in);
    if (!packed) return invalid("it ends early");
    std::uint64_t index = 0;
    if (*packed & 1) {
      const auto v = get_varint(in);
      if (!v || *v == 0 || *v > 0xffff) return invalid("bad event index");
      index = *v;
    }
    const std::uint64_t record = *packed >> 1;
    if (record >= (std::uint64_t{1} << 48)) return invalid("lsn out of range");
    positions.push_back(actors::make_all_position(lsn{record}, static_cast<std::uint32_t>(index)));
  }
  if (!in.empty()) return invalid("trailing bytes");
  return positions;
}

}  // namespace annal::net
