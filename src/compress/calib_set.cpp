#include "moa/compress/calib_set.h"

#include <cstring>
#include <random>

#include "moa/core/dist.h"
#include "moa/core/error.h"
#include "moa/model/generate.h"
#include "moa/core/file_io.h"
#include "moa/tokenizer/unicode.h"

namespace moa {

namespace {

// A LongEval record whose prompt fills `budget` tokens as closely as whole lines allow.
LongEvalRecord fitted_longeval(std::mt19937_64& rng, const Tokenizer& tok, const WordLists& words,
                               int64_t budget, double depth) {
  const uint64_t s0 = rng();
  auto make = [&](int64_t lines) {
    std::mt19937_64 r(s0);
    const int64_t ask = std::min<int64_t>(lines - 1, int64_t(depth * double(lines)));
    return make_longeval(r, words, lines, KeySplit::kTrain, ask);
  };
  auto tokens = [&](const LongEvalRecord& r) { return int64_t(tok.encode(r.prompt, true).size()); };
  // Lines grow by doubling, then bisect: the largest record that fits.
  int64_t lo = 1, hi = 2;
  if (tokens(make(1)) > budget) input_error("calibration length: {} tokens cannot hold a one-line LongEval record", budget);
  while (tokens(make(hi)) <= budget) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    (tokens(make(mid)) <= budget ? lo : hi) = mid;
  }
  return make(lo);
}

PasskeyRecord fitted_passkey(std::mt19937_64& rng, const Tokenizer& tok, int64_t budget, double depth) {
  const uint64_t s0 = rng();
  auto make = [&](int64_t repeats) {
    std::mt19937_64 r(s0);
    return make_passkey(r, repeats, depth);
  };
  auto tokens = [&](const PasskeyRecord& p) { return int64_t(tok.encode(p.prompt, true).size()); };
  if (tokens(make(0)) > budget) input_error("calibration length: {} tokens cannot hold a passkey prompt", budget);
  int64_t lo = 0, hi = 1;
  while (tokens(make(hi)) <= budget) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    (tokens(make(mid)) <= budget ? lo : hi) = mid;
  }
  return make(lo);
}

// The answer as valid UTF-8 (invalid bytes as U+FFFD) cut at whole characters to at most
// max_tokens tokens. The profiler and the validator encode the stored text again, and with a
// byte-level tokenizer a U+FFFD costs three tokens where the model generated one byte: an answer
// of random bytes would otherwise overflow its length.
std::string stored_answer(const Tokenizer& tok, const std::string& text, int64_t max_tokens) {
  std::string s = unicode::sanitize_utf8(text);
  while (!s.empty() && int64_t(tok.encode(s, false).size()) > max_tokens) {
    size_t cut = s.size() - 1;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // a character's first byte
    s.erase(cut);
  }
  return s;
}

}  // namespace

std::vector<nlohmann::json> make_calibration_set(const Model& m, const Tokenizer& tok,
                                                 const WordLists& words, const CalibOptions& o,
                                                 const std::function<void(int64_t, int64_t)>& progress) {
  if (o.lengths.empty()) input_error("calibration: no lengths given");
  std::mt19937_64 rng(o.seed);
  std::vector<nlohmann::json> rows;
  const int64_t total = int64_t(o.lengths.size()) * o.samples_per_length;
  const auto dense = [&](int64_t n) {
    return AttentionSpec::dense(m.cfg.layers, m.cfg.heads, m.cfg.kv_heads, m.cfg.head_dim, n);
  };
  for (int64_t L : o.lengths) {
    if (L > m.cfg.max_position) {
      input_error("calibration length {} exceeds the model's context of {} (max_position_embeddings)", L, m.cfg.max_position);
    }
    const int64_t budget = L - o.max_answer;
    for (int64_t i = 0; i < o.samples_per_length; ++i) {
      // Depths sweep the prompt so that every distance between question and answer is seen.
      const double depth = o.samples_per_length > 1 ? double(i) / double(o.samples_per_length - 1) : 0.5;
      const bool passkey = std::uniform_real_distribution<double>(0, 1)(rng) < o.passkey_fraction;
      nlohmann::json row;
      std::string prompt;
      if (passkey) {
        PasskeyRecord p = fitted_passkey(rng, tok, budget, depth);
        prompt = p.prompt;
        row = {{"task", "passkey"}, {"expected_number", p.passkey}, {"depth", depth}};
      } else {
        LongEvalRecord r = fitted_longeval(rng, tok, words, budget, depth);
        prompt = r.prompt;
        row = {{"task", "longeval"},
               {"expected_number", r.expected_number},
               {"num_lines", r.num_lines},
               {"random_idx", nlohmann::json::array({r.key, r.line_index})}};
      }
      row["prompt"] = prompt;
      row["length"] = L;
      rows.push_back(std::move(row));
    }
  }
  // The dense model's answers, the costly part, split across ranks (core/dist.h); every rank
  // gets them all, so every rank holds the same rows.
  std::vector<std::string> answers(rows.size());
  auto work = [&](int64_t i) {
    GreedyAnswer a = greedy_answer(m, tok, rows[size_t(i)]["prompt"].get<std::string>(),
                                   o.max_answer, dense);
    const int64_t pt = int64_t(a.prompt_tokens);
    return std::string(reinterpret_cast<const char*>(&pt), sizeof pt) + a.text;
  };
  auto consume = [&](int64_t i, const std::string& res) {
    answers[size_t(i)] = res;
    if (progress) progress(i + 1, total);
  };
  dist::map_ordered(0, int64_t(rows.size()), work, consume);
  for (size_t i = 0; i < rows.size(); ++i) {
    dist::broadcast(answers[i]);
    MOA_CHECK(answers[i].size() >= sizeof(int64_t));
    int64_t prompt_tokens = 0;
    std::memcpy(&prompt_tokens, answers[i].data(), sizeof prompt_tokens);
    std::string text = stored_answer(tok, answers[i].substr(sizeof prompt_tokens), o.max_answer);
    if (text.empty()) text = tok.decode({tok.eos_ids().empty() ? 0 : tok.eos_ids()[0]});
    nlohmann::json& row = rows[i];
    row["answer"] = text;
    row["prompt_tokens"] = prompt_tokens;
    row["answer_tokens"] = int64_t(tok.encode(text, false).size());
    row["model_correct"] = first_integer(text) == row["expected_number"].get<int64_t>();
  }
  return rows;
}

CalibrationReport calibrate(const Model& m, const Tokenizer& tok, const WordLists& words,
                            const CalibOptions& o, const std::filesystem::path& out,
                            const std::function<void(int64_t, int64_t)>& progress) {
  const std::vector<nlohmann::json> rows = make_calibration_set(m, tok, words, o, progress);
  // Rank 0 writes; the others go on once the file is there.
  dist::root_first([&] { write_text_atomic(out, to_jsonl(rows)); });
  CalibrationReport r;
  r.samples = int64_t(rows.size());
  for (const auto& row : rows) r.model_correct += row["model_correct"].get<bool>();
  return r;
}

std::string to_jsonl(const std::vector<nlohmann::json>& rows) {
  std::string text;
  for (const auto& r : rows) text += r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return text;
}

}  // namespace moa
