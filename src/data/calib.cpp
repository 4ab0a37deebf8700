#include "moa/data/calib.h"

#include <nlohmann/json.hpp>

#include "moa/core/error.h"
#include "moa/core/file_io.h"

namespace moa {

namespace {

const char* json_kind(const nlohmann::json& j) {
  if (j.is_string()) return "a string";
  if (j.is_number_integer()) return "an integer";
  if (j.is_number()) return "a number";
  if (j.is_boolean()) return "a boolean";
  if (j.is_null()) return "null";
  if (j.is_array()) return "an array";
  return "an object";
}

CalibSample parse_line(const std::string& line, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    input_error("{}: not JSON ({}); expected one object per line", where, e.what());
  }
  if (!j.is_object()) input_error("{}: is {}, expected a JSON object", where, json_kind(j));
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

}  // namespace

std::vector<CalibSample> parse_calib(const std::string& text, const std::string& source) {
  std::vector<CalibSample> out;
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    out.push_back(parse_line(line, source + ":" + std::to_string(line_no)));
  }
  if (out.empty())
    input_error("{}: no samples (expected JSONL, one {{\"prompt\", \"answer\"}} per line)", source);
  return out;
}

std::vector<CalibSample> load_calib(const std::filesystem::path& path) {
  return parse_calib(read_text(path), path.string());
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

}  // namespace moa
