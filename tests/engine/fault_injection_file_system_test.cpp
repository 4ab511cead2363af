#include "tests/support/fault_injection_file_system.hpp"

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/byte_damage.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using annal::engine::posix_file_system;
using annal::engine::readable_file;
using annal::engine::writable_file;
using annal::testing::bytes_of;
using annal::testing::fault_injection_file_system;
using annal::testing::read_all;
using annal::testing::string_of;
using annal::testing::temp_dir;
using mode = fault_injection_file_system::power_loss_mode;

const std::error_code k_io_error = std::make_error_code(std::errc::io_error);
const std::error_code k_no_space = std::make_error_code(std::errc::no_space_on_device);

// What is really on disk, bypassing every file system.
std::string on_disk(const std::string& path) {
  std::vector<std::byte> bytes;
  if (auto ec = read_all(path, bytes)) {
    // Built with += : g++ 12 -O2 warns falsely (-Wrestrict, GCC bug 105651)
    // about "literal" + std::string.
    std::string error = "<error: ";
    error += ec.message();
    error += '>';
    return error;
  }
  return string_of(bytes);
}

// "stem" followed by `n` (built with += for the same reason as on_disk).
std::string numbered(std::string_view stem, std::uint64_t n) {
  std::string name(stem);
  name += std::to_string(n);
  return name;
}

std::error_code append(writable_file& file, std::string_view text) {
  return file.append(bytes_of(text));
}

class fault_injection_file_system_test : public ::testing::Test {
 protected:
  // Opens `name` in the temp dir for appending; fails the test on error.
  std::unique_ptr<writable_file> open(const std::string& name) {
    std::unique_ptr<writable_file> file;
    const auto ec = fs_.open_writable(dir_.file(name), file);
    EXPECT_FALSE(ec) << ec.message();
    return file;
  }

  temp_dir dir_;
  fault_injection_file_system fs_{posix_file_system()};
};

TEST_F(fault_injection_file_system_test, unsynced_bytes_are_dropped_on_power_loss) {
  auto file = open("log");
  ASSERT_FALSE(fs_.sync_directory(dir_.path()));
  ASSERT_FALSE(append(*file, "synced|"));
  ASSERT_FALSE(file->sync());
  ASSERT_FALSE(append(*file, "unsynced"));
  EXPECT_EQ(on_disk(dir_.file("log")), "synced|unsynced") << "the page cache still has them";
  file.reset();
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_EQ(on_disk(dir_.file("log")), "synced|");
}

TEST_F(fault_injection_file_system_test, end_mark_in_place_is_kept_once_synced_and_undone_if_not) {
  const auto path = dir_.file("log");
  ASSERT_FALSE(fs_.write_file(path, bytes_of("..........")));
  std::unique_ptr<writable_file> file;
  ASSERT_FALSE(fs_.open_writable_at(path, 0, file));
  ASSERT_FALSE(file->append_with_mark(bytes_of("ab##"), 2));
  ASSERT_FALSE(file->sync());
  ASSERT_FALSE(file->append_with_mark(bytes_of("cd##"), 2));  // over the mark, never synced
  EXPECT_EQ(on_disk(path), "abcd##....");
  file.reset();
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_EQ(on_disk(path), "ab##......");
}

TEST_F(fault_injection_file_system_test, synced_file_survives_power_loss_whole) {
  auto file = open("log");
  ASSERT_FALSE(fs_.sync_directory(dir_.path()));
  ASSERT_FALSE(append(*file, "one|"));
  ASSERT_FALSE(append(*file, "two"));
  ASSERT_FALSE(file->sync());
  file.reset();
  ASSERT_FALSE(fs_.power_loss(mode::tear_unsynced, 7));
  EXPECT_EQ(on_disk(dir_.file("log")), "one|two");
}

TEST_F(fault_injection_file_system_test, files_existing_before_the_wrapper_count_as_synced) {
  const auto path = dir_.file("old");
  ASSERT_FALSE(annal::testing::write_all(path, bytes_of("before")));
  fault_injection_file_system fs(posix_file_system());
  std::unique_ptr<writable_file> file;
  ASSERT_FALSE(fs.open_writable(path, file));
  ASSERT_FALSE(append(*file, "|after"));
  file.reset();
  ASSERT_FALSE(fs.power_loss(mode::drop_unsynced));
  EXPECT_EQ(on_disk(path), "before");
}

