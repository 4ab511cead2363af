#include "actors/subscription_filter.hpp"

#include <fmt/format.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/clock.hpp"
#include "engine/query/json_fields.hpp"
#include "engine/query/parser.hpp"
#include "engine/query/plan.hpp"
#include "engine/query/resolve_time.hpp"

namespace annal::actors {
namespace {

namespace q = engine::query;

constexpr std::string_view k_prefix = "from $all where ";

// One compiled filter: the plan and the scratch space to test an event.
class where_filter {
 public:
  explicit where_filter(std::shared_ptr<const q::plan> plan)
      : plan_(std::move(plan)), slots_(plan_->slot_count()) {}

  bool operator()(const all_event& e) {
    const q::plan& p = *plan_;
    const auto timestamp = e.event.timestamp;
    if (p.since() && timestamp < *p.since()) return false;
    if (p.until() && timestamp >= *p.until()) return false;
    if (!p.stream_matches(e.stream)) return false;
    std::lock_guard lock(mu_);
    for (auto& s : slots_) s = q::field_value{};
    if (p.stream_slot()) slots_[*p.stream_slot()] = q::field_value::of_string(e.stream);
    if (p.category_slot()) {
      slots_[*p.category_slot()] = q::field_value::of_string(q::category_of(e.stream));
    }
    if (p.type_slot()) slots_[*p.type_slot()] = q::field_value::of_string(e.event.type);
    for (const auto* filters : {&p.record_filters(), &p.event_filters()}) {
      for (const auto& f : *filters) {
        if (!q::evaluate(f, slots_.data())) return false;
      }
    }
    if (p.json_filters().empty()) return true;
    if (!p.data_paths().empty()) data_.read(e.event.data, p.data_paths(), slots_.data());
    if (!p.metadata_paths().empty()) {
      metadata_.read(e.event.metadata, p.metadata_paths(), slots_.data());
    }
    for (const auto& f : p.json_filters()) {
      if (!q::evaluate(f, slots_.data())) return false;
    }
    return true;
  }

 private:
  std::shared_ptr<const q::plan> plan_;
  std::mutex mu_;
  std::vector<q::field_value> slots_;  // guarded by mu_
  q::json_fields data_;                // guarded by mu_
  q::json_fields metadata_;            // guarded by mu_
};

}  // namespace

engine::result<event_filter> compile_where_filter(std::string_view where) {
  const std::string text = std::string(k_prefix) + std::string(where);
  auto parsed = q::parse_query(text);
  if (!parsed) {
    auto e = parsed.err();
    e.message = fmt::format("filter `{}`, read as `{}`: {}", where, text, e.message);
    return e;
  }
  if (parsed->result != q::query{}.result) {
    return engine::error{engine::errc::invalid_argument,
                         fmt::format("filter `{}`: a subscription filter takes a `where` "
                                     "expression (and since/until), not a result clause",
                                     where)};
  }
  auto resolved =
      q::resolve_relative_times(std::move(parsed).value(), engine::system_clock().now_us());
  auto plan = q::plan::compile(std::move(resolved));
  if (!plan) {
    auto e = plan.err();
    e.message = fmt::format("filter `{}`: {}", where, e.message);
    return e;
  }
  auto filter = std::make_shared<where_filter>(std::move(plan).value());
  return event_filter([filter](const all_event& e) { return (*filter)(e); });
}

}  // namespace annal::actors
