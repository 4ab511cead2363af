#pragma once

// Extracts the members a plan reads (json_paths) from one JSON document with
// simdjson's on-demand parser, in one pass over the top-level object:
// members not asked for are skipped without being parsed, nested objects are
// entered only when a path goes into them.
//
// A document that is not valid JSON, as far as the parser sees it, leaves
// every member missing. The on-demand parser checks the whole text's
// structure (strings, brackets, UTF-8) and every member on the way to the
// ones read, plus that nothing follows the top-level value; a syntax error
// inside a value that is skipped may go unnoticed. A document that is not an
// object has no members. A member named twice: the first one counts.
//
// One reader per document kind per scan: it owns a parser and a padded
// scratch buffer, reused for every event, so reading allocates nothing once
// warmed up. The string views it produces point into those and stay valid
// until its next read() or read_batched().
//
// Batch reading, for the documents of one record: the structural pass (the
// parser's first stage, a fixed cost per call) runs once over a chunk of
// consecutive small documents, joined by newlines in one buffer, instead of
// once per document. Each document is then accepted only if the chunk
// delimits it exactly as a parse of it alone would: it starts at its own
// offset, is a valid object there, and the next token after it is the next
// document's first byte (a "{}" sentinel follows the last one). Anything
// else (invalid JSON, text around the object, a value that is not an
// object, leading whitespace) makes that document and the rest of its chunk
// fall back to read(), so the results are always those of read().
//
// Not thread-safe: owned by one partition_scan.

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

#include "engine/query/field_value.hpp"
#include "engine/query/plan.hpp"

namespace annal::engine::query {

class json_fields {
 public:
  json_fields();
  ~json_fields();
  json_fields(json_fields&&) noexcept;
  json_fields& operator=(json_fields&&) noexcept;

  // Sets slots[s] for every s in paths.slots from `json`.
  void read(std::string_view json, const json_paths& paths, field_value* slots);

  // Starts reading `documents` (one record's) with read_batched(). They are
  // not copied: they must stay valid while the batch is read.
  void begin_batch(std::span<const std::string_view> documents);
  // What read(documents[index], paths, slots) does. Requires: begin_batch(),
  // and an index greater than the previous call's since then (documents may
  // be skipped).
  void read_batched(std::size_t index, const json_paths& paths, field_value* slots);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace annal::engine::query
