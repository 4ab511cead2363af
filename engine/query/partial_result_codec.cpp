#include "engine/query/partial_result_codec.hpp"

#include <fmt/format.h>
#include <kj/exception.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "engine/partitioning.hpp"
#include "engine/query/group_key.hpp"
#include "engine/record_codec.hpp"

namespace annal::engine::query {
namespace {

error malformed(std::string message) { return error{errc::malformed_request, std::move(message)}; }

capnp::Data::Reader as_data(std::string_view s) {
  return {reinterpret_cast<const kj::byte*>(s.data()), s.size()};
}

// Requires: `s` is followed by a NUL (a std::string's data()).
capnp::Text::Reader as_text(const std::string& s) { return {s.data(), s.size()}; }

// --- positions

template <class List>
void encode_positions(const std::vector<std::pair<partition_id, lsn>>& positions, List out) {
  for (unsigned i = 0; i < positions.size(); ++i) {
    out[i].setPartition(positions[i].first.value());
    out[i].setLsn(positions[i].second.value());
  }
}

result<std::vector<std::pair<partition_id, lsn>>> decode_positions(
    capnp::List<wire::PartitionPosition>::Reader in, bool ascending) {
  std::vector<std::pair<partition_id, lsn>> out;
  out.reserve(in.size());
  for (auto p : in) out.emplace_back(partition_id{p.getPartition()}, lsn{p.getLsn()});
  if (ascending && !std::is_sorted(out.begin(), out.end())) {
    return malformed("result positions are not ascending by partition");
  }
  auto sorted = out;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].first == sorted[i - 1].first) {
      return malformed(fmt::format("partition {} appears twice in the result positions",
                                   sorted[i].first.value()));
    }
  }
  return out;
}

// --- listed events

void encode_event(const listed_event& e, wire::ListedEvent::Builder out) {
  out.setStream(as_text(e.stream));
  out.setPartition(e.partition.value());
  out.setLsn(e.position.value());
  out.setIndex(e.index);
  std::uint64_t id0, id1;
  std::memcpy(&id0, e.id.data(), 8);
  std::memcpy(&id1, e.id.data() + 8, 8);
  out.setId0(id0);
  out.setId1(id1);
  out.setType(as_text(e.type));
  if (!e.data.empty()) out.setData(as_data(e.data));
  if (!e.metadata.empty()) out.setMetadata(as_data(e.metadata));
  out.setVersion(e.version.value());
  out.setTimestampUs(e.timestamp);
}

void encode_events(const std::vector<listed_event>& events,
                   capnp::List<wire::ListedEvent>::Builder out) {
  for (unsigned i = 0; i < events.size(); ++i) encode_event(events[i], out[i]);
}

result<std::vector<listed_event>> decode_events(capnp::List<wire::ListedEvent>::Reader in,
                                                std::size_t limit) {
  if (in.size() > limit) {
    return malformed(
        fmt::format("{} listed events; the query asks for at most {}", in.size(), limit));
  }
  // Grown as events check out: a hostile list of empty structs costs the
  // sender nothing per element.
  std::vector<listed_event> out;
  for (unsigned i = 0; i < in.size(); ++i) {
    auto e = in[i];
    listed_event& o = out.emplace_back();
    o.stream = std::string(to_view(e.getStream()));
    o.type = std::string(to_view(e.getType()));
    if (!valid_stream_id(o.stream)) return malformed("a listed event has an invalid stream id");
    if (!valid_event_type(o.type)) return malformed("a listed event has an invalid type");
    o.partition = partition_id{e.getPartition()};
    o.position = lsn{e.getLsn()};
    o.index = e.getIndex();
    const std::uint64_t id0 = e.getId0(), id1 = e.getId1();
    std::memcpy(o.id.data(), &id0, 8);
    std::memcpy(o.id.data() + 8, &id1, 8);
    o.data = std::string(to_view(e.getData()));
    o.metadata = std::string(to_view(e.getMetadata()));
    o.version = stream_version{e.getVersion()};
    o.timestamp = e.getTimestampUs();
  }
  std::vector<const listed_event*> sorted;
  for (const auto& e : out) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return listing_key(*a) < listing_key(*b); });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    const auto& a = *sorted[i - 1];
    const auto& b = *sorted[i];
    if (a.partition == b.partition && a.position == b.position && a.index == b.index) {
      return malformed("two listed events have the same partition, lsn and index");
    }
  }
  return out;
}

