#include "moa/data/calib.h"

#include <nlohmann/json.hpp>

#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/core/jsonl.h"

namespace moa {

namespace {

CalibSample parse_sample(const nlohmann::json& j, const std::string& where) {
  CalibSample s;
  auto p = j.find("prompt");
  if (p == j.end()) input_error("{}: field 'prompt' is missing, expected a string", where);
  if (!p->is_string())
    input_error("{}: field 'prompt' is {}, expected a string", where, json_kind(*p));
  s.prompt = p->get<std::string>();
  if (auto a = j.find("answer"); a != j.end()) {
    if (!a->is_string())
      input_error("{}: field 'answer' is {}, expected a string", where, json_kind(*a));
    s.answer = a->get<std::string>();
  } else if (auto e = j.find("expected_number"); e != j.end()) {
    if (!e->is_number_integer()) {
      input_error("{}: field 'expected_number' is {}, expected an integer", where, json_kind(*e));
    }
    s.answer = std::to_string(e->get<int64_t>());
  } else {
    input_error(
        "{}: field 'answer' is missing, expected a string (or a LongEval 'expected_number')",
        where);
  }
  if (s.answer.empty()) input_error("{}: field 'answer' is empty, expected the answer text", where);
  return s;
}

std::vector<CalibSample> nonempty(std::vector<CalibSample> samples, const std::string& source) {
  if (samples.empty())
    input_error("{}: no samples (expected JSONL, one {{\"prompt\", \"answer\"}} per line)", source);
  return samples;
}

}  // namespace

std::vector<CalibSample> parse_calib(const std::string& text, const std::string& source) {
  std::vector<CalibSample> out;
  for_each_jsonl_object(text, source, [&](const nlohmann::json& j, const std::string& where) {
    out.push_back(parse_sample(j, where));
  });
  return nonempty(std::move(out), source);
}

// From the file itself (memory-mapped by for_each_jsonl_object), not a copy of it.
std::vector<CalibSample> load_calib(const std::filesystem::path& path) {
  std::vector<CalibSample> out;
  for_each_jsonl_object(path, [&](const nlohmann::json& j, const std::string& where) {
    out.push_back(parse_sample(j, where));
  });
  return nonempty(std::move(out), path.string());
}

int64_t TokenizedSample::scored_tokens() const {
  int64_t n = 0;
  for (int64_t t = 0; t + 1 < size(); ++t) n += loss_mask[size_t(t)] != 0.0f;
  return n;
}

TokenizedSample tokenize_sample(const Tokenizer& tok, const CalibSample& s) {
  TokenizedSample r;
  r.ids = tok.encode(s.prompt, true);
  r.prompt_tokens = r.size();
  const std::vector<int32_t> answer = tok.encode(s.answer, false);
  r.ids.insert(r.ids.end(), answer.begin(), answer.end());
  r.loss_mask.assign(r.ids.size(), 0.0f);
  // Position t predicts ids[t + 1]: the answer's tokens are predicted from t = prompt_tokens - 1.
  for (int64_t t = std::max<int64_t>(r.prompt_tokens - 1, 0); t + 1 < r.size(); ++t) {
    r.loss_mask[size_t(t)] = 1.0f;
  }
  return r;
}

std::vector<TokenizedSample> load_tokenized_calib(const std::filesystem::path& path,
                                                  const Tokenizer& tok, int64_t vocab) {
  const std::vector<CalibSample> raw = load_calib(path);
  std::vector<TokenizedSample> out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    out.push_back(tokenize_sample(tok, raw[i]));
    for (int32_t id : out.back().ids) {
      if (vocab > 0 && (id < 0 || id >= vocab)) {
        input_error(
            "{}: sample {} has token id {}, outside the model's vocab of {} (is the "
            "tokenizer of another model?)",
            path.string(), i + 1, id, vocab);
      }
    }
  }
  return out;
}

}  // namespace moa
