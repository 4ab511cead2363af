// A checkpoint in three steps (partition::begin_checkpoint, checkpoint_job::
// write, partition::finish_checkpoint): the partition serves while the job is
// written, the checkpoint holds the partition as it was at the begin, one
// checkpoint runs at a time and no clear meanwhile, and a segment file that
// fails to sync makes the partition refuse writes.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "engine/checkpoint.hpp"
#include "tests/support/forwarding_file_system.hpp"
#include "tests/support/store_fixture.hpp"

namespace {

using annal::lsn;
using annal::partition_id;
using annal::engine::errc;
using annal::engine::expected_version;
using annal::engine::load_newest_checkpoint;
using annal::engine::posix_file_system;
using annal::engine::writable_file;
using annal::testing::must;
using annal::testing::store_fixture;

// The POSIX file system, except that while armed every fdatasync of a
// partition segment file (*.seg) fails with EIO, and that the next
// `full_disk_writes` checkpoint file writes fail with ENOSPC.
class faulty_disk final : public annal::testing::forwarding_file_system {
 public:
  faulty_disk() : forwarding_file_system(posix_file_system()) {}

  std::atomic<bool> armed{false};
  std::atomic<int> full_disk_writes{0};

  std::error_code write_file(const std::string& path, std::span<const std::byte> data) override {
    if (path.find(".ckpt") != std::string::npos && full_disk_writes.fetch_sub(1) > 0) {
      return std::make_error_code(std::errc::no_space_on_device);
    }
    return base_.write_file(path, data);
  }

  std::error_code open_writable(const std::string& path,
                                std::unique_ptr<writable_file>& out) override {
    std::unique_ptr<writable_file> file;
    if (auto ec = base_.open_writable(path, file)) return ec;
    out = path.ends_with(".seg") ? std::make_unique<segment>(std::move(file), armed)
                                 : std::move(file);
    return {};
  }

 private:
  class segment final : public writable_file {
   public:
    segment(std::unique_ptr<writable_file> file, const std::atomic<bool>& armed)
        : file_(std::move(file)), armed_(armed) {}
    std::error_code append(std::span<const std::byte> data) override {
      return file_->append(data);
    }
    std::error_code append_with_mark(std::span<const std::byte> data,
                                     std::size_t mark_bytes) override {
      return file_->append_with_mark(data, mark_bytes);
    }
    std::error_code sync() override {
      if (armed_.load()) return std::make_error_code(std::errc::io_error);
      return file_->sync();
    }
    std::uint64_t size() const override { return file_->size(); }

   private:
    std::unique_ptr<writable_file> file_;
    const std::atomic<bool>& armed_;
  };
};

class checkpoint_job_test : public store_fixture {
 protected:
  checkpoint_job_test() {
    options_.partition_count = 1;
    options_.partition.log.segment_bytes = 4096;
    options_.fs = &fs_;
  }
  ~checkpoint_job_test() override { store_.reset(); }  // before fs_ goes

  std::string partition_dir() const { return options_.directory + "/partitions/00000"; }

  faulty_disk fs_;
};

TEST_F(checkpoint_job_test, the_partition_serves_while_its_checkpoint_is_written) {
  auto& p = partition_of("s");
  append_each_synced("s", 30);
  const lsn begun_at = p.end();
  const std::size_t segments_then = p.log().segments().size();
  auto job = must(p.begin_checkpoint(), "begin");

  // Appends (rolling new segments) and reads go on before the job is written.
  append_each_synced("s", 60);
  append_synced("t", expected_version::no_stream(), fresh_events(5));
  ASSERT_GT(p.log().segments().size(), segments_then);
  EXPECT_EQ(read_forward("s")->events.size(), 90u);

  must(job.write(), "write");
  must(p.finish_checkpoint(std::move(job), {}), "finish");

  // The checkpoint is the partition as it was at the begin.
  auto loaded = must(load_newest_checkpoint(posix_file_system(), partition_dir(), partition_id{0}),
                     "load");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->log_end, begun_at);
  ASSERT_EQ(loaded->index.size(), 1u);
  EXPECT_EQ(loaded->index.at(0).next_version, 30u);

