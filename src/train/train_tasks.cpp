// The long-dependency training mix: LongEval records with several questions each, passkey
// prompts, and English text, at any sequence length. See RetrievalData below for the layout.
#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/ranges.h>

#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/data/tasks.h"
#include "train/train_tasks.h"

namespace moa {

namespace {

struct Mix {
  std::vector<std::string> text_files;
  std::string words_dir;
  int64_t lines_min = 2, lines_max = 1000;
  int64_t queries = 8;
  double p_passkey = 0.1, p_text = 0.1, p_copy = 0.0, p_recall = 0.0, p_lag = 0.0;
  double text_weight = 0.1;  // loss weight of text filler around the records
  bool word_keys = false;    // recall keys: one word that is one token (curriculum) or word pairs
  std::vector<int64_t> gaps = {0, 1, 2, 3, 4};  // recall templates drawn from kRecallTemplates[gaps]
};

// What recall lines put between the key and the value, shortest first: a curriculum that starts
// where the induction circuit alone answers and grows the template to LongEval's step by step.
// One token more each time (with this project's tokenizer); a model that answered with a 3-token
// template stayed at chance with the 5-token one until the 4-token step was added.
const char* const kRecallTemplates[] = {" <", ": <", ": is <", ": REGISTER is <", ": REGISTER_CONTENT is <"};

// "MIN-MAX" -> {MIN, MAX}; nullopt when there is no dash.
std::optional<std::pair<std::string, std::string>> split_range(const std::string& v) {
  const auto dash = v.find('-');
  if (dash == std::string::npos) return std::nullopt;
  return std::make_pair(v.substr(0, dash), v.substr(dash + 1));
}

Mix parse_mix(const std::string& spec) {
  Mix m;
  std::stringstream ss(spec);
  std::string kv;
  auto num = [&](const std::string& k, const std::string& v) {
    try {
      size_t used = 0;
      double d = std::stod(v, &used);
      if (used == v.size()) return d;
    } catch (const std::exception&) {
    }
    input_error("--data {}: '{}' is '{}', expected a number", spec, k, v);
  };
  while (std::getline(ss, kv, ',')) {
    if (kv.empty()) continue;
    auto eq = kv.find('=');
    if (eq == std::string::npos) input_error("--data {}: '{}' is not key=value", spec, kv);
    std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "text") {
      std::stringstream fs(v);
      std::string f;
      while (std::getline(fs, f, '+')) {
        if (!f.empty()) m.text_files.push_back(f);
      }
    } else if (k == "words") {
      m.words_dir = v;
    } else if (k == "lines") {
      const auto range = split_range(v);
      if (!range) input_error("--data {}: lines is '{}', expected MIN-MAX", spec, v);
      m.lines_min = int64_t(num(k, range->first));
      m.lines_max = int64_t(num(k, range->second));
      if (m.lines_min < 1 || m.lines_max < m.lines_min) input_error("--data {}: lines '{}' is not 1 <= MIN <= MAX", spec, v);
    } else if (k == "queries") {
      m.queries = int64_t(num(k, v));
      if (m.queries < 1) input_error("--data {}: queries must be >= 1", spec);
    } else if (k == "passkey") {
      m.p_passkey = num(k, v);
    } else if (k == "copy") {
      m.p_copy = num(k, v);
    } else if (k == "keys") {
      if (v != "word" && v != "pair") input_error("--data {}: keys is '{}', expected word or pair", spec, v);
      m.word_keys = v == "word";
    } else if (k == "gap") {
      // "MAX" (from 0), "MIN-MAX" or "A+B+..": the curriculum's frontier can be weighted alone.
      m.gaps.clear();
      if (const auto range = split_range(v)) {
        for (auto g = int64_t(num(k, range->first)); g <= int64_t(num(k, range->second)); ++g) m.gaps.push_back(g);
      } else if (v.find('+') != std::string::npos) {
        std::stringstream gs(v);
        std::string g;
        while (std::getline(gs, g, '+')) m.gaps.push_back(int64_t(num(k, g)));
      } else {
        for (int64_t g = 0; g <= int64_t(num(k, v)); ++g) m.gaps.push_back(g);
      }
      if (m.gaps.empty() || std::any_of(m.gaps.begin(), m.gaps.end(), [](int64_t g) { return g < 0 || g > 4; })) {
        input_error("--data {}: gap is '{}', expected MAX, MIN-MAX or A+B+.. within 0..4", spec, v);
      }
    } else if (k == "lag") {
      m.p_lag = num(k, v);
    } else if (k == "recall") {
      m.p_recall = num(k, v);
    } else if (k == "textonly") {
      m.p_text = num(k, v);
    } else if (k == "text_weight") {
      m.text_weight = num(k, v);
    } else {
      input_error("--data {}: unknown key '{}' (expected text, words, lines, queries, passkey, copy, recall, keys, gap, lag, textonly, text_weight)", spec, k);
    }
  }
  if (m.text_files.empty()) input_error("--data {}: needs text=FILE[+FILE...] for the filler", spec);
  if (m.p_passkey < 0 || m.p_text < 0 || m.p_copy < 0 || m.p_recall < 0 || m.p_lag < 0 ||
      m.p_passkey + m.p_text + m.p_copy + m.p_recall + m.p_lag > 1) {
    input_error("--data {}: passkey, copy, recall, lag and textonly are probabilities summing to at most 1", spec);
  }
  return m;
}

// Layout of a LongEval sample of T tokens:
//   BOS [text] prompt(record, question 1) answer 1 {question k answer k} [text]
// The prompt is tokenized as one string and each answer on its own, exactly as evaluation sees
// them. Loss weight 1 on answer tokens, text_weight on filler text, 0 on the record (its keys and
// values are random: nothing to learn there but the template). The record's line count is uniform
// in [lines_min, lines_max] as far as T allows; half of the samples put the filler after the last
// answer (so records also start right after BOS, as in evaluation), half before it.
class RetrievalData : public TrainData {
 public:
  RetrievalData(Mix mix, const Tokenizer& tok) : mix_(std::move(mix)), tok_(tok) {
    words_ = WordLists::load(mix_.words_dir.empty() ? WordLists::default_dir() : std::filesystem::path(mix_.words_dir));
    for (auto& f : mix_.text_files) {
      auto ids = tok.encode(read_text(f), false);
      text_.insert(text_.end(), ids.begin(), ids.end());
    }
    if (text_.size() < 8192) input_error("--data: text files hold {} tokens, need at least 8192", text_.size());
    header_tokens_ = int64_t(tok.encode(longeval_header(), false).size());
    special_ids_ = tok.eos_ids();
    if (tok.bos_id() >= 0) special_ids_.push_back(tok.bos_id());
    // One-token words (" word" is a single token after "line"), per split, for keys=word.
    if (!mix_.word_keys) return;
    for (const auto* list : {&words_.adjectives, &words_.nouns}) {
      for (const auto& w : *list) {
        if (tok.encode("line " + w, false).size() != 2) continue;
        (is_held_out_word(w) ? one_token_heldout_ : one_token_train_).push_back(w);
      }
    }
    if (one_token_train_.size() < size_t(mix_.lines_max) || one_token_heldout_.size() < size_t(mix_.lines_max)) {
      input_error("--data: keys=word needs {} one-token words per split; the tokenizer gives {} (train) and {} (held out)",
                  mix_.lines_max, one_token_train_.size(), one_token_heldout_.size());
    }
  }