// Writes 10 synced and 90 unsynced bytes to "log" in `dir`, loses power with
// `seed`, and returns what is left.
std::string torn_log(const std::string& dir, std::uint64_t seed) {
  fault_injection_file_system fs(posix_file_system());
  std::unique_ptr<writable_file> file;
  EXPECT_FALSE(fs.open_writable(dir + "/log", file));
  EXPECT_FALSE(fs.sync_directory(dir));
  std::string all;
  for (int i = 0; i < 10; ++i) all += static_cast<char>('a' + i);
  EXPECT_FALSE(append(*file, all));
  EXPECT_FALSE(file->sync());
  for (int i = 0; i < 90; ++i) {
    const std::string chunk(1, static_cast<char>('0' + i % 10));
    EXPECT_FALSE(append(*file, chunk));
    all += chunk;
  }
  file.reset();
  EXPECT_FALSE(fs.power_loss(mode::tear_unsynced, seed));
  const std::string left = on_disk(dir + "/log");
  EXPECT_EQ(all.substr(0, left.size()), left) << "seed " << seed << ": not a prefix";
  return left;
}

TEST_F(fault_injection_file_system_test, torn_power_loss_keeps_a_prefix_between_synced_and_written) {
  std::set<std::size_t> sizes;
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    const std::string dir = dir_.file(numbered("seed", seed));
    ASSERT_FALSE(fs_.create_directories(dir));
    const std::size_t left = torn_log(dir, seed).size();
    EXPECT_GE(left, 10u) << "seed " << seed;
    EXPECT_LE(left, 100u) << "seed " << seed;
    sizes.insert(left);
  }
  EXPECT_GT(sizes.size(), 10u) << "tears should land in many places";
  EXPECT_TRUE(std::any_of(sizes.begin(), sizes.end(),
                          [](std::size_t s) { return s > 10 && s < 100; }));
}

TEST_F(fault_injection_file_system_test, torn_power_loss_is_deterministic_for_a_seed) {
  for (std::uint64_t seed : {0u, 1u, 42u, 12345u}) {
    const temp_dir first;
    const temp_dir second;
    EXPECT_EQ(torn_log(first.path(), seed), torn_log(second.path(), seed)) << "seed " << seed;
  }
}

TEST_F(fault_injection_file_system_test, new_file_without_directory_sync_vanishes_on_power_loss) {
  auto file = open("segment");
  ASSERT_FALSE(append(*file, "data"));
  ASSERT_FALSE(file->sync()) << "syncing the file does not make its name durable";
  file.reset();
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_FALSE(fs_.exists(dir_.file("segment")));
}

TEST_F(fault_injection_file_system_test, new_file_with_directory_sync_survives_power_loss) {
  auto file = open("segment");
  ASSERT_FALSE(append(*file, "data"));
  ASSERT_FALSE(file->sync());
  ASSERT_FALSE(fs_.sync_directory(dir_.path() + "/"));
  file.reset();
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_EQ(on_disk(dir_.file("segment")), "data");
}

TEST_F(fault_injection_file_system_test, new_file_in_new_directory_survives_after_directory_sync) {
  ASSERT_FALSE(fs_.create_directories(dir_.file("p/0")));
  const auto path = dir_.file("p/0/log");
  std::unique_ptr<writable_file> file;
  ASSERT_FALSE(fs_.open_writable(path, file));
  ASSERT_FALSE(append(*file, "x"));
  ASSERT_FALSE(file->sync());
  ASSERT_FALSE(fs_.sync_directory(dir_.file("p/0")));
  file.reset();
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_EQ(on_disk(path), "x");
}

TEST_F(fault_injection_file_system_test, write_file_is_durable_on_return) {
  ASSERT_FALSE(fs_.write_file(dir_.file("checkpoint"), bytes_of("state")));
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_EQ(on_disk(dir_.file("checkpoint")), "state");
}

TEST_F(fault_injection_file_system_test, write_file_makes_earlier_entries_of_its_directory_durable) {
  auto file = open("segment");
  ASSERT_FALSE(append(*file, "abc"));
  ASSERT_FALSE(file->sync());
  ASSERT_FALSE(fs_.write_file(dir_.file("checkpoint"), bytes_of("state")));
  file.reset();
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_EQ(on_disk(dir_.file("segment")), "abc");
}

