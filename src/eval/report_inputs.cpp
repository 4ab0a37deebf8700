// Reading `moa report`'s inputs: results and bench files (formats in include/moa/eval/report.h).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/eval/report.h"

namespace moa {
namespace {

nlohmann::json parse_file(const std::filesystem::path& path) {
  const std::string text = read_text(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    input_error("{}: not JSON ({})", path.string(), e.what());
  }
}

bool is_integer_key(const std::string& k) {
  if (k.empty() || k.size() > 15) return false;
  for (char c : k) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// {"<int>": number, ...}
void check_number_map(const nlohmann::json& j, const std::string& where, const char* field,
                      bool integer_keys) {
  if (!j.contains(field)) return;
  const auto& m = j[field];
  if (!m.is_object()) input_error("{}: field '{}' is not an object", where, field);
  for (const auto& [k, v] : m.items()) {
    if (integer_keys && !is_integer_key(k)) {
      input_error("{}: field '{}' has key '{}', expected an integer length", where, field, k);
    }
    if (!v.is_number()) input_error("{}: field '{}.{}' is not a number", where, field, k);
  }
}

void check_eval_result(const nlohmann::json& r, const std::string& where) {
  if (!r.is_object()) input_error("{}: expected an object (a `moa eval --json` output)", where);
  const bool retrieval = r.contains("by_lines"), ppl = r.contains("ppl");
  if (!retrieval && !ppl) {
    input_error("{}: expected a `moa eval --json` output with 'by_lines' (retrieval) or 'ppl'",
                where);
  }
  if (retrieval) {
    if (!r.contains("accuracy") || !r["accuracy"].is_number()) {
      input_error("{}: field 'accuracy' missing or not a number", where);
    }
    check_number_map(r, where, "by_lines", true);
    check_number_map(r, where, "prompt_tokens", true);
    check_number_map(r, where, "by_position", false);
    if (r.contains("by_lines_position")) {
      const auto& m = r["by_lines_position"];
      if (!m.is_object()) input_error("{}: field 'by_lines_position' is not an object", where);
      for (const auto& [k, v] : m.items()) {
        if (!is_integer_key(k))
          input_error("{}: field 'by_lines_position' has key '{}', expected an integer", where, k);
        check_number_map(m, where + ".by_lines_position", k.c_str(), false);
      }
    }
  }
  if (ppl) {
    for (const char* f : {"ppl", "nll"}) {
      if (r.contains(f) && !r[f].is_number())
        input_error("{}: field '{}' is not a number", where, f);
    }
  }
}

std::optional<std::string> opt_string(const nlohmann::json& e, const char* f,
                                      const std::string& where) {
  if (!e.contains(f) || e[f].is_null()) return std::nullopt;
  if (!e[f].is_string()) input_error("{}: field '{}' is not a string", where, f);
  return e[f].get<std::string>();
}

std::optional<double> opt_density(const nlohmann::json& e, const std::string& where) {
  if (!e.contains("density") || e["density"].is_null()) return std::nullopt;
  if (!e["density"].is_number() ||
      !(e["density"].get<double>() > 0 && e["density"].get<double>() <= 1)) {
    input_error("{}: field 'density' is {}, expected a number in (0, 1]", where,
                e["density"].dump());
  }
  return e["density"].get<double>();
}

// One run entry: either {"method", ..., "result": {...}} or an eval output itself.
RunRecord parse_run(const nlohmann::json& e, const std::string& where, const std::string& source) {
  if (!e.is_object()) input_error("{}: expected an object", where);
  const bool wrapped = e.contains("result");
  const nlohmann::json& r = wrapped ? e["result"] : e;
  check_eval_result(r, wrapped ? where + ".result" : where);
  RunRecord run;
  run.result = r;
  run.source = source;
  auto pick = [&](const char* f) {
    if (auto v = opt_string(e, f, where)) return v;
    return wrapped ? opt_string(r, f, where + ".result") : std::nullopt;
  };
  auto method = pick("method");
  if (!method) input_error("{}: field 'method' missing (dense, streaming, h2o or moa)", where);
  run.method = *method;
  run.task = pick("task").value_or(r.contains("by_lines") ? "longeval" : "ppl");
  run.label = pick("label").value_or("");
  run.plan = pick("plan").value_or("");
  run.density = opt_density(e, where);
  if (!run.density && wrapped) run.density = opt_density(r, where + ".result");
  if (run.method == "dense") run.density.reset();
  return run;
}

}  // namespace

std::vector<RunRecord> parse_results(const nlohmann::json& j, const std::string& source) {
  std::vector<RunRecord> runs;
  if (j.is_object() && j.contains("runs")) {
    if (!j["runs"].is_array()) input_error("{}: field 'runs' is not a list", source);
    for (size_t i = 0; i < j["runs"].size(); ++i) {
      runs.push_back(parse_run(j["runs"][i], fmt::format("{}: runs[{}]", source, i), source));
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i)
      runs.push_back(parse_run(j[i], fmt::format("{}: [{}]", source, i), source));
  } else if (j.is_object()) {
    runs.push_back(parse_run(j, source, source));
  } else {
    input_error("{}: expected {{\"runs\": [...]}}, a list of eval outputs or one eval output",
                source);
  }
  if (runs.empty()) input_error("{}: no runs", source);
  return runs;
}

std::vector<RunRecord> load_results(const std::filesystem::path& path) {
  return parse_results(parse_file(path), path.string());
}

std::map<int64_t, double> accuracy_by_length(const nlohmann::json& r, bool* in_tokens) {
  std::map<int64_t, double> out;
  bool tokens = r.contains("prompt_tokens") && r["prompt_tokens"].is_object();
  if (r.contains("by_lines") && r["by_lines"].is_object()) {
    for (const auto& [k, v] : r["by_lines"].items()) {
      if (tokens && !r["prompt_tokens"].contains(k)) tokens = false;
    }
    for (const auto& [k, v] : r["by_lines"].items()) {
      const int64_t len =
          tokens ? int64_t(std::llround(r["prompt_tokens"][k].get<double>())) : std::stoll(k);
      out[std::max<int64_t>(1, len)] = v.get<double>();
    }
  }
  if (in_tokens) *in_tokens = tokens;
  return out;
}

void attach_spans(std::vector<RunRecord>& runs, const Plan* fallback,
                  const std::optional<ModelShape>& shape) {
  for (auto& r : runs) {
    if (r.method == "dense") {
      r.span = MethodSpan::dense();
    } else if (r.method == "streaming" && r.density) {
      r.span = MethodSpan::streaming(*r.density);
    } else if (r.method == "h2o" && r.density) {
      r.span = MethodSpan::h2o(*r.density);
    } else if (r.method == "moa") {
      std::optional<Plan> plan;
      if (!r.plan.empty() && std::filesystem::exists(r.plan)) {
        plan = Plan::load(r.plan);
      } else if (fallback) {
        plan = *fallback;
      }
      if (!plan) continue;
      ModelShape s = shape.value_or(ModelShape{plan->layers(), plan->heads(), plan->heads()});
      plan->check_shape(s);
      r.span = MethodSpan::of_plan(*plan, s);
      if (!r.density) {
        if (!plan->density().empty()) {
          // The budget the plan was optimised for: its density at the longest profile length.
          // The map also holds extend lengths, where an elastic plan is sparser by design (a
          // 0.5 plan read 0.458 at 2x its context), so the longest entry would mislabel it.
          r.density = plan->density().rbegin()->second;
          const nlohmann::json& l = plan->lengths();
          if (l.is_object() && l.contains("profile") && l["profile"].is_array()) {
            int64_t best = -1;
            for (const auto& v : l["profile"]) {
              if (v.is_number_integer() && plan->density().count(v.get<int64_t>()))
                best = std::max(best, v.get<int64_t>());
            }
            if (best > 0) r.density = plan->density().at(best);
          }
        } else {
          int64_t n = 0;
          if (r.retrieval()) {
            const auto acc = accuracy_by_length(r.result);
            if (!acc.empty()) n = acc.rbegin()->first;
          } else if (r.result.contains("length") && r.result["length"].is_number_integer()) {
            n = r.result["length"].get<int64_t>();
          }
          if (n > 0) r.density = plan->kv_density(s, n);
        }
      }
    }
  }
}

std::vector<BenchRecord> parse_bench(const nlohmann::json& j, const std::string& source) {
  std::vector<BenchRecord> out;
  auto one = [&](const nlohmann::json& e, const std::string& where) {
    if (!e.is_object()) input_error("{}: expected an object", where);
    const bool wrapped = e.contains("result");
    const nlohmann::json& r = wrapped ? e["result"] : e;
    if (!r.is_object()) input_error("{}: field 'result' is not an object", where);
    for (const char* f : {"prefill_tok_s", "decode_tok_s"}) {
      if (!r.contains(f) || !r[f].is_number()) {
        input_error("{}: field '{}' missing or not a number (is this a `moa bench --json` output?)",
                    where, f);
      }
    }
    for (const char* f : {"ctx", "kv_bytes", "peak_rss_bytes", "batch", "gen"}) {
      if (r.contains(f) && !r[f].is_number())
        input_error("{}: field '{}' is not a number", where, f);
    }
    BenchRecord b;
    b.result = r;
    b.source = source;
    b.method = opt_string(e, "method", where)
                   .value_or(wrapped ? opt_string(r, "method", where).value_or("") : "");
    b.label = opt_string(e, "label", where).value_or("");
    b.density = opt_density(e, where);
    if (!b.density && wrapped) b.density = opt_density(r, where + ".result");
    out.push_back(std::move(b));
  };
  if (j.is_object() && j.contains("runs")) {
    if (!j["runs"].is_array()) input_error("{}: field 'runs' is not a list", source);
    for (size_t i = 0; i < j["runs"].size(); ++i)
      one(j["runs"][i], fmt::format("{}: runs[{}]", source, i));
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) one(j[i], fmt::format("{}: [{}]", source, i));
  } else {
    one(j, source);
  }
  if (out.empty()) input_error("{}: no bench results", source);
  return out;
}

std::vector<BenchRecord> load_bench(const std::filesystem::path& path) {
  auto b = parse_bench(parse_file(path), path.string());
  for (auto& r : b) {
    if (r.label.empty() && r.method.empty()) r.label = path.stem().string();
  }
  return b;
}

SpanMap plan_span_map(const Plan& plan, const ModelShape& shape, int64_t n, std::string title) {
  SpanMap m;
  const PlanCaches c = plan.caches(shape, n);
  m.layers = c.layers;
  m.heads = c.heads;
  m.length = n;
  for (const auto& h : c.at) m.kept.push_back(h.kept);
  m.kv_density = plan.kv_density(shape, n);
  m.title = std::move(title);
  return m;
}

}  // namespace moa
