#include "engine/query/group_key.hpp"

#include <cstring>

namespace annal::engine::query {
namespace {

void append_u32(std::string& key, std::uint32_t n) {
  char bytes[4];
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  key.append(bytes, 4);
}

std::uint32_t read_u32(const char* p) {
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= std::uint32_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return n;
}

void append_text(std::string& key, key_tag tag, std::string_view text) {
  key.push_back(static_cast<char>(tag));
  append_u32(key, static_cast<std::uint32_t>(text.size()));
  key.append(text);
}

// One value at `at`; advances `at`. nullopt when malformed.
std::optional<field_value> next_value(std::string_view key, std::size_t& at) {
  if (at >= key.size()) return std::nullopt;
  const auto tag = static_cast<key_tag>(key[at++]);
  field_value v;
  switch (tag) {
    case key_tag::null:
      v.what = field_value::kind::null;
      return v;
    case key_tag::false_:
    case key_tag::true_:
      v.what = field_value::kind::boolean;
      v.boolean = tag == key_tag::true_;
      return v;
    case key_tag::number: {
      if (key.size() - at < 8) return std::nullopt;
      std::uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) {
        bits |= std::uint64_t{static_cast<unsigned char>(key[at + i])} << (8 * i);
      }
      at += 8;
      v.what = field_value::kind::number;
      std::memcpy(&v.number, &bits, 8);
      return v;
    }
    case key_tag::string:
    case key_tag::json: {
      if (key.size() - at < 4) return std::nullopt;
      const std::uint32_t size = read_u32(key.data() + at);
      at += 4;
      if (key.size() - at < size) return std::nullopt;
      v.what = tag == key_tag::string ? field_value::kind::string : field_value::kind::json;
      v.text = key.substr(at, size);
      at += size;
      return v;
    }
  }
  return std::nullopt;
}

int rank(const field_value& v) {
  switch (v.what) {
    case field_value::kind::missing:
    case field_value::kind::null:
      return 0;
    case field_value::kind::boolean:
      return v.boolean ? 2 : 1;
    case field_value::kind::number:
      return 3;
    case field_value::kind::string:
      return 4;
    case field_value::kind::json:
      return 5;
  }
  return 0;
}

}  // namespace

void append_key_number(std::string& key, double d) {
  if (d == 0) d = 0;  // -0 and 0 are one value
  std::uint64_t bits;
  std::memcpy(&bits, &d, 8);
  char bytes[9];
  bytes[0] = static_cast<char>(key_tag::number);
  for (int i = 0; i < 8; ++i) bytes[1 + i] = static_cast<char>((bits >> (8 * i)) & 0xff);
  key.append(bytes, 9);
}

void append_key_value(std::string& key, const field_value& v) {
  switch (v.what) {
    case field_value::kind::missing:
    case field_value::kind::null:
      key.push_back(static_cast<char>(key_tag::null));
      return;
    case field_value::kind::boolean:
      key.push_back(static_cast<char>(v.boolean ? key_tag::true_ : key_tag::false_));
      return;
    case field_value::kind::number:
      append_key_number(key, v.number);
      return;
    case field_value::kind::string:
      append_text(key, key_tag::string, v.text);
      return;
    case field_value::kind::json:
      append_text(key, key_tag::json, v.text);
      return;
  }
}

std::optional<std::vector<field_value>> decode_key(std::string_view key, std::size_t columns) {
  std::vector<field_value> values;
  std::size_t at = 0;
  for (std::size_t i = 0; i < columns; ++i) {
    auto v = next_value(key, at);
    if (!v) return std::nullopt;
    values.push_back(*v);
  }
  if (at != key.size()) return std::nullopt;
  return values;
}

int compare_keys(std::string_view a, std::string_view b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const auto x = next_value(a, i);
    const auto y = next_value(b, j);
    if (!x || !y) return x ? 1 : (y ? -1 : 0);
    const int rx = rank(*x), ry = rank(*y);
    if (rx != ry) return rx < ry ? -1 : 1;
    if (x->what == field_value::kind::number) {
      if (x->number != y->number) return x->number < y->number ? -1 : 1;
    } else if (x->what == field_value::kind::string || x->what == field_value::kind::json) {
      const int c = x->text.compare(y->text);
      if (c != 0) return c < 0 ? -1 : 1;
    }
  }
  if (i < a.size()) return 1;
  if (j < b.size()) return -1;
  return 0;
}

}  // namespace annal::engine::query
