#include "engine/query/lexer.hpp"

#include <fmt/format.h>

namespace annal::engine::query {
namespace {

// describe_token shows at most this many bytes of a token.
constexpr std::size_t k_max_shown_token_bytes = 40;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_word_char(char c) { return is_word_start(c) || is_digit(c); }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

result<token> lexer::next() {
  while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
  token t;
  t.offset = pos_;
  if (pos_ == text_.size()) {
    t.what = token::kind::end;
    return t;
  }
  const std::size_t start = pos_;
  const char c = text_[pos_];
  auto finish = [&](token::kind what, std::size_t length) {
    t.what = what;
    t.text = text_.substr(start, length);
    pos_ = start + length;
    return t;
  };
  auto peek = [&](std::size_t ahead) {
    return start + ahead < text_.size() ? text_[start + ahead] : '\0';
  };

  if (c == '\'' || c == '"') {
    std::size_t i = start + 1;
    while (true) {
      if (i == text_.size()) {
        return syntax_error(text_, start, fmt::format("a closing quote ({}) for this string", c),
                            "end of query");
      }
      if (text_[i] == c) {
        if (i + 1 < text_.size() && text_[i + 1] == c) {
          t.value.push_back(c);
          i += 2;
          continue;
        }
        break;
      }
      t.value.push_back(text_[i]);
      ++i;
    }
    return finish(token::kind::string, i + 1 - start);
  }
  if (is_word_start(c)) {
    std::size_t i = start + 1;
    while (i < text_.size() && is_word_char(text_[i])) ++i;
    return finish(token::kind::word, i - start);
  }
  if (c == '$') {
    std::size_t i = start + 1;
    while (i < text_.size() && is_word_char(text_[i])) ++i;
    return finish(token::kind::dollar_word, i - start);
  }
  if (is_digit(c) || (c == '-' && is_digit(peek(1)))) {
    std::size_t i = start + 1;
    while (i < text_.size()) {
      const char d = text_[i];
      const bool exponent_sign =
          (d == '+' || d == '-') && (text_[i - 1] == 'e' || text_[i - 1] == 'E');
      if (!is_word_char(d) && d != '.' && !exponent_sign) break;
      ++i;
    }
    return finish(token::kind::numeric, i - start);
  }
  switch (c) {
    case '(':
      return finish(token::kind::lparen, 1);
    case ')':
      return finish(token::kind::rparen, 1);
    case ',':
      return finish(token::kind::comma, 1);
    case '.':
      return finish(token::kind::dot, 1);
    case '|':
      return finish(token::kind::pipe, 1);
    case '=':
      return finish(token::kind::eq, 1);
    case '<':
      return peek(1) == '=' ? finish(token::kind::le, 2) : finish(token::kind::lt, 1);
    case '>':
      return peek(1) == '=' ? finish(token::kind::ge, 2) : finish(token::kind::gt, 1);
    case '!':
      if (peek(1) == '=') return finish(token::kind::ne, 2);
      break;
    default:
      break;
  }
  // One whole UTF-8 character, so the error message shows it intact.
  std::size_t length = 1;
  while (start + length < text_.size() && is_continuation_byte(text_[start + length])) ++length;
  return finish(token::kind::unknown, length);
}

std::string describe_position(std::string_view text, std::size_t offset) {
  std::size_t line = 1;
  std::size_t column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else if (!is_continuation_byte(text[i])) {
      ++column;
    }
  }
  return fmt::format("at {}:{} (offset {})", line, column, offset);
}

std::string describe_token(const token& t) {
  if (t.what == token::kind::end) return "end of query";
  std::string shown(t.text);
  if (shown.size() > k_max_shown_token_bytes) {
    std::size_t cut = k_max_shown_token_bytes;
    while (cut > 0 && is_continuation_byte(shown[cut])) --cut;
    shown.resize(cut);
    shown += "...";
  }
  if (t.what == token::kind::string) return shown;
  return fmt::format("'{}'", shown);
}

error syntax_error(std::string_view text, std::size_t offset, std::string_view expected,
                   std::string_view found) {
  return error{errc::query_syntax, fmt::format("{}: expected {}, found {}",
                                               describe_position(text, offset), expected, found)};
}

}  // namespace annal::engine::query