  // What came after it is replayed from the node log.
  crash_and_reopen();
  EXPECT_GE(st().recovery().replayed_records, 61u);
  EXPECT_EQ(read_forward("s")->events.size(), 90u);
  EXPECT_EQ(read_forward("t")->events.size(), 5u);

  // The next checkpoint covers everything.
  must(st().checkpoint_all(), "checkpoint");
  crash_and_reopen();
  EXPECT_EQ(st().recovery().replayed_records, 0u);
  EXPECT_EQ(read_forward("s")->events.size(), 90u);
  EXPECT_EQ(read_forward("t")->events.size(), 5u);
}

TEST_F(checkpoint_job_test, one_checkpoint_at_a_time_and_no_clear_meanwhile) {
  auto& p = partition_of("s");
  append_each_synced("s", 3);
  auto job = must(p.begin_checkpoint(), "begin");

  auto second = p.begin_checkpoint();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.err().code, errc::invalid_argument);
  auto inline_checkpoint = p.checkpoint();
  ASSERT_FALSE(inline_checkpoint.ok());
  EXPECT_EQ(inline_checkpoint.err().code, errc::invalid_argument);
  auto cleared = p.clear();
  ASSERT_FALSE(cleared.ok());
  EXPECT_EQ(cleared.err().code, errc::invalid_argument);
  EXPECT_NE(cleared.err().message.find("checkpoint is in progress"), std::string::npos)
      << cleared.err().message;
  EXPECT_EQ(read_forward("s")->events.size(), 3u) << "nothing was cleared";

  const std::uint64_t sequence = job.sequence();
  must(job.write(), "write");
  must(p.finish_checkpoint(std::move(job), {}), "finish");
  auto next = must(p.begin_checkpoint(), "begin after finish");
  EXPECT_EQ(next.sequence(), sequence + 1);
  must(next.write(), "write");
  must(p.finish_checkpoint(std::move(next), {}), "finish");
  must(p.clear(), "clear");
  EXPECT_EQ(p.end(), lsn{0});
}

TEST_F(checkpoint_job_test, a_segment_file_that_fails_to_sync_stops_writes) {
  auto& p = partition_of("s");
  append_each_synced("s", 10);
  auto job = must(p.begin_checkpoint(), "begin");
  fs_.armed = true;
  const auto written = job.write();
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.err().code, errc::io_error);
  EXPECT_NE(written.err().message.find(".seg"), std::string::npos) << written.err().message;

  EXPECT_FALSE(job.retryable());
  const auto finished = p.finish_checkpoint(std::move(job), written);
  ASSERT_FALSE(finished.ok());
  EXPECT_EQ(finished.err().code, errc::io_error);
  // Sticky, also once the disk would sync again.
  fs_.armed = false;
  auto refused = append("s", expected_version::any(), fresh_events(1));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.err().code, errc::io_error);
  EXPECT_EQ(read_forward("s")->events.size(), 10u) << "what was acknowledged is still read";
}

TEST_F(checkpoint_job_test, a_checkpoint_file_that_cannot_be_stored_is_retried_by_the_next) {
  auto& p = partition_of("s");
  append_each_synced("s", 10);
  must(st().checkpoint_all(), "checkpoint");
  append_each_synced("s", 5);
  fs_.full_disk_writes = 1;
  auto job = must(p.begin_checkpoint(), "begin");
  const std::uint64_t sequence = job.sequence();
  const auto written = job.write();
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.err().code, errc::io_error);
  EXPECT_TRUE(job.retryable());
  EXPECT_FALSE(p.finish_checkpoint(std::move(job), written).ok());

  // Nothing sticky: writes go on, and the next checkpoint takes the same
  // place in the chain.
  append_each_synced("s", 5);
  auto retry = must(p.begin_checkpoint(), "begin again");
  EXPECT_EQ(retry.sequence(), sequence);
  must(retry.write(), "write");
  must(p.finish_checkpoint(std::move(retry), {}), "finish");
  crash_and_reopen();
  EXPECT_EQ(st().recovery().replayed_records, 0u);
  EXPECT_EQ(read_forward("s")->events.size(), 20u);
}

}  // namespace
