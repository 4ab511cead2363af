#pragma once

// The value of one field of one event while a partition is scanned: a view,
// valid only while the scan sits on that event (it points into the record's
// payload or into the JSON reader's buffers).

#include <cstdint>
#include <string_view>

namespace annal::engine::query {

struct field_value {
  enum class kind : std::uint8_t {
    missing,  // no such member, or the document is not valid JSON
    null,
    boolean,
    number,  // every JSON number, as a double
    string,  // unescaped content
    json,    // an object or an array: `text` is its JSON text as written
  };
  kind what = kind::missing;
  bool boolean = false;
  double number = 0;
  std::string_view text;  // string and json

  static field_value of_string(std::string_view s) { return {kind::string, false, 0, s}; }
  static field_value of_number(double d) { return {kind::number, false, d, {}}; }
};

}  // namespace annal::engine::query
