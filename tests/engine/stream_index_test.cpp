#include "engine/stream_index.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

using annal::lsn;
using annal::engine::event_location;
using annal::engine::location_index;
using annal::engine::location_record;
using annal::engine::pack_location;
using annal::engine::stream_entry;
using annal::engine::stream_index;

std::string stream_name(std::size_t i) {
  std::string s = "stream-";
  s += std::to_string(i);
  return s;
}

TEST(stream_index_test, empty_index_finds_nothing) {
  stream_index index;
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.find("orders-1"), nullptr);
  const stream_index& const_index = index;
  EXPECT_EQ(const_index.find("orders-1"), nullptr);
}

TEST(stream_index_test, get_or_create_makes_an_empty_entry_once) {
  stream_index index;
  auto& created = index.get_or_create("orders-1");
  EXPECT_EQ(created.id, "orders-1");
  EXPECT_EQ(created.next_version, 0u);
  EXPECT_EQ(created.first_located, 0u);
  EXPECT_TRUE(created.locations.empty());
  EXPECT_FALSE(created.deleted);
  EXPECT_FALSE(created.tombstoned);
  EXPECT_FALSE(created.snapshot.has_value());
  EXPECT_FALSE(created.exists());

  created.next_version = 3;
  auto& again = index.get_or_create("orders-1");
  EXPECT_EQ(&again, &created);
  EXPECT_EQ(again.next_version, 3u);
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.find("orders-1"), &created);
}

TEST(stream_index_test, numbers_are_dense_in_creation_order_and_map_back) {
  stream_index index;
  for (std::size_t i = 0; i < 5; ++i) index.get_or_create(stream_name(i));
  for (std::uint32_t n = 0; n < 5; ++n) {
    const auto* e = index.find(stream_name(n));
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(index.number_of(*e), n);
    EXPECT_EQ(&index.at(n), e);
  }
  std::vector<std::string> visited;
  index.for_each([&](const stream_entry& e) { visited.push_back(e.id); });
  EXPECT_EQ(visited, (std::vector<std::string>{"stream-0", "stream-1", "stream-2", "stream-3",
                                               "stream-4"}));
}

TEST(stream_index_test, lookup_does_not_depend_on_the_callers_string_living_on) {
  stream_index index;
  {
    std::string temporary = "cart-";
    temporary += "77";
    index.get_or_create(temporary);
    temporary.assign("something else entirely, long enough to reallocate the buffer");
  }
  const std::string prefix_and_more = "cart-77-and-more";
  EXPECT_EQ(index.find(std::string_view(prefix_and_more).substr(0, 7))->id, "cart-77");
  EXPECT_EQ(index.find("cart-7"), nullptr);
  EXPECT_EQ(index.find("cart-77-"), nullptr);
}

TEST(stream_index_test, ids_differing_only_in_case_or_trailing_bytes_are_distinct) {
  stream_index index;
  index.get_or_create("a");
  index.get_or_create("A");
  index.get_or_create(std::string_view("a\0", 2));
  EXPECT_EQ(index.size(), 3u);
  EXPECT_EQ(index.number_of(*index.find("A")), 1u);
  EXPECT_EQ(index.number_of(*index.find(std::string_view("a\0", 2))), 2u);
}

TEST(stream_index_test, references_and_numbers_stay_valid_across_many_inserts) {
  stream_index index;
  constexpr std::size_t k_streams = 20000;
  std::vector<stream_entry*> first_hundred;
  for (std::size_t i = 0; i < k_streams; ++i) {
    auto& e = index.get_or_create(stream_name(i));
    e.next_version = i;
    e.locations.push_back(pack_location(lsn{i * 64}, 0));
    if (i < 100) first_hundred.push_back(&e);
  }
  ASSERT_EQ(index.size(), k_streams);
  for (std::size_t i = 0; i < first_hundred.size(); ++i) {
    EXPECT_EQ(first_hundred[i], index.find(stream_name(i))) << i;
    EXPECT_EQ(first_hundred[i]->id, stream_name(i));
    EXPECT_EQ(first_hundred[i]->next_version, i);
  }
  for (std::size_t i = 0; i < k_streams; ++i) {
    const auto* e = index.find(stream_name(i));
    ASSERT_NE(e, nullptr) << i;
    ASSERT_EQ(index.number_of(*e), i);
    ASSERT_EQ(e->next_version, i);
    ASSERT_EQ(location_record(e->locations[0]), lsn{i * 64});
  }
}

TEST(stream_index_test, locations_pack_lsn_and_batch_index_in_order) {
  const event_location l = pack_location(lsn{123456}, 65535);
  EXPECT_EQ(location_record(l), lsn{123456});
  EXPECT_EQ(location_index(l), 65535u);
  EXPECT_EQ(location_index(pack_location(lsn{7}, 0)), 0u);
  // Ordered like (lsn, index).
  EXPECT_LT(pack_location(lsn{64}, 65535), pack_location(lsn{72}, 0));
  EXPECT_LT(pack_location(lsn{64}, 1), pack_location(lsn{64}, 2));
  // The largest lsn a location can hold: 48 bits.
  const std::uint64_t max_lsn = (std::uint64_t{1} << 48) - 1;
  EXPECT_EQ(location_record(pack_location(lsn{max_lsn}, 3)), lsn{max_lsn});
}

TEST(stream_index_test, entry_exists_only_with_events_and_not_deleted) {
  stream_entry e;
  EXPECT_FALSE(e.exists());
  e.next_version = 1;
  EXPECT_TRUE(e.exists());
  e.deleted = true;
  EXPECT_FALSE(e.exists());
  e.deleted = false;
  e.tombstoned = true;
  EXPECT_FALSE(e.exists());
}

TEST(stream_index_test, location_of_a_version_counts_from_first_located) {
  stream_entry e;
  e.first_located = 10;
  e.next_version = 13;
  e.locations = {pack_location(lsn{0}, 0), pack_location(lsn{0}, 1), pack_location(lsn{64}, 0)};
  EXPECT_EQ(e.location(10), pack_location(lsn{0}, 0));
  EXPECT_EQ(e.location(11), pack_location(lsn{0}, 1));
  EXPECT_EQ(e.location(12), pack_location(lsn{64}, 0));
}

}  // namespace
