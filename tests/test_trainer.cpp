// moa train: the loss goes down on learnable text, and an interrupted-and-resumed run gives
// bit-identical weights to an uninterrupted one.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "moa/core/file_io.h"
#include "moa/model/safetensors.h"
#include "moa/train/trainer.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;

const char* kConfig = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 32,
  "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
  "vocab_size": 300, "max_position_embeddings": 256, "tie_word_embeddings": true})";

// Runs moa train on the copy task unless `extra` names other --data.
nlohmann::json train(const fs::path& dir, std::string extra) {
  if (extra.find("--data") == std::string::npos) extra += " --data copy";
  auto r = test::run_moa("train --config " + (dir / "config.json").string() + " --seq 32 --batch 2 --lr 3e-3 --seed 5 --threads 2 --json " + extra);
  EXPECT_EQ(r.status, 0) << r.err;
  return r.status == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
}

TEST(Trainer, ResumeIsBitExact) {
  fs::path dir = test::temp_dir("train");
  write_text_atomic(dir / "config.json", kConfig);
  auto a = train(dir, "--steps 6 --out " + (dir / "a").string());
  auto b1 = train(dir, "--steps 6 --save-every 3 --out " + (dir / "b").string());
  // Interrupted after step 3 (with its checkpoint), then resumed.
  auto c1 = train(dir, "--steps 6 --stop-at 3 --out " + (dir / "c").string());
  EXPECT_EQ(c1["steps"], 3);
  auto c2 = train(dir, "--steps 6 --resume --out " + (dir / "c").string());
  EXPECT_EQ(c2["steps"], 6);
  const std::string wa = read_text(dir / "a" / "model.safetensors");
  EXPECT_EQ(wa, read_text(dir / "b" / "model.safetensors"));
  EXPECT_EQ(wa, read_text(dir / "c" / "model.safetensors")) << "resumed run differs";
  EXPECT_EQ(a["loss"], c2["loss"]);
  // A resume with different data options is refused, naming the option.
  auto r = test::run_moa("train --data copy --seq 16 --batch 2 --lr 3e-3 --seed 5 --steps 8 --threads 2 --resume --out " + (dir / "c").string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("seq"), std::string::npos) << r.err;
  // The checkpoint loads as a model everywhere.
  auto s = test::run_moa("info -m " + (dir / "c").string() + " --json");
  EXPECT_EQ(s.status, 0) << s.err;
  fs::remove_all(dir);
}

// A checkpoint of the older state format (moa-train-state/1: moments only, the weights in
// model.safetensors) still resumes bit for bit; the test rewrites a fresh /2 state as /1.
TEST(Trainer, ResumesTheOlderStateFormat) {
  fs::path dir = test::temp_dir("train_v1");
  write_text_atomic(dir / "config.json", kConfig);
  auto a = train(dir, "--steps 4 --out " + (dir / "a").string());
  train(dir, "--steps 4 --stop-at 2 --out " + (dir / "c").string());
  const fs::path state = dir / "c" / "train_state.safetensors";
  {
    SafetensorsFile st(state);
    std::map<std::string, std::string> meta = st.metadata();
    ASSERT_EQ(meta["format"], "moa-train-state/2");
    meta["format"] = "moa-train-state/1";
    meta.erase("config");
    std::vector<std::vector<float>> keep;
    std::vector<TensorToWrite> ts;
    for (const auto& [name, view] : st.tensors()) {
      if (name.starts_with("w.")) continue;
      auto& v = keep.emplace_back(size_t(view.numel()));
      view.to_f32(v.data());
      ts.push_back({name, DType::kF32, {view.numel()}, v.data()});
    }
    ASSERT_FALSE(ts.empty());
    write_safetensors(state, ts, meta);
  }
  auto c = train(dir, "--steps 4 --resume --out " + (dir / "c").string());
  EXPECT_EQ(c["steps"], 4);
  EXPECT_EQ(read_text(dir / "a" / "model.safetensors"), read_text(dir / "c" / "model.safetensors"));
  EXPECT_EQ(a["loss"], c["loss"]);
  fs::remove_all(dir);
}

TEST(Trainer, LossFallsOnText) {
  fs::path dir = test::temp_dir("train2");
  write_text_atomic(dir / "config.json", kConfig);
  std::string text;
  for (int i = 0; i < 200; ++i) text += "the quick brown fox jumps over the lazy dog. ";
  write_text_atomic(dir / "text.txt", text);
  const std::string data = " --data text:" + (dir / "text.txt").string();
  auto first = train(dir, "--steps 1 --out " + (dir / "x").string() + data);
  auto last = train(dir, "--steps 60 --eval-every 60 --out " + (dir / "y").string() + data);
  EXPECT_LT(last["loss"].get<double>(), first["loss"].get<double>() - 0.3)
      << "first " << first["loss"] << " last " << last["loss"];
  EXPECT_GT(last["eval_loss"].get<double>(), 0);
  fs::remove_all(dir);
}

TEST(Trainer, Schedule) {
  TrainOptions o;
  o.steps = 100;
  o.warmup = 10;
  o.lr = 1.0;
  o.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(scheduled_lr(o, 0), 0.1);
  EXPECT_DOUBLE_EQ(scheduled_lr(o, 9), 1.0);
  EXPECT_NEAR(scheduled_lr(o, 10), 1.0, 1e-12);
  EXPECT_NEAR(scheduled_lr(o, 55), 0.55, 1e-12);
  EXPECT_NEAR(scheduled_lr(o, 100), 0.1, 1e-12);
}

}  // namespace
}  // namespace moa
