#include "engine/crc32c.hpp"

#include <array>
#include <cstdint>
#include <numeric>
#include <span>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/byte_damage.hpp"

namespace {

using annal::engine::crc32c;
using annal::testing::bytes_of;

std::vector<std::byte> filled(std::size_t n, std::uint8_t value) {
  return std::vector<std::byte>(n, std::byte{value});
}

TEST(crc32c_test, check_value_of_123456789) {
  EXPECT_EQ(crc32c(bytes_of("123456789")), 0xE3069283u);
}

TEST(crc32c_test, empty_input_is_zero_and_keeps_a_running_value) {
  EXPECT_EQ(crc32c({}), 0u);
  EXPECT_EQ(crc32c({}, 0xE3069283u), 0xE3069283u);
}

// RFC 3720 (iSCSI), appendix B.4.
TEST(crc32c_test, rfc3720_vectors) {
  EXPECT_EQ(crc32c(filled(32, 0x00)), 0x8A9136AAu);
  EXPECT_EQ(crc32c(filled(32, 0xFF)), 0x62A8AB43u);

  std::vector<std::byte> ascending(32);
  for (std::size_t i = 0; i < ascending.size(); ++i) ascending[i] = std::byte(i);
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);

  std::vector<std::byte> descending(32);
  for (std::size_t i = 0; i < descending.size(); ++i) descending[i] = std::byte(31 - i);
  EXPECT_EQ(crc32c(descending), 0x113FDB5Cu);
}

TEST(crc32c_test, chaining_equals_one_shot_at_every_split_point) {
  const auto text = bytes_of("The quick brown fox jumps over the lazy dog, 0123456789!");
  const std::span<const std::byte> all(text);
  const std::uint32_t one_shot = crc32c(all);
  for (std::size_t split = 0; split <= all.size(); ++split) {
    const std::uint32_t first = crc32c(all.first(split));
    EXPECT_EQ(crc32c(all.subspan(split), first), one_shot) << "split at " << split;
  }
}

TEST(crc32c_test, chaining_in_three_pieces_of_a_large_buffer_equals_one_shot) {
  // Large enough for the hardware path's wide loops, with odd-sized pieces.
  std::vector<std::byte> data(1 << 20);
  std::uint32_t state = 12345;
  for (auto& b : data) {
    state = state * 1103515245u + 12345u;
    b = std::byte(state >> 24);
  }
  const std::span<const std::byte> all(data);
  const std::uint32_t one_shot = crc32c(all);
  std::uint32_t chained = crc32c(all.first(1));
  chained = crc32c(all.subspan(1, 333333), chained);
  chained = crc32c(all.subspan(333334), chained);
  EXPECT_EQ(chained, one_shot);
}

TEST(crc32c_test, a_single_bit_flip_changes_the_value) {
  auto data = bytes_of("123456789");
  data[4] ^= std::byte{0x01};
  EXPECT_NE(crc32c(data), 0xE3069283u);
}

}  // namespace
