#pragma once

// The byte encoding of group keys and of count_distinct values: a sequence
// of values, each a tag byte and its payload. Equal values have equal bytes
// (numbers by their double value, -0 as 0), so keys and distinct values are
// hashed and compared as bytes.
//
//   tag 0 null     (no payload; also a missing field)
//   tag 1 false    (no payload)
//   tag 2 true     (no payload)
//   tag 3 number   8 bytes: the IEEE 754 double, little-endian
//   tag 4 string   4-byte little-endian length, then the unescaped bytes
//   tag 5 json     4-byte little-endian length, then an object's or array's
//                  JSON text as written
//
// Only used in memory: the wire form (schema/query_result.capnp) carries
// values as structs.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/query/field_value.hpp"

namespace annal::engine::query {

enum class key_tag : std::uint8_t {
  null = 0,
  false_ = 1,
  true_ = 2,
  number = 3,
  string = 4,
  json = 5
};

// Appends `v` (a missing field as null).
void append_key_value(std::string& key, const field_value& v);
void append_key_number(std::string& key, double d);

// The values of `key`, views into it; nullopt if `key` is not a well-formed
// encoding of exactly `columns` values (the wire decoder's check).
std::optional<std::vector<field_value>> decode_key(std::string_view key, std::size_t columns);

// Orders keys value by value: null < false < true < numbers (ascending) <
// strings (bytewise) < json (bytewise); a shorter key first when one is a
// prefix of the other. Requires: both well-formed.
int compare_keys(std::string_view a, std::string_view b);

}  // namespace annal::engine::query