// --- values

void encode_value(const field_value& v, wire::ResultValue::Builder out) {
  switch (v.what) {
    case field_value::kind::missing:
    case field_value::kind::null:
      out.setNull();
      return;
    case field_value::kind::boolean:
      out.setBoolean(v.boolean);
      return;
    case field_value::kind::number:
      out.setNumber(v.number);
      return;
    case field_value::kind::string:
      out.setText(as_data(v.text));
      return;
    case field_value::kind::json:
      out.setJson(as_data(v.text));
      return;
  }
}

void encode_cell(const value& v, wire::ResultValue::Builder out) {
  switch (v.index()) {
    case 0:
      out.setNull();
      return;
    case 1:
      out.setBoolean(std::get<bool>(v));
      return;
    case 2:
      out.setNumber(std::get<double>(v));
      return;
    default:
      out.setText(as_data(std::get<std::string>(v)));
      return;
  }
}

// Appends one wire key value to `key`.
status decode_key_value(wire::ResultValue::Reader v, std::string& key) {
  switch (v.which()) {
    case wire::ResultValue::NULL_:
      append_key_value(key, field_value{field_value::kind::null, false, 0, {}});
      return {};
    case wire::ResultValue::BOOLEAN:
      append_key_value(key, field_value{field_value::kind::boolean, v.getBoolean(), 0, {}});
      return {};
    case wire::ResultValue::NUMBER:
      if (!std::isfinite(v.getNumber())) return malformed("a group key number is not finite");
      append_key_number(key, v.getNumber());
      return {};
    case wire::ResultValue::TEXT:
      append_key_value(key, field_value::of_string(to_view(v.getText())));
      return {};
    case wire::ResultValue::JSON:
      append_key_value(key, field_value{field_value::kind::json, false, 0, to_view(v.getJson())});
      return {};
  }
  return malformed("a result value of unknown kind");
}

result<value> decode_cell(wire::ResultValue::Reader v) {
  switch (v.which()) {
    case wire::ResultValue::NULL_:
      return value{null_value{}};
    case wire::ResultValue::BOOLEAN:
      return value{v.getBoolean()};
    case wire::ResultValue::NUMBER:
      return value{v.getNumber()};
    case wire::ResultValue::TEXT:
      return value{std::string(to_view(v.getText()))};
    case wire::ResultValue::JSON:
      return malformed("a result table cell holds JSON");
  }
  return malformed("a result value of unknown kind");
}

// --- accumulators

void encode_buckets(const percentile_sketch::store& s, wire::SketchBuckets::Builder out) {
  out.setOffset(s.offset);
  auto counts = out.initCounts(static_cast<unsigned>(s.counts.size()));
  for (unsigned j = 0; j < s.counts.size(); ++j) counts.set(j, s.counts[j]);
}

percentile_sketch::store decode_buckets(wire::SketchBuckets::Reader in) {
  percentile_sketch::store s;
  s.offset = in.getOffset();
  auto counts = in.getCounts();
  s.counts.reserve(counts.size());
  for (const auto c : counts) s.counts.push_back(c);
  return s;
}

void encode_accumulator(const accumulator& a, aggregate_kind kind, wire::Accumulator::Builder out) {
  out.setCount(a.count);
  out.setSum(a.sum);
  out.setMin(a.min);
  out.setMax(a.max);
  if (kind == aggregate_kind::count_distinct && a.distinct) {
    const auto& keys = a.distinct->keys();
    auto list = out.initDistinct(static_cast<unsigned>(keys.size()));
    for (unsigned i = 0; i < keys.size(); ++i) list.set(i, as_data(keys[i]));
  }
  if (kind == aggregate_kind::percentile && a.sketch) {
    auto sketch = out.initSketch();
    encode_buckets(a.sketch->positive(), sketch.initPositive());
    encode_buckets(a.sketch->negative(), sketch.initNegative());
    sketch.setZero(a.sketch->zero_count());
  }
}

