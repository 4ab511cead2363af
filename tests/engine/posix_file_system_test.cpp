#include "engine/file_system.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/support/byte_damage.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

using annal::engine::file_system;
using annal::engine::posix_file_system;
using annal::engine::readable_file;
using annal::engine::writable_file;
using annal::testing::bytes_of;
using annal::testing::read_all;
using annal::testing::string_of;
using annal::testing::temp_dir;

const std::error_code k_not_found = std::make_error_code(std::errc::no_such_file_or_directory);

std::string contents(const std::string& path) {
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

class posix_file_system_test : public ::testing::Test {
 protected:
  file_system& fs_ = posix_file_system();
  temp_dir dir_;
};

TEST_F(posix_file_system_test, returns_the_same_instance_every_time) {
  EXPECT_EQ(&posix_file_system(), &posix_file_system());
}

TEST_F(posix_file_system_test, append_grows_size_and_bytes_read_back) {
  const auto path = dir_.file("log");
  std::unique_ptr<writable_file> file;
  ASSERT_FALSE(fs_.open_writable(path, file));
  EXPECT_EQ(file->size(), 0u);
  ASSERT_FALSE(file->append(bytes_of("hello ")));
  EXPECT_EQ(file->size(), 6u);
  ASSERT_FALSE(file->append(bytes_of("world")));
  ASSERT_FALSE(file->append({}));
  EXPECT_EQ(file->size(), 11u);
  ASSERT_FALSE(file->sync());
  EXPECT_EQ(contents(path), "hello world");

  std::unique_ptr<readable_file> reader;
  ASSERT_FALSE(fs_.open_readable(path, reader));
  EXPECT_EQ(reader->size(), 11u);
  std::vector<std::byte> out(5);
  std::size_t n = 0;
  ASSERT_FALSE(reader->read(6, out, n));
  EXPECT_EQ(n, 5u);
  EXPECT_EQ(string_of(out), "world");
}

TEST_F(posix_file_system_test, open_writable_appends_after_existing_bytes) {
  const auto path = dir_.file("log");
  ASSERT_FALSE(annal::testing::write_all(path, bytes_of("abc")));
  std::unique_ptr<writable_file> file;
  ASSERT_FALSE(fs_.open_writable(path, file));
  EXPECT_EQ(file->size(), 3u);
  ASSERT_FALSE(file->append(bytes_of("def")));
  EXPECT_EQ(file->size(), 6u);
  EXPECT_EQ(contents(path), "abcdef");
}

TEST_F(posix_file_system_test, append_with_mark_in_place_leaves_the_mark_for_the_next_append) {
  const auto path = dir_.file("log");
  ASSERT_FALSE(annal::testing::write_all(path, bytes_of("0123456789")));
  std::unique_ptr<writable_file> file;
  ASSERT_FALSE(fs_.open_writable_at(path, 2, file));
  ASSERT_FALSE(file->append_with_mark(bytes_of("ab--"), 2));
  EXPECT_EQ(file->size(), 4u) << "the position stops before the mark";
  EXPECT_EQ(contents(path), "01ab--6789");
  ASSERT_FALSE(file->append_with_mark(bytes_of("cdefghi**"), 2));
  EXPECT_EQ(file->size(), 11u);
  EXPECT_EQ(contents(path), "01abcdefghi**") << "the file grows by the mark too";
  ASSERT_FALSE(file->append(bytes_of("j")));
  EXPECT_EQ(contents(path), "01abcdefghij*");
}

TEST_F(posix_file_system_test, append_with_mark_at_the_end_writes_no_mark) {
  const auto path = dir_.file("log");
  std::unique_ptr<writable_file> file;
  ASSERT_FALSE(fs_.open_writable(path, file));
  ASSERT_FALSE(file->append_with_mark(bytes_of("abc--"), 2));
  EXPECT_EQ(file->size(), 3u);
  ASSERT_FALSE(file->append_with_mark(bytes_of("d--"), 2));
  EXPECT_EQ(contents(path), "abcd");
}

TEST_F(posix_file_system_test, open_writable_creates_file_with_mode_0644) {
  const auto path = dir_.file("log");
  const mode_t old_umask = ::umask(022);
  std::unique_ptr<writable_file> file;
  const auto ec = fs_.open_writable(path, file);
  ::umask(old_umask);
  ASSERT_FALSE(ec);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(posix_file_system_test, large_append_is_written_completely) {
  const auto path = dir_.file("big");
  std::vector<std::byte> data(8 * 1024 * 1024 + 7);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 31 + 7);
  std::unique_ptr<writable_file> file;
  ASSERT_FALSE(fs_.open_writable(path, file));
  ASSERT_FALSE(file->append(data));
  EXPECT_EQ(file->size(), data.size());
  std::vector<std::byte> back;
  ASSERT_FALSE(fs_.read_file(path, back));
  EXPECT_TRUE(back == data);
}

TEST_F(posix_file_system_test, read_at_end_of_file_is_short) {
  const auto path = dir_.file("f");
  ASSERT_FALSE(annal::testing::write_all(path, bytes_of("0123456789")));
  std::unique_ptr<readable_file> reader;
  ASSERT_FALSE(fs_.open_readable(path, reader));
  std::vector<std::byte> out(8, std::byte{'x'});
  std::size_t n = 99;
  ASSERT_FALSE(reader->read(6, out, n));
  EXPECT_EQ(n, 4u);
  EXPECT_EQ(string_of(std::span(out).first(n)), "6789");
}

TEST_F(posix_file_system_test, read_past_end_of_file_reads_nothing) {
  const auto path = dir_.file("f");
  ASSERT_FALSE(annal::testing::write_all(path, bytes_of("0123")));
  std::unique_ptr<readable_file> reader;
  ASSERT_FALSE(fs_.open_readable(path, reader));
  std::vector<std::byte> out(8);
  std::size_t n = 99;
  ASSERT_FALSE(reader->read(4, out, n));
  EXPECT_EQ(n, 0u);
  ASSERT_FALSE(reader->read(1000, out, n));
  EXPECT_EQ(n, 0u);
}

TEST_F(posix_file_system_test, readable_size_follows_a_growing_file) {
  const auto path = dir_.file("log");
  std::unique_ptr<writable_file> writer;
  ASSERT_FALSE(fs_.open_writable(path, writer));
  std::unique_ptr<readable_file> reader;
  ASSERT_FALSE(fs_.open_readable(path, reader));
  EXPECT_EQ(reader->size(), 0u);
  ASSERT_FALSE(writer->append(bytes_of("abc")));
  EXPECT_EQ(reader->size(), 3u);
}

TEST_F(posix_file_system_test, write_file_replaces_contents) {
  const auto path = dir_.file("checkpoint");
  ASSERT_FALSE(fs_.write_file(path, bytes_of("a much longer first version")));
  ASSERT_FALSE(fs_.write_file(path, bytes_of("second")));
  std::vector<std::byte> back;
  ASSERT_FALSE(fs_.read_file(path, back));
  EXPECT_EQ(string_of(back), "second");
  std::uint64_t size = 0;
  ASSERT_FALSE(fs_.file_size(path, size));
  EXPECT_EQ(size, 6u);
}

TEST_F(posix_file_system_test, write_file_of_nothing_makes_an_empty_file) {
  const auto path = dir_.file("empty");
  ASSERT_FALSE(fs_.write_file(path, {}));
  std::vector<std::byte> back{std::byte{1}};
  ASSERT_FALSE(fs_.read_file(path, back));
  EXPECT_TRUE(back.empty());
}

TEST_F(posix_file_system_test, write_file_in_missing_directory_is_enoent) {
  EXPECT_EQ(fs_.write_file(dir_.file("no/such/file"), bytes_of("x")), k_not_found);
}

TEST_F(posix_file_system_test, rename_file_replaces_target) {
  const auto from = dir_.file("checkpoint.tmp");
  const auto to = dir_.file("checkpoint");
  ASSERT_FALSE(fs_.write_file(to, bytes_of("old")));
  ASSERT_FALSE(fs_.write_file(from, bytes_of("new")));
  ASSERT_FALSE(fs_.rename_file(from, to));
  EXPECT_FALSE(fs_.exists(from));
  EXPECT_EQ(contents(to), "new");
}

TEST_F(posix_file_system_test, rename_file_moves_between_directories) {
  ASSERT_FALSE(fs_.create_directories(dir_.file("a")));
  ASSERT_FALSE(fs_.create_directories(dir_.file("b")));
  ASSERT_FALSE(fs_.write_file(dir_.file("a/f"), bytes_of("x")));
  ASSERT_FALSE(fs_.rename_file(dir_.file("a/f"), dir_.file("b/g")));
  EXPECT_FALSE(fs_.exists(dir_.file("a/f")));
  EXPECT_EQ(contents(dir_.file("b/g")), "x");
}

TEST_F(posix_file_system_test, truncate_file_shrinks) {
  const auto path = dir_.file("log");
  ASSERT_FALSE(fs_.write_file(path, bytes_of("0123456789")));
  ASSERT_FALSE(fs_.truncate_file(path, 4));
  EXPECT_EQ(contents(path), "0123");
  ASSERT_FALSE(fs_.truncate_file(path, 0));
  EXPECT_EQ(contents(path), "");
}

TEST_F(posix_file_system_test, remove_file_removes) {
  const auto path = dir_.file("f");
  ASSERT_FALSE(fs_.write_file(path, bytes_of("x")));
  EXPECT_TRUE(fs_.exists(path));
  ASSERT_FALSE(fs_.remove_file(path));
  EXPECT_FALSE(fs_.exists(path));
}

TEST_F(posix_file_system_test, list_files_returns_regular_files_sorted) {
  for (const char* name : {"c", "a", "b10", "b2"}) {
    ASSERT_FALSE(fs_.write_file(dir_.file(name), bytes_of(name)));
  }
  ASSERT_FALSE(fs_.create_directories(dir_.file("subdir")));
  ASSERT_EQ(::symlink(dir_.file("a").c_str(), dir_.file("link").c_str()), 0);
  ASSERT_EQ(::mkfifo(dir_.file("fifo").c_str(), 0644), 0);
  std::vector<std::string> names{"stale"};
  ASSERT_FALSE(fs_.list_files(dir_.path(), names));
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b10", "b2", "c"}));
}

TEST_F(posix_file_system_test, list_files_of_empty_directory_is_empty) {
  std::vector<std::string> names{"stale"};
  ASSERT_FALSE(fs_.list_files(dir_.path(), names));
  EXPECT_TRUE(names.empty());
}

TEST_F(posix_file_system_test, create_directories_creates_missing_parents) {
  const auto path = dir_.file("a/b/c");
  ASSERT_FALSE(fs_.create_directories(path));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_FALSE(fs_.create_directories(path)) << "existing directories are fine";
  EXPECT_FALSE(fs_.create_directories(dir_.file("a//b/c/d/")));
  EXPECT_TRUE(fs_.exists(dir_.file("a/b/c/d")));
}

TEST_F(posix_file_system_test, create_directories_through_a_file_is_enotdir) {
  ASSERT_FALSE(fs_.write_file(dir_.file("f"), bytes_of("x")));
  EXPECT_EQ(fs_.create_directories(dir_.file("f")),
            std::make_error_code(std::errc::not_a_directory));
  EXPECT_EQ(fs_.create_directories(dir_.file("f/g")),
            std::make_error_code(std::errc::not_a_directory));
}

TEST_F(posix_file_system_test, sync_directory_succeeds_on_a_directory) {
  EXPECT_FALSE(fs_.sync_directory(dir_.path()));
}

TEST_F(posix_file_system_test, exists_and_file_size_report_the_file) {
  const auto path = dir_.file("f");
  EXPECT_FALSE(fs_.exists(path));
  ASSERT_FALSE(fs_.write_file(path, bytes_of("12345")));
  EXPECT_TRUE(fs_.exists(path));
  std::uint64_t size = 0;
  ASSERT_FALSE(fs_.file_size(path, size));
  EXPECT_EQ(size, 5u);
}

TEST_F(posix_file_system_test, missing_file_is_enoent_everywhere) {
  const auto missing = dir_.file("missing");
  std::unique_ptr<readable_file> reader;
  EXPECT_EQ(fs_.open_readable(missing, reader), k_not_found);
  EXPECT_EQ(reader, nullptr);
  std::vector<std::byte> bytes;
  EXPECT_EQ(fs_.read_file(missing, bytes), k_not_found);
  EXPECT_EQ(fs_.truncate_file(missing, 0), k_not_found);
  EXPECT_EQ(fs_.remove_file(missing), k_not_found);
  EXPECT_EQ(fs_.rename_file(missing, dir_.file("other")), k_not_found);
  std::vector<std::string> names;
  EXPECT_EQ(fs_.list_files(missing, names), k_not_found);
  std::uint64_t size = 0;
  EXPECT_EQ(fs_.file_size(missing, size), k_not_found);
  EXPECT_EQ(fs_.sync_directory(missing), k_not_found);
  std::unique_ptr<writable_file> writer;
  EXPECT_EQ(fs_.open_writable(dir_.file("no/such/dir/file"), writer), k_not_found);
  EXPECT_FALSE(fs_.exists(missing));
}

TEST_F(posix_file_system_test, errors_are_in_the_generic_category) {
  std::vector<std::byte> bytes;
  const auto ec = fs_.read_file(dir_.file("missing"), bytes);
  EXPECT_EQ(&ec.category(), &std::generic_category());
  EXPECT_EQ(ec.value(), ENOENT);
}

}  // namespace
