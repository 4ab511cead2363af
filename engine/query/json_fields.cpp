#include "engine/query/json_fields.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace annal::engine::query {

namespace od = simdjson::ondemand;

namespace {

// raw_json() runs to the next structural character: drop the whitespace
// before it.
std::string_view trim_right(std::string_view text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' ||
                           text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

// The most bytes one structural pass of a batch covers: documents, their
// separators and the sentinel. Fixed, so the batch parser allocates once
// (about 6 bytes of index and string buffer per byte of window).
constexpr std::size_t k_batch_window = 16 * 1024;
constexpr std::string_view k_sentinel = "{}";

}  // namespace

struct json_fields::impl {
  od::parser parser;
  std::unique_ptr<char[]> buffer;
  std::size_t capacity = 0;   // bytes of buffer, padding included
  std::vector<char> visited;  // per path node, for this document

  // Batch reading: documents [chunk_first, chunk_end) of `batch` are in
  // batch_buffer at chunk_offsets[i - chunk_first] (plus the sentinel's
  // offset last); `stream` sits on document stream_index of them. With
  // chunk_usable false the chunk's remaining documents are read alone.
  od::parser batch_parser;
  std::unique_ptr<char[]> batch_buffer;
  std::span<const std::string_view> batch;
  std::vector<std::size_t> chunk_offsets;
  std::size_t chunk_first = 0, chunk_end = 0;
  bool chunk_usable = false;
  od::document_stream stream;
  od::document_stream::iterator stream_at;
  std::size_t stream_index = 0;

  // Copies the documents from `first` on that fit in the window into the
  // chunk and runs the structural pass over them.
  void start_chunk(std::size_t first);
  // Reads document `index` of the chunk from the stream. False if the stream
  // does not delimit it as a parse of it alone would (slots then hold junk).
  bool read_from_stream(std::size_t index, const json_paths& paths, field_value* slots);

