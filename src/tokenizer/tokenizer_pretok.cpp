// Normalizers and pre-tokenizers of tokenizer.json, and the split regexes implemented by hand.
//
// The regexes are matched as a backtracking engine (the reference runs them as JavaScript
// RegExps with the "u" flag; \s is White_Space) would match them: at each position the first
// alternative that matches wins, quantifiers are greedy and give back only what a later part
// needs. Each alternative below says what it reduces to. Every position starts some match, so the
// matches cover the text and "Isolated" splitting is just the list of matches.
#include <algorithm>

#include "tokenizer/tokenizer_internal.h"
#include "moa/tokenizer/unicode.h"

namespace moa::tok {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out.append(to);
  }
  out.append(s, pos, std::string::npos);
  s.swap(out);
}

const std::array<std::string, 256>& byte_to_unicode() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      char32_t cp = printable ? char32_t(b) : char32_t(256 + n++);
      unicode::append_utf8(t[b], cp);
    }
    return t;
  }();
  return table;
}

int unicode_to_byte(char32_t cp) {
  if ((cp >= '!' && cp <= '~') || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) {
    return int(cp);
  }
  if (cp < 256 || cp >= 256 + 68) return -1;
  // 256 + n is the n-th byte that is not printable.
  static const std::array<int, 68> unprintable = [] {
    std::array<int, 68> u{};
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      if (!printable) u[n++] = b;
    }
    return u;
  }();
  return unprintable[cp - 256];
}

// ---- normalizers ------------------------------------------------------------------------------

std::string normalize(const std::vector<NormalizerStep>& steps, std::string text) {
  for (const auto& st : steps) {
    switch (st.kind) {
      case NormalizerStep::kPrepend:
        if (!text.empty()) text.insert(0, st.a);
        break;
      case NormalizerStep::kReplace:
        replace_all(text, st.a, st.b);
        break;
      case NormalizerStep::kNfc:
        text = unicode::nfc(text);
        break;
      case NormalizerStep::kStrip: {
        std::vector<char32_t> cps;
        std::vector<uint32_t> off;
        unicode::decode_utf8(text, &cps, &off);
        size_t b = 0, e = cps.size();
        if (st.left) {
          while (b < e && unicode::has(cps[b], unicode::kSpace)) ++b;
        }
        if (st.right) {
          while (e > b && unicode::has(cps[e - 1], unicode::kSpace)) --e;
        }
        text = text.substr(off[b], off[e] - off[b]);
        break;
      }
    }
  }
  return text;
}

// ---- split regexes ----------------------------------------------------------------------------

std::optional<SplitPattern> find_split_pattern(std::string_view regex) {
  static const std::pair<std::string_view, SplitPattern> known[] = {
      {R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re",
       SplitPattern::kGpt2},
      {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3})re"
       R"re(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re",
       SplitPattern::kLlama3},
      {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N})re"
       R"re(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re",
       SplitPattern::kQwen2},
  };
  for (const auto& [src, p] : known) {
    if (regex == src) return p;
  }
  return std::nullopt;
}

namespace {

struct Matcher {
  const std::vector<char32_t>& c;
  size_t n;

  bool is(size_t i, uint16_t f) const { return i < n && unicode::has(c[i], f); }
  bool letter(size_t i) const { return is(i, unicode::kL); }
  bool number(size_t i) const { return is(i, unicode::kN); }
  bool space(size_t i) const { return is(i, unicode::kSpace); }
  // [^\s\p{L}\p{N}]
  bool other(size_t i) const {
    return i < n && !unicode::has(c[i], unicode::kSpace | unicode::kL | unicode::kN);
  }
  bool crlf(size_t i) const { return i < n && (c[i] == '\r' || c[i] == '\n'); }
  size_t run(size_t i, bool (Matcher::*pred)(size_t) const) const {
    while ((this->*pred)(i)) ++i;
    return i;
  }
  static char32_t lower(char32_t x) { return (x >= 'A' && x <= 'Z') ? x + 32 : x; }

