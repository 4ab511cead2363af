#include "engine/query/plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace annal::engine::query {
namespace {

error invalid(std::string message) { return error{errc::invalid_argument, std::move(message)}; }

bool is_json(const field& f) {
  return f.what == field::kind::data || f.what == field::kind::metadata;
}

const char* op_name(compare_op op) {
  switch (op) {
    case compare_op::eq:
      return "eq";
    case compare_op::ne:
      return "ne";
    case compare_op::lt:
      return "lt";
    case compare_op::le:
      return "le";
    case compare_op::gt:
      return "gt";
    case compare_op::ge:
      return "ge";
    case compare_op::in:
      return "in";
    case compare_op::exists:
      return "exists";
    case compare_op::prefix:
      return "prefix";
  }
  return "?";
}

status check_literals(const comparison& c) {
  const auto& v = c.values;
  const auto where = [&] { return fmt::format("{} {}", field_name(c.subject), op_name(c.op)); };
  for (const auto& literal : v) {
    if (const double* d = std::get_if<double>(&literal); d && !std::isfinite(*d)) {
      return invalid(fmt::format("{}: a number literal must be finite", where()));
    }
  }
  switch (c.op) {
    case compare_op::eq:
    case compare_op::ne:
      if (v.size() != 1) return invalid(fmt::format("{} takes one value", where()));
      return {};
    case compare_op::lt:
    case compare_op::le:
    case compare_op::gt:
    case compare_op::ge:
      if (v.size() != 1 ||
          !(std::holds_alternative<double>(v[0]) || std::holds_alternative<std::string>(v[0]))) {
        return invalid(fmt::format("{} takes one number or string", where()));
      }
      return {};
    case compare_op::prefix:
      if (v.size() != 1 || !std::holds_alternative<std::string>(v[0])) {
        return invalid(fmt::format("{} takes one string", where()));
      }
      return {};
    case compare_op::in:
      if (v.empty()) return invalid(fmt::format("{} takes one or more values", where()));
      return {};
    case compare_op::exists:
      if (!v.empty()) return invalid(fmt::format("{} takes no value", where()));
      return {};
  }
  return invalid("unknown comparison operator");
}

// The field equals the literal: same type and same value.
bool equals(const field_value& f, const value& literal) {
  switch (literal.index()) {
    case 0:
      return f.what == field_value::kind::null;
    case 1:
      return f.what == field_value::kind::boolean && f.boolean == std::get<bool>(literal);
    case 2:
      return f.what == field_value::kind::number && f.number == std::get<double>(literal);
    default:
      return f.what == field_value::kind::string && f.text == std::get<std::string>(literal);
  }
}

// <0, 0, >0 comparing the field with a number or string literal; nullopt
// when the types differ.
std::optional<int> order(const field_value& f, const value& literal) {
  if (const double* d = std::get_if<double>(&literal)) {
    if (f.what != field_value::kind::number) return std::nullopt;
    return f.number < *d ? -1 : (f.number > *d ? 1 : 0);
  }
  if (const std::string* s = std::get_if<std::string>(&literal)) {
    if (f.what != field_value::kind::string) return std::nullopt;
    const int c = f.text.compare(*s);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  return std::nullopt;
}

bool compare(const field_value& f, compare_op op, const std::vector<value>& values) {
  switch (op) {
    case compare_op::eq:
      return equals(f, values[0]);
    case compare_op::ne:
      return !equals(f, values[0]);
    case compare_op::in:
      for (const auto& v : values) {
        if (equals(f, v)) return true;
      }
      return false;
    case compare_op::exists:
      return f.what != field_value::kind::missing;
    case compare_op::prefix:
      return f.what == field_value::kind::string &&
             f.text.starts_with(std::get<std::string>(values[0]));
    case compare_op::lt: {
      const auto c = order(f, values[0]);
      return c && *c < 0;
    }
    case compare_op::le: {
      const auto c = order(f, values[0]);
      return c && *c <= 0;
    }
    case compare_op::gt: {
      const auto c = order(f, values[0]);
      return c && *c > 0;
    }
    case compare_op::ge: {
      const auto c = order(f, values[0]);
      return c && *c >= 0;
    }
  }
  return false;
}

// What a conjunct reads beyond the record's stream: the type, JSON documents.
struct reads {
  bool type = false;
  std::uint8_t documents = 0;
};

void collect_reads(const compiled_expr& e, const plan& p, reads& r) {
  if (e.what == expr::kind::compare) {
    const auto kind = p.slot_field(e.slot).what;
    if (kind == field::kind::type) r.type = true;
    if (kind == field::kind::data) r.documents |= k_reads_data;
    if (kind == field::kind::metadata) r.documents |= k_reads_metadata;
    return;
  }
  for (const auto& c : e.children) collect_reads(c, p, r);
}

std::uint8_t documents_of(const field& f) {
  if (f.what == field::kind::data) return k_reads_data;
  if (f.what == field::kind::metadata) return k_reads_metadata;
  return 0;
}

}  // namespace

std::string field_name(const field& f) {
  switch (f.what) {
    case field::kind::type:
      return "type";
    case field::kind::stream:
      return "stream";
    case field::kind::category:
      return "category";
    case field::kind::data:
    case field::kind::metadata: {
      std::string name = f.what == field::kind::data ? "data" : "metadata";
      for (const auto& member : f.path) {
        name += '.';
        name += member;
      }
      return name;
    }
  }
  return "?";
}

std::string aggregate_name(const aggregate& a) {
  const std::string subject = a.subject ? field_name(*a.subject) : "";
  switch (a.what) {
    case aggregate_kind::count:
      return "count()";
    case aggregate_kind::sum:
      return fmt::format("sum({})", subject);
    case aggregate_kind::avg:
      return fmt::format("avg({})", subject);
    case aggregate_kind::min:
      return fmt::format("min({})", subject);
    case aggregate_kind::max:
      return fmt::format("max({})", subject);
    case aggregate_kind::count_distinct:
      return fmt::format("count_distinct({})", subject);
    case aggregate_kind::percentile:
      return fmt::format("p{}({})", a.percentile, subject);
  }
  return "?";
}

bool evaluate(const compiled_expr& e, const field_value* slots) {
  switch (e.what) {
    case expr::kind::compare:
      return compare(slots[e.slot], e.op, e.values);
    case expr::kind::and_:
      for (const auto& c : e.children) {
        if (!evaluate(c, slots)) return false;
      }
      return true;
    case expr::kind::or_:
      for (const auto& c : e.children) {
        if (evaluate(c, slots)) return true;
      }
      return false;
    case expr::kind::not_:
      return !evaluate(e.children[0], slots);
  }
  return false;
}

bool plan::stream_matches(std::string_view stream) const {
  const auto& from = query_.from;
  switch (from.what) {
    case source::kind::all:
      return true;
    case source::kind::stream:
      return stream == from.name;
    case source::kind::stream_prefix:
      return stream.starts_with(from.name);
    case source::kind::category:
      return category_of(stream) == from.name;
  }
  return false;
}

result<std::uint32_t> plan::slot_of(const field& f) {
  if (is_json(f)) {
    if (f.path.empty()) return invalid(fmt::format("{} needs a member name", field_name(f)));
    for (const auto& member : f.path) {
      if (member.empty()) return invalid(fmt::format("{}: empty member name", field_name(f)));
    }
  } else if (!f.path.empty()) {
    return invalid(fmt::format("{} takes no member path", field_name(f)));
  }
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i] == f) return i;
  }
  const auto slot = static_cast<std::uint32_t>(slots_.size());
  slots_.push_back(f);
  switch (f.what) {
    case field::kind::type:
      type_slot_ = slot;
      break;
    case field::kind::stream:
      stream_slot_ = slot;
      break;
    case field::kind::category:
      category_slot_ = slot;
      break;
    case field::kind::data:
    case field::kind::metadata: {
      json_paths& paths = f.what == field::kind::data ? data_paths_ : metadata_paths_;
      std::uint32_t node = 0;
      for (const auto& member : f.path) {
        std::uint32_t next = 0;
        for (const auto child : paths.nodes[node].children) {
          if (paths.nodes[child].name == member) next = child;
        }
        if (next == 0) {
          next = static_cast<std::uint32_t>(paths.nodes.size());
          paths.nodes.push_back(json_path_node{member, -1, {}});
          paths.nodes[node].children.push_back(next);
        }
        node = next;
      }
      paths.nodes[node].slot = static_cast<std::int32_t>(slot);
      paths.slots.push_back(slot);
      break;
    }
  }
  return slot;
}

