// kill -9 of a node with appends in flight, at many different moments:
// after each restart every acknowledged event is readable, versions are
// dense and no event id appears twice.
#include <gtest/gtest.h>

#include "tests/integration/node_fixture.hpp"
#include "tests/integration/write_load.hpp"

namespace annal::testing {
namespace {

class kill_test : public node_fixture {};

// Waits until `load` acknowledged at least `target` events, with a generous
// deadline (a loaded CI machine). Returns false on deadline.
bool wait_for_acks(const write_load& load, std::uint64_t target) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (load.acknowledged() < target) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST_F(kill_test, every_acknowledged_append_survives_kill_9_at_22_moments) {
  write_load load;
  test_rng rng(20261123);
  constexpr int k_rounds = 22;
  for (int round = 0; round < k_rounds; ++round) {
    // The kill moment, as a number of acknowledgements into the round: the
    // first rounds kill at once or almost at once, later ones deeper into
    // the load (the deadline keeps the run bounded).
    const std::uint64_t into_round = round < 2 ? round : rng.between(1, 60 * round);
    const std::uint64_t target = load.acknowledged() + into_round;
    load.start(node_->binary_port(), 4, static_cast<std::uint64_t>(round) + 1);
    ASSERT_TRUE(wait_for_acks(load, target)) << "round " << round << ": load stalled";
    node_->kill();
    load.join();

    start_node();
    const std::uint64_t found = load.verify(*client_);
    ASSERT_FALSE(HasFailure()) << "round " << round;
    EXPECT_GE(found, load.acknowledged());
  }
  EXPECT_GT(load.acknowledged(), 0u);
}

}  // namespace
}  // namespace annal::testing
