// Data parallelism under MPI (core/dist.h): `mpirun -np 2` gives the bytes of one process for a
// profile (also when interrupted, or when rank 0 dies mid-checkpoint, and resumed) and the JSON
// of one process for the evaluations; commands that do not split their work refuse to run
// under MPI. Skipped when the build has no MPI or mpirun is missing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "moa/core/dist.h"
#include "moa/core/file_io.h"
#include "moa/attention/plan.h"
#include "moa/model/model.h"
#include "moa/tokenizer/tokenizer.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;

const fs::path kRoot = fs::path(MOA_TEST_DATA).parent_path().parent_path();
const std::string kModel = (kRoot / "models" / "moa-tiny").string();
const std::string kWords = (kRoot / "data" / "words").string();

class Mpi : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!dist::built_with_mpi()) GTEST_SKIP() << "built without MPI (MOA_MPI off)";
    if (std::system("command -v mpirun >/dev/null 2>&1") != 0) GTEST_SKIP() << "no mpirun";
    // Open MPI refuses root unless told; CI runs as root.
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    dir_ = test::temp_dir("mpi");
  }
  static test::RunResult mpi(int np, const std::string& args) {
    return test::run_shell("mpirun --oversubscribe -np " + std::to_string(np) + " " + MOA_BIN +
                           " " + args);
  }
  // A calibration set of 7 prompts at 512 tokens (an odd count: the last round has one sample).
  std::string calib() {
    const std::string out = (dir_ / "calib.jsonl").string();
    const test::RunResult r = test::run_moa("data calib -m " + kModel +
                                            " --lengths 512 --samples 7 --threads 1 --words " +
                                            kWords + " --out " + out);
    EXPECT_EQ(r.status, 0) << r.err;
    return out;
  }
  fs::path dir_;
};

TEST_F(Mpi, ProfileHasTheBytesOfOneProcess) {
  const std::string data = calib();
  auto args = [&](const std::string& out) {
    return "profile -m " + kModel + " --data " + data + " --length 512 --threads 1 --json --out " +
           (dir_ / out).string();
  };
  const test::RunResult one = test::run_moa(args("one.safetensors"));
  ASSERT_EQ(one.status, 0) << one.err;
  const test::RunResult two = mpi(2, args("two.safetensors"));
  ASSERT_EQ(two.status, 0) << two.err;
  EXPECT_EQ(read_text(dir_ / "one.safetensors"), read_text(dir_ / "two.safetensors"));
  // Rank 0 alone prints: one JSON object, as from one process (its timing fields aside).
  auto j1 = nlohmann::json::parse(one.out), j2 = nlohmann::json::parse(two.out);
  for (auto* j : {&j1, &j2}) {
    j->erase("seconds");
    j->erase("samples_per_s");
    j->erase("out");
  }
  EXPECT_EQ(j1, j2);

  // Interrupted after 3 samples (checkpoints every 2), then resumed, both on 2 ranks.
  const test::RunResult stopped = mpi(2, args("resumed.safetensors") + " --stop-after 3 --checkpoint-every 2");
  ASSERT_EQ(stopped.status, 0) << stopped.err;
  EXPECT_FALSE(fs::exists(dir_ / "resumed.safetensors"));
  EXPECT_TRUE(fs::exists(dir_ / "resumed.partial.safetensors"));
  const test::RunResult resumed = mpi(2, args("resumed.safetensors") + " --checkpoint-every 2");
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_EQ(nlohmann::json::parse(resumed.out)["resumed"], 3);
  EXPECT_EQ(read_text(dir_ / "one.safetensors"), read_text(dir_ / "resumed.safetensors"));

  // Rank 0 killed (SIGKILL) in the middle of its second checkpoint write: the job ends, and a
  // rerun on 2 ranks resumes from the first checkpoint to the same bytes.
  ::setenv("MOA_TEST_KILL_AT_WRITE", "2", 1);
  const test::RunResult killed = mpi(2, args("killed.safetensors") + " --checkpoint-every 2");
  ::unsetenv("MOA_TEST_KILL_AT_WRITE");
  EXPECT_NE(killed.status, 0);
  EXPECT_FALSE(fs::exists(dir_ / "killed.safetensors"));
  const test::RunResult rerun = mpi(2, args("killed.safetensors") + " --checkpoint-every 2");
  ASSERT_EQ(rerun.status, 0) << rerun.err;
  EXPECT_EQ(nlohmann::json::parse(rerun.out)["resumed"], 2);
  EXPECT_EQ(read_text(dir_ / "one.safetensors"), read_text(dir_ / "killed.safetensors"));
}

