// A check of tokenizer.model bytes before libsentencepiece sees them. The library trusts parts of
// its model that a broken or hostile file controls: an empty piece makes its trie builder throw
// from code that cannot pass exceptions on (std::terminate, found by fuzz_sentencepiece), as does
// a piece holding a NUL byte, and the
// normalizer's precompiled_charsmap is a raw double-array trie whose offsets and string indexes it
// follows unchecked (reads outside the blob, and more than its fixed 32 prefix results). We walk
// the protobuf wire format ourselves (the fields of sentencepiece_model.proto we need) and refuse
// those files with one InputError.
#include <cstring>
#include <string_view>
#include <vector>

#include "moa/core/error.h"
#include "tokenizer/tokenizer_internal.h"

namespace moa::tok {

namespace {

// ModelProto and the fields of its messages that the checks read.
constexpr uint32_t kPieces = 1, kNormalizerSpec = 3, kDenormalizerSpec = 5;  // ModelProto
constexpr uint32_t kPiece = 1;                                               // SentencePiece
constexpr uint32_t kPrecompiledCharsmap = 2;                                 // NormalizerSpec
// Normalizer::kMaxTrieResultsSize: the prefix matches the normalizer keeps in a stack array.
constexpr int kMaxTrieResults = 32;

struct Field {
  uint32_t number = 0;
  uint32_t wire = 0;
  std::string_view bytes;  // the payload of a length-delimited field
};

class Reader {
 public:
  Reader(std::string_view s, const std::string& file, size_t base)
      : s_(s), file_(file), base_(base) {}
  bool done() const { return pos_ >= s_.size(); }

  Field next() {
    Field f;
    const uint64_t key = varint();
    f.number = uint32_t(key >> 3);
    f.wire = uint32_t(key & 7);
    switch (f.wire) {
      case 0:
        (void)varint();
        break;
      case 1:
        skip(8);
        break;
      case 5:
        skip(4);
        break;
      case 2: {
        const uint64_t n = varint();
        if (n > s_.size() - pos_) bad("a field's length runs past the end");
        f.bytes = s_.substr(pos_, size_t(n));
        pos_ += size_t(n);
        break;
      }
      default:
        bad("a field has wire type " + std::to_string(f.wire));
    }
    return f;
  }
  size_t offset_of(std::string_view inner) const {
    return base_ + size_t(inner.data() - s_.data());
  }

