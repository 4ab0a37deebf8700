// BPE over one pre-tokenized word: start from its characters, repeatedly merge the adjacent pair
// with the lowest merge rank (leftmost first on ties) until no pair has a rank. A binary heap of
// candidate pairs over a linked list of symbols makes this O(n log n) in the word length, which
// matters for SentencePiece-style tokenizers where a whole text section is one word.
#include <queue>

#include "moa/core/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "moa/tokenizer/unicode.h"

namespace moa::tok {

int32_t BpeModel::symbol_id(std::string_view s) const {
  if (auto it = token_to_id.find(s); it != token_to_id.end()) return it->second;
  if (auto it = extra_ids_.find(s); it != extra_ids_.end()) return it->second;
  return -1;
}

int32_t BpeModel::intern_symbol(const std::string& s) {
  int32_t id = symbol_id(s);
  if (id >= 0) return id;
  id = int32_t(id_to_token.size() + extra_symbols_.size());
  extra_symbols_.push_back(s);
  extra_ids_.emplace(s, id);
  return id;
}

void BpeModel::set_merges(const nlohmann::json& merges, const std::string& where) {
  // Symbols outside the vocabulary get ids after it.
  MOA_CHECK(extra_symbols_.empty());
  if (!merges.is_array()) {
    input_error("{}: field 'model.merges' is {}, expected a list of merges", where,
                merges.type_name());
  }
  merges_.reserve(merges.size() * 2);
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& m = merges[i];
    std::string a, b;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos) {
        input_error("{}: model.merges[{}] is \"{}\", expected two tokens separated by a space",
                    where, i, s);
      }
      a = s.substr(0, sp);
      size_t sp2 = s.find(' ', sp + 1);  // like the reference: split(" ", 2)
      b = s.substr(sp + 1, sp2 == std::string::npos ? std::string::npos : sp2 - sp - 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      input_error("{}: model.merges[{}] is {}, expected \"a b\" or [\"a\", \"b\"]", where, i,
                  m.dump());
    }
    int32_t ia = intern_symbol(a), ib = intern_symbol(b);
    int32_t r = intern_symbol(a + b);
    uint64_t key = (uint64_t(uint32_t(ia)) << 32) | uint32_t(ib);
    merges_.insert_or_assign(key, Merge{int32_t(i), r});  // a repeated pair keeps its last rank
  }
  for (int b = 0; b < 256; ++b) {
    auto it = token_to_id.find(fmt::format("<0x{:02X}>", b));
    byte_ids_[b] = it == token_to_id.end() ? -1 : it->second;
  }
  small_char_ids_.assign(0x800, -2);
  for (char32_t cp = 0; cp < 0x800; ++cp) {
    std::string s;
    unicode::append_utf8(s, cp);
    small_char_ids_[cp] = symbol_id(s);
  }
}

void BpeModel::emit(int32_t sym, std::string_view text, std::vector<int32_t>* ids) const {
  if (sym >= 0 && size_t(sym) < id_to_token.size() && !id_to_token[sym].empty()) {
    ids->push_back(sym);
    return;
  }
  if (byte_fallback) {
    bool all = true;
    for (unsigned char c : text) all = all && byte_ids_[c] >= 0;
    if (all) {
      for (unsigned char c : text) ids->push_back(byte_ids_[c]);
      return;
    }
  }
  if (unk_id >= 0) ids->push_back(unk_id);
}

namespace {

struct Symbol {
  int32_t id;  // -1: a character outside vocabulary and merges
  int32_t prev, next;
  uint32_t start, len;  // bytes of the word
};

struct Candidate {
  int32_t rank;
  int32_t left;  // index of the left symbol (= its first character's index)
  int32_t left_id, right_id;
  bool operator<(const Candidate& o) const {  // priority_queue pops the largest
    return rank != o.rank ? rank > o.rank : left > o.left;
  }
};

}  // namespace

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (ignore_merges) {
    if (auto it = token_to_id.find(word); it != token_to_id.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() < kMaxCachedWord;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (auto it = cache_.find(word); it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }

  // Characters -> symbols.
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  for (size_t i = 0; i < word.size();) {
    size_t len = unicode::valid_utf8_length(word, i);
    int32_t id;
    if (len == 0) {
      len = 1;
      id = symbol_id(word.substr(i, 1));
    } else if (len <= 2 && !small_char_ids_.empty()) {
      auto c0 = static_cast<unsigned char>(word[i]);
      char32_t cp =
          len == 1 ? c0 : ((c0 & 0x1F) << 6) | (static_cast<unsigned char>(word[i + 1]) & 0x3F);
      id = small_char_ids_[cp];
    } else {
      id = symbol_id(word.substr(i, len));
    }
    int32_t n = int32_t(sym.size());
    sym.push_back({id, n - 1, n + 1, uint32_t(i), uint32_t(len)});
    i += len;
  }
  sym.back().next = -1;

  auto rank_of = [&](int32_t a, int32_t b) -> const Merge* {
    if (a < 0 || b < 0) return nullptr;
    auto it = merges_.find((uint64_t(uint32_t(a)) << 32) | uint32_t(b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  std::priority_queue<Candidate> heap;
  auto consider = [&](int32_t left) {
    if (left < 0) return;
    int32_t right = sym[left].next;
    if (right < 0) return;
    if (const Merge* m = rank_of(sym[left].id, sym[right].id)) {
      heap.push({m->rank, left, sym[left].id, sym[right].id});
    }
  };
  for (int32_t i = 0; i + 1 < int32_t(sym.size()); ++i) consider(i);
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    Symbol& l = sym[c.left];
    // Stale entries: a symbol's string only grows, so an unchanged id means an unchanged symbol.
    if (l.len == 0 || l.id != c.left_id || l.next < 0) continue;
    Symbol& r = sym[l.next];
    if (r.id != c.right_id) continue;
    l.id = rank_of(l.id, r.id)->result;
    l.len += r.len;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.left;
    r.len = 0;
    consider(l.prev);
    consider(c.left);
  }

  std::vector<int32_t> out;
  for (int32_t i = 0; i >= 0; i = sym[i].next) {
    emit(sym[i].id, word.substr(sym[i].start, sym[i].len), &out);
  }
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kCacheCapacity) cache_.clear();
    cache_.emplace(std::string(word), out);
  }
  ids->insert(ids->end(), out.begin(), out.end());
}

}  // namespace moa::tok
