// Long-dependency task generators shared by training, calibration and evaluation: LongEval line
// retrieval (the reference's prompt text, byte for byte), passkey retrieval in filler text, and
// windows of ordinary English text. Every generator is a pure function of its RNG state, so a
// training sample or an evaluation set is reproducible from its seed.
//
// Answers follow one convention, learned by the shipped model and used by eval and calibration:
// the prompt is tokenized on its own (with BOS), then the answer on its own. For LongEval the
// answer restates the line, "\nline wicked-feast: REGISTER_CONTENT is <49934>\n" (the reference's
// `correct_line`): retrieving the value is then an induction copy of the record's own line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace moa {

// Which words keys may use. Held-out words (about 1 in 8, chosen by a hash of the word) never
// appear in training data, so evaluation on kHeldOut measures retrieval of unseen keys.
enum class KeySplit { kTrain, kHeldOut, kAll };
KeySplit parse_key_split(const std::string& s);  // "train" | "heldout" | "all"
bool is_held_out_word(const std::string& w);

struct WordLists {
  std::vector<std::string> adjectives, nouns;
  // DIR/adjectives.txt and DIR/nouns.txt, one word per line (scripts/make_word_lists.sh).
  static WordLists load(const std::filesystem::path& dir);
  // data/words relative to the current directory, else to the executable's ../../ (build/bin).
  static std::filesystem::path default_dir();
};

struct LongEvalRecord {
  std::string prompt;
  std::string key;        // "wicked-feast"
  int64_t line_index = 0; // 0-based position of the asked line in the record
  int64_t expected_number = 0;
  int64_t num_lines = 0;
  std::vector<std::pair<std::string, int64_t>> lines;  // (key, value) in record order

  std::string correct_line() const;  // "line wicked-feast: REGISTER_CONTENT is <49934>\n"
  std::string answer() const { return "\n" + correct_line(); }
  // The reference's JSONL fields, plus "answer" and "split".
  nlohmann::json to_json() const;
};

// The pieces of the reference prompt (exact text).
std::string longeval_header();
std::string longeval_line(const std::string& key, int64_t value);
std::string longeval_question(const std::string& key);  // "Tell me what is ... I need the number."
inline constexpr const char* kLongEvalFooter = "\nNow the record is over. ";

// A record of `lines` distinct keys with values in [1, 49999]; the asked line is uniform (or
// `ask` when >= 0). The words come from `split`.
LongEvalRecord make_longeval(std::mt19937_64& rng, const WordLists& words, int64_t lines,
                             KeySplit split, int64_t ask = -1);
std::string random_key(std::mt19937_64& rng, const WordLists& words, KeySplit split);

// Passkey retrieval (the landmark-attention format): a 5-digit key hidden at relative depth
// `depth` in [0, 1] of `filler_repeats` repetitions of the filler sentences.
struct PasskeyRecord {
  std::string prompt;
  int64_t passkey = 0;
  double depth = 0;
  std::string answer() const { return " " + std::to_string(passkey) + "."; }
  nlohmann::json to_json() const;
};
PasskeyRecord make_passkey(std::mt19937_64& rng, int64_t filler_repeats, double depth);

// The first integer in `text` (the eval rule: greedy answer, first integer compared), or -1.
int64_t first_integer(const std::string& text);

}  // namespace moa
