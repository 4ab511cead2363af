// json_fields (engine/query/json_fields.hpp): batch reading gives exactly
// what reading each document alone gives, for valid documents and for every
// kind of broken one (truncated, trailing text, unbalanced brackets and
// quotes, non-objects, empty, invalid UTF-8, leading whitespace, documents
// bigger than a batch window), with documents skipped between reads. Plus
// the values read alone, so the reference itself is pinned down.

#include "engine/query/json_fields.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/test_rng.hpp"

namespace {

using namespace annal::engine::query;
using annal::testing::test_rng;

// Paths of the form {"amount"}, {"nested", "x"}: slot i is fields[i].
json_paths paths_of(const std::vector<std::vector<std::string>>& fields) {
  json_paths paths;
  for (std::size_t f = 0; f < fields.size(); ++f) {
    std::uint32_t node = 0;
    for (const auto& name : fields[f]) {
      std::optional<std::uint32_t> found;
      for (const auto child : paths.nodes[node].children) {
        if (paths.nodes[child].name == name) found = child;
      }
      if (!found) {
        found = static_cast<std::uint32_t>(paths.nodes.size());
        paths.nodes.push_back(json_path_node{name, -1, {}});
        paths.nodes[node].children.push_back(*found);
      }
      node = *found;
    }
    paths.nodes[node].slot = static_cast<std::int32_t>(f);
    paths.slots.push_back(static_cast<std::uint32_t>(f));
  }
  return paths;
}

// A field_value with its text owned, to compare after the reader moved on.
struct owned_value {
  field_value::kind what;
  bool boolean;
  double number;
  std::string text;
  bool operator==(const owned_value&) const = default;
};

std::string describe(const owned_value& v) {
  return "kind " + std::to_string(static_cast<int>(v.what)) + " bool " + std::to_string(v.boolean) +
         " number " + std::to_string(v.number) + " text '" + v.text + "'";
}

std::vector<owned_value> owned(const std::vector<field_value>& slots) {
  std::vector<owned_value> out;
  for (const auto& s : slots) out.push_back({s.what, s.boolean, s.number, std::string(s.text)});
  return out;
}

const json_paths& test_paths() {
  static const json_paths paths =
      paths_of({{"amount"}, {"region"}, {"nested", "x"}, {"nested"}, {"tags"}, {"flag"}});
  return paths;
}

std::vector<owned_value> read_alone(std::string_view json) {
  json_fields reader;
  std::vector<field_value> slots(test_paths().slots.size());
  reader.read(json, test_paths(), slots.data());
  return owned(slots);
}

std::string random_scalar(test_rng& rng) {
  switch (rng.below(6)) {
    case 0:
      return std::to_string(static_cast<long long>(rng.below(100000)) - 50000) + "." +
             std::to_string(rng.below(100));
    case 1:
      return "\"" + rng.letters(rng.below(12)) + "\"";
    case 2:
      return "\"esc\\\"aped\\n\\u00e9\"";
    case 3:
      return rng.percent(50) ? "true" : "false";
    case 4:
      return "null";
    default:
      return "\"caf\xc3\xa9\"";
  }
}

std::string random_value(test_rng& rng, int depth) {
  const auto k = rng.below(10);
  if (depth < 2 && k == 0) {
    return "{\"x\":" + random_scalar(rng) + ",\"y\":[1,{\"x\":2}]}";
  }
  if (depth < 2 && k == 1) return "[" + random_scalar(rng) + ", " + random_scalar(rng) + "]";
  return random_scalar(rng);
}

// A valid object: members from a small set of names (some asked for, some
// repeated), in random order, with random whitespace.
std::string random_object(test_rng& rng) {
  static const char* const names[] = {"amount", "region", "nested",       "tags", "flag",
                                      "other",  "pad",    "re\\u0067ion", "x"};
  std::string ws = rng.percent(20) ? " \n\t" : "";
  std::string text = "{" + ws;
  const auto members = rng.below(8);
  for (std::uint64_t i = 0; i < members; ++i) {
    if (i > 0) text += "," + ws;
    text += "\"" + std::string(names[rng.below(std::size(names))]) + "\"" + ws + ":" + ws +
            random_value(rng, 0);
  }
  return text + ws + "}";
}

// A document: mostly valid objects, else broken in one of many ways.
std::string random_document(test_rng& rng) {
  std::string doc = random_object(rng);
  const auto form = rng.below(100);
  if (form < 60) return doc;
  if (form < 65) return doc.substr(0, rng.below(doc.size()));  // truncated
  if (form < 68) return doc + "}";
  if (form < 71) return doc + " x";
  if (form < 73) return doc + " " + random_object(rng);  // two documents
  if (form < 76) return " " + doc;
  if (form < 78) return doc + "\n ";
  if (form < 80) return "";
  if (form < 83) return random_scalar(rng);
  if (form < 85) return "[" + doc + "]";
  if (form < 87) return doc.substr(0, doc.size() - 1) + ",";  // continued by the next one
  if (form < 89) return "\"" + doc;                           // an open quote
  if (form < 91) return doc.substr(0, doc.size() / 2) + "\xff" + doc.substr(doc.size() / 2);
  if (form < 93) return "\"pad\":1}";  // closes a previous document left open
  if (form < 95) {
    // Bigger than a batch window (16 KiB).
    return "{\"pad\":\"" + std::string(20000, 'p') + "\",\"amount\":7}";
  }
  // One random byte inserted.
  static const char bytes[] = "{}[]\":,\\ x0";
  const auto at = rng.below(doc.size() + 1);
  return doc.substr(0, at) + bytes[rng.below(sizeof(bytes) - 1)] + doc.substr(at);
}

TEST(json_fields_test, reading_alone_reads_the_members_asked_for) {
  const auto v = read_alone(
      "{\"amount\": 12.5, \"region\": \"eu\\\"west\", \"nested\": {\"x\": true, \"y\": 1},"
      " \"tags\": [1, 2] , \"amount\": 99}");
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(v[0].what, field_value::kind::number);
  EXPECT_EQ(v[0].number, 12.5);  // the first of two
  EXPECT_EQ(v[1].what, field_value::kind::string);
  EXPECT_EQ(v[1].text, "eu\"west");
  EXPECT_EQ(v[2].what, field_value::kind::boolean);
  EXPECT_TRUE(v[2].boolean);
  EXPECT_EQ(v[3].what, field_value::kind::json);
  EXPECT_EQ(v[3].text, "{\"x\": true, \"y\": 1}");
  EXPECT_EQ(v[4].what, field_value::kind::json);
  EXPECT_EQ(v[4].text, "[1, 2]");
  EXPECT_EQ(v[5].what, field_value::kind::missing);
}

TEST(json_fields_test, reading_alone_leaves_every_member_of_a_broken_document_missing) {
  for (const char* broken : {"{\"amount\": 1", "{\"amount\": 1}}", "{\"amount\": 1} x",
                             "{\"amount\": 1} {\"amount\": 2}", "[{\"amount\": 1}]", "5", "",
                             "{\"amount\": 1, \"region\": \"a\xff\"}"}) {
    const auto v = read_alone(broken);
    for (const auto& slot : v) EXPECT_EQ(slot.what, field_value::kind::missing) << broken;
  }
}

TEST(json_fields_test, batch_of_valid_documents_reads_each_as_alone) {
  std::vector<std::string> texts;
  for (int i = 0; i < 300; ++i) {
    texts.push_back("{\"amount\":" + std::to_string(i) + ",\"region\":\"r" + std::to_string(i % 5) +
                    "\",\"pad\":\"" + std::string(80, 'p') + "\"}");
  }
  const std::vector<std::string_view> views(texts.begin(), texts.end());
  json_fields reader;
  reader.begin_batch(views);
  std::vector<field_value> slots(test_paths().slots.size());
  for (std::size_t i = 0; i < views.size(); ++i) {
    reader.read_batched(i, test_paths(), slots.data());
    ASSERT_EQ(slots[0].what, field_value::kind::number) << i;
    EXPECT_EQ(slots[0].number, static_cast<double>(i));
    EXPECT_EQ(slots[1].text, "r" + std::to_string(i % 5));
  }
}

TEST(json_fields_test, random_batches_read_exactly_as_each_document_alone) {
  test_rng rng(20261124);
  json_fields reader;  // reused across batches, as a scan does
  std::vector<field_value> slots(test_paths().slots.size());
  std::size_t with_members = 0, without_members = 0;
  for (int round = 0; round < 400; ++round) {
    std::vector<std::string> texts(rng.between(1, 250));
    // Mostly valid batches, some with many broken documents.
    const bool clean = rng.percent(40);
    for (auto& t : texts) t = clean ? random_object(rng) : random_document(rng);
    std::vector<std::string_view> views;
    // An empty document as a record gives it: no data at all.
    for (const auto& t : texts) views.push_back(t.empty() ? std::string_view{} : t);
    reader.begin_batch(views);
    const auto skip_percent = rng.below(3) * 30;  // read all, or skip some
    for (std::size_t i = 0; i < views.size(); ++i) {
      if (rng.percent(skip_percent)) continue;
      reader.read_batched(i, test_paths(), slots.data());
      const auto got = owned(slots);
      const auto want = read_alone(views[i]);
      bool any = false;
      for (const auto& w : want) any = any || w.what != field_value::kind::missing;
      ++(any ? with_members : without_members);
      for (std::size_t s = 0; s < want.size(); ++s) {
        ASSERT_EQ(got[s], want[s])
            << "round " << round << " document " << i << " slot " << s << ": '" << views[i]
            << "' got " << describe(got[s]) << ", alone " << describe(want[s]);
      }
    }
  }
  // The corpus reaches both kinds.
  EXPECT_GT(with_members, 10000u);
  EXPECT_GT(without_members, 2000u);
}

}  // namespace
