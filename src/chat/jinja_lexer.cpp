#include "chat/jinja_lexer.h"

#include <string_view>

#include "chat/jinja_text.h"
#include "chat/jinja_value.h"

namespace moa::jinja {

const char* tok_name(Tok t) {
  static const char* kNames[] = {"text",
                                 "number",
                                 "string",
                                 "name",
                                 "'='",
                                 "'('",
                                 "')'",
                                 "'{%'",
                                 "'%}'",
                                 "'{{'",
                                 "'}}'",
                                 "'['",
                                 "']'",
                                 "'{'",
                                 "'}'",
                                 "','",
                                 "'.'",
                                 "':'",
                                 "'|'",
                                 "'+'/'-'/'~'",
                                 "'*'/'/'/'//'/'%'",
                                 "'**'",
                                 "comparison",
                                 "unary operator",
                                 "comment",
                                 "end of template"};
  return kNames[static_cast<int>(t)];
}

LineCol line_col(const std::string& source, size_t pos) {
  LineCol lc{1, 1};
  for (size_t i = 0; i < pos && i < source.size();) {
    const CodePoint c = decode_utf8(source, i);
    if (source[i] == '\n') {
      ++lc.line;
      lc.column = 1;
    } else {
      ++lc.column;
    }
    i += c.len;
  }
  return lc;
}

namespace {

// Text with, for every byte, its offset in the original source (one more entry: the end).
struct Mapped {
  std::string s;
  std::vector<size_t> pos;

  void append(const Mapped& from, size_t begin, size_t end) {
    s.append(from.s, begin, end - begin);
    pos.insert(pos.end() - 1, from.pos.begin() + static_cast<std::ptrdiff_t>(begin),
               from.pos.begin() + static_cast<std::ptrdiff_t>(end));
  }
};

Mapped empty_like(const Mapped& m) {
  Mapped r;
  r.s.reserve(m.s.size());
  r.pos.reserve(m.pos.size());
  r.pos.push_back(m.pos.back());
  return r;
}

bool starts(std::string_view s, size_t i, std::string_view what) {
  return s.size() >= i && s.substr(i, what.size()) == what;
}

// JavaScript's multiline ^: the start, or after \n, \r, U+2028, U+2029.
bool line_start(std::string_view s, size_t i) {
  if (i == 0) return true;
  if (s[i - 1] == '\n' || s[i - 1] == '\r') return true;
  return i >= 3 && (s.substr(i - 3, 3) == "\xE2\x80\xA8" || s.substr(i - 3, 3) == "\xE2\x80\xA9");
}

Mapped preprocess(const std::string& source) {
  Mapped m;
  m.s = source;
  m.pos.resize(source.size() + 1);
  for (size_t i = 0; i <= source.size(); ++i) m.pos[i] = i;
  if (!m.s.empty() && m.s.back() == '\n') {
    m.s.pop_back();
    m.pos.erase(m.pos.end() - 2);
  }
  // lstrip_blocks: spaces and tabs from a line start up to {% or {# (or {-).
  Mapped a = empty_like(m);
  for (size_t i = 0; i < m.s.size();) {
    if (line_start(m.s, i)) {
      size_t j = i;
      while (j < m.s.size() && (m.s[j] == ' ' || m.s[j] == '\t')) ++j;
      if (j > i && j + 1 < m.s.size() && m.s[j] == '{' &&
          (m.s[j + 1] == '#' || m.s[j + 1] == '%' || m.s[j + 1] == '-')) {
        i = j;
      }
    }
    a.append(m, i, i + 1);
    ++i;
  }
  // trim_blocks: the newline right after #}, %} or -}.
  Mapped b = empty_like(a);
  for (size_t i = 0; i < a.s.size(); ++i) {
    if (a.s[i] == '\n' && i >= 2 && a.s[i - 1] == '}' &&
        (a.s[i - 2] == '#' || a.s[i - 2] == '%' || a.s[i - 2] == '-')) {
      continue;
    }
    b.append(a, i, i + 1);
  }
  // transformers' {% generation %} and {% endgeneration %} tags, honouring - on either side.
  Mapped c = empty_like(b);
  const std::string_view s = b.s;
  size_t last = 0;
  for (size_t p = s.find("{%"); p != std::string_view::npos; p = s.find("{%", p + 1)) {
    if (p < last) continue;
    size_t q = p + 2;
    const bool lstrip = q < s.size() && s[q] == '-';
    if (lstrip) ++q;
    q += js_space_run(s, q);
    if (starts(s, q, "endgeneration")) {
      q += 13;
    } else if (starts(s, q, "generation")) {
      q += 10;
    } else {
      continue;
    }
    q += js_space_run(s, q);
    const bool rstrip = q < s.size() && s[q] == '-';
    if (rstrip) ++q;
    if (!starts(s, q, "%}")) continue;
    q += 2;
    const size_t after = js_space_run(s, q);
    size_t end = p;
    if (lstrip) end = last + js_trim_end(s.substr(last, p - last)).size();
    c.append(b, last, end);
    if (!rstrip) c.append(b, q, q + after);
    last = q + after;
    p = last - 1;
  }
  c.append(b, last, s.size());
  return c;
}

class Lexer {
 public:
  explicit Lexer(Mapped m) : m_(std::move(m)), src_(m_.s) {}