  // Reads the members of `object` that `node` asks for. False on a JSON error.
  bool visit(od::object object, const json_paths& paths, std::uint32_t node, field_value* slots);
  // Reads one member's value into `slot` (-1: none) and descends into it when
  // `node` has children. False on a JSON error.
  bool value_of(od::value& v, const json_paths& paths, std::uint32_t node, field_value* slots);
};

bool json_fields::impl::value_of(od::value& v, const json_paths& paths, std::uint32_t node,
                                 field_value* slots) {
  const json_path_node& n = paths.nodes[node];
  od::json_type type;
  if (v.type().get(type)) return false;
  field_value out;
  switch (type) {
    case od::json_type::number:
      if (v.get_double().get(out.number)) return false;
      out.what = field_value::kind::number;
      break;
    case od::json_type::string:
      if (v.get_string().get(out.text)) return false;
      out.what = field_value::kind::string;
      break;
    case od::json_type::boolean:
      if (v.get_bool().get(out.boolean)) return false;
      out.what = field_value::kind::boolean;
      break;
    case od::json_type::null: {
      bool is_null = false;
      if (v.is_null().get(is_null) || !is_null) return false;
      out.what = field_value::kind::null;
      break;
    }
    case od::json_type::object: {
      od::object object;
      if (v.get_object().get(object)) return false;
      if (n.slot >= 0) {
        // The member itself is read too: take its text, then rewind.
        if (object.raw_json().get(out.text)) return false;
        out.text = trim_right(out.text);
        out.what = field_value::kind::json;
        bool ignored;
        if (!n.children.empty() && object.reset().get(ignored)) return false;
      }
      if (!n.children.empty() && !visit(object, paths, node, slots)) return false;
      break;
    }
    case od::json_type::array: {
      if (n.slot < 0) return true;  // skipped by the caller's iteration
      od::array array;
      if (v.get_array().get(array)) return false;
      if (array.raw_json().get(out.text)) return false;
      out.text = trim_right(out.text);
      out.what = field_value::kind::json;
      break;
    }
  }
  if (n.slot >= 0) slots[n.slot] = out;
  return true;
}

bool json_fields::impl::visit(od::object object, const json_paths& paths, std::uint32_t node,
                              field_value* slots) {
  const auto& children = paths.nodes[node].children;
  std::size_t remaining = children.size();
  for (auto member : object) {
    if (member.error()) return false;
    // Once every member asked for is found, the rest is only stepped over
    // (which still checks this object's syntax).
    if (remaining == 0) continue;
    // Compare the key as written unless it has escapes (the structural pass
    // checked that it ends with a quote).
    od::raw_json_string raw_key;
    if (member.key().get(raw_key)) return false;
    const char* raw = raw_key.raw();
    std::size_t length = 0;
    while (raw[length] != '"' && raw[length] != '\\') ++length;
    std::string_view key(raw, length);
    if (raw[length] == '\\' && member.unescaped_key().get(key)) return false;
    for (const auto child : children) {
      const std::string& name = paths.nodes[child].name;
      if (visited[child] || name.size() != key.size() ||
          std::memcmp(name.data(), key.data(), key.size()) != 0) {
        continue;
      }
      visited[child] = 1;
      --remaining;
      od::value v;
      if (member.value().get(v)) return false;
      if (!value_of(v, paths, child, slots)) return false;
      break;
    }
  }
  return true;
}

json_fields::json_fields() : impl_(std::make_unique<impl>()) {}
json_fields::~json_fields() = default;
json_fields::json_fields(json_fields&&) noexcept = default;
json_fields& json_fields::operator=(json_fields&&) noexcept = default;

void json_fields::read(std::string_view json, const json_paths& paths, field_value* slots) {
  for (const auto s : paths.slots) slots[s] = field_value{};
  impl& m = *impl_;
  if (m.capacity < json.size() + simdjson::SIMDJSON_PADDING) {
    m.capacity = std::max<std::size_t>(json.size() + simdjson::SIMDJSON_PADDING, 4096);
    m.buffer = std::make_unique<char[]>(m.capacity);
  }
  if (!json.empty()) std::memcpy(m.buffer.get(), json.data(), json.size());
  // Zero padding, as simdjson::padded_string has: stale bytes of a longer
  // earlier document ('}' first) send the parser into a full bracket count.
  std::memset(m.buffer.get() + json.size(), 0, simdjson::SIMDJSON_PADDING);
  m.visited.assign(paths.nodes.size(), 0);

  od::document doc;
  od::object root;
  bool ok = !m.parser.iterate(m.buffer.get(), json.size(), m.capacity).get(doc) &&
            !doc.get_object().get(root) && m.visit(root, paths, 0, slots) &&
            // Nothing after the object (the location is out of bounds at the end).
            doc.current_location().error() == simdjson::OUT_OF_BOUNDS;
  if (!ok) {
    for (const auto s : paths.slots) slots[s] = field_value{};
  }
}

void json_fields::begin_batch(std::span<const std::string_view> documents) {
  impl& m = *impl_;
  m.batch = documents;
  m.chunk_first = m.chunk_end = 0;
  m.chunk_usable = false;
}

void json_fields::read_batched(std::size_t index, const json_paths& paths, field_value* slots) {
  impl& m = *impl_;
  if (index < m.chunk_first || index >= m.chunk_end) m.start_chunk(index);
  if (m.chunk_usable && m.read_from_stream(index, paths, slots)) return;
  m.chunk_usable = false;
  read(m.batch[index], paths, slots);
}

void json_fields::impl::start_chunk(std::size_t first) {
  if (!batch_buffer) {
    batch_buffer = std::make_unique<char[]>(k_batch_window + simdjson::SIMDJSON_PADDING);
    batch_parser.threaded = false;  // one window per chunk: no stage 1 thread to overlap
  }
  chunk_first = first;
  chunk_offsets.clear();
  std::size_t used = 0;
  std::size_t i = first;
  for (; i < batch.size(); ++i) {
    const std::string_view document = batch[i];
    if (used + document.size() + 1 + k_sentinel.size() > k_batch_window) break;
    chunk_offsets.push_back(used);
    if (!document.empty()) {  // an empty view's data() may be null
      std::memcpy(batch_buffer.get() + used, document.data(), document.size());
    }
    used += document.size();
    batch_buffer[used++] = '\n';
  }
  // A document too big for the window on its own is read alone.
  chunk_end = std::max(i, first + 1);
  chunk_usable = i > first;
  if (!chunk_usable) return;
  chunk_offsets.push_back(used);
  std::memcpy(batch_buffer.get() + used, k_sentinel.data(), k_sentinel.size());
  used += k_sentinel.size();
  std::memset(batch_buffer.get() + used, 0, simdjson::SIMDJSON_PADDING);
  chunk_usable = !batch_parser.iterate_many(batch_buffer.get(), used, k_batch_window).get(stream);
  if (!chunk_usable) return;
  stream_at = stream.begin();
  stream_index = first;
  chunk_usable = stream_at != stream.end();
}

bool json_fields::impl::read_from_stream(std::size_t index, const json_paths& paths,
                                         field_value* slots) {
  while (stream_index < index && stream_at != stream.end()) {
    ++stream_at;
    ++stream_index;
  }
  const std::size_t at = index - chunk_first;
  if (!(stream_at != stream.end()) || stream_at.current_index() != chunk_offsets[at]) {
    return false;
  }
  for (const auto s : paths.slots) slots[s] = field_value{};
  visited.assign(paths.nodes.size(), 0);
  od::document_reference doc;
  od::object root;
  const char* next_token = nullptr;
  return !(*stream_at).get(doc) && !doc.get_object().get(root) && visit(root, paths, 0, slots) &&
         !doc.current_location().get(next_token) &&
         next_token == batch_buffer.get() + chunk_offsets[at + 1];
}

}  // namespace annal::engine::query
