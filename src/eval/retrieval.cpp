#include <algorithm>
#include <cmath>
#include <fstream>

#include "moa/core/error.h"
#include "moa/eval/eval.h"
#include "moa/model/forward.h"
#include "moa/data/tasks.h"

namespace moa {

std::vector<RetrievalItem> load_retrieval_jsonl(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) input_error("{}: cannot open", path.string());
  std::vector<RetrievalItem> items;
  std::string line;
  int64_t no = 0;
  while (std::getline(in, line)) {
    ++no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      input_error("{}:{}: not JSON ({})", path.string(), no, e.what());
    }
    if (!j.is_object()) input_error("{}:{}: expected a JSON object", path.string(), no);
    RetrievalItem it;
    if (!j.contains("prompt") || !j["prompt"].is_string()) {
      input_error("{}:{}: field 'prompt' missing or not a string", path.string(), no);
    }
    it.prompt = j["prompt"].get<std::string>();
    if (!j.contains("expected_number") || !j["expected_number"].is_number_integer()) {
      input_error("{}:{}: field 'expected_number' missing or not an integer", path.string(), no);
    }
    it.expected = j["expected_number"].get<int64_t>();
    if (j.contains("num_lines")) {
      if (!j["num_lines"].is_number_integer() || j["num_lines"].get<int64_t>() < 1) {
        input_error("{}:{}: field 'num_lines' is not a positive integer", path.string(), no);
      }
      it.num_lines = j["num_lines"].get<int64_t>();
      const auto& idx = j.value("random_idx", nlohmann::json());
      if (idx.is_array() && idx.size() == 2 && idx[1].is_number_integer()) {
        it.depth = double(idx[1].get<int64_t>()) / double(std::max<int64_t>(1, it.num_lines - 1));
      }
    } else if (j.contains("depth") && j["depth"].is_number()) {
      it.depth = j["depth"].get<double>();
    }
    it.depth = std::clamp(it.depth, 0.0, 1.0);
    items.push_back(std::move(it));
  }
  if (items.empty()) input_error("{}: no records", path.string());
  return items;
}

GreedyAnswer greedy_answer(const Model& m, const Tokenizer& tok, const std::string& prompt,
                           int64_t max_new, const SpecFactory& spec) {
  std::vector<int32_t> ids = tok.encode(prompt, true);
  GreedyAnswer a;
  a.prompt_tokens = int64_t(ids.size());
  const int64_t n_ctx = a.prompt_tokens + max_new;
  if (n_ctx > m.cfg.max_position) {
    input_error("prompt of {} tokens + {} to generate exceeds the model's context of {} "
                "(max_position_embeddings)", ids.size(), max_new, m.cfg.max_position);
  }
  Session s(m, spec(n_ctx));
  std::vector<float> logits = s.prefill(ids);
  a.kv_bytes = s.kv_bytes();
  const auto eos = tok.eos_ids();
  const int64_t tok_vocab = std::min<int64_t>(tok.vocab_size(), m.cfg.vocab);
  int32_t prev = ids.back();
  bool digit = false;
  for (int64_t i = 0; i < max_new; ++i) {
    const int32_t next = int32_t(std::max_element(logits.begin(), logits.begin() + tok_vocab) - logits.begin());
    if (std::find(eos.begin(), eos.end(), next) != eos.end()) break;
    std::string piece = tok.token_bytes(next, prev);
    prev = next;
    a.text += piece;
    for (char c : piece) {
      if (c >= '0' && c <= '9') digit = true;
    }
    // The answer ends with its line, or with the sentence (passkey) or the bracket (LongEval).
    if (digit && piece.find_first_of("\n.>") != std::string::npos) break;
    if (i + 1 < max_new) logits = s.decode(next);
  }
  a.answer = first_integer(a.text);
  return a;
}

namespace {
std::string depth_bucket_name(int64_t k) {
  return fmt::format("{:.1f}-{:.1f}", 0.2 * double(k), 0.2 * double(k + 1));
}
}  // namespace

nlohmann::json RetrievalResult::to_json() const {
  nlohmann::json bl = nlohmann::json::object(), bp = nlohmann::json::object(),
                 pt = nlohmann::json::object(), blp = nlohmann::json::object();
  for (const auto& [k, v] : by_lines) bl[std::to_string(k)] = v.second ? double(v.first) / double(v.second) : 0.0;
  for (const auto& [k, v] : by_depth) {
    bp[depth_bucket_name(k)] = v.second ? double(v.first) / double(v.second) : 0.0;
  }
  for (const auto& [lines, buckets] : by_lines_depth) {
    nlohmann::json row = nlohmann::json::object();
    for (const auto& [k, v] : buckets) row[depth_bucket_name(k)] = v.second ? double(v.first) / double(v.second) : 0.0;
    blp[std::to_string(lines)] = row;
  }
  for (const auto& [k, v] : mean_prompt_tokens) pt[std::to_string(k)] = v;
  return {{"accuracy", accuracy()}, {"n", n},          {"correct", correct},
          {"by_lines", bl},         {"by_position", bp}, {"prompt_tokens", pt},
          {"mean_kv_bytes", mean_kv_bytes}, {"by_lines_position", blp}};
}

RetrievalResult eval_retrieval(const Model& m, const Tokenizer& tok,
                               const std::vector<RetrievalItem>& items, int64_t max_new,
                               const SpecFactory& spec,
                               const std::function<void(int64_t, int64_t)>& progress) {
  RetrievalResult r;
  std::map<int64_t, std::pair<double, int64_t>> tokens;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& it = items[i];
    GreedyAnswer a = greedy_answer(m, tok, it.prompt, max_new, spec);
    const bool ok = a.answer == it.expected;
    r.n += 1;
    r.correct += ok;
    auto& bl = r.by_lines[it.num_lines];
    bl.first += ok;
    bl.second += 1;
    const int64_t bucket = std::min<int64_t>(4, int64_t(std::floor(it.depth * 5)));
    auto& bd = r.by_depth[bucket];
    bd.first += ok;
    bd.second += 1;
    auto& bld = r.by_lines_depth[it.num_lines][bucket];
    bld.first += ok;
    bld.second += 1;
    auto& t = tokens[it.num_lines];
    t.first += double(a.prompt_tokens);
    t.second += 1;
    r.mean_kv_bytes += double(a.kv_bytes);
    r.answers.push_back(a.answer);
    if (progress) progress(int64_t(i + 1), int64_t(items.size()));
  }
  for (const auto& [k, v] : tokens) r.mean_prompt_tokens[k] = v.first / double(v.second);
  if (r.n) r.mean_kv_bytes /= double(r.n);
  return r;
}

}  // namespace moa
