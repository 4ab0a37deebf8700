// Task generators, the BPE trainer, the retrieval training mix and retrieval evaluation.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <regex>
#include <set>

#include "moa/core/error.h"
#include "moa/eval/eval.h"
#include "moa/core/file_io.h"
#include "moa/model/model.h"
#include "moa/attention/plan.h"
#include "moa/attention/spans.h"
#include "moa/data/tasks.h"
#include "moa/tokenizer/tokenizer.h"
#include "moa/tokenizer/tokenizer_train.h"
#include "moa/train/train_data.h"
#include "test_util.h"

namespace moa {
namespace {

const std::filesystem::path kWords = std::filesystem::path(MOA_REF_DATA) / ".." / "words";
const std::filesystem::path kRefJsonl = std::filesystem::path(MOA_REF_DATA) / "longeval_70_lines.jsonl";

TEST(LongEval, RebuildsTheReferencePromptsByteForByte) {
  // Every reference prompt is header + its lines + footer + question: parse the lines back out
  // and rebuild the prompt with our pieces.
  std::ifstream in(kRefJsonl);
  std::string line;
  int records = 0;
  // Reference keys may hold spaces and apostrophes ("tall-dune buggy", "tam-o'-shanter").
  const std::regex re("line ([^:\n]+): REGISTER_CONTENT is <([0-9]+)>\n");
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    const std::string prompt = j["prompt"];
    std::string rebuilt = longeval_header();
    int n = 0;
    for (std::sregex_iterator it(prompt.begin(), prompt.end(), re), end; it != end; ++it, ++n) {
      rebuilt += longeval_line((*it)[1], std::stoll((*it)[2]));
    }
    const std::string key = j["random_idx"][0];
    rebuilt += kLongEvalFooter + longeval_question(key);
    EXPECT_EQ(rebuilt, prompt);
    EXPECT_EQ(n, j["num_lines"].get<int>());
    EXPECT_EQ(longeval_line(key, j["expected_number"].get<int64_t>()), j["correct_line"].get<std::string>());
    ++records;
  }
  EXPECT_EQ(records, 20);
}

TEST(LongEval, RecordsAreConsistentAndSplitsDisjoint) {
  WordLists w = WordLists::load(kWords);
  std::mt19937_64 rng(7);
  for (auto split : {KeySplit::kTrain, KeySplit::kHeldOut}) {
    for (int i = 0; i < 50; ++i) {
      LongEvalRecord r = make_longeval(rng, w, 1 + i % 9, split);
      EXPECT_EQ(int64_t(r.lines.size()), r.num_lines);
      EXPECT_EQ(r.lines[size_t(r.line_index)].first, r.key);
      EXPECT_EQ(r.lines[size_t(r.line_index)].second, r.expected_number);
      EXPECT_GE(r.expected_number, 1);
      EXPECT_LE(r.expected_number, 49999);
      EXPECT_NE(r.prompt.find(r.correct_line()), std::string::npos);
      for (const auto& [k, v] : r.lines) {
        auto dash = k.find('-');
        ASSERT_NE(dash, std::string::npos);
        const bool held = is_held_out_word(k.substr(0, dash)) && is_held_out_word(k.substr(dash + 1));
        const bool none = !is_held_out_word(k.substr(0, dash)) && !is_held_out_word(k.substr(dash + 1));
        EXPECT_TRUE(split == KeySplit::kHeldOut ? held : none) << k;
      }
    }
  }
}

TEST(LongEval, FirstInteger) {
  EXPECT_EQ(first_integer("\nline a-b: REGISTER_CONTENT is <49934>\n"), 49934);
  EXPECT_EQ(first_integer("no digits"), -1);
  EXPECT_EQ(first_integer("x 7 8"), 7);
}

TEST(Passkey, HidesTheKeyAtTheDepth) {
  std::mt19937_64 rng(1);
  auto a = make_passkey(rng, 10, 0.0), b = make_passkey(rng, 10, 1.0);
  const std::string ka = std::to_string(a.passkey);
  EXPECT_LT(a.prompt.find(ka), a.prompt.find("The grass"));
  EXPECT_GT(b.prompt.find(std::to_string(b.passkey)), b.prompt.rfind("The grass"));
  EXPECT_EQ(first_integer(a.answer()), a.passkey);
}

std::string small_tokenizer(int32_t vocab) {
  std::vector<std::string> texts;
  std::mt19937_64 rng(3);
  WordLists w = WordLists::load(kWords);
  for (int i = 0; i < 200; ++i) {
    auto r = make_longeval(rng, w, 3, KeySplit::kTrain);
    texts.push_back(r.prompt + r.answer());
  }
  texts.push_back(read_text(std::filesystem::path(MOA_REF_DATA) / "README.md"));
  BpeTrainOptions o;
  o.vocab_size = vocab;
  return train_bpe_tokenizer(texts, o);
}

TEST(BpeTrainer, LoadsRoundTripsAndKeepsDigitsApart) {
  const std::string j = small_tokenizer(600);
  EXPECT_EQ(j, small_tokenizer(600)) << "training must be deterministic";
  auto dir = test::temp_dir("bpe");
  write_text_atomic(dir / "tokenizer.json", j);
  auto tok = Tokenizer::load(dir / "tokenizer.json");
  EXPECT_EQ(tok->vocab_size(), 600);
  EXPECT_EQ(tok->bos_id(), kByteLevelBosId);
  const std::string texts[] = {"line wicked-feast: REGISTER_CONTENT is <49934>\n",
                               "Unseen words: zymurgy, Ångström, 東京, emoji \xF0\x9F\x98\x80 and\ttabs\r\n",
                               ""};
  for (const auto& t : texts) EXPECT_EQ(tok->decode(tok->encode(t, false)), t);
  auto ids = tok->encode("<1234567890>", false);
  int digits = 0;
  for (int32_t id : ids) {
    std::string s = tok->token_bytes(id, -1);
    bool has_digit = s.find_first_of("0123456789") != std::string::npos;
    if (has_digit) {
      EXPECT_EQ(s.size(), 1u) << "digit token '" << s << "'";
      ++digits;
    }
  }
  EXPECT_EQ(digits, 10);
  // The template is learned: a line costs far fewer tokens than bytes.
  EXPECT_LT(tok->encode(": REGISTER_CONTENT is <", false).size(), 8u);
  auto with_bos = tok->encode("hi", true);
  ASSERT_FALSE(with_bos.empty());
  EXPECT_EQ(with_bos[0], kByteLevelBosId);
}

// A tokenizer and a text file for the retrieval mix; spec(rest) is "retrieval:text=..,words=..,rest".
struct MixSetup {
  std::filesystem::path dir;
  std::unique_ptr<Tokenizer> tok;
  std::string spec(const std::string& rest) const {
    return "retrieval:text=" + (dir / "text.txt").string() + ",words=" + kWords.string() + "," + rest;
  }
};

MixSetup mix_setup(const std::string& name) {
  MixSetup m;
  m.dir = test::temp_dir(name);
  write_text_atomic(m.dir / "tokenizer.json", small_tokenizer(700));
  m.tok = Tokenizer::load(m.dir / "tokenizer.json");
  // Text filler: the reference README repeated (enough tokens for windows).
  std::string text;
  for (int i = 0; i < 40; ++i) text += read_text(std::filesystem::path(MOA_REF_DATA) / "README.md");
  write_text_atomic(m.dir / "text.txt", text);
  return m;
}

TEST(RetrievalData, SamplesAreExactAndDeterministic) {
  MixSetup m = mix_setup("retrieval_data");
  auto& tok = m.tok;
  const std::string spec = m.spec("lines=2-12,queries=4,passkey=0.2,textonly=0.1");
  auto data = TrainData::from_spec(spec, *tok, 700);
  int answers_seen = 0;
  for (int64_t idx = 0; idx < 30; ++idx) {
    for (int64_t T : {256, 512}) {
      TrainSample s = data->sample(5, 3, idx, T);
      ASSERT_EQ(int64_t(s.ids.size()), T);
      ASSERT_EQ(s.mask.size(), s.ids.size());
      EXPECT_EQ(s.ids[0], tok->bos_id());
      EXPECT_EQ(s.mask.back(), 0.0f);
      TrainSample again = data->sample(5, 3, idx, T);
      EXPECT_EQ(s.ids, again.ids);
      EXPECT_EQ(s.mask, again.mask);
      // Each run of weight-1 targets decodes to one answer: a restated line or a passkey.
      for (size_t t = 0; t + 1 < s.ids.size();) {
        if (s.mask[t] != 1.0f) {
          ++t;
          continue;
        }
        std::vector<int32_t> run;
        while (t + 1 < s.ids.size() && s.mask[t] == 1.0f) run.push_back(s.ids[++t]);
        const std::string a = tok->decode(run);
        const bool line = std::regex_match(a, std::regex("\nline [a-z]+-[a-z]+: REGISTER_CONTENT is <[0-9]+>\n"));
        const bool key = std::regex_match(a, std::regex(" [0-9]{5}\\."));
        const bool text_only = a.find("REGISTER") == std::string::npos && a.find("pass key") == std::string::npos;
        EXPECT_TRUE(line || key || text_only) << "'" << a << "'";
        answers_seen += line || key;
      }
    }
  }
  EXPECT_GT(answers_seen, 30);
  EXPECT_THROW(TrainData::from_spec("retrieval:lines=3", *tok, 700), InputError);
  EXPECT_THROW(TrainData::from_spec("retrieval:text=x,bogus=1", *tok, 700), InputError);
}

// Induction copies and header-less key recall: every supervised run is predictable from earlier
// in the same sample (a repeated segment, or the value of a key stated before).
TEST(RetrievalData, CopiesAndRecallsArePredictableFromTheContext) {
  MixSetup m = mix_setup("retrieval_recall");
  auto& tok = m.tok;
  const std::string spec = m.spec("lines=2-4,queries=3,copy=0.5,recall=0.5,passkey=0,textonly=0");
  auto data = TrainData::from_spec(spec, *tok, 700);
  EXPECT_THROW(TrainData::from_spec(spec + ",gap=5", *tok, 700), InputError);
  EXPECT_THROW(TrainData::from_spec(spec + ",gap=3-2", *tok, 700), InputError);
  EXPECT_NO_THROW(TrainData::from_spec(spec + ",gap=2-4", *tok, 700));
  EXPECT_NO_THROW(TrainData::from_spec(spec + ",gap=0+1+2+4", *tok, 700));
  EXPECT_THROW(TrainData::from_spec(spec + ",gap=1+7", *tok, 700), InputError);
  // Too short for LongEval's header (the trainer's held-out stream at 80 tokens): recall instead.
  auto longeval_only = TrainData::from_spec(m.spec("lines=1-4,passkey=0,textonly=0"), *tok, 700);
  TrainSample short_eval = longeval_only->sample(3, -1, 0, 80);
  EXPECT_EQ(short_eval.ids.size(), 80u);
  EXPECT_TRUE(std::regex_search(tok->decode(short_eval.ids), std::regex("line [a-z]+-[a-z]+[: ].*<[0-9]+>\n")));
  // Lag samples: periodic after the first period, all of it supervised, from at most 3 ids.
  auto lag = TrainData::from_spec(m.spec("lag=1,passkey=0,textonly=0"), *tok, 700);
  for (int64_t idx = 0; idx < 10; ++idx) {
    TrainSample s = lag->sample(3, 1, idx, 64);
    ASSERT_EQ(s.ids.size(), 64u);
    std::set<int32_t> ids(s.ids.begin() + 1, s.ids.end());
    EXPECT_LE(ids.size(), 3u);
    int64_t first = 0;
    while (s.mask[size_t(first)] == 0.0f) ++first;  // the last unsupervised position
    const int64_t period = first;                   // BOS + one period precede the supervision
    ASSERT_GE(period, 2);
    ASSERT_LE(period, 8);
    for (size_t t = size_t(first) + 1; t < s.ids.size(); ++t) EXPECT_EQ(s.ids[t], s.ids[t - size_t(period)]);
    for (size_t t = size_t(first); t + 1 < s.ids.size(); ++t) EXPECT_EQ(s.mask[t], 1.0f);
  }
  EXPECT_THROW(TrainData::from_spec(spec + ",keys=triple", *tok, 700), InputError);
  int recalls = 0, copies = 0;
  for (int64_t idx = 0; idx < 40; ++idx) {
    const int64_t T = 128;
    TrainSample s = data->sample(9, 2, idx, T);
    ASSERT_EQ(int64_t(s.ids.size()), T);
    const std::string all = tok->decode(s.ids);
    for (size_t t = 0; t + 1 < s.ids.size();) {
      if (s.mask[t] != 1.0f) {
        ++t;
        continue;
      }
      const size_t begin = t + 1;
      std::vector<int32_t> run;
      while (t + 1 < s.ids.size() && s.mask[t] == 1.0f) run.push_back(s.ids[++t]);
      const std::string a = tok->decode(run);
      std::smatch m;
      // Recall runs use one of the curriculum's templates between key and value.
      if (std::regex_match(a, m, std::regex("(: REGISTER_CONTENT is <|: REGISTER is <|: is <|: <| <)([0-9]+)>\n"))) {
        // The key is what precedes the run; its value must have been stated earlier.
        const std::string before = tok->decode(std::vector<int32_t>(s.ids.begin(), s.ids.begin() + int64_t(begin)));
        std::smatch k;
        ASSERT_TRUE(std::regex_search(before, k, std::regex("line ([a-z]+(-[a-z]+)?)$"))) << before;
        EXPECT_NE(before.find("line " + k[1].str() + m[1].str() + m[2].str() + ">\n"),
                  std::string::npos)
            << "value of " << k[1] << " not stated before: " << all;
        ++recalls;
      } else {
        // A copy: the run (with the unsupervised token before it) occurred earlier as a whole.
        std::vector<int32_t> seg(s.ids.begin() + int64_t(begin) - 1, s.ids.begin() + int64_t(t) + 1);
        auto it = std::search(s.ids.begin(), s.ids.begin() + int64_t(begin) - 1, seg.begin(), seg.end());
        EXPECT_NE(it, s.ids.begin() + int64_t(begin) - 1) << "copy run '" << a << "' not seen before";
        ++copies;
      }
    }
  }
  EXPECT_GT(recalls, 20);
  EXPECT_GT(copies, 10);
}

TEST(EvalRetrieval, ReadsTheReferenceFileAndRejectsBadLines) {
  auto items = load_retrieval_jsonl(kRefJsonl);
  ASSERT_EQ(items.size(), 20u);
  for (const auto& it : items) {
    EXPECT_EQ(it.num_lines, 70);
    EXPECT_GE(it.depth, 0.0);
    EXPECT_LE(it.depth, 1.0);
  }
  auto dir = test::temp_dir("eval_bad");
  write_text_atomic(dir / "a.jsonl", "{\"prompt\": \"x\"}\n");
  try {
    load_retrieval_jsonl(dir / "a.jsonl");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("a.jsonl:1: field 'expected_number'"), std::string::npos) << e.what();
  }
  write_text_atomic(dir / "b.jsonl", "not json\n");
  EXPECT_THROW(load_retrieval_jsonl(dir / "b.jsonl"), InputError);
}