 private:
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= s_.size()) bad("a number runs past the end");
      const uint8_t b = uint8_t(s_[pos_++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    bad("a number is longer than 10 bytes");
  }
  void skip(size_t n) {
    if (n > s_.size() - pos_) bad("a field runs past the end");
    pos_ += n;
  }
  [[noreturn]] void bad(const std::string& what) const {
    input_error("{}: not a SentencePiece model: {} (byte {})", file_, what, base_ + pos_);
  }

  std::string_view s_;
  const std::string& file_;
  size_t base_;
  size_t pos_ = 0;
};

// darts-clone's unit layout (third_party/darts_clone/darts.h of sentencepiece).
struct Unit {
  uint32_t u;
  bool has_leaf() const { return (u >> 8) & 1; }
  uint32_t value() const { return u & ((1u << 31) - 1); }
  uint32_t label() const { return u & ((1u << 31) | 0xff); }
  uint32_t offset() const { return (u >> 10) << ((u & (1u << 9)) >> 6); }
};

// precompiled_charsmap = <trie bytes (u32 LE)><double-array units><NUL-terminated strings>.
// Every lookup DoubleArray::commonPrefixSearch can make must stay inside the units, every value
// it returns must index a NUL-terminated string, and no input may match more than
// kMaxTrieResults prefixes: the transitions from the root must form a DAG (apart from the
// leafless self-loops that unused units give a NUL byte in a well-formed trie) in which no path
// passes more than kMaxTrieResults leaves.
void check_charsmap(std::string_view blob, const std::string& file, const char* spec) {
  if (blob.empty()) return;  // no normalization rules
  auto bad = [&](const std::string& what) {
    input_error("{}: {}.precompiled_charsmap is broken: {}", file, spec, what);
  };
  uint32_t trie_bytes = 0;
  if (blob.size() <= 4) bad(fmt::format("{} bytes, expected more than 4", blob.size()));
  std::memcpy(&trie_bytes, blob.data(), 4);
  if (trie_bytes > blob.size() - 4 || trie_bytes % 4 != 0 || trie_bytes == 0) {
    bad(
        fmt::format("its trie is {} bytes of a {}-byte blob (expected a positive multiple of 4 "
                    "inside it)",
                    trie_bytes, blob.size()));
  }
  const size_t n = trie_bytes / 4;
  std::vector<Unit> units(n);
  std::memcpy(units.data(), blob.data() + 4, trie_bytes);
  const std::string_view strings = blob.substr(4 + trie_bytes);
  const size_t last_nul = strings.rfind('\0');  // npos when there is none

  // Iterative DFS over states (the XOR base a node's children are found at); depth = the most
  // leaves on a path from the state. 0 unvisited, 1 on the stack, 2 done.
  struct Frame {
    uint32_t base;
    uint32_t c;  // next byte to try
    int best;    // most leaves on a path below, so far
  };
  std::vector<uint8_t> color(n, 0);
  std::vector<int> leaves_below(n, 0);
  std::vector<Frame> stack;
  const uint32_t root = units[0].offset();
  if (root >= n) bad(fmt::format("the root points to unit {} of {}", root, n));
  stack.push_back({root, 0, 0});
  color[root] = 1;
  int root_best = 0;
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.c > 255) {
      const int best = f.best;
      color[f.base] = 2;
      leaves_below[f.base] = best;
      stack.pop_back();
      if (stack.empty()) {
        root_best = best;
      } else {
        // The parent's edge to this state: add its leaf, if any (recorded in `c - 1`).
        Frame& p = stack.back();
        const uint32_t q = p.base ^ (p.c - 1);
        p.best = std::max(p.best, best + int(units[q].has_leaf()));
      }
      continue;
    }
    const uint32_t c = f.c++;
    const uint32_t q = f.base ^ c;
    if (q >= n) bad(fmt::format("a lookup reaches unit {} of {}", q, n));
    const Unit u = units[q];
    if (u.label() != c) continue;
    const uint32_t next = q ^ u.offset();
    if (next >= n) bad(fmt::format("unit {} points to unit {} of {}", q, next, n));
    if (u.has_leaf()) {
      const uint32_t v = units[next].value();
      if (last_nul == std::string_view::npos || v > last_nul) {
        bad(fmt::format("a rule's output starts at byte {} of {} and has no NUL after it", v,
                        strings.size()));
      }
    }
    if (next == f.base && c == 0 && !u.has_leaf()) continue;  // an unused unit's self-loop
    if (color[next] == 1) bad("its trie has a cycle");
    const int here = int(u.has_leaf());
    if (color[next] == 2) {
      f.best = std::max(f.best, leaves_below[next] + here);
      continue;
    }
    color[next] = 1;
    stack.push_back({next, 0, 0});
  }
  if (root_best > kMaxTrieResults) {
    bad(fmt::format("one input matches {} rules, more than the {} the normalizer can hold",
                    root_best, kMaxTrieResults));
  }
}

}  // namespace

void check_sentencepiece_model(std::string_view bytes, const std::string& file) {
  Reader top(bytes, file, 0);
  int64_t pieces = 0;
  while (!top.done()) {
    const Field f = top.next();
    if (f.wire != 2) continue;
    if (f.number == kPieces) {
      if (++pieces > kMaxVocab) {
        input_error("{}: more than {} pieces, the most a vocabulary may have", file, kMaxVocab);
      }
      // Protobuf keeps the last of repeated singular fields; absent means "".
      std::string_view piece;
      Reader r(f.bytes, file, top.offset_of(f.bytes));
      while (!r.done()) {
        const Field g = r.next();
        if (g.number == kPiece && g.wire == 2) piece = g.bytes;
      }
      // The trie builder throws on both, from where the exception cannot be caught.
      if (piece.empty()) {
        input_error(
            "{}: piece {} is empty, expected its text (every piece needs at least one byte)", file,
            pieces - 1);
      }
      if (piece.find('\0') != std::string_view::npos) {
        input_error("{}: piece {} holds a NUL byte, expected text without NUL", file, pieces - 1);
      }
    } else if (f.number == kNormalizerSpec || f.number == kDenormalizerSpec) {
      Reader r(f.bytes, file, top.offset_of(f.bytes));
      while (!r.done()) {
        const Field g = r.next();
        if (g.number == kPrecompiledCharsmap && g.wire == 2) {
          check_charsmap(g.bytes, file,
                         f.number == kNormalizerSpec ? "normalizer_spec" : "denormalizer_spec");
        }
      }
    }
  }
}

}  // namespace moa::tok