TEST_F(fault_injection_file_system_test, rename_file_is_durable_on_return) {
  ASSERT_FALSE(fs_.write_file(dir_.file("checkpoint"), bytes_of("old")));
  ASSERT_FALSE(fs_.write_file(dir_.file("checkpoint.tmp"), bytes_of("new")));
  ASSERT_FALSE(fs_.rename_file(dir_.file("checkpoint.tmp"), dir_.file("checkpoint")));
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_EQ(on_disk(dir_.file("checkpoint")), "new");
  EXPECT_FALSE(fs_.exists(dir_.file("checkpoint.tmp")));
}

TEST_F(fault_injection_file_system_test, renamed_file_keeps_its_unsynced_tail_unsynced) {
  auto file = open("a");
  ASSERT_FALSE(append(*file, "kept|"));
  ASSERT_FALSE(file->sync());
  ASSERT_FALSE(append(*file, "lost"));
  ASSERT_FALSE(fs_.rename_file(dir_.file("a"), dir_.file("b")));
  file.reset();
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_FALSE(fs_.exists(dir_.file("a")));
  EXPECT_EQ(on_disk(dir_.file("b")), "kept|");
}

TEST_F(fault_injection_file_system_test, truncate_file_is_durable_on_return) {
  auto file = open("log");
  ASSERT_FALSE(fs_.sync_directory(dir_.path()));
  ASSERT_FALSE(append(*file, "0123456789"));
  ASSERT_FALSE(fs_.truncate_file(dir_.file("log"), 4));
  file.reset();
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_EQ(on_disk(dir_.file("log")), "0123");
}

TEST_F(fault_injection_file_system_test, removed_file_comes_back_on_power_loss_without_directory_sync) {
  auto file = open("segment");
  ASSERT_FALSE(fs_.sync_directory(dir_.path()));
  ASSERT_FALSE(append(*file, "durable|"));
  ASSERT_FALSE(file->sync());
  ASSERT_FALSE(append(*file, "not"));
  file.reset();
  ASSERT_FALSE(fs_.remove_file(dir_.file("segment")));
  EXPECT_FALSE(fs_.exists(dir_.file("segment")));
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_EQ(on_disk(dir_.file("segment")), "durable|");
}

TEST_F(fault_injection_file_system_test, removed_file_stays_removed_after_directory_sync) {
  ASSERT_FALSE(fs_.write_file(dir_.file("segment"), bytes_of("x")));
  ASSERT_FALSE(fs_.remove_file(dir_.file("segment")));
  ASSERT_FALSE(fs_.sync_directory(dir_.path()));
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_FALSE(fs_.exists(dir_.file("segment")));
}

TEST_F(fault_injection_file_system_test, file_created_and_removed_before_directory_sync_stays_gone) {
  auto file = open("tmp");
  ASSERT_FALSE(append(*file, "x"));
  ASSERT_FALSE(file->sync());
  file.reset();
  ASSERT_FALSE(fs_.remove_file(dir_.file("tmp")));
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_FALSE(fs_.exists(dir_.file("tmp")));
}

TEST_F(fault_injection_file_system_test, fail_writes_with_enospc_fails_without_writing) {
  auto file = open("log");
  ASSERT_FALSE(append(*file, "ok|"));
  fs_.fail_writes(std::errc::no_space_on_device);
  EXPECT_EQ(append(*file, "refused"), k_no_space);
  EXPECT_EQ(file->size(), 3u);
  EXPECT_EQ(on_disk(dir_.file("log")), "ok|");
  EXPECT_EQ(fs_.write_file(dir_.file("checkpoint"), bytes_of("x")), k_no_space);
  EXPECT_FALSE(fs_.exists(dir_.file("checkpoint")));
  EXPECT_FALSE(file->sync()) << "syncs are not writes";

  fs_.clear_failures();
  ASSERT_FALSE(append(*file, "again"));
  EXPECT_EQ(on_disk(dir_.file("log")), "ok|again");
}

TEST_F(fault_injection_file_system_test, fail_syncs_with_eio_keeps_appended_bytes_unsynced) {
  auto file = open("log");
  ASSERT_FALSE(fs_.sync_directory(dir_.path()));
  ASSERT_FALSE(append(*file, "synced|"));
  ASSERT_FALSE(file->sync());
  fs_.fail_syncs(std::errc::io_error);
  ASSERT_FALSE(append(*file, "unsynced")) << "writes still work";
  EXPECT_EQ(file->sync(), k_io_error);
  EXPECT_EQ(fs_.sync_directory(dir_.path()), k_io_error);
  file.reset();
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_EQ(on_disk(dir_.file("log")), "synced|");
}