result<compiled_expr> plan::compile_expr(const expr& e) {
  compiled_expr out;
  out.what = e.what;
  switch (e.what) {
    case expr::kind::compare: {
      if (auto s = check_literals(e.compare); !s) return s.err();
      auto slot = slot_of(e.compare.subject);
      if (!slot) return slot.err();
      out.slot = *slot;
      out.op = e.compare.op;
      out.values = e.compare.values;
      out.documents = documents_of(e.compare.subject);
      return out;
    }
    case expr::kind::and_:
    case expr::kind::or_:
      if (e.children.empty()) return invalid("and / or needs operands");
      break;
    case expr::kind::not_:
      if (e.children.size() != 1) return invalid("not takes exactly one operand");
      break;
    default:
      return invalid("unknown expression kind");
  }
  for (const auto& c : e.children) {
    auto child = compile_expr(c);
    if (!child) return child.err();
    out.documents |= child->documents;
    out.children.push_back(std::move(*child));
  }
  return out;
}

result<std::shared_ptr<const plan>> plan::compile(query q) {
  auto p = std::make_shared<plan>(token{});
  p->query_ = std::move(q);
  const query& qq = p->query_;

  for (const auto* bound : {&qq.since, &qq.until}) {
    if (*bound && (*bound)->what != time_bound::kind::absolute) {
      return invalid("relative time bounds must be resolved before the query is compiled");
    }
  }
  if (qq.since) p->since_ = qq.since->micros;
  if (qq.until) p->until_ = qq.until->micros;

  if (qq.where) {
    // Split top-level ands into conjuncts, each sorted by what it reads.
    std::vector<const expr*> pending{&*qq.where};
    std::vector<const expr*> conjuncts;
    while (!pending.empty()) {
      const expr* e = pending.back();
      pending.pop_back();
      if (e->what == expr::kind::and_ && !e->children.empty()) {
        for (auto it = e->children.rbegin(); it != e->children.rend(); ++it)
          pending.push_back(&*it);
      } else {
        conjuncts.push_back(e);
      }
    }
    for (const expr* e : conjuncts) {
      auto c = p->compile_expr(*e);
      if (!c) return c.err();
      reads r;
      collect_reads(*c, *p, r);
      if (r.documents != 0) {
        p->json_filters_.push_back(std::move(*c));
      } else if (r.type) {
        p->event_filters_.push_back(std::move(*c));
      } else {
        p->record_filters_.push_back(std::move(*c));
      }
    }
    // Conjuncts reading one document before those reading both.
    std::stable_sort(p->json_filters_.begin(), p->json_filters_.end(),
                     [](const compiled_expr& a, const compiled_expr& b) {
                       return (a.documents == 3 ? 1 : 0) < (b.documents == 3 ? 1 : 0);
                     });
  }

  if (p->is_listing()) {
    const auto& l = p->listing();
    if (l.limit == 0) return invalid("a listing needs a limit of at least 1");
    if (l.limit > k_max_listed_events) {
      return error{errc::query_too_large,
                   fmt::format("a listing returns at most {} events", k_max_listed_events)};
    }
    return std::shared_ptr<const plan>(std::move(p));
  }

  const auto& a = p->aggregates();
  if (a.aggregates.empty()) return invalid("an aggregation needs at least one aggregate");
  if (a.bucket_micros < 0) return invalid("a time bucket must be positive");
  if (a.bucket_micros > 0) p->column_names_.push_back("bucket");
  for (const auto& f : a.group_by) {
    auto slot = p->slot_of(f);
    if (!slot) return slot.err();
    p->group_slots_.push_back(*slot);
    p->result_documents_ |= documents_of(f);
    p->column_names_.push_back(field_name(f));
  }
  for (const auto& agg : a.aggregates) {
    if (agg.what == aggregate_kind::count) {
      if (agg.subject) return invalid("count() takes no field");
      p->aggregate_slots_.push_back(-1);
    } else {
      if (!agg.subject) {
        return invalid(fmt::format("{} needs a field", aggregate_name(agg)));
      }
      if (agg.what == aggregate_kind::percentile &&
          !(agg.percentile > 0 && agg.percentile <= 100)) {
        return invalid(fmt::format("percentile {} is outside (0, 100]", agg.percentile));
      }
      auto slot = p->slot_of(*agg.subject);
      if (!slot) return slot.err();
      p->aggregate_slots_.push_back(static_cast<std::int32_t>(*slot));
      p->result_documents_ |= documents_of(*agg.subject);
    }
    p->column_names_.push_back(aggregate_name(agg));
  }
  return std::shared_ptr<const plan>(std::move(p));
}

}  // namespace annal::engine::query