  TrainSample sample(uint64_t seed, int64_t step, int64_t index, int64_t T) const override {
    std::mt19937_64 rng(sample_seed(seed, step, index));
    // The held-out stream (step -1, the trainer's evaluation) uses only held-out key words.
    const KeySplit split = step < 0 ? KeySplit::kHeldOut : KeySplit::kTrain;
    TrainSample s;
    s.ids.push_back(tok_.bos_id() >= 0 ? tok_.bos_id() : 0);
    s.mask.push_back(0.0f);
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    // The evaluation stream holds retrieval only, so that its token accuracy is answer accuracy.
    const double p_text = step < 0 ? 0.0 : mix_.p_text, p_copy = step < 0 ? 0.0 : mix_.p_copy;
    const double p_recall = step < 0 ? 0.0 : mix_.p_recall, p_lag = step < 0 ? 0.0 : mix_.p_lag;
    if (u < p_text) {
      append_text(rng, T - 1, 1.0f, &s);
    } else if (u < p_text + p_copy) {
      copy(rng, T, &s);
    } else if (u < p_text + p_copy + p_recall) {
      recall(rng, T, split, &s);
    } else if (u < p_text + p_copy + p_recall + p_lag) {
      lag(rng, T, &s);
    } else if (u < p_text + p_copy + p_recall + p_lag + mix_.p_passkey) {
      passkey(rng, T, &s);
    } else {
      longeval(rng, T, split, &s);
    }
    MOA_CHECK(int64_t(s.ids.size()) == T, "{} vs {}", s.ids.size(), T);
    s.mask.back() = 0.0f;
    return s;
  }