  std::vector<Token> run() {
    while (i_ < src_.size()) step();
    tokens_.push_back({Tok::kEnd, "", m_.pos.back()});
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void error(const std::string& what, size_t at) {
    fail(what, m_.pos[std::min(at, src_.size())]);
  }
  char at(size_t k) const { return k < src_.size() ? src_[k] : '\0'; }
  Tok last_type() const { return tokens_.empty() ? Tok::kEnd : tokens_.back().type; }
  void push(Tok t, std::string v, size_t start) {
    tokens_.push_back({t, std::move(v), m_.pos[start]});
  }

  // The reference fails when the input ends inside such a run (an unterminated tag).
  template <typename Pred>
  std::string consume_while(Pred pred) {
    const size_t start = i_;
    while (i_ < src_.size() && pred(static_cast<unsigned char>(src_[i_]))) {
      if (++i_ >= src_.size()) error("unexpected end of template", start);
    }
    return src_.substr(start, i_ - start);
  }

  void consume_space() {
    const size_t n = js_space_run(src_, i_);
    if (n > 0 && i_ + n >= src_.size()) error("unexpected end of template", i_);
    i_ += n;
  }

  void strip_trailing_text() {
    if (!tokens_.empty() && tokens_.back().type == Tok::kText) {
      Token& t = tokens_.back();
      t.value.resize(js_trim_end(t.value).size());
      if (t.value.empty()) tokens_.pop_back();
    }
  }

  std::string string_literal(char quote) {
    std::string out;
    const size_t start = i_ - 1;
    while (true) {
      if (i_ >= src_.size()) error("unterminated string literal", start);
      const char ch = src_[i_];
      if (ch == quote) break;
      ++i_;
      if (ch != '\\') {
        out += ch;
        continue;
      }
      if (i_ >= src_.size()) error("unterminated string literal", start);
      const char e = src_[i_++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case 'x':
        case 'u': {
          uint32_t u = hex(e == 'x' ? 2 : 4, e);
          // A \uD83D\uDE00 pair is one character; a lone surrogate has no UTF-8 form.
          if (u >= 0xD800 && u < 0xDC00 && at(i_) == '\\' && at(i_ + 1) == 'u') {
            const size_t save = i_;
            i_ += 2;
            const uint32_t lo = hex(4, 'u');
            if (lo >= 0xDC00 && lo < 0xE000) {
              u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              i_ = save;
            }
          }
          append_utf8(out, u);
          break;
        }
        default:
          error(std::string("unknown escape \\") + e + " in a string literal", i_ - 2);
      }
    }
    ++i_;  // the closing quote
    return out;
  }

  uint32_t hex(int n, char kind) {
    uint32_t v = 0;
    for (int k = 0; k < n; ++k) {
      const char c = at(i_ + static_cast<size_t>(k));
      int d = -1;
      if (c >= '0' && c <= '9')
        d = c - '0';
      else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        d = (c | 0x20) - 'a' + 10;
      if (d < 0) error(std::string("invalid escape \\") + kind + " in a string literal", i_ - 2);
      v = v * 16 + static_cast<uint32_t>(d);
    }
    i_ += static_cast<size_t>(n);
    return v;
  }

  void step() {
    const Tok last = last_type();
    if (last == Tok::kEnd || last == Tok::kCloseStatement || last == Tok::kCloseExpression ||
        last == Tok::kComment) {
      size_t end = i_;
      while (true) {
        end = src_.find('{', end);
        if (end == std::string::npos) {
          end = src_.size();
          break;
        }
        const char n = at(end + 1);
        if (n == '%' || n == '{' || n == '#') break;
        ++end;
      }
      if (end > i_) {
        push(Tok::kText, src_.substr(i_, end - i_), i_);
        i_ = end;
        return;
      }
    }
    if (at(i_) == '{') {
      const char next = at(i_ + 1);
      if (next == '#') {
        const size_t start = i_;
        i_ += 2;
        const bool strip_before = at(i_) == '-';
        if (strip_before) ++i_;
        const size_t end = src_.find("#}", i_);
        if (end == std::string::npos) error("unterminated comment (missing #})", start);
        std::string text = src_.substr(i_, end - i_);
        const bool strip_after = !text.empty() && text.back() == '-';
        if (strip_after) text.pop_back();
        if (strip_before) strip_trailing_text();
        push(Tok::kComment, std::move(text), start);
        i_ = end + 2;
        if (strip_after) i_ += js_space_run(src_, i_);
        return;
      }
      if (at(i_ + 2) == '-' && (next == '%' || next == '{')) {
        strip_trailing_text();
        push(next == '%' ? Tok::kOpenStatement : Tok::kOpenExpression, next == '%' ? "{%" : "{{",
             i_);
        if (next == '{') curly_ = 0;
        i_ += 3;
        return;
      }
    }
    consume_space();
    const size_t start = i_;
    const char ch = at(i_);
    if (ch == '-' && at(i_ + 2) == '}' && (at(i_ + 1) == '%' || at(i_ + 1) == '}')) {
      const bool stmt = at(i_ + 1) == '%';
      push(stmt ? Tok::kCloseStatement : Tok::kCloseExpression, stmt ? "%}" : "}}", i_);
      i_ += 3;
      i_ += js_space_run(src_, i_);
      return;
    }
    if (ch == '-' || ch == '+') {
      if (last == Tok::kText || last == Tok::kEnd)
        error(std::string("unexpected '") + ch + "'", i_);
      const bool binary = last == Tok::kIdentifier || last == Tok::kNumber ||
                          last == Tok::kString || last == Tok::kCloseParen ||
                          last == Tok::kCloseSquare;
      if (!binary) {
        ++i_;
        std::string num = consume_while(is_digit_byte);
        if (!num.empty() && at(i_) == '.' &&
            is_digit_byte(static_cast<unsigned char>(at(i_ + 1)))) {
          ++i_;
          num += '.';
          num += consume_while(is_digit_byte);
        }
        std::string text(1, ch);
        text += num;
        push(num.empty() ? Tok::kUnary : Tok::kNumber, std::move(text), start);
        return;
      }
    }
    if (lex_operator()) return;
    if (ch == '\'' || ch == '"') {
      ++i_;
      push(Tok::kString, string_literal(ch), start);
      return;
    }
    if (is_digit_byte(static_cast<unsigned char>(ch))) {
      std::string num = consume_while(is_digit_byte);
      if (last != Tok::kDot && at(i_) == '.' &&
          is_digit_byte(static_cast<unsigned char>(at(i_ + 1)))) {
        ++i_;
        num += '.';
        num += consume_while(is_digit_byte);
      }
      push(Tok::kNumber, std::move(num), start);
      return;
    }
    if (is_word_byte(static_cast<unsigned char>(ch))) {
      push(Tok::kIdentifier, consume_while(is_word_byte), start);
      return;
    }
    const CodePoint cp = decode_utf8(src_, i_);
    error("unexpected character '" + src_.substr(i_, cp.len) + "'", i_);
  }

  bool lex_operator() {
    struct Rule {
      std::string_view seq;
      Tok type;
    };
    static constexpr Rule kRules[] = {{"{%", Tok::kOpenStatement},  {"%}", Tok::kCloseStatement},
                                      {"{{", Tok::kOpenExpression}, {"}}", Tok::kCloseExpression},
                                      {"(", Tok::kOpenParen},       {")", Tok::kCloseParen},
                                      {"{", Tok::kOpenCurly},       {"}", Tok::kCloseCurly},
                                      {"[", Tok::kOpenSquare},      {"]", Tok::kCloseSquare},
                                      {",", Tok::kComma},           {".", Tok::kDot},
                                      {":", Tok::kColon},           {"|", Tok::kPipe},
                                      {"<=", Tok::kComparison},     {">=", Tok::kComparison},
                                      {"==", Tok::kComparison},     {"!=", Tok::kComparison},
                                      {"<", Tok::kComparison},      {">", Tok::kComparison},
                                      {"+", Tok::kAdditive},        {"-", Tok::kAdditive},
                                      {"~", Tok::kAdditive},        {"**", Tok::kPower},
                                      {"*", Tok::kMultiplicative},  {"//", Tok::kMultiplicative},
                                      {"/", Tok::kMultiplicative},  {"%", Tok::kMultiplicative},
                                      {"=", Tok::kEquals}};
    for (const Rule& r : kRules) {
      if (r.seq == "}}" && curly_ > 0) continue;  // inside a dict literal
      if (!starts(src_, i_, r.seq)) continue;
      push(r.type, std::string(r.seq), i_);
      if (r.type == Tok::kOpenExpression) {
        curly_ = 0;
      } else if (r.type == Tok::kOpenCurly) {
        ++curly_;
      } else if (r.type == Tok::kCloseCurly) {
        --curly_;
      }
      i_ += r.seq.size();
      return true;
    }
    return false;
  }

  Mapped m_;
  const std::string& src_;
  size_t i_ = 0;
  long curly_ = 0;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source) { return Lexer(preprocess(source)).run(); }

}  // namespace moa::jinja
