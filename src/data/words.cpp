#include <fstream>
#include <unistd.h>

#include "moa/core/error.h"
#include "moa/core/hash.h"
#include "moa/data/tasks.h"

namespace moa {

KeySplit parse_key_split(const std::string& s) {
  if (s == "train") return KeySplit::kTrain;
  if (s == "heldout") return KeySplit::kHeldOut;
  if (s == "all") return KeySplit::kAll;
  input_error("--split: '{}', expected train, heldout or all", s);
}

bool is_held_out_word(const std::string& w) { return fnv1a(w) % 8 == 0; }

namespace {

std::vector<std::string> read_words(const std::filesystem::path& p) {
  std::ifstream in(p);
  if (!in) input_error("{}: cannot open the word list (run scripts/make_word_lists.sh)", p.string());
  std::vector<std::string> out;
  std::string w;
  int64_t line = 0;
  while (std::getline(in, w)) {
    ++line;
    if (w.empty()) continue;
    for (char c : w) {
      if (c < 'a' || c > 'z') input_error("{}:{}: '{}' is not a lowercase ASCII word", p.string(), line, w);
    }
    out.push_back(w);
  }
  if (out.size() < 16) input_error("{}: {} words, expected at least 16", p.string(), out.size());
  return out;
}

}  // namespace

WordLists WordLists::load(const std::filesystem::path& dir) {
  WordLists w;
  w.adjectives = read_words(dir / "adjectives.txt");
  w.nouns = read_words(dir / "nouns.txt");
  return w;
}

std::filesystem::path WordLists::default_dir() {
  namespace fs = std::filesystem;
  if (fs::exists("data/words/nouns.txt")) return "data/words";
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) {
    buf[n] = 0;
    fs::path p = fs::path(buf).parent_path() / ".." / ".." / "data" / "words";
    if (fs::exists(p / "nouns.txt")) return p;
  }
  return "data/words";
}

}  // namespace moa
