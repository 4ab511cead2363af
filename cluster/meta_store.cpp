#include "cluster/meta_store.hpp"

#include <utility>

namespace annal::cluster {

namespace {

compare make_compare(std::string key, compare::target what, compare::op relation, std::int64_t number,
                     std::string value) {
  compare c;
  c.key = std::move(key);
  c.what = what;
  c.relation = relation;
  c.number = number;
  c.value = std::move(value);
  return c;
}

}  // namespace

compare compare::version_is(std::string key, op relation, std::int64_t v) {
  return make_compare(std::move(key), target::version, relation, v, {});
}

compare compare::create_revision_is(std::string key, op relation, std::int64_t rev) {
  return make_compare(std::move(key), target::create_revision, relation, rev, {});
}

compare compare::mod_revision_is(std::string key, op relation, std::int64_t rev) {
  return make_compare(std::move(key), target::mod_revision, relation, rev, {});
}

compare compare::value_is(std::string key, op relation, std::string value) {
  return make_compare(std::move(key), target::value, relation, 0, std::move(value));
}

compare compare::missing(std::string key) {
  return make_compare(std::move(key), target::create_revision, op::equal, 0, {});
}

op op::put(std::string key, std::string value, std::int64_t lease) {
  op o;
  o.what = kind::put;
  o.key = std::move(key);
  o.value = std::move(value);
  o.lease = lease;
  return o;
}

op op::del(std::string key, bool prefix) {
  op o;
  o.what = kind::del;
  o.key = std::move(key);
  o.prefix = prefix;
  return o;
}

op op::range(std::string key, bool prefix) {
  op o;
  o.what = kind::range;
  o.key = std::move(key);
  o.prefix = prefix;
  return o;
}

engine::result<std::int64_t> meta_store::put(const std::string& key, const std::string& value, std::int64_t lease) {
  auto r = txn({}, {op::put(key, value, lease)}, {});
  if (!r) return r.err();
  return r->revision;
}

engine::result<std::int64_t> meta_store::del(const std::string& key, bool prefix) {
  auto r = txn({}, {op::del(key, prefix)}, {});
  if (!r) return r.err();
  return r->revision;
}

std::string prefix_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return end;
}

}  // namespace annal::cluster
