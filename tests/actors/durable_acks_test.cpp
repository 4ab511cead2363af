// durable_acks: held writes are answered in write order once a durable
// position covers them; failures reach every held write.

#include <gtest/gtest.h>

#include <vector>

#include "actors/durable_acks.hpp"

namespace annal::testing {
namespace {

using actors::durable_acks;

class durable_acks_test : public ::testing::Test {
 protected:
  // A held write whose reply records `tag`, or the error's code.
  durable_acks::held write(std::uint64_t tag) {
    return durable_acks::held_write{[this, tag](engine::result<actors::write_reply> r) {
                                      if (r) {
                                        answered_.push_back(r->position.value());
                                      } else {
                                        failed_.push_back(r.err().code);
                                      }
                                    },
                                    actors::write_reply{lsn{tag}, partition_id{0}}};
  }
  durable_acks::held append(std::uint64_t tag) {
    return durable_acks::held_append{[this](engine::result<actors::append_reply> r) {
                                       if (r) {
                                         answered_.push_back(r->position.value());
                                       } else {
                                         failed_.push_back(r.err().code);
                                       }
                                     },
                                     actors::append_reply{stream_version{0}, stream_version{0},
                                                          lsn{tag}, partition_id{0}, false},
                                     actors::request_clock::now()};
  }

  actors::node_metrics metrics_;
  durable_acks acks_{metrics_};
  std::vector<std::uint64_t> answered_;
  std::vector<engine::errc> failed_;
};

TEST_F(durable_acks_test, a_covered_write_with_nothing_held_is_answered_at_once) {
  EXPECT_FALSE(acks_.hold(node_log_position{100}, write(1), node_log_position{100}));
  EXPECT_EQ(answered_, (std::vector<std::uint64_t>{1}));
  EXPECT_TRUE(acks_.empty());
}

TEST_F(durable_acks_test, a_write_past_the_durable_position_is_held_until_covered) {
  EXPECT_TRUE(acks_.hold(node_log_position{200}, write(1), node_log_position{100}));
  EXPECT_TRUE(answered_.empty());
  EXPECT_TRUE(acks_.release(node_log_position{199}));
  EXPECT_TRUE(answered_.empty());
  EXPECT_FALSE(acks_.release(node_log_position{200}));
  EXPECT_EQ(answered_, (std::vector<std::uint64_t>{1}));
  EXPECT_TRUE(acks_.empty());
}

TEST_F(durable_acks_test, writes_are_answered_in_write_order_even_when_covered_earlier) {
  ASSERT_TRUE(acks_.hold(node_log_position{300}, write(1), node_log_position{0}));
  // Covered already, but held behind the first write (a retry of an earlier
  // write can carry an earlier position).
  ASSERT_TRUE(acks_.hold(node_log_position{50}, write(2), node_log_position{100}));
  ASSERT_TRUE(acks_.hold(node_log_position{400}, write(3), node_log_position{100}));
  EXPECT_TRUE(acks_.release(node_log_position{299}));
  EXPECT_TRUE(answered_.empty());
  EXPECT_TRUE(acks_.release(node_log_position{300}));
  EXPECT_EQ(answered_, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_FALSE(acks_.release(node_log_position{500}));
  EXPECT_EQ(answered_, (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST_F(durable_acks_test, answer_now_goes_ahead_of_held_writes) {
  ASSERT_TRUE(acks_.hold(node_log_position{300}, write(1), node_log_position{0}));
  acks_.answer_now(write(2));
  EXPECT_EQ(answered_, (std::vector<std::uint64_t>{2}));
  EXPECT_FALSE(acks_.empty());
}

TEST_F(durable_acks_test, fail_all_fails_every_held_write_and_counts_the_errors) {
  ASSERT_TRUE(acks_.hold(node_log_position{300}, write(1), node_log_position{0}));
  ASSERT_TRUE(acks_.hold(node_log_position{400}, append(2), node_log_position{0}));
  EXPECT_EQ(acks_.fail_all(engine::error{engine::errc::io_error, "disk"}), 2u);
  EXPECT_TRUE(answered_.empty());
  EXPECT_EQ(failed_, (std::vector<engine::errc>{engine::errc::io_error, engine::errc::io_error}));
  EXPECT_TRUE(acks_.empty());
  EXPECT_EQ(metrics_.errors[static_cast<std::size_t>(engine::errc::io_error)].load(), 2u);
  // The failed append counts in the append latency.
  EXPECT_EQ(metrics_.append_seconds.count(), 1u);
  EXPECT_EQ(acks_.fail_all(engine::error{engine::errc::io_error, "disk"}), 0u);
}

TEST_F(durable_acks_test, an_answered_append_counts_in_the_append_latency) {
  ASSERT_TRUE(acks_.hold(node_log_position{300}, append(7), node_log_position{0}));
  EXPECT_EQ(metrics_.append_seconds.count(), 0u);
  EXPECT_FALSE(acks_.release(node_log_position{300}));
  EXPECT_EQ(answered_, (std::vector<std::uint64_t>{7}));
  EXPECT_EQ(metrics_.append_seconds.count(), 1u);
}

TEST_F(durable_acks_test, listening_is_off_until_turned_on) {
  EXPECT_FALSE(acks_.listening());
  acks_.listen(true);
  EXPECT_TRUE(acks_.listening());
  acks_.listen(false);
  EXPECT_FALSE(acks_.listening());
}

}  // namespace
}  // namespace annal::testing
