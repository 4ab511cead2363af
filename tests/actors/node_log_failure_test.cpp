// A failed fdatasync of the node log is sticky: the writes waiting for it and
// every later write fail with io_error; reads still work; stop() finishes.

#include <gtest/gtest.h>

#include "engine/file_system.hpp"
#include "tests/actors/node_harness.hpp"
#include "tests/support/event_factory.hpp"
#include "tests/support/fault_injection_file_system.hpp"

namespace annal::testing {
namespace {

using engine::errc;
using engine::expected_version;

TEST(node_log_failure, failed_fsync_fails_waiting_and_later_writes) {
  temp_dir dir;
  fault_injection_file_system fs(engine::posix_file_system());
  auto options = small_node_options(dir, engine::fsync_mode::always);
  options.fs = &fs;
  auto node = start_node(options);
  auto append = [&](std::uint64_t n) {
    return await_reply<actors::append_reply>([&](auto reply) {
      node->handler().append(append_of("f", expected_version::any(), make_events(n, 1)),
                             std::move(reply));
    });
  };
  ASSERT_TRUE(append(1).ok());

  fs.fail_syncs(std::errc::io_error);
  // Several writes in flight when the round fails: all of them fail.
  reply_counter replies(8);
  std::atomic<int> io_errors{0};
  for (std::uint64_t n = 10; n < 18; ++n) {
    node->handler().append(append_of("f-" + std::to_string(n), expected_version::any(),
                                     make_events(n, 1)),
                           [&](engine::result<actors::append_reply> r) {
                             if (!r && r.err().code == errc::io_error) io_errors.fetch_add(1);
                             replies.arrived();
                           });
  }
  ASSERT_TRUE(replies.wait());
  EXPECT_EQ(io_errors.load(), 8);

  // Sticky: also once the device works again.
  fs.clear_failures();
  auto later = append(2);
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(later.err().code, errc::io_error);
  auto snapshot = await_reply<actors::write_reply>([&](auto reply) {
    node->handler().put_snapshot("f", stream_version{0}, "s", std::move(reply));
  });
  ASSERT_FALSE(snapshot.ok());
  EXPECT_EQ(snapshot.err().code, errc::io_error);

  // What was acknowledged before the failure is still readable.
  auto page = await_reply<engine::read_page>(
      [&](auto reply) { node->handler().read_last("f", std::move(reply)); });
  ASSERT_TRUE(page.ok()) << page.err().message;
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].id, make_event_id(1));
  EXPECT_GE(node->metrics().errors[static_cast<std::size_t>(errc::io_error)].load(), 10u);

  node->stop();
}

}  // namespace
}  // namespace annal::testing
