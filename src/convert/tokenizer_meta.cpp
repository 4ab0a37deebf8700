// Tokenizer metadata for converted GGUF files (see convert_internal.h). llama.cpp's token types:
// NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6.
//
// tokenizer.ggml.pre, chosen from tokenizer.json's pre-tokenizer by the split regex it holds:
// Llama-3's regex (\p{N}{1,3}) -> "llama-bpe"; Qwen2's (\p{N} alone) -> "qwen2" (the regex of
// models/moa-tiny's byte-level tokenizer; llama.cpp's qwen2 type has no NFC normalizer of its own,
// our GGUF reader adds one); a ByteLevel pre-tokenizer with use_regex true -> "gpt-2"; anything
// else -> "default" with a warning (llama.cpp has no type for a byte-level tokenizer that does not
// split at all).
#include <sentencepiece_processor.h>

#include <nlohmann/json.hpp>

#include "convert/convert_internal.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"

namespace moa::conv {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using V = GgufOwnedValue;

constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;

json read_json(const fs::path& p) {
  try {
    return json::parse(read_text(p));
  } catch (const json::exception& e) {
    input_error("{}: not valid JSON ({})", p.string(), e.what());
  }
}

std::string pre_type(const json& tok, const std::function<void(const std::string&)>& warn,
                     const std::string& file) {
  const std::string s = tok.value("pre_tokenizer", json()).dump();
  if (s.find("\\\\p{N}{1,3}") != std::string::npos) return "llama-bpe";
  if (s.find("\\\\p{L}+|\\\\p{N}|") != std::string::npos) return "qwen2";
  const json& p = tok.value("pre_tokenizer", json());
  if (p.is_object() && p.value("type", "") == "ByteLevel" && p.value("use_regex", true)) {
    return "gpt-2";
  }
  if (warn) {
    warn(
        fmt::format("{}: pre-tokenizer {} has no llama.cpp equivalent; writing "
                    "tokenizer.ggml.pre 'default' (llama.cpp may split text differently)",
                    file, s));
  }
  return "default";
}

// True when the first piece of the single-sequence template is a special token (BOS).
bool template_adds_bos(const json& tok) {
  const json& pp = tok.value("post_processor", json());
  if (!pp.is_object() || pp.value("type", "") != "TemplateProcessing") return false;
  const json& single = pp.value("single", json());
  return single.is_array() && !single.empty() && single[0].contains("SpecialToken");
}

// tokenizer_config.json (empty object when absent).
json tokenizer_config(const fs::path& dir) {
  const fs::path p = dir / "tokenizer_config.json";
  return fs::is_regular_file(p) ? read_json(p) : json::object();
}

// A token named in tokenizer_config.json ("<s>" or {"content": "<s>"}): its id, or -1.
int64_t named_token(const json& cfg, const char* field, const std::vector<std::string>& tokens) {
  const json& t = cfg.value(field, json());
  const std::string s = t.is_string()   ? t.get<std::string>()
                        : t.is_object() ? t.value("content", "")
                                        : "";
  for (size_t id = 0; !s.empty() && id < tokens.size(); ++id) {
    if (tokens[id] == s) return int64_t(id);
  }
  return -1;
}

// BOS / EOS ids: config.json's, else the tokenizer's own (bos, eos: -1 when it has none).
void add_common(const json& cfg, const ModelConfig& c, GgufWriter& w, bool default_bos, int64_t bos,
                int64_t eos) {
  if (c.bos_id >= 0) bos = c.bos_id;
  if (c.eos_id >= 0) eos = c.eos_id;
  if (bos >= 0) w.set("tokenizer.ggml.bos_token_id", V::u32(uint32_t(bos)));
  if (eos >= 0) w.set("tokenizer.ggml.eos_token_id", V::u32(uint32_t(eos)));
  const json& ab = cfg.value("add_bos_token", json());
  w.set("tokenizer.ggml.add_bos_token", V::boolean(ab.is_boolean() ? ab.get<bool>() : default_bos));
  const json& ae = cfg.value("add_eos_token", json());
  w.set("tokenizer.ggml.add_eos_token", V::boolean(ae.is_boolean() && ae.get<bool>()));
  const json& ct = cfg.value("chat_template", json());
  if (ct.is_string()) w.set("tokenizer.chat_template", V::string(ct.get<std::string>()));
}

void add_gpt2(const fs::path& file, const json& cfg, const ModelConfig& c, GgufWriter& w,
              const std::function<void(const std::string&)>& warn) {
  const std::string f = file.string();
  const json tok = read_json(file);
  const json& m = tok.value("model", json());
  if (!m.is_object() || m.value("type", "") != "BPE" || m.value("byte_fallback", false)) {
    input_error(
        "{}: field 'model' is not a byte-level BPE (expected type BPE without "
        "byte_fallback; SentencePiece models convert from tokenizer.model)",
        f);
  }
  int64_t n = c.vocab;
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  auto place = [&](int64_t id, const std::string& s, int32_t type, const char* field) {
    if (id < 0 || id >= (int64_t(1) << 24)) input_error("{}: {} id {} out of range", f, field, id);
    if (id >= n) n = id + 1;
    if (int64_t(tokens.size()) < n) {
      tokens.resize(size_t(n));
      types.resize(size_t(n), 0);
    }
    tokens[size_t(id)] = s;
    types[size_t(id)] = type;
  };
  const json vocab = m.value("vocab", json::object());
  for (auto& [s, id] : vocab.items()) {
    if (!id.is_number_integer()) input_error("{}: model.vocab['{}'] is not an integer id", f, s);
    place(id.get<int64_t>(), s, kNormal, "model.vocab");
  }
  for (const json& a : tok.value("added_tokens", json::array())) {
    place(a.value("id", int64_t(-1)), a.value("content", ""),
          a.value("special", false) ? kControl : kUserDefined, "added_tokens");
  }
  if (n > c.vocab) {
    input_error(
        "{}: token id {} is beyond config.json's vocab_size {} (llama.cpp needs one "
        "embedding row per token)",
        f, n - 1, c.vocab);
  }
  tokens.resize(size_t(n));
  types.resize(size_t(n), 0);
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (types[id] == 0) {
      tokens[id] = fmt::format("[PAD{}]", id);
      types[id] = kUnused;
    }
  }
  std::vector<std::string> merges;
  for (const json& mg : m.value("merges", json::array())) {
    if (mg.is_string())
      merges.push_back(mg.get<std::string>());
    else if (mg.is_array() && mg.size() == 2)
      merges.push_back(mg[0].get<std::string>() + " " + mg[1].get<std::string>());
    else
      input_error("{}: model.merges holds {}, expected \"a b\" or [a, b]", f, mg.dump());
  }
  const int64_t bos = named_token(cfg, "bos_token", tokens),
                eos = named_token(cfg, "eos_token", tokens);
  w.set("tokenizer.ggml.model", V::string("gpt2"));
  w.set("tokenizer.ggml.pre", V::string(pre_type(tok, warn, f)));
  w.set("tokenizer.ggml.tokens", V::string_array(std::move(tokens)));
  w.set("tokenizer.ggml.token_type", V::i32_array(types));
  w.set("tokenizer.ggml.merges", V::string_array(std::move(merges)));
  add_common(cfg, c, w, template_adds_bos(tok), bos, eos);
}

