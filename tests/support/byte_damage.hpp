#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

// Byte-level helpers on real files for corruption and crash tests: damage a
// file behind the engine's back, or read what is really on disk. They bypass
// every engine::file_system (and so every fault model) and do not sync.
//
// Thread-safe as functions; concurrent calls on the same file race like the
// underlying pread/pwrite/truncate calls do.
//
// Errors are std::error_code values in std::generic_category().
namespace annal::testing {

// Inverts bit `bit` (0 = least significant) of the byte at `offset`.
// Requires: 0 <= bit <= 7 and offset < file size, else invalid_argument.
std::error_code flip_bit(const std::string& path, std::uint64_t offset, int bit);

// Cuts `path` to `new_size` bytes.
// Requires: new_size <= file size, else invalid_argument (this never grows).
std::error_code shrink_file(const std::string& path, std::uint64_t new_size);

// Appends `bytes` at the end of `path`, creating it if missing.
std::error_code append_bytes(const std::string& path, std::span<const std::byte> bytes);

// Replaces the contents of `path` with `bytes`, creating it if missing.
std::error_code write_all(const std::string& path, std::span<const std::byte> bytes);

// Reads all of `path` into `out` (cleared on error).
std::error_code read_all(const std::string& path, std::vector<std::byte>& out);

// Test-data conversions: the bytes of a string and the string of bytes.
std::vector<std::byte> bytes_of(std::string_view text);
std::string string_of(std::span<const std::byte> bytes);

}  // namespace annal::testing
