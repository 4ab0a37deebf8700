// Added tokens (special and not) in the text: leftmost-longest matching over a byte trie, then
// the HF tokenizers flags: single_word drops matches that touch a word character (\w),
// lstrip/rstrip let the token absorb the whitespace (\s = White_Space) beside it.
#include "tokenizer/tokenizer_internal.h"
#include "moa/tokenizer/unicode.h"

namespace moa::tok {

void AddedTokenMatcher::build(const std::vector<const AddedToken*>& tokens) {
  tokens_ = tokens;
  nodes_.assign(1, Node{});
  root_.fill(0);
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& s = tokens_[t]->content;
    if (s.empty()) continue;
    int32_t node = 0;
    for (size_t k = 0; k < s.size(); ++k) {
      auto b = static_cast<unsigned char>(s[k]);
      int32_t child = 0;
      if (node == 0) {
        child = root_[b];
      } else if (auto it = nodes_[node].next.find(b); it != nodes_[node].next.end()) {
        child = it->second;
      }
      if (child == 0) {
        child = int32_t(nodes_.size());
        nodes_.push_back(Node{});
        if (node == 0) {
          root_[b] = child;
        } else {
          nodes_[node].next[b] = child;
        }
      }
      node = child;
    }
    if (nodes_[node].token < 0) nodes_[node].token = int(t);  // first of duplicates wins
  }
}

std::vector<AddedTokenMatcher::Split> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<Split> out;
  auto push_text = [&](size_t b, size_t e) {
    if (e > b) out.push_back({b, e, -1});
  };
  if (tokens_.empty()) {
    push_text(0, text.size());
    return out;
  }
  auto cp_before = [&](size_t pos) -> char32_t {  // code point ending at pos
    size_t b = pos - 1;
    while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80 && pos - b < 4) --b;
    std::vector<char32_t> cps;
    unicode::decode_utf8(text.substr(b, pos - b), &cps);
    return cps.empty() ? 0 : cps.back();
  };
  auto cp_at = [&](size_t pos, size_t* len) -> char32_t {
    size_t l = unicode::valid_utf8_length(text, pos);
    *len = l ? l : 1;
    std::vector<char32_t> cps;
    unicode::decode_utf8(text.substr(pos, *len), &cps);
    return cps[0];
  };
  size_t done = 0;  // end of the last token split
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    // Longest match starting at i.
    int best = -1;
    size_t best_end = 0;
    int32_t node = root_[p[i]];
    for (size_t k = i + 1; node != 0; ++k) {
      if (nodes_[node].token >= 0) {
        best = nodes_[node].token;
        best_end = k;
      }
      if (k >= text.size()) break;
      auto it = nodes_[node].next.find(p[k]);
      node = it == nodes_[node].next.end() ? 0 : it->second;
    }
    if (best < 0) {
      ++i;
      continue;
    }
    size_t start = i, stop = best_end;
    i = best_end;
    const AddedToken& tok = *tokens_[best];
    if (tok.single_word) {
      size_t len;
      bool word_before = start > 0 && unicode::has(cp_before(start), unicode::kWord);
      bool word_after = stop < text.size() && unicode::has(cp_at(stop, &len), unicode::kWord);
      if (word_before || word_after) continue;
    }
    if (tok.lstrip) {
      while (start > done) {
        size_t b = start - 1;
        while (b > done && (p[b] & 0xC0) == 0x80) --b;
        size_t len;
        if (!unicode::has(cp_at(b, &len), unicode::kSpace)) break;
        start = b;
      }
    }
    if (tok.rstrip) {
      size_t len;
      while (stop < text.size() && unicode::has(cp_at(stop, &len), unicode::kSpace)) stop += len;
      i = stop;
    }
    push_text(done, start);
    out.push_back({start, stop, best});
    done = stop;
  }
  push_text(done, text.size());
  return out;
}

}  // namespace moa::tok
