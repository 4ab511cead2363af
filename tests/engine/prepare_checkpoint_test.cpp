// partition::prepare_checkpoint: it writes the buffered bytes out and names
// exactly the segment files the next checkpoint has to sync, so that another
// thread can write them back first.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/disk_view.hpp"
#include "tests/support/store_fixture.hpp"

namespace {

using annal::lsn;
using annal::partition_id;
using annal::engine::expected_version;
using annal::engine::partition_log;
using annal::testing::must;
using annal::testing::store_fixture;

class prepare_checkpoint_test : public store_fixture {
 protected:
  prepare_checkpoint_test() {
    options_.partition_count = 1;
    options_.partition.log.segment_bytes = 4096;
  }

  std::string path_of(lsn base) const {
    return options_.directory + "/partitions/00000/" + partition_log::segment_name(base);
  }
  std::vector<std::string> paths_from(std::size_t first_segment) {
    std::vector<std::string> out;
    const auto& segments = partition_of("s").log().segments();
    for (std::size_t i = first_segment; i < segments.size(); ++i) {
      out.push_back(path_of(segments[i].base));
    }
    return out;
  }
};

TEST_F(prepare_checkpoint_test, names_the_segments_written_since_the_last_checkpoint) {
  auto& p = partition_of("s");
  append_each_synced("s", 60);
  ASSERT_GE(p.log().segments().size(), 2u);
  EXPECT_EQ(must(p.prepare_checkpoint(), "prepare"), paths_from(0));

  must(p.checkpoint(), "checkpoint");
  EXPECT_EQ(must(p.prepare_checkpoint(), "prepare"), std::vector<std::string>{})
      << "a checkpoint synced everything";

  const std::size_t active = p.log().segments().size() - 1;
  append_each_synced("s", 60);
  ASSERT_GT(p.log().segments().size(), active + 1);
  const auto paths = must(p.prepare_checkpoint(), "prepare");
  EXPECT_EQ(paths, paths_from(active));
  // Nothing left in the write buffer: the files hold every appended byte.
  const auto& last = p.log().segments().back();
  EXPECT_EQ(annal::testing::size_on_disk(paths.back()), last.bytes);
  EXPECT_EQ(last.base.value() + last.bytes, p.end().value());
}

}  // namespace