TEST(EvalRetrieval, CoveringPlanAnswersExactlyAsDense) {
  ModelConfig c;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 16;
  c.hidden = 64;
  c.intermediate = 128;
  c.vocab = kByteLevelVocabSize;
  c.max_position = 4096;
  Model m = Model::random(c, 11);
  auto dir = test::temp_dir("eval_model");
  write_text_atomic(dir / "tokenizer.json", make_byte_level_tokenizer_json());
  auto tok = Tokenizer::load(dir / "tokenizer.json");
  std::mt19937_64 rng(2);
  WordLists w = WordLists::load(kWords);
  std::vector<RetrievalItem> items;
  for (int i = 0; i < 3; ++i) {
    auto r = make_longeval(rng, w, 4, KeySplit::kHeldOut);
    items.push_back({r.prompt, r.expected_number, 4, 0.5});
  }
  auto dense = eval_retrieval(m, *tok, items, 8, [&](int64_t n) {
    return AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, n);
  });
  Plan cover = Plan::dense(c.layers, c.heads);
  auto planned = eval_retrieval(m, *tok, items, 8, [&](int64_t n) { return spec_from_plan(cover, c, n); });
  EXPECT_EQ(dense.answers, planned.answers);
  EXPECT_EQ(dense.n, 3);
  auto j = dense.to_json();
  EXPECT_TRUE(j.contains("by_lines"));
  EXPECT_TRUE(j["by_lines"].contains("4"));
}

}  // namespace
}  // namespace moa