TEST_F(fault_injection_file_system_test, failed_directory_sync_leaves_new_file_to_vanish) {
  auto file = open("segment");
  ASSERT_FALSE(append(*file, "x"));
  ASSERT_FALSE(file->sync());
  fs_.fail_syncs(std::errc::io_error);
  EXPECT_EQ(fs_.sync_directory(dir_.path()), k_io_error);
  file.reset();
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_FALSE(fs_.exists(dir_.file("segment")));
}

TEST_F(fault_injection_file_system_test, write_file_with_failed_sync_is_visible_but_not_durable) {
  fs_.fail_syncs(std::errc::io_error);
  EXPECT_EQ(fs_.write_file(dir_.file("checkpoint"), bytes_of("state")), k_io_error);
  EXPECT_EQ(on_disk(dir_.file("checkpoint")), "state");
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_FALSE(fs_.exists(dir_.file("checkpoint")));
}

TEST_F(fault_injection_file_system_test, rename_with_failed_sync_is_undone_on_power_loss) {
  ASSERT_FALSE(fs_.write_file(dir_.file("checkpoint.tmp"), bytes_of("new")));
  fs_.fail_syncs(std::errc::io_error);
  EXPECT_EQ(fs_.rename_file(dir_.file("checkpoint.tmp"), dir_.file("checkpoint")), k_io_error);
  EXPECT_EQ(on_disk(dir_.file("checkpoint")), "new") << "the rename itself happened";
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_FALSE(fs_.exists(dir_.file("checkpoint")));
  EXPECT_EQ(on_disk(dir_.file("checkpoint.tmp")), "new");
}

TEST_F(fault_injection_file_system_test, rename_over_existing_target_with_failed_sync_is_kept) {
  ASSERT_FALSE(fs_.write_file(dir_.file("checkpoint"), bytes_of("old")));
  ASSERT_FALSE(fs_.write_file(dir_.file("checkpoint.tmp"), bytes_of("new")));
  fs_.fail_syncs(std::errc::io_error);
  EXPECT_EQ(fs_.rename_file(dir_.file("checkpoint.tmp"), dir_.file("checkpoint")), k_io_error);
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_EQ(on_disk(dir_.file("checkpoint")), "new");
  EXPECT_FALSE(fs_.exists(dir_.file("checkpoint.tmp")));
}

TEST_F(fault_injection_file_system_test, create_directories_with_failed_sync_creates_nothing) {
  fs_.fail_syncs(std::errc::io_error);
  EXPECT_EQ(fs_.create_directories(dir_.file("a/b")), k_io_error);
  EXPECT_FALSE(fs_.exists(dir_.file("a")));
}

TEST_F(fault_injection_file_system_test, crash_after_lets_exactly_n_appends_through) {
  for (std::uint64_t n = 0; n <= 6; ++n) {
    const std::string name = numbered("log", n);
    auto file = open(name);
    fs_.crash_after(n);
    std::uint64_t succeeded = 0;
    for (int i = 0; i < 6; ++i) {
      const auto ec = append(*file, "x");
      if (!ec) {
        ++succeeded;
      } else {
        EXPECT_EQ(ec, k_io_error);
      }
    }
    EXPECT_EQ(succeeded, std::min<std::uint64_t>(n, 6)) << "n = " << n;
    EXPECT_EQ(on_disk(dir_.file(name)), std::string(succeeded, 'x'));
    fs_.clear_failures();
  }
}

