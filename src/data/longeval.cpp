#include <set>

#include "moa/core/error.h"
#include "moa/data/tasks.h"

namespace moa {

std::string longeval_header() {
  return "Below is a record of lines I want you to remember. Each line begins with 'line <line "
         "index>' and contains a '<REGISTER_CONTENT>' at the end of the line as a numerical value. "
         "For each line index, memorize its corresponding <REGISTER_CONTENT>. At the end of the "
         "record, I will ask you to retrieve the corresponding <REGISTER_CONTENT> of a certain line "
         "index. Now the record start:\n\n";
}

std::string longeval_line(const std::string& key, int64_t value) {
  return "line " + key + ": REGISTER_CONTENT is <" + std::to_string(value) + ">\n";
}

std::string longeval_question(const std::string& key) {
  return "Tell me what is the <REGISTER_CONTENT> in line " + key + "? I need the number.";
}

std::string LongEvalRecord::correct_line() const { return longeval_line(key, expected_number); }

nlohmann::json LongEvalRecord::to_json() const {
  return {{"random_idx", nlohmann::json::array({key, line_index})},
          {"expected_number", expected_number},
          {"num_lines", num_lines},
          {"correct_line", correct_line()},
          {"prompt", prompt},
          {"answer", answer()}};
}

namespace {

const std::string& pick(std::mt19937_64& rng, const std::vector<std::string>& list, KeySplit split) {
  // Rejection sampling keeps the draw uniform within the split; 1 in 8 words is held out, so a
  // few tries suffice.
  for (int tries = 0; tries < 10000; ++tries) {
    const std::string& w = list[size_t(rng() % list.size())];
    if (split == KeySplit::kAll) return w;
    if (is_held_out_word(w) == (split == KeySplit::kHeldOut)) return w;
  }
  input_error("word list has no word in the requested split");
}

}  // namespace

std::string random_key(std::mt19937_64& rng, const WordLists& words, KeySplit split) {
  const std::string& a = pick(rng, words.adjectives, split);
  return a + "-" + pick(rng, words.nouns, split);
}

LongEvalRecord make_longeval(std::mt19937_64& rng, const WordLists& words, int64_t lines,
                             KeySplit split, int64_t ask) {
  MOA_CHECK(lines >= 1 && ask < lines);
  LongEvalRecord r;
  r.num_lines = lines;
  std::set<std::string> seen;
  while (int64_t(r.lines.size()) < lines) {
    std::string k = random_key(rng, words, split);
    if (!seen.insert(k).second) continue;
    r.lines.emplace_back(std::move(k), int64_t(1 + rng() % 49999));
  }
  r.line_index = ask >= 0 ? ask : int64_t(rng() % uint64_t(lines));
  r.key = r.lines[size_t(r.line_index)].first;
  r.expected_number = r.lines[size_t(r.line_index)].second;
  r.prompt = longeval_header();
  for (const auto& [k, v] : r.lines) r.prompt += longeval_line(k, v);
  r.prompt += kLongEvalFooter;
  r.prompt += longeval_question(r.key);
  return r;
}

int64_t first_integer(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] >= '0' && text[i] <= '9') {
      int64_t v = 0;
      size_t j = i;
      while (j < text.size() && text[j] >= '0' && text[j] <= '9' && j - i < 18) v = v * 10 + (text[j++] - '0');
      return v;
    }
  }
  return -1;
}

}  // namespace moa