  std::string describe() const override {
    const std::string keys = mix_.word_keys ? fmt::format("one-token keys ({} train, {} held-out words)",
                                                          one_token_train_.size(), one_token_heldout_.size())
                                            : "word-pair keys";
    return fmt::format("retrieval mix (lines {}-{}, {} queries, passkey {}, copy {}, recall {} with {} and gaps {}, lag {}, "
                       "text {}; {} text tokens)",
                       mix_.lines_min, mix_.lines_max, mix_.queries, mix_.p_passkey, mix_.p_copy, mix_.p_recall, keys,
                       fmt::join(mix_.gaps, "+"), mix_.p_lag, mix_.p_text, text_.size());
  }

 private:
  // Appends `ids` with loss weight w on predicting each of them.
  static void append(const std::vector<int32_t>& ids, float w, TrainSample* s) {
    for (int32_t id : ids) {
      s->mask.back() = w;  // position t-1 predicts this token
      s->ids.push_back(id);
      s->mask.push_back(0.0f);
    }
  }
  void append_text(std::mt19937_64& rng, int64_t n, float w, TrainSample* s) const {
    if (n <= 0) return;
    const size_t start = size_t(rng() % uint64_t(text_.size() - size_t(n)));
    append(std::vector<int32_t>(text_.begin() + int64_t(start), text_.begin() + int64_t(start) + n), w, s);
  }

  // Induction warm-up: a random stretch of token ids, some filler, then the same
  // stretch again (loss on the repetition, whose first token nothing predicts). Lengths and gaps
  // are random: with a fixed offset the model learns "copy from 255 back" instead of matching
  // content, which is the circuit retrieval needs.
  void copy(std::mt19937_64& rng, int64_t T, TrainSample* s) const {
    const int64_t room = T - 1;
    const int64_t len = 8 + int64_t(rng() % uint64_t(std::max<int64_t>(1, room / 2 - 8)));
    const int64_t spare = room - 2 * len;
    const int64_t before = spare > 0 ? int64_t(rng() % uint64_t(spare + 1)) : 0;
    const int64_t gap = spare - before > 0 ? int64_t(rng() % uint64_t(spare - before + 1)) : 0;
    // Uniform random ids: a segment drawn from text (even shuffled) repeats its frequent tokens,
    // so a one-token match is ambiguous and the induction circuit gets almost no gradient (a run
    // of 600k tokens on shuffled text stayed at 6.5 nats; uniform ids are copied after ~150k).
    std::vector<int32_t> seg(static_cast<size_t>(len));
    for (auto& id : seg) id = random_id(rng);
    append_text(rng, before, mix_.text_weight, s);
    append(seg, 0.0f, s);
    append_text(rng, gap, mix_.text_weight, s);
    append({seg[0]}, 0.0f, s);
    append(std::vector<int32_t>(seg.begin() + 1, seg.end()), 1.0f, s);
    append_text(rng, T - int64_t(s->ids.size()), mix_.text_weight, s);
  }

