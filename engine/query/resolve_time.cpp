#include "engine/query/resolve_time.hpp"

namespace annal::engine::query {
namespace {

void resolve(std::optional<time_bound>& bound, timestamp_us now) {
  if (bound && bound->what == time_bound::kind::relative) {
    *bound = time_bound{time_bound::kind::absolute, now + bound->micros};
  }
}

bool relative(const std::optional<time_bound>& bound) {
  return bound && bound->what == time_bound::kind::relative;
}

}  // namespace

query resolve_relative_times(query q, timestamp_us now) {
  resolve(q.since, now);
  resolve(q.until, now);
  return q;
}

bool has_relative_time(const query& q) { return relative(q.since) || relative(q.until); }

}  // namespace annal::engine::query
