// Calibration JSONL (include/moa/data/calib.h): both record forms, one clear error per bad line, and
// the token layout and loss mask of a sample.
#include <gtest/gtest.h>

#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/core/jsonl.h"
#include "moa/data/calib.h"
#include "moa/tokenizer/tokenizer.h"
#include "test_util.h"

namespace moa {
namespace {

std::string error_of(const std::string& text) {
  try {
    parse_calib(text, "d.jsonl");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Calib, ParsesAnswersAndLongEvalRecords) {
  auto v = parse_calib(
      "{\"prompt\": \"p1\", \"answer\": \"a1\", \"prompt_tokens\": 3, \"length\": 5}\n"
      "\n"
      "{\"random_idx\": [\"x\", 1], \"expected_number\": 49934, \"num_lines\": 70, \"prompt\": "
      "\"p2\"}\r\n"
      "{\"prompt\": \"\", \"answer\": \"b\"}",
      "d.jsonl");
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].prompt, "p1");
  EXPECT_EQ(v[0].answer, "a1");
  EXPECT_EQ(v[1].prompt, "p2");
  EXPECT_EQ(v[1].answer, "49934");
  EXPECT_EQ(v[2].answer, "b");
}

TEST(Calib, ReferenceLongEvalFileLoads) {
  auto v = load_calib(std::string(MOA_REF_DATA) + "/longeval_70_lines.jsonl");
  EXPECT_EQ(v.size(), 20u);
  EXPECT_EQ(v[0].answer, "49934");
}

TEST(Calib, OneErrorPerBadLineNamingLineAndField) {
  const std::string ok = "{\"prompt\": \"p\", \"answer\": \"a\"}\n";
  struct Case {
    std::string text, want;
  } cases[] = {
      {ok + "not json\n", "d.jsonl:2: not JSON"},
      {ok + ok + "[1, 2]\n", "d.jsonl:3: is an array, expected a JSON object"},
      {"{\"answer\": \"a\"}\n", "d.jsonl:1: field 'prompt' is missing"},
      {"{\"prompt\": 3, \"answer\": \"a\"}\n",
       "d.jsonl:1: field 'prompt' is an integer, expected a string"},
      {"{\"prompt\": \"p\", \"answer\": 7}\n",
       "d.jsonl:1: field 'answer' is an integer, expected a string"},
      {"{\"prompt\": \"p\"}\n", "d.jsonl:1: field 'answer' is missing"},
      {"{\"prompt\": \"p\", \"expected_number\": \"7\"}\n",
       "d.jsonl:1: field 'expected_number' is a string, expected an integer"},
      {"{\"prompt\": \"p\", \"answer\": \"\"}\n", "d.jsonl:1: field 'answer' is empty"},
      {"\n  \n", "d.jsonl: no samples"},
  };
  for (const Case& c : cases) {
    const std::string e = error_of(c.text);
    EXPECT_NE(e.find(c.want), std::string::npos) << "got: " << e << "\nwant: " << c.want;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  EXPECT_THROW(load_calib("/nonexistent/calib.jsonl"), InputError);
}

// A line longer than kMaxJsonlLineBytes is refused before it is copied or parsed (the reliability
// issue: a JSONL line of gigabytes). The file is sparse: its 64 MiB of zeros take no disk.
TEST(Calib, RefusesAGiantLineBeforeReadingIt) {
  const std::filesystem::path dir = test::temp_dir("calib-giant");
  const std::filesystem::path f = dir / "giant.jsonl";
  const std::string first = "{\"prompt\": \"p\", \"answer\": \"a\"}\n";
  write_text_atomic(f, first);
  const uint64_t size = first.size() + kMaxJsonlLineBytes + 10;
  std::filesystem::resize_file(f, size);
  test::expect_input_error(f, [&] { load_calib(f); },
                           {"giant.jsonl:2: line is longer than 67108864 bytes (64 MiB",
                            fmt::format("in a file of {} bytes", size)});
  // The same limit holds for every JSONL reader.
  test::expect_input_error(f, [&] { load_prompts_jsonl(f); }, {"giant.jsonl:2: line is longer"});
  std::filesystem::remove_all(dir);
}

TEST(Calib, TokenizeMasksExactlyTheAnswer) {
  auto dir = test::temp_dir("calib_tok");
  write_text_atomic(dir / "tokenizer.json", make_byte_level_tokenizer_json());
  auto tok = Tokenizer::load(dir / "tokenizer.json");
  TokenizedSample s = tokenize_sample(*tok, {"abc", "12"});
  // BOS a b c 1 2: positions 3 (predicts '1') and 4 (predicts '2') carry weight
  ASSERT_EQ(s.ids, (std::vector<int32_t>{kByteLevelBosId, 'a', 'b', 'c', '1', '2'}));
  EXPECT_EQ(s.prompt_tokens, 4);
  EXPECT_EQ(s.answer_tokens(), 2);
  EXPECT_EQ(s.loss_mask, (std::vector<float>{0, 0, 0, 1, 1, 0}));
  EXPECT_EQ(s.scored_tokens(), 2);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace moa