  // Key-value recall without the LongEval header and question: the record's lines, then some of
  // them again in random order, loss on everything after each repeated key. The same lookup as
  // LongEval (match the key several tokens before '<', copy the digits after it) in a fraction of
  // the tokens, so its gradient is not diluted by a hundred tokens of fixed text. It provokes the
  // key-matching step that LongEval alone reached only after millions of tokens.
  void recall(std::mt19937_64& rng, int64_t T, KeySplit split, TrainSample* s) const {
    const int64_t lines = mix_.lines_min + int64_t(rng() % uint64_t(mix_.lines_max - mix_.lines_min + 1));
    LongEvalRecord r;
    if (mix_.word_keys) {
      // The key is then at a fixed offset before '<': the easiest form of the key lookup.
      const auto& pool = split == KeySplit::kHeldOut ? one_token_heldout_ : one_token_train_;
      std::set<size_t> used;
      while (int64_t(r.lines.size()) < lines) {
        const size_t w = size_t(rng() % pool.size());
        if (used.insert(w).second) r.lines.emplace_back(pool[w], int64_t(1 + rng() % 49999));
      }
    } else {
      r = make_longeval(rng, words_, lines, split);
    }
    std::vector<int64_t> order(static_cast<size_t>(lines));
    for (int64_t i = 0; i < lines; ++i) order[size_t(i)] = i;
    std::shuffle(order.begin(), order.end(), rng);
    const int64_t room = T - 1;
    const std::string tmpl = kRecallTemplates[mix_.gaps[size_t(rng() % mix_.gaps.size())]];
    auto after_key = [&](int64_t value) { return tmpl + std::to_string(value) + ">\n"; };
    for (const auto& [key, value] : r.lines) {
      auto ids = tok_.encode("line " + key + after_key(value), false);
      if (int64_t(s->ids.size() + ids.size()) > room) break;
      append(ids, 0.0f, s);
    }
    for (int64_t i = 0; i < std::min(lines, mix_.queries); ++i) {
      const auto& [key, value] = r.lines[size_t(order[size_t(i)])];
      // "line KEY" and the rest are tokenized apart: the pre-tokenizer splits at ':' anyway.
      auto head = tok_.encode("line " + key, false);
      auto tail = tok_.encode(after_key(value), false);
      if (int64_t(s->ids.size() + head.size() + tail.size()) > room) break;
      append(head, 0.0f, s);
      append(tail, 1.0f, s);
    }
    append_text(rng, T - int64_t(s->ids.size()), mix_.text_weight, s);
  }

  // Fixed-offset copying: a period of 2-8 tokens drawn from only 3 ids, repeated. A one-token
  // match is ambiguous there, so induction cannot answer; a head that reads the token exactly
  // `period` back can. Recall with LongEval's 5-token template needs such a head (the key sits 5
  // tokens before '<'); chains of previous-token heads reach only as far as the model has layers,
  // and a 4-layer model that answered with 3-token templates stayed at chance with 4 tokens.
  void lag(std::mt19937_64& rng, int64_t T, TrainSample* s) const {
    const int64_t period = 2 + int64_t(rng() % 7);
    int32_t alphabet[3];
    for (auto& a : alphabet) a = random_id(rng);
    std::vector<int32_t> cycle(static_cast<size_t>(period));
    for (auto& c : cycle) c = alphabet[rng() % 3];
    std::vector<int32_t> seq;
    for (int64_t t = 0; int64_t(seq.size()) < T - 1; ++t) seq.push_back(cycle[size_t(t % period)]);
    append(std::vector<int32_t>(seq.begin(), seq.begin() + period), 0.0f, s);
    append(std::vector<int32_t>(seq.begin() + period, seq.end()), 1.0f, s);
  }

  // A token id that is neither BOS nor EOS, uniformly.
  int32_t random_id(std::mt19937_64& rng) const {
    int32_t id;
    do {
      id = int32_t(rng() % uint64_t(tok_.vocab_size()));
    } while (std::find(special_ids_.begin(), special_ids_.end(), id) != special_ids_.end());
    return id;
  }

