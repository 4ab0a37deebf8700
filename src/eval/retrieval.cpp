#include <algorithm>
#include <cmath>
#include <cstring>

#include "moa/core/dist.h"
#include "moa/core/error.h"
#include "moa/eval/eval.h"
#include "moa/model/forward.h"
#include "moa/core/jsonl.h"
#include "moa/data/tasks.h"

namespace moa {

std::vector<RetrievalItem> load_retrieval_jsonl(const std::filesystem::path& path) {
  std::vector<RetrievalItem> items;
  for_each_jsonl_object(path, [&](const nlohmann::json& j, const std::string& where) {
    RetrievalItem it;
    if (!j.contains("prompt") || !j["prompt"].is_string()) {
      input_error("{}: field 'prompt' missing or not a string", where);
    }
    it.prompt = j["prompt"].get<std::string>();
    if (!j.contains("expected_number") || !j["expected_number"].is_number_integer()) {
      input_error("{}: field 'expected_number' missing or not an integer", where);
    }
    it.expected = j["expected_number"].get<int64_t>();
    if (j.contains("num_lines")) {
      if (!j["num_lines"].is_number_integer() || j["num_lines"].get<int64_t>() < 1) {
        input_error("{}: field 'num_lines' is not a positive integer", where);
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
  });
  if (items.empty()) input_error("{}: no records", path.string());
  return items;
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
  // One item's result travels as three integers (core/dist.h splits the items across ranks).
  auto work = [&](int64_t i) {
    GreedyAnswer a = greedy_answer(m, tok, items[size_t(i)].prompt, max_new, spec);
    const int64_t v[3] = {first_integer(a.text), int64_t(a.prompt_tokens), int64_t(a.kv_bytes)};
    return std::string(reinterpret_cast<const char*>(v), sizeof v);
  };
  auto consume = [&](int64_t i, const std::string& res) {
    int64_t v[3];
    MOA_CHECK(res.size() == sizeof v);
    std::memcpy(v, res.data(), sizeof v);
    const auto& it = items[size_t(i)];
    const int64_t answer = v[0];
    const bool ok = answer == it.expected;
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
    t.first += double(v[1]);
    t.second += 1;
    r.mean_kv_bytes += double(v[2]);
    r.answers.push_back(answer);
    if (progress) progress(i + 1, int64_t(items.size()));
  };
  dist::map_ordered(0, int64_t(items.size()), work, consume);
  for (const auto& [k, v] : tokens) r.mean_prompt_tokens[k] = v.first / double(v.second);
  if (r.n) r.mean_kv_bytes /= double(r.n);
  return r;
}

}  // namespace moa