TEST_F(fault_injection_file_system_test, crash_after_fails_every_mutating_operation_and_changes_nothing) {
  ASSERT_FALSE(fs_.write_file(dir_.file("keep"), bytes_of("keep")));
  auto file = open("log");
  const std::uint64_t before = fs_.mutating_operations();
  fs_.crash_after(3);
  ASSERT_FALSE(append(*file, "a"));
  ASSERT_FALSE(file->sync());
  ASSERT_FALSE(append(*file, "b"));
  // Dead from here on.
  EXPECT_EQ(append(*file, "c"), k_io_error);
  EXPECT_EQ(file->sync(), k_io_error);
  EXPECT_EQ(fs_.write_file(dir_.file("new"), bytes_of("x")), k_io_error);
  EXPECT_EQ(fs_.truncate_file(dir_.file("keep"), 0), k_io_error);
  EXPECT_EQ(fs_.remove_file(dir_.file("keep")), k_io_error);
  EXPECT_EQ(fs_.rename_file(dir_.file("keep"), dir_.file("moved")), k_io_error);
  EXPECT_EQ(fs_.create_directories(dir_.file("d")), k_io_error);
  EXPECT_EQ(fs_.sync_directory(dir_.path()), k_io_error);
  std::unique_ptr<writable_file> other;
  EXPECT_EQ(fs_.open_writable(dir_.file("other"), other), k_io_error);
  EXPECT_EQ(fs_.mutating_operations(), before + 11) << "failed attempts count, opens do not";

  EXPECT_EQ(on_disk(dir_.file("log")), "ab");
  EXPECT_EQ(on_disk(dir_.file("keep")), "keep");
  EXPECT_FALSE(fs_.exists(dir_.file("new")));
  EXPECT_FALSE(fs_.exists(dir_.file("moved")));
  EXPECT_FALSE(fs_.exists(dir_.file("d")));
  EXPECT_FALSE(fs_.exists(dir_.file("other")));

  // Reads keep working.
  std::vector<std::byte> bytes;
  ASSERT_FALSE(fs_.read_file(dir_.file("log"), bytes));
  EXPECT_EQ(string_of(bytes), "ab");
  std::unique_ptr<readable_file> reader;
  ASSERT_FALSE(fs_.open_readable(dir_.file("keep"), reader));
  std::vector<std::byte> out(4);
  std::size_t n = 0;
  ASSERT_FALSE(reader->read(0, out, n));
  EXPECT_EQ(string_of(std::span(out).first(n)), "keep");
  std::vector<std::string> names;
  ASSERT_FALSE(fs_.list_files(dir_.path(), names));
  EXPECT_EQ(names, (std::vector<std::string>{"keep", "log"}));
}

TEST_F(fault_injection_file_system_test, clear_failures_revives_after_crash) {
  auto file = open("log");
  fs_.crash_after(0);
  EXPECT_EQ(append(*file, "lost"), k_io_error);
  fs_.clear_failures();
  ASSERT_FALSE(append(*file, "ok"));
  EXPECT_EQ(on_disk(dir_.file("log")), "ok");
}

TEST_F(fault_injection_file_system_test, power_loss_clears_failures_and_crash_point) {
  fs_.fail_writes(std::errc::no_space_on_device);
  fs_.fail_syncs(std::errc::io_error);
  fs_.crash_after(0);
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  auto file = open("log");
  ASSERT_FALSE(append(*file, "x"));
  ASSERT_FALSE(file->sync());
  ASSERT_FALSE(fs_.write_file(dir_.file("f"), bytes_of("y")));
  ASSERT_FALSE(fs_.sync_directory(dir_.path()));
}

TEST_F(fault_injection_file_system_test, files_opened_before_power_loss_fail_with_eio) {
  auto writer = open("log");
  ASSERT_FALSE(append(*writer, "abc"));
  ASSERT_FALSE(writer->sync());
  ASSERT_FALSE(fs_.sync_directory(dir_.path()));
  std::unique_ptr<readable_file> reader;
  ASSERT_FALSE(fs_.open_readable(dir_.file("log"), reader));
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_EQ(append(*writer, "d"), k_io_error);
  EXPECT_EQ(writer->sync(), k_io_error);
  std::vector<std::byte> out(3);
  std::size_t n = 99;
  EXPECT_EQ(reader->read(0, out, n), k_io_error);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(on_disk(dir_.file("log")), "abc");
}

TEST_F(fault_injection_file_system_test, everything_on_disk_counts_as_synced_after_power_loss) {
  auto file = open("log");
  ASSERT_FALSE(append(*file, "abc"));
  ASSERT_FALSE(fs_.sync_directory(dir_.path()));
  file.reset();
  ASSERT_FALSE(fs_.power_loss(mode::tear_unsynced, 3));
  const std::string survivor = on_disk(dir_.file("log"));
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_EQ(on_disk(dir_.file("log")), survivor);
}

TEST_F(fault_injection_file_system_test, mutating_operations_counts_attempts) {
  EXPECT_EQ(fs_.mutating_operations(), 0u);
  auto file = open("log");
  EXPECT_EQ(fs_.mutating_operations(), 0u) << "opening is not counted";
  ASSERT_FALSE(append(*file, "a"));
  ASSERT_FALSE(file->sync());
  fs_.fail_writes(std::errc::no_space_on_device);
  EXPECT_EQ(append(*file, "b"), k_no_space);
  std::vector<std::byte> bytes;
  ASSERT_FALSE(fs_.read_file(dir_.file("log"), bytes));
  EXPECT_EQ(fs_.mutating_operations(), 3u) << "reads are not counted, failures are";
}