  // 's|'t|'re|'ve|'m|'ll|'d (ASCII case-insensitive when ci). Returns the end or 0.
  size_t contraction(size_t i, bool ci) const {
    if (c[i] != '\'' || i + 1 >= n) return 0;
    auto at = [&](size_t k) { return ci ? lower(c[k]) : c[k]; };
    char32_t a = at(i + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 < n) {
      char32_t b = at(i + 2);
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    return 0;
  }
  // \s+(?!\S)|\s+ : the whitespace run, less its last character when a non-space follows and
  // the run is longer than one.
  size_t trailing_space(size_t i) const {
    size_t e = run(i, &Matcher::space);
    if (e < n && e - 1 > i) return e - 1;
    return e;
  }

  size_t gpt2(size_t i) const {
    if (size_t e = contraction(i, false)) return e;
    size_t k = i + (c[i] == ' ' ? 1 : 0);
    if (letter(k)) return run(k, &Matcher::letter);  // ` ?\p{L}+`
    if (number(k)) return run(k, &Matcher::number);  // ` ?\p{N}+`
    if (other(k)) return run(k, &Matcher::other);    // ` ?[^\s\p{L}\p{N}]+`
    return trailing_space(i);                        // c[i] is a space here
  }

  size_t gpt4(size_t i, size_t max_digits) const {
    if (size_t e = contraction(i, true)) return e;
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (letter(i)) return run(i, &Matcher::letter);
    if (!crlf(i) && !number(i) && letter(i + 1)) return run(i + 1, &Matcher::letter);
    // \p{N}{1,k}
    if (number(i)) {
      size_t e = i;
      while (e - i < max_digits && number(e)) ++e;
      return e;
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    size_t k = i + (c[i] == ' ' ? 1 : 0);
    if (other(k)) return run(run(k, &Matcher::other), &Matcher::crlf);
    // \s*[\r\n]+ : up to and including the last \r or \n of the whitespace run.
    size_t e = run(i, &Matcher::space);
    for (size_t j = e; j > i; --j) {
      if (crlf(j - 1)) return j;
    }
    return trailing_space(i);  // \s+(?!\S)|\s+
  }
};

}  // namespace

void regex_split(SplitPattern pattern, std::string_view text,
                 std::vector<std::pair<size_t, size_t>>* out) {
  std::vector<char32_t> cps;
  std::vector<uint32_t> off;
  unicode::decode_utf8(text, &cps, &off);
  Matcher m{cps, cps.size()};
  for (size_t i = 0; i < cps.size();) {
    size_t e = pattern == SplitPattern::kGpt2     ? m.gpt2(i)
               : pattern == SplitPattern::kLlama3 ? m.gpt4(i, 3)
                                                  : m.gpt4(i, 1);
    if (e <= i) e = i + 1;  // cannot happen (see above); keeps the loop finite regardless
    out->emplace_back(off[i], off[e]);
    i = e;
  }
}

// ---- pre-tokenizers ---------------------------------------------------------------------------

void pre_tokenize(const std::vector<PreTokStep>& steps, std::string text, bool first_section,
                  std::vector<std::string>* words) {
  std::vector<std::string> cur, next;
  cur.push_back(std::move(text));
  std::vector<std::pair<size_t, size_t>> spans;
  for (const auto& st : steps) {
    next.clear();
    for (auto& piece : cur) {
      switch (st.kind) {
        case PreTokStep::kSplit:
          spans.clear();
          regex_split(st.pattern, piece, &spans);
          for (auto [b, e] : spans) next.push_back(piece.substr(b, e - b));
          break;
        case PreTokStep::kByteLevel: {
          // (not piece.insert(0, " "): GCC 12 warns with a -Wrestrict false positive)
          if (st.add_prefix_space && (piece.empty() || piece[0] != ' ')) piece = " " + piece;
          spans.clear();
          if (st.use_regex) {
            regex_split(st.pattern, piece, &spans);
          } else {
            spans.emplace_back(0, piece.size());
          }
          const auto& map = byte_to_unicode();
          for (auto [b, e] : spans) {
            std::string w;
            w.reserve((e - b) * 2);
            for (size_t k = b; k < e; ++k) w += map[static_cast<unsigned char>(piece[k])];
            next.push_back(std::move(w));
          }
          break;
        }
        case PreTokStep::kMetaspace: {
          replace_all(piece, " ", st.replacement);
          bool prepend = st.prepend == PreTokStep::kAlways ||
                         (st.prepend == PreTokStep::kFirst && first_section);
          if (prepend && piece.compare(0, st.replacement.size(), st.replacement) != 0) {
            piece.insert(0, st.replacement);
          }
          if (!st.split) {
            next.push_back(piece);
            break;
          }
          // Split before each replacement character (HF MergedWithNext).
          size_t start = 0;
          for (size_t pos = piece.find(st.replacement, 1); pos != std::string::npos;
               pos = piece.find(st.replacement, pos + st.replacement.size())) {
            if (pos > start) next.push_back(piece.substr(start, pos - start));
            start = pos;
          }
          if (start < piece.size()) next.push_back(piece.substr(start));
          break;
        }
      }
    }
    cur.swap(next);
  }
  for (auto& w : cur) {
    if (!w.empty()) words->push_back(std::move(w));
  }
}

}  // namespace moa::tok
