// The command line's error contract (CLI.md): every bad argument gives exactly one line on stderr,
// "error: moa <command>: ...", naming the option or command and what was expected, and exit 2;
// an unknown command names its nearest known commands; every command takes --json.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "moa/core/file_io.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct BadArgs {
  std::string args;
  std::vector<std::string> needles;  // each must appear in the one line
};

TEST(CliContract, EveryParseErrorIsOneLineWithExit2) {
  const std::vector<BadArgs> cases = {
      // Values that do not convert or are out of range name the option and the expectation.
      {"generate -m x -n abc", {"moa generate", "--n-predict", "expected a number >= 0", "'abc'"}},
      {"generate -m x -n 2.5", {"moa generate", "--n-predict", "expected an integer", "'2.5'"}},
      {"generate -m x -n -3", {"--n-predict", "expected a number >= 0", "'-3'"}},
      {"generate -m x --top-p 1.5", {"--top-p", "expected a number in [0, 1]", "'1.5'"}},
      {"train --config c.json --data copy --out d --steps 0", {"moa train", "--steps", "expected a number > 0"}},
      {"train --config c.json --data copy --out d --steps 10 --seq 1", {"--seq", "[2, 1048576]"}},
      {"bench -m x --ctx abc", {"moa bench", "--ctx", "expected", "'abc'"}},
      {"init --config c.json --out d --seed abc", {"moa init", "--seed", "expected a non-negative integer", "'abc'"}},
      {"generate -m x -p hi --kv-type q9", {"--kv-type", "expected one of f32, f16, bf16, q8_0", "'q9'"}},
      {"data longeval --lines 0 --out x.jsonl", {"moa data longeval", "--lines", "[1, 100000]"}},
      {"serve -m x --port 70000", {"moa serve", "--port", "[0, 65535]"}},
      {"eval retrieval -m x --lines a,b", {"moa eval retrieval", "--lines", "integers", "'a"}},
      // Missing options and values.
      {"init --out d", {"moa init", "--config is required"}},
      {"generate -m", {"moa generate", "-m"}},
      // Unknown options and commands name the nearest known ones.
      {"info -m x --jsn", {"moa info", "unknown option '--jsn'", "--json"}},
      {"generate -m x --temprature 0", {"unknown option '--temprature'", "--temp"}},
      {"info -m x stray", {"moa info", "unexpected argument 'stray'"}},
      {"frobnicate", {"unknown command 'frobnicate'", "moa --help"}},
      {"genrate -m x", {"unknown command 'genrate'", "generate"}},
      {"plan chek --plan p.json", {"moa plan: unknown command 'chek'", "check"}},
      {"eval retreival -m x", {"moa eval: unknown command 'retreival'", "retrieval"}},
      {"", {"moa: a command is required", "generate", "serve"}},
      {"plan", {"moa plan: a command is required", "check"}},
  };
  for (const auto& c : cases) {
    const auto r = test::run_moa(c.args);
    EXPECT_EQ(r.status, 2) << c.args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.args << ": " << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << c.args << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << c.args << ": " << r.out;
    for (const auto& n : c.needles) EXPECT_NE(r.err.find(n), std::string::npos) << c.args << ": no '" << n << "' in " << r.err;
    // CLI11's NonNegativeNumber printed DBL_MAX as 309 digits.
    EXPECT_EQ(r.err.find("0000000000"), std::string::npos) << c.args << ": " << r.err;
  }
  // Help is not an error.
  const auto h = test::run_moa("generate --help");
  EXPECT_EQ(h.status, 0) << h.err;
  EXPECT_NE(h.out.find("--n-predict"), std::string::npos);
}