status decode_accumulator(wire::Accumulator::Reader in, aggregate_kind kind, group_table& groups,
                          std::uint32_t group, std::size_t aggregate) {
  accumulator& a = groups.at(group, aggregate);
  switch (kind) {
    case aggregate_kind::count:
      a.count = in.getCount();
      return {};
    case aggregate_kind::sum:
    case aggregate_kind::avg:
    case aggregate_kind::min:
    case aggregate_kind::max:
      a.count = in.getCount();
      a.sum = in.getSum();
      if (a.count > 0) {
        a.min = in.getMin();
        a.max = in.getMax();
        if (std::isnan(a.min) || std::isnan(a.max) || a.min > a.max) {
          return malformed("an accumulator's min and max do not hold");
        }
      }
      return {};
    case aggregate_kind::count_distinct:
      for (const auto v : in.getDistinct()) {
        const auto encoded = to_view(v);
        if (!decode_key(encoded, 1)) return malformed("a distinct value is not well-formed");
        if (a.distinct && a.distinct->find(encoded) != string_index::npos) {
          return malformed("a distinct value appears twice");
        }
        if (!groups.add_distinct(group, aggregate, encoded)) {
          return malformed(fmt::format("more than {} distinct values", k_max_distinct_values));
        }
      }
      return {};
    case aggregate_kind::percentile: {
      if (!in.hasSketch()) return {};
      auto s = in.getSketch();
      auto sketch = percentile_sketch::from_parts(decode_buckets(s.getPositive()),
                                                  decode_buckets(s.getNegative()), s.getZero());
      if (!sketch) return sketch.err();
      if (sketch->count() > 0) a.sketch = std::make_unique<percentile_sketch>(std::move(*sketch));
      return {};
    }
  }
  return malformed("unknown aggregate kind");
}

result<partial_result> decode_partial(wire::PartialResult::Reader in, const plan& p) {
  partial_result r;
  auto positions = decode_positions(in.getPositions(), false);
  if (!positions) return positions.err();
  r.positions = std::move(*positions);
  r.events_scanned = in.getEventsScanned();
  r.partial = in.getPartial();

  if (p.is_listing()) {
    if (!in.isEvents()) return malformed("a listing's partial result holds no events");
    auto events = decode_events(in.getEvents(), p.listing().limit);
    if (!events) return events.err();
    r.events = std::move(*events);
    trim_listing(r.events, p.listing());
    return r;
  }

  if (!in.isGroups()) return malformed("an aggregation's partial result holds no groups");
  const auto& aggs = p.aggregates().aggregates;
  std::vector<aggregate_kind> kinds;
  for (const auto& a : aggs) kinds.push_back(a.what);
  r.groups = group_table(kinds);
  auto groups = in.getGroups();
  if (groups.size() > k_max_groups) {
    return malformed(fmt::format("{} groups: more than {}", groups.size(), k_max_groups));
  }
  std::string key;
  for (auto g : groups) {
    auto columns = g.getKey();
    if (columns.size() != p.key_columns()) {
      return malformed(fmt::format("a group key has {} values; the query has {} key columns",
                                   columns.size(), p.key_columns()));
    }
    key.clear();
    for (unsigned c = 0; c < columns.size(); ++c) {
      if (c == 0 && p.bucketed() && !columns[c].isNumber()) {
        return malformed("a group's time bucket is not a number");
      }
      if (auto s = decode_key_value(columns[c], key); !s) return s.err();
    }
    const std::size_t before = r.groups.size();
    const std::uint32_t group = r.groups.find_or_add(key);
    if (group == string_index::npos || r.groups.size() == before) {
      return malformed("two groups have the same key");
    }
    auto accumulators = g.getAccumulators();
    if (accumulators.size() != kinds.size()) {
      return malformed(fmt::format("a group has {} accumulators; the query has {} aggregates",
                                   accumulators.size(), kinds.size()));
    }
    for (unsigned a = 0; a < kinds.size(); ++a) {
      if (auto s = decode_accumulator(accumulators[a], kinds[a], r.groups, group, a); !s) {
        return s.err();
      }
    }
  }
  return r;
}

