#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/errors.hpp"

// The tokens of the query language (docs/queries.md, "Query language") and
// the shape of its syntax errors, shared by the lexer and the parser.
namespace annal::engine::query {

struct token {
  enum class kind : std::uint8_t {
    end,          // end of the text
    word,         // [A-Za-z_][A-Za-z0-9_]*: a keyword or a member name
    dollar_word,  // '$' followed by word characters ($all)
    string,       // '...' or "..."; `value` holds the content, quotes undoubled
    // A run starting with a digit, or with '-' and a digit: a number, a
    // duration (-10m, 5m) or neither. Context decides, so the parser
    // classifies it and reports a malformed one with what it expected there.
    numeric,
    lparen,   // (
    rparen,   // )
    comma,    // ,
    dot,      // .
    pipe,     // |
    eq,       // =
    ne,       // !=
    lt,       // <
    le,       // <=
    gt,       // >
    ge,       // >=
    unknown,  // one character that starts no token; the parser reports it
  };
  kind what = kind::end;
  std::string_view text;   // the token as written (a view into the query text)
  std::string value;       // string only: the content
  std::size_t offset = 0;  // of the token's first byte in the query text
};

// Splits query text into tokens, one at a time. Whitespace (space, tab, CR,
// LF) separates tokens. Not thread-safe; borrows `text`, which must outlive
// it.
class lexer {
 public:
  explicit lexer(std::string_view text) : text_(text) {}

  // The next token; kind::end at the end (and on every call after it).
  // Fails (query_syntax) only on an unterminated string: every other
  // character is a token, if only kind::unknown.
  result<token> next();

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// "at <line>:<column> (offset <offset>)": 1-based line and column (a column
// counts UTF-8 characters) of byte `offset` of `text`.
std::string describe_position(std::string_view text, std::size_t offset);

// How a token is shown after "found": its text in single quotes (a string
// token as written), shortened when long; "end of query" for kind::end.
std::string describe_token(const token& t);

// The query_syntax error "at L:C (offset O): expected <expected>, found <found>".
error syntax_error(std::string_view text, std::size_t offset, std::string_view expected,
                   std::string_view found);

}  // namespace annal::engine::query
