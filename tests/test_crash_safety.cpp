// A process killed with SIGKILL in the middle of writing a file (core/file_io.h's atomic write,
// with the MOA_TEST_KILL_AT_WRITE fault hook) leaves no file under the final name, and the
// rerun produces the same bytes as an uninterrupted run and removes the killed run's temp file.
// For commands that write several files (train's checkpoints) every write in turn is the one
// killed, and the resumed run must still end with the uninterrupted run's bytes.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "moa/core/file_io.h"
#include "moa/gguf/gguf.h"
#include "moa/model/model.h"
#include "moa/tokenizer/tokenizer.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;

const char* kTrainConfig = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 32,
  "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
  "vocab_size": 300, "max_position_embeddings": 256, "tie_word_embeddings": true})";

// Every temp file (name.tmp.pid) anywhere under `dir`.
std::vector<fs::path> temps_under(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path());
  }
  return out;
}

std::vector<fs::path> temps_of(const fs::path& file) {
  std::vector<fs::path> out;
  const std::string prefix = file.filename().string() + ".tmp.";
  for (const auto& e : fs::directory_iterator(file.parent_path())) {
    if (e.path().filename().string().starts_with(prefix)) out.push_back(e.path());
  }
  return out;
}

test::RunResult run_killed_at_write(int n, const std::string& args) {
  ::setenv("MOA_TEST_KILL_AT_WRITE", std::to_string(n).c_str(), 1);
  test::RunResult r = test::run_moa(args);
  ::unsetenv("MOA_TEST_KILL_AT_WRITE");
  return r;
}

TEST(CrashSafety, ConvertKilledMidWrite) {
  const fs::path tiny = fs::path(MOA_TEST_DATA).parent_path().parent_path() / "models" / "moa-tiny";
  const fs::path ref = test::temp_dir("crash_convert_ref") / "tiny.gguf";
  const fs::path out = test::temp_dir("crash_convert") / "tiny.gguf";
  const std::string args = "convert -m " + tiny.string() + " --type q8_0 --out ";

  ASSERT_EQ(test::run_moa(args + ref.string()).status, 0);

  const test::RunResult killed = run_killed_at_write(1, args + out.string());
  EXPECT_EQ(killed.status, 128 + 9) << killed.err;
  EXPECT_FALSE(fs::exists(out));
  const std::vector<fs::path> left = temps_of(out);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_GT(fs::file_size(left[0]), 0u);
  EXPECT_LT(fs::file_size(left[0]), fs::file_size(ref));

  const test::RunResult rerun = test::run_moa(args + out.string());
  ASSERT_EQ(rerun.status, 0) << rerun.err;
  EXPECT_TRUE(temps_of(out).empty());
  EXPECT_EQ(read_text(out), read_text(ref));
  GgufFile g(out);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
}

TEST(CrashSafety, TrainKilledAtEachWriteResumes) {
  const fs::path dir = test::temp_dir("crash_train");
  write_text_atomic(dir / "config.json", kTrainConfig);
  const std::string args = "train --config " + (dir / "config.json").string() +
                           " --data copy --seq 32 --batch 2 --lr 3e-3 --seed 5 --threads 1"
                           " --steps 3 --save-every 1 --out ";
  ASSERT_EQ(test::run_moa(args + (dir / "ref").string()).status, 0);
  const std::string want = read_text(dir / "ref" / "model.safetensors");

  int killed_runs = 0;
  for (int n = 1; n < 64; ++n) {
    const fs::path out = dir / ("k" + std::to_string(n));
    const test::RunResult killed = run_killed_at_write(n, args + out.string());
    if (killed.status == 0) break;  // the run has fewer than n atomic writes
    ASSERT_EQ(killed.status, 128 + 9) << "write " << n << ": " << killed.err;
    ++killed_runs;
    // A kill before the first state file commits leaves nothing to resume: start again.
    const bool resume = fs::exists(out / "train_state.safetensors");
    const test::RunResult rerun = test::run_moa(args + out.string() + (resume ? " --resume" : ""));
    ASSERT_EQ(rerun.status, 0) << "write " << n << " resume " << resume << ": " << rerun.err;
    EXPECT_EQ(read_text(out / "model.safetensors"), want) << "killed at write " << n;
    EXPECT_EQ(read_text(out / "train_step.txt"), "3\n") << "killed at write " << n;
    EXPECT_TRUE(temps_under(out).empty()) << "killed at write " << n;
  }
  // tokenizer, state, weights, config and step for each of 3 checkpoints, plus the tokenizer
  // copy read at start: the loop must have reached past the last checkpoint.
  EXPECT_GE(killed_runs, 13);
}

// A tiny random model (context 1024) with a byte-level tokenizer, as test_validate's compress test.
fs::path tiny_random_model(const fs::path& dir) {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 8;
  c.hidden = 32;
  c.intermediate = 64;
  c.vocab = kByteLevelVocabSize;
  c.max_position = 1024;
  c.rms_eps = 1e-5;
  const fs::path m = dir / "tiny";
  Model::random(c, 3, 0.25f).save(m, DType::kF32);
  write_text_atomic(m / "tokenizer.json", make_byte_level_tokenizer_json());
  return m;
}

// `moa compress` killed at each of its atomic writes in turn (calibration set, each profile's
// partial and final file, the plans, the validation, the plan), then re-run with the same work
// directory: every run ends with the uninterrupted run's plan, reusing what committed.
TEST(CrashSafety, CompressKilledAtEachWriteResumes) {
  const fs::path dir = test::temp_dir("crash_compress");
  const fs::path model = tiny_random_model(dir);
  auto args = [&](const std::string& tag) {
    return "compress -m " + model.string() + " --density 0.5 --work " + (dir / tag / "work").string() +
           " --out " + (dir / tag / "plan.json").string() +
           " --samples 2 --profile-lengths 640,1024 --validation-length 768 --threads 1 --words " +
           (fs::path(MOA_REF_DATA).parent_path() / "words").string();
  };
  const test::RunResult ref = test::run_moa(args("ref"));
  ASSERT_EQ(ref.status, 0) << ref.err;
  const std::string want = read_text(dir / "ref" / "plan.json");

  int killed_runs = 0;
  for (int n = 1; n < 200; ++n) {
    const std::string tag = "k" + std::to_string(n);
    const test::RunResult killed = run_killed_at_write(n, args(tag));
    if (killed.status == 0) break;
    ASSERT_EQ(killed.status, 128 + 9) << "write " << n << ": " << killed.err;
    ++killed_runs;
    EXPECT_FALSE(fs::exists(dir / tag / "plan.json")) << "write " << n;
    const test::RunResult rerun = test::run_moa(args(tag));
    ASSERT_EQ(rerun.status, 0) << "write " << n << ": " << rerun.err;
    EXPECT_EQ(read_text(dir / tag / "plan.json"), want) << "killed at write " << n;
    EXPECT_TRUE(temps_under(dir / tag).empty()) << "killed at write " << n;
  }
  EXPECT_GE(killed_runs, 6);
  std::fprintf(stderr, "compress killed at each of %d writes\n", killed_runs);
}

}  // namespace
}  // namespace moa