result<query_answer> decode_answer(wire::QueryAnswer::Reader in) {
  query_answer a;
  auto positions = decode_positions(in.getPositions(), true);
  if (!positions) return positions.err();
  a.positions = std::move(*positions);
  a.events_scanned = in.getEventsScanned();
  a.partial = in.getPartial();
  switch (in.which()) {
    case wire::QueryAnswer::TABLE: {
      auto t = in.getTable();
      result_table table;
      for (auto c : t.getColumns()) table.columns.emplace_back(to_view(c));
      if (table.columns.empty()) return malformed("a result table has no columns");
      if (t.getRows().size() > k_max_groups) {
        return malformed(fmt::format("a result table has more than {} rows", k_max_groups));
      }
      for (auto row : t.getRows()) {
        auto values = row.getValues();
        if (values.size() != table.columns.size()) {
          return malformed(fmt::format("a result row has {} values for {} columns", values.size(),
                                       table.columns.size()));
        }
        std::vector<value> out;
        out.reserve(values.size());
        for (auto v : values) {
          auto cell = decode_cell(v);
          if (!cell) return cell.err();
          out.push_back(std::move(*cell));
        }
        table.rows.push_back(std::move(out));
      }
      a.body = std::move(table);
      return a;
    }
    case wire::QueryAnswer::EVENTS: {
      auto events = decode_events(in.getEvents(), SIZE_MAX);
      if (!events) return events.err();
      a.body = std::move(*events);
      return a;
    }
  }
  return malformed("a query answer of unknown kind");
}

}  // namespace

void encode_partial_result(const partial_result& r, const plan& p,
                           wire::PartialResult::Builder out) {
  encode_positions(r.positions, out.initPositions(static_cast<unsigned>(r.positions.size())));
  out.setEventsScanned(r.events_scanned);
  out.setPartial(r.partial);
  if (p.is_listing()) {
    encode_events(r.events, out.initEvents(static_cast<unsigned>(r.events.size())));
    return;
  }
  const auto& groups = r.groups;
  auto list = out.initGroups(static_cast<unsigned>(groups.size()));
  for (std::uint32_t g = 0; g < groups.size(); ++g) {
    auto group = list[g];
    const auto key = decode_key(groups.key(g), p.key_columns());
    auto columns = group.initKey(key ? static_cast<unsigned>(key->size()) : 0);
    if (key) {
      for (unsigned c = 0; c < key->size(); ++c) encode_value((*key)[c], columns[c]);
    }
    const auto& kinds = groups.kinds();
    auto accumulators = group.initAccumulators(static_cast<unsigned>(kinds.size()));
    for (unsigned a = 0; a < kinds.size(); ++a) {
      encode_accumulator(groups.at(g, a), kinds[a], accumulators[a]);
    }
  }
}

result<partial_result> decode_partial_result(wire::PartialResult::Reader in, const plan& p) {
  try {
    return decode_partial(in, p);
  } catch (const kj::Exception& e) {
    return malformed(
        fmt::format("undecodable partial query result: {}", e.getDescription().cStr()));
  }
}

void encode_query_answer(const query_answer& a, wire::QueryAnswer::Builder out) {
  encode_positions(a.positions, out.initPositions(static_cast<unsigned>(a.positions.size())));
  out.setEventsScanned(a.events_scanned);
  out.setPartial(a.partial);
  if (const auto* table = std::get_if<result_table>(&a.body)) {
    auto t = out.initTable();
    auto columns = t.initColumns(static_cast<unsigned>(table->columns.size()));
    for (unsigned c = 0; c < table->columns.size(); ++c) {
      columns.set(c, as_text(table->columns[c]));
    }
    auto rows = t.initRows(static_cast<unsigned>(table->rows.size()));
    for (unsigned r = 0; r < table->rows.size(); ++r) {
      const auto& row = table->rows[r];
      auto values = rows[r].initValues(static_cast<unsigned>(row.size()));
      for (unsigned c = 0; c < row.size(); ++c) encode_cell(row[c], values[c]);
    }
    return;
  }
  const auto& events = std::get<std::vector<listed_event>>(a.body);
  encode_events(events, out.initEvents(static_cast<unsigned>(events.size())));
}

result<query_answer> decode_query_answer(wire::QueryAnswer::Reader in) {
  try {
    return decode_answer(in);
  } catch (const kj::Exception& e) {
    return malformed(fmt::format("undecodable query answer: {}", e.getDescription().cStr()));
  }
}

}  // namespace annal::engine::query