TEST_F(fault_injection_file_system_test, flip_bit_changes_exactly_one_bit) {
  const auto path = dir_.file("data");
  std::vector<std::byte> original(16);
  for (std::size_t i = 0; i < original.size(); ++i) original[i] = static_cast<std::byte>(0xA0 + i);
  ASSERT_FALSE(fs_.write_file(path, original));
  ASSERT_FALSE(fs_.flip_bit(path, 5, 3));
  std::vector<std::byte> damaged;
  ASSERT_FALSE(read_all(path, damaged));
  ASSERT_EQ(damaged.size(), original.size());
  for (std::size_t i = 0; i < original.size(); ++i) {
    const auto expected = i == 5 ? (original[i] ^ std::byte{0x08}) : original[i];
    EXPECT_EQ(damaged[i], expected) << "byte " << i;
  }
  ASSERT_FALSE(fs_.flip_bit(path, 5, 3));
  ASSERT_FALSE(read_all(path, damaged));
  EXPECT_TRUE(damaged == original) << "flipping twice restores the byte";

  const auto invalid = std::make_error_code(std::errc::invalid_argument);
  EXPECT_EQ(fs_.flip_bit(path, 16, 0), invalid) << "past the end";
  EXPECT_EQ(fs_.flip_bit(path, 0, 8), invalid);
  EXPECT_EQ(fs_.flip_bit(path, 0, -1), invalid);
  EXPECT_EQ(fs_.flip_bit(dir_.file("missing"), 0, 0),
            std::make_error_code(std::errc::no_such_file_or_directory));
}

TEST_F(fault_injection_file_system_test, concurrent_append_and_sync_are_safe) {
  constexpr int k_records = 2000;
  auto file = open("log");
  ASSERT_FALSE(fs_.sync_directory(dir_.path()));
  std::atomic<bool> done{false};
  std::atomic<int> sync_errors{0};
  std::atomic<int> syncs{0};
  std::thread syncer([&] {
    // At least one sync, then keep syncing while the owner appends.
    do {
      if (file->sync()) ++sync_errors;
      ++syncs;
      (void)file->size();
    } while (!done.load());
  });
  std::string expected;
  int append_errors = 0;
  for (int i = 0; i < k_records; ++i) {
    const std::string record = numbered("record-", i) + ";";
    if (append(*file, record)) ++append_errors;
    expected += record;
  }
  done = true;
  syncer.join();
  EXPECT_EQ(append_errors, 0);
  EXPECT_EQ(sync_errors.load(), 0);
  EXPECT_GT(syncs.load(), 0);
  EXPECT_EQ(file->size(), expected.size());

  // Whatever the syncs covered is a prefix; a final sync covers everything.
  file.reset();
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  const std::string survivor = on_disk(dir_.file("log"));
  EXPECT_EQ(expected.substr(0, survivor.size()), survivor);

  auto again = open("log");
  ASSERT_FALSE(append(*again, expected.substr(survivor.size())));
  ASSERT_FALSE(again->sync());
  again.reset();
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  EXPECT_EQ(on_disk(dir_.file("log")), expected);
}

TEST_F(fault_injection_file_system_test, concurrent_operations_from_many_threads_are_safe) {
  constexpr int k_threads = 4;
  constexpr int k_rounds = 50;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      const std::string prefix = dir_.file(numbered("t", t));
      std::unique_ptr<writable_file> file;
      if (fs_.open_writable(prefix + ".log", file)) {
        ++errors;
        return;
      }
      for (int i = 0; i < k_rounds; ++i) {
        if (append(*file, "x")) ++errors;
        if (file->sync()) ++errors;
        if (fs_.write_file(prefix + ".tmp", bytes_of(std::to_string(i)))) ++errors;
        if (fs_.rename_file(prefix + ".tmp", prefix + ".ckpt")) ++errors;
        if (fs_.sync_directory(dir_.path())) ++errors;
        std::vector<std::string> names;
        if (fs_.list_files(dir_.path(), names)) ++errors;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(errors.load(), 0);
  ASSERT_FALSE(fs_.power_loss(mode::drop_unsynced));
  for (int t = 0; t < k_threads; ++t) {
    const std::string prefix = dir_.file(numbered("t", t));
    EXPECT_EQ(on_disk(prefix + ".log"), std::string(k_rounds, 'x'));
    EXPECT_EQ(on_disk(prefix + ".ckpt"), std::to_string(k_rounds - 1));
    EXPECT_FALSE(fs_.exists(prefix + ".tmp"));
  }
}

}  // namespace