void add_spm(const fs::path& file, const json& cfg, const ModelConfig& c, GgufWriter& w) {
  sentencepiece::SentencePieceProcessor sp;
  if (auto st = sp.Load(file.string()); !st.ok()) {
    input_error("{}: not a SentencePiece model ({})", file.string(), st.ToString());
  }
  if (sp.GetPieceSize() > c.vocab) {
    input_error(
        "{}: {} pieces, more than config.json's vocab_size {} (llama.cpp needs one "
        "embedding row per token)",
        file.string(), sp.GetPieceSize(), c.vocab);
  }
  const int64_t n = c.vocab;
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (int64_t id = 0; id < n; ++id) {
    if (id >= sp.GetPieceSize()) {
      tokens.push_back(fmt::format("[PAD{}]", id));
      scores.push_back(-1000.0f);
      types.push_back(kUnused);
      continue;
    }
    const int i = int(id);
    tokens.push_back(sp.IdToPiece(i));
    scores.push_back(sp.GetScore(i));
    types.push_back(sp.IsUnknown(i)   ? kUnknown
                    : sp.IsControl(i) ? kControl
                    : sp.IsUnused(i)  ? kUnused
                    : sp.IsByte(i)    ? kByte
                                      : kNormal);
  }
  w.set("tokenizer.ggml.model", V::string("llama"));
  w.set("tokenizer.ggml.tokens", V::string_array(std::move(tokens)));
  w.set("tokenizer.ggml.scores", V::f32_array(scores));
  w.set("tokenizer.ggml.token_type", V::i32_array(types));
  if (sp.unk_id() >= 0) w.set("tokenizer.ggml.unknown_token_id", V::u32(uint32_t(sp.unk_id())));
  add_common(cfg, c, w, true, sp.bos_id(), sp.eos_id());
}

}  // namespace

bool add_tokenizer_metadata(const fs::path& dir, const ModelConfig& c, GgufWriter& w,
                            const std::function<void(const std::string&)>& warn) {
  (void)kUserDefined;
  json cfg;
  try {
    cfg = tokenizer_config(dir);
    if (!cfg.is_object())
      input_error("{}: expected a JSON object", (dir / "tokenizer_config.json").string());
  } catch (const json::exception& e) {
    input_error("{}: {}", (dir / "tokenizer_config.json").string(), e.what());
  }
  if (fs::is_regular_file(dir / "tokenizer.model")) {
    add_spm(dir / "tokenizer.model", cfg, c, w);
    return true;
  }
  if (fs::is_regular_file(dir / "tokenizer.json")) {
    try {
      add_gpt2(dir / "tokenizer.json", cfg, c, w, warn);
    } catch (const json::exception& e) {  // a field of the wrong JSON type
      input_error("{}: unexpected structure ({})", (dir / "tokenizer.json").string(), e.what());
    }
    return true;
  }
  if (warn) {
    warn(
        fmt::format("{}: no tokenizer.json or tokenizer.model: the GGUF has no tokenizer "
                    "(llama.cpp needs one to load it)",
                    dir.string()));
  }
  return false;
}

}  // namespace moa::conv