  void passkey(std::mt19937_64& rng, int64_t T, TrainSample* s) const {
    // About 26 tokens per filler repeat; shrink until it fits.
    int64_t repeats = std::max<int64_t>(1, int64_t(rng() % uint64_t(std::max<int64_t>(1, (T - 80) / 26))));
    const double depth = std::uniform_real_distribution<double>(0, 1)(rng);
    for (;;) {
      std::mt19937_64 r2(rng());
      PasskeyRecord p = make_passkey(r2, repeats, depth);
      auto prompt = tok_.encode(p.prompt, false);
      auto answer = tok_.encode(p.answer(), false);
      const int64_t used = 1 + int64_t(prompt.size() + answer.size());
      if (used <= T || repeats == 0) {
        if (used > T) break;  // T too small for any passkey: fall back to text
        append(prompt, mix_.text_weight, s);
        append(answer, 1.0f, s);
        append_text(rng, T - int64_t(s->ids.size()), mix_.text_weight, s);
        return;
      }
      repeats = repeats * 3 / 4;
    }
    append_text(rng, T - int64_t(s->ids.size()), 1.0f, s);
  }

  void longeval(std::mt19937_64& rng, int64_t T, KeySplit split, TrainSample* s) const {
    // ~18 tokens per line and ~40 per question + answer; the exact fit is checked below.
    const int64_t fit = std::max<int64_t>(1, (T - 1 - header_tokens_ - 40 * std::min<int64_t>(mix_.queries, 4)) / 18);
    const int64_t hi = std::min(mix_.lines_max, fit), lo = std::min(mix_.lines_min, hi);
    int64_t lines = lo + int64_t(rng() % uint64_t(hi - lo + 1));
    const bool text_first = rng() % 2 == 0;
    for (;;) {
      LongEvalRecord r = make_longeval(rng, words_, lines, split);
      std::vector<std::vector<int32_t>> parts;  // prompt, answer, question, answer, ...
      parts.push_back(tok_.encode(r.prompt, false));
      parts.push_back(tok_.encode(r.answer(), false));
      int64_t used = 1 + int64_t(parts[0].size() + parts[1].size());
      // Further questions on other lines, in random order, while they fit.
      std::vector<int64_t> order(static_cast<size_t>(lines));
      for (int64_t i = 0; i < lines; ++i) order[size_t(i)] = i;
      std::shuffle(order.begin(), order.end(), rng);
      for (int64_t i = 0, asked = 1; i < lines && asked < mix_.queries; ++i) {
        const auto& [key, value] = r.lines[size_t(order[size_t(i)])];
        if (key == r.key) continue;
        auto q = tok_.encode(longeval_question(key), false);
        auto a = tok_.encode("\n" + longeval_line(key, value), false);
        if (used + int64_t(q.size() + a.size()) > T) break;
        used += int64_t(q.size() + a.size());
        parts.push_back(std::move(q));
        parts.push_back(std::move(a));
        ++asked;
      }
      if (used > T) {
        if (lines == 1) {  // T is too short for LongEval's header: header-less recall instead
          recall(rng, T, split, s);
          return;
        }
        lines = std::max<int64_t>(1, lines * 7 / 8);
        continue;
      }
      const int64_t filler = T - used;
      if (text_first) append_text(rng, filler, mix_.text_weight, s);
      for (size_t i = 0; i < parts.size(); ++i) append(parts[i], i % 2 == 1 ? 1.0f : 0.0f, s);
      if (!text_first) append_text(rng, filler, mix_.text_weight, s);
      return;
    }
  }

  Mix mix_;
  const Tokenizer& tok_;
  WordLists words_;
  std::vector<int32_t> text_;
  int64_t header_tokens_ = 0;
  std::vector<std::string> one_token_train_, one_token_heldout_;
  std::vector<int32_t> special_ids_;  // BOS and EOS: never drawn by random_id
};

}  // namespace

std::unique_ptr<TrainData> make_retrieval_data(const std::string& spec, const Tokenizer& tok) {
  return std::make_unique<RetrievalData>(parse_mix(spec), tok);
}

}  // namespace moa