// The subcommands a `--help` page lists under "Subcommands:".
std::vector<std::string> listed_subcommands(const std::string& help) {
  std::vector<std::string> names;
  std::istringstream in(help);
  std::string line;
  bool in_list = false;
  while (std::getline(in, line)) {
    if (line.rfind("Subcommands:", 0) == 0) {
      in_list = true;
      continue;
    }
    if (!in_list) continue;
    if (line.size() < 3 || line.rfind("  ", 0) != 0 || line[2] == ' ') {
      if (!line.empty() && line[0] != ' ') in_list = false;
      continue;
    }
    names.push_back(line.substr(2, line.find(' ', 2) - 2));
  }
  return names;
}

TEST(CliContract, EveryCommandTakesJson) {
  std::vector<std::string> todo = {""}, leaves;
  while (!todo.empty()) {
    const std::string cmd = todo.back();
    todo.pop_back();
    const auto r = test::run_moa(cmd + " --help");
    ASSERT_EQ(r.status, 0) << cmd << ": " << r.err;
    const auto subs = listed_subcommands(r.out);
    if (subs.empty()) {
      leaves.push_back(cmd);
      EXPECT_NE(r.out.find("--json"), std::string::npos) << "moa" << cmd << " has no --json";
    }
    for (const auto& s : subs) todo.push_back(cmd + " " + s);
  }
  // The walk found the commands (a broken help parser would pass vacuously).
  for (const std::string known : {" generate", " serve", " plan check", " eval retrieval", " data calib", " report"}) {
    EXPECT_NE(std::find(leaves.begin(), leaves.end(), known), leaves.end()) << known;
  }
  EXPECT_GE(leaves.size(), 25u);
}

json parse_out(const test::RunResult& r) {
  EXPECT_EQ(r.status, 0) << r.err;
  return json::parse(r.out);
}

// The commands that gained --json: init, expand, data, report (serve's is in test_serve).
TEST(CliContract, JsonOfFileWritingCommands) {
  const fs::path tmp = test::temp_dir("cli_json");
  write_text_atomic(tmp / "config.json", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64,
    "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "vocab_size": 300, "max_position_embeddings": 2048})");
  const std::string m = (tmp / "m").string(), e = (tmp / "e").string();
  json j = parse_out(test::run_moa("init --config " + (tmp / "config.json").string() + " --out " + m + " --json"));
  EXPECT_EQ(j["out"], m);
  EXPECT_EQ(j["layers"], 2);
  EXPECT_GT(j["params"].get<int64_t>(), 0);
  j = parse_out(test::run_moa("expand -m " + m + " --insert-after 0 --out " + e + " --json"));
  EXPECT_EQ(j["layers_before"], 2);
  EXPECT_EQ(j["layers"], 3);
  j = parse_out(test::run_moa("data longeval --lines 5 --samples 3 --out " + (tmp / "le.jsonl").string() + " --json"));
  EXPECT_EQ(j["records"], 3);
  j = parse_out(test::run_moa("data passkey --repeats 2 --samples 4 --out " + (tmp / "pk.jsonl").string() + " --json"));
  EXPECT_EQ(j["records"], 4);
  j = parse_out(test::run_moa("data calib -m " + m + " --lengths 512 --samples 2 --threads 1 --out " +
                              (tmp / "calib.jsonl").string() + " --json"));
  EXPECT_EQ(j["records"], 2);
  EXPECT_TRUE(j.contains("model_correct"));
  json run = parse_out(test::run_moa("eval retrieval -m " + m + " --data " + (tmp / "le.jsonl").string() +
                                     " --max-new 4 --threads 1 --json"));
  write_text_atomic(tmp / "results.json", json{{"runs", json::array({run})}}.dump());
  j = parse_out(test::run_moa("report --results " + (tmp / "results.json").string() + " --out " +
                              (tmp / "r.html").string() + " --json"));
  EXPECT_EQ(j["runs"], 1);
  EXPECT_TRUE(fs::exists(tmp / "r.html"));
  const auto both = test::run_moa("report --results " + (tmp / "results.json").string() + " --out x.html --json --table");
  EXPECT_EQ(both.status, 2) << both.err;
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace moa
