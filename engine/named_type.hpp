#pragma once

#include <compare>
#include <cstddef>
#include <functional>

namespace annal {

// A value wrapped in a distinct type so that things that are easy to mix up
// (an lsn and a stream version, a partition id and a node id) do not convert
// into each other by accident. Thread-safe as a plain value.
template <class T, class Tag>
class named_type {
 public:
  using value_type = T;

  constexpr named_type() = default;
  constexpr explicit named_type(T value) : value_(value) {}

  constexpr T value() const { return value_; }

  friend constexpr auto operator<=>(const named_type&, const named_type&) = default;

 private:
  T value_{};
};

}  // namespace annal

template <class T, class Tag>
struct std::hash<annal::named_type<T, Tag>> {
  std::size_t operator()(const annal::named_type<T, Tag>& v) const noexcept {
    return std::hash<T>{}(v.value());
  }
};
