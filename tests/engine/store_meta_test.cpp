#include "engine/store_meta.hpp"

#include <string>

#include <gtest/gtest.h>

namespace {

using annal::engine::errc;
using annal::engine::format_store_meta;
using annal::engine::parse_store_meta;
using annal::engine::store_meta;

TEST(store_meta_test, new_stores_are_written_as_format_3) {
  EXPECT_EQ(format_store_meta(store_meta{.partitions = 64}), "annal-store 3\npartitions 64\n");
}

TEST(store_meta_test, formats_1_to_3_parse_back) {
  auto v1 = parse_store_meta("annal-store 1\npartitions 64\n", "store.meta");
  ASSERT_TRUE(v1) << v1.err().message;
  EXPECT_EQ(v1->format, 1u);
  EXPECT_EQ(v1->partitions, 64u);
  auto v2 = parse_store_meta(format_store_meta(store_meta{.format = 2, .partitions = 7}),
                             "store.meta");
  ASSERT_TRUE(v2) << v2.err().message;
  EXPECT_EQ(v2->format, 2u);
  EXPECT_EQ(v2->partitions, 7u);
  auto v3 = parse_store_meta("annal-store 3\npartitions 9\n", "store.meta");
  ASSERT_TRUE(v3) << v3.err().message;
  EXPECT_EQ(v3->format, 3u);
}

TEST(store_meta_test, a_newer_format_is_refused_with_its_number) {
  auto r = parse_store_meta("annal-store 4\npartitions 64\n", "/data/store.meta");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::corruption);
  EXPECT_EQ(r.err().message,
            "/data/store.meta: store format 4, but this build reads formats 1 to 3");
}

TEST(store_meta_test, other_text_is_not_a_store_description) {
  for (const std::string text : {"", "annal-store", "annal-store x\npartitions 4\n",
                                 "annal-store 2\n", "annal-store 2\npartitions \n",
                                 "annal-store 2\npartitions 0\n", "redis 2\npartitions 4\n"}) {
    auto r = parse_store_meta(text, "m");
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.err().code, errc::corruption) << text;
    EXPECT_EQ(r.err().message, "m: not an Annal store description") << text;
  }
}

}  // namespace