TEST_F(Mpi, EvalsHaveTheJsonOfOneProcess) {
  const std::string data = calib();
  for (const std::string& args :
       {"eval retrieval -m " + kModel + " --lines 4,8 --samples 5 --vs-dense --streaming 0.5",
        "eval passkey -m " + kModel + " --repeats 10,20 --samples 3",
        "eval ppl -m " + kModel + " --data " + data}) {
    const test::RunResult one = test::run_moa(args + " --threads 1 --json");
    ASSERT_EQ(one.status, 0) << args << ": " << one.err;
    const test::RunResult two = mpi(2, args + " --threads 1 --json");
    ASSERT_EQ(two.status, 0) << args << ": " << two.err;
    EXPECT_EQ(one.out, two.out) << args;
  }
}

TEST_F(Mpi, CalibAndValidateHaveTheOutputOfOneProcess) {
  const std::string c1 = (dir_ / "c1.jsonl").string(), c2 = (dir_ / "c2.jsonl").string();
  const std::string args = "data calib -m " + kModel + " --lengths 300,512 --samples 3 --threads 1 --words " + kWords + " --json --out ";
  const test::RunResult one = test::run_moa(args + c1);
  ASSERT_EQ(one.status, 0) << one.err;
  const test::RunResult two = mpi(2, args + c2);
  ASSERT_EQ(two.status, 0) << two.err;
  EXPECT_EQ(read_text(c1), read_text(c2));
  // Validation of a plans directory: the dense plan and a small window.
  const fs::path plans = dir_ / "plans";
  fs::create_directories(plans);
  Plan::dense(6, 6).save(plans / "a.json", PlanForm::kExtended);  // moa-tiny: 6 layers x 6 heads
  Plan w = Plan::uniform(6, 6, 0, 0);
  w.set_params(4, 4, 24);  // every head: 4 sink + 24 window tokens
  w.save(plans / "b.json", PlanForm::kExtended);
  const std::string v = "validate -m " + kModel + " --plans " + plans.string() + " --data " + c1 + " --length 512 --threads 1 --json";
  const test::RunResult v1 = test::run_moa(v);
  ASSERT_EQ(v1.status, 0) << v1.err;
  const test::RunResult v2 = mpi(2, v);
  ASSERT_EQ(v2.status, 0) << v2.err;
  EXPECT_EQ(v1.out, v2.out);
}

// The whole pipeline on 2 ranks gives the plan of one process (a tiny random model with a
// context of 1024, as test_validate's compress test).
TEST_F(Mpi, CompressHasThePlanOfOneProcess) {
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
  const fs::path model = dir_ / "tiny";
  Model::random(c, 3, 0.25f).save(model, DType::kF32);
  write_text_atomic(model / "tokenizer.json", make_byte_level_tokenizer_json());
  auto args = [&](const std::string& tag) {
    return "compress -m " + model.string() + " --density 0.5 --work " + (dir_ / tag).string() +
           " --out " + (dir_ / (tag + ".json")).string() +
           " --samples 3 --profile-lengths 640,1024 --validation-length 768 --threads 1 --words " + kWords;
  };
  const test::RunResult one = test::run_moa(args("one"));
  ASSERT_EQ(one.status, 0) << one.err;
  const test::RunResult two = mpi(2, args("two"));
  ASSERT_EQ(two.status, 0) << two.err;
  EXPECT_EQ(read_text(dir_ / "one.json"), read_text(dir_ / "two.json"));
  for (const char* f : {"calib_640.jsonl", "calib_768.jsonl", "profile_640.safetensors", "profile_1024.safetensors"}) {
    EXPECT_EQ(read_text(dir_ / "one" / f), read_text(dir_ / "two" / f)) << f;
  }
  // Re-run on 2 ranks: every stage reused, the same plan.
  const test::RunResult again = mpi(2, args("two") + " --json");
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_GE(nlohmann::json::parse(again.out)["reused"].size(), 5u) << again.out;
  EXPECT_EQ(read_text(dir_ / "one.json"), read_text(dir_ / "two.json"));
}

TEST_F(Mpi, RefusesCommandsThatDoNotSplitAndReportsErrorsOnce) {
  const test::RunResult r = mpi(2, "info -m " + kModel);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("moa info does not split its work across MPI ranks"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  // The same bad input on both ranks: rank 0's line, not one per rank.
  const test::RunResult bad = mpi(2, "profile -m " + kModel + " --data /nonexistent.jsonl --length 64 --out " +
                                         (dir_ / "x.safetensors").string());
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("error: /nonexistent.jsonl"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.err.find("rank 1 of 2"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace moa
