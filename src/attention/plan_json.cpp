// Plans: reading and writing the reference form {"alphas", "betas"} and the extended form
// {"format": "moa-plan/1", ...}. Every bad input is one InputError naming the file and the field.
#include <cmath>
#include <cstring>
#include <string_view>

#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/attention/plan.h"

namespace moa {

namespace {

using nlohmann::json;

// A JSON value for an error message, cut to a readable length.
std::string shown(const json& v) {
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

const char* kind_of(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    default:
      return "a number";
  }
}

// Layers, and heads per layer, a plan may have: far beyond any model (Llama-3-405B has 126 layers
// of 128 heads), and refused before the plan's tables are allocated (the reliability issue's plan
// for 10^6 layers).
constexpr size_t kMaxPlanRows = 65536;

// Reads one [layers][heads] matrix of finite numbers.
void read_matrix(const json& j, const std::string& src, const std::string& field,
                 std::vector<std::vector<double>>& out, std::vector<std::vector<bool>>& ints) {
  if (!j.is_array()) {
    input_error("{}: {} is {} ({}), expected a list of layers, each a list of per-head numbers",
                src, field, kind_of(j), shown(j));
  }
  if (j.empty())
    input_error("{}: {} is empty, expected one list of per-head numbers per layer", src, field);
  if (j.size() > kMaxPlanRows) {
    input_error("{}: {} has {} layers, more than the {} a plan may hold", src, field, j.size(),
                kMaxPlanRows);
  }
  out.assign(j.size(), {});
  ints.assign(j.size(), {});
  bool any_int = false;
  for (size_t l = 0; l < j.size(); ++l) {
    const json& row = j[l];
    if (!row.is_array()) {
      input_error("{}: {}[{}] is {} ({}), expected a list of per-head numbers", src, field, l,
                  kind_of(row), shown(row));
    }
    if (row.empty())
      input_error("{}: {}[{}] is empty, expected one number per head", src, field, l);
    if (row.size() > kMaxPlanRows) {
      input_error("{}: {}[{}] has {} heads, more than the {} a plan may hold", src, field, l,
                  row.size(), kMaxPlanRows);
    }
    if (row.size() != j[0].size()) {
      input_error("{}: {}[{}] has {} heads, {}[0] has {} (every layer needs the same head count)",
                  src, field, l, row.size(), field, j[0].size());
    }
    out[l].resize(row.size());
    ints[l].resize(row.size());
    for (size_t h = 0; h < row.size(); ++h) {
      const json& v = row[h];
      if (!v.is_number()) {
        input_error("{}: {}[{}][{}] is {} ({}), expected a number", src, field, l, h, kind_of(v),
                    shown(v));
      }
      double d = v.get<double>();
      if (!std::isfinite(d)) {
        input_error("{}: {}[{}][{}] is {}, expected a finite number", src, field, l, h, d);
      }
      out[l][h] = d;
      ints[l][h] = v.is_number_integer();
      any_int |= ints[l][h];
    }
  }
  if (!any_int) ints.clear();
}

PlanRules read_rules(const json& obj, const std::string& src, const std::string& prefix) {
  PlanRules r;
  for (const char* key : {"alphas", "betas"}) {
    if (!obj.contains(key)) {
      input_error("{}: missing field '{}{}' (expected a [layers][heads] list of numbers)", src,
                  prefix, key);
    }
  }
  read_matrix(obj["alphas"], src, prefix + "alphas", r.alphas, r.alphas_int);
  read_matrix(obj["betas"], src, prefix + "betas", r.betas, r.betas_int);
  if (r.alphas.size() != r.betas.size()) {
    input_error(
        "{}: {}betas has {} layers, {}alphas has {} (expected the same [layers][heads] "
        "shape)",
        src, prefix, r.betas.size(), prefix, r.alphas.size());
  }
  if (r.alphas[0].size() != r.betas[0].size()) {
    input_error(
        "{}: {}betas[0] has {} heads, {}alphas[0] has {} (expected the same "
        "[layers][heads] shape)",
        src, prefix, r.betas[0].size(), prefix, r.alphas[0].size());
  }
  return r;
}

// An integer field (64 or 64.0), or `def` when absent.
int64_t read_int(const json& j, const char* key, const std::string& src, int64_t def) {
  auto it = j.find(key);
  if (it == j.end()) return def;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float()) {
    double d = it->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return int64_t(d);
  }
  input_error("{}: field '{}' is {}, expected an integer", src, key, shown(*it));
}

// Positive integer from a density key such as "8192".
int64_t parse_length_key(const std::string& k, const std::string& src, const std::string& field) {
  int64_t v = 0;
  // At most 15 digits, checked before any is added: a longer key (the fuzzer's had 200) must
  // not overflow on the way to being refused.
  bool ok = !k.empty() && k.size() <= 15;
  for (size_t i = 0; ok && i < k.size(); ++i) {
    const char c = k[i];
    if (c < '0' || c > '9')
      ok = false;
    else
      v = v * 10 + (c - '0');
  }
  if (!ok || v < 1) {
    input_error("{}: {} has key \"{}\", expected an input length such as \"8192\"", src, field, k);
  }
  return v;
}

// The fields of a plan file before they are checked together.
struct PlanFields {
  std::vector<PlanRules> rule_sets;
  int64_t sink = kPlanSink, block = kPlanBlock, min_cache = kPlanMinCache;
  bool per_kv = false;
  std::optional<std::string> model;
  std::map<int64_t, double> density;
  json lengths;
  json extra = json::object();
};

void parse_extended(const json& j, const std::string& src, PlanFields& f) {
  auto& [rule_sets, sink, block, min_cache, per_kv, model, density, lengths, extra] = f;
  const json& fmt_v = j["format"];
  if (!fmt_v.is_string() || fmt_v.get<std::string>() != kPlanFormat) {
    input_error("{}: field 'format' is {}, expected \"{}\"", src, shown(fmt_v), kPlanFormat);
  }
  if (auto it = j.find("model"); it != j.end() && !it->is_null()) {
    if (!it->is_string())
      input_error("{}: field 'model' is {}, expected a string", src, shown(*it));
    model = it->get<std::string>();
  }
  sink = read_int(j, "sink", src, kPlanSink);
  block = read_int(j, "block", src, kPlanBlock);
  min_cache = read_int(j, "min_cache", src, kPlanMinCache);
  if (auto it = j.find("per_kv_head"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) {
      input_error("{}: field 'per_kv_head' is {}, expected true or false", src, shown(*it));
    }
    per_kv = it->get<bool>();
  }
  auto rules_it = j.find("rules");
  if (rules_it == j.end()) {
    input_error(
        "{}: missing field 'rules' (expected a list of {{\"max_length\": N or null, "
        "\"alphas\": [[...]], \"betas\": [[...]]}})",
        src);
  }
  const json& rules = *rules_it;
  if (!rules.is_array() || rules.empty()) {
    input_error("{}: field 'rules' is {}, expected a non-empty list of rule sets", src,
                shown(rules));
  }
  for (size_t s = 0; s < rules.size(); ++s) {
    const json& o = rules[s];
    std::string prefix = fmt::format("rules[{}].", s);
    if (!o.is_object()) {
      input_error("{}: rules[{}] is {} ({}), expected an object with max_length, alphas, betas",
                  src, s, kind_of(o), shown(o));
    }
    PlanRules r = read_rules(o, src, prefix);
    if (auto it = o.find("max_length"); it != o.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 1) {
        input_error("{}: {}max_length is {}, expected a positive integer or null (unbounded)", src,
                    prefix, shown(*it));
      }
      r.max_length = it->get<int64_t>();
    }
    if (s > 0) {
      const PlanRules& prev = rule_sets.back();
      if (r.alphas.size() != prev.alphas.size() || r.alphas[0].size() != prev.alphas[0].size()) {
        input_error(
            "{}: {}alphas is {} x {}, rules[0].alphas is {} x {} (every rule set needs "
            "the same [layers][heads] shape)",
            src, prefix, r.alphas.size(), r.alphas[0].size(), prev.alphas.size(),
            prev.alphas[0].size());
      }
      if (!prev.max_length) {
        input_error(
            "{}: rules[{}].max_length is null but rules[{}] follows it (the unbounded rule "
            "set must be last)",
            src, s - 1, s);
      }
      if (r.max_length && *r.max_length <= *prev.max_length) {
        input_error(
            "{}: {}max_length is {} after rules[{}].max_length {} (rule sets must be "
            "sorted by max_length, ascending, null last)",
            src, prefix, *r.max_length, s - 1, *prev.max_length);
      }
    }
    rule_sets.push_back(std::move(r));
  }
  if (auto it = j.find("density"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      input_error("{}: field 'density' is {}, expected an object {{\"8192\": 0.5, ...}}", src,
                  shown(*it));
    }
    for (auto& [k, v] : it->items()) {
      int64_t n = parse_length_key(k, src, "density");
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0) {
        input_error("{}: density[\"{}\"] is {}, expected a number >= 0", src, k, shown(v));
      }
      density[n] = v.get<double>();
    }
  }
  if (auto it = j.find("lengths"); it != j.end()) lengths = *it;
  static const char* kKnown[] = {"format",      "model", "sink",    "block",  "min_cache",
                                 "per_kv_head", "rules", "density", "lengths"};
  for (auto& [k, v] : j.items()) {
    bool known = false;
    for (const char* kk : kKnown) known |= k == kk;
    if (!known) extra[k] = v;
  }
}

// A number as the reference (Python json) writes it: integers that were integer literals stay
// integers, floats are the shortest round-trip form with ".0" when integral.
std::string number_text(double v, bool was_int) {
  if (was_int && v == std::floor(v) && std::fabs(v) < 9.0e18) return fmt::format("{}", int64_t(v));
  return json(v).dump();
}

bool flag(const std::vector<std::vector<bool>>& m, size_t l, size_t h) {
  return l < m.size() && h < m[l].size() && m[l][h];
}

// A [layers][heads] matrix, Python json.dump style: compact ("[[a, b], [c, d]]") or indent=4
// starting at nesting depth `depth`.
void append_matrix_python(std::string& s, const std::vector<std::vector<double>>& m,
                          const std::vector<std::vector<bool>>& ints, bool indent, int depth) {
  auto nl = [&](int d) {
    s += '\n';
    s.append(size_t(4 * d), ' ');
  };
  s += '[';
  for (size_t l = 0; l < m.size(); ++l) {
    if (l) s += indent ? "," : ", ";
    if (indent) nl(depth + 1);
    s += '[';
    for (size_t h = 0; h < m[l].size(); ++h) {
      if (h) s += indent ? "," : ", ";
      if (indent) nl(depth + 2);
      s += number_text(m[l][h], flag(ints, l, h));
    }
    if (indent) nl(depth + 1);
    s += ']';
  }
  if (indent) nl(depth);
  s += ']';
}

// A matrix for the extended form: one line per layer.
void append_matrix_rows(std::string& s, const std::vector<std::vector<double>>& m,
                        const std::vector<std::vector<bool>>& ints, const std::string& pad) {
  s += "[\n";
  for (size_t l = 0; l < m.size(); ++l) {
    s += pad + "  [";
    for (size_t h = 0; h < m[l].size(); ++h) {
      if (h) s += ", ";
      s += number_text(m[l][h], flag(ints, l, h));
    }
    s += l + 1 < m.size() ? "],\n" : "]\n";
  }
  s += pad + "]";
}

}  // namespace

Plan Plan::from_json(const json& j, const std::string& src) {
  if (!j.is_object()) {
    input_error(
        "{}: top level is {}, expected an object {{\"alphas\": [[...]], \"betas\": [[...]]}} "
        "or {{\"format\": \"{}\", ...}}",
        src, kind_of(j), kPlanFormat);
  }
  PlanFields f;
  PlanForm form;
  if (j.contains("format")) {
    form = PlanForm::kExtended;
    parse_extended(j, src, f);
  } else {
    form = PlanForm::kReference;
    if (j.contains("rules")) {
      input_error("{}: has 'rules' but no 'format' (an extended plan needs \"format\": \"{}\")",
                  src, kPlanFormat);
    }
    if (!j.contains("alphas") || !j.contains("betas")) {
      input_error(
          "{}: missing field '{}' (expected a reference plan {{\"alphas\": [[...]], "
          "\"betas\": [[...]]}} or an extended plan with \"format\": \"{}\")",
          src, j.contains("alphas") ? "betas" : "alphas", kPlanFormat);
    }
    f.rule_sets.push_back(read_rules(j, src, ""));
    for (auto& [k, v] : j.items()) {
      if (k != "alphas" && k != "betas") f.extra[k] = v;
    }
  }
  Plan p = from_rules(std::move(f.rule_sets));
  p.source_ = src;
  p.set_params(f.sink, f.block, f.min_cache);
  p.per_kv_head_ = f.per_kv;
  p.model_ = std::move(f.model);
  p.density_ = std::move(f.density);
  p.lengths_ = std::move(f.lengths);
  p.extra_ = std::move(f.extra);
  p.form_ = form;
  return p;
}

Plan Plan::parse(const std::string& text, const std::string& src) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e999
    std::string hint;
    for (const char* bad : {"NaN", "Infinity"}) {
      if (text.find(bad) != std::string::npos) {
        hint = fmt::format(" ({} is not a JSON number: every alpha and beta must be finite)", bad);
      }
    }
    // e.what() reads "[json.exception.parse_error.101] parse error at line 1, column 9: ...".
    std::string what = e.what();
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    if (e.id == 406) {  // out_of_range.406: a number too large for a double
      input_error("{}: {} (expected finite numbers)", src, what);
    }
    input_error("{}: not valid JSON: {}{}", src, what, hint);
  }
  Plan p = from_json(j, src);
  p.layout_ = text.size() > 1 && text[0] == '{' && text[1] == '\n' ? PlanLayout::kIndent4
                                                                   : PlanLayout::kCompact;
  return p;
}

Plan Plan::load(const std::filesystem::path& path) { return parse(read_text(path), path.string()); }

bool Plan::representable_as_reference() const {
  return rules_.size() == 1 && !rules_[0].max_length && sink_ == kPlanSink &&
         block_ == kPlanBlock && min_cache_ == kPlanMinCache;
}

std::string Plan::to_reference_text(PlanLayout layout) const {
  if (!representable_as_reference()) {
    input_error(
        "{}: cannot be written in the reference form {{\"alphas\", \"betas\"}}: it has {} "
        "rule sets, sink {}, block {}, min_cache {} (the reference form holds one "
        "unbounded rule set with sink 64, block 64, min_cache 128; write the extended "
        "form)",
        source_, rules_.size(), sink_, block_, min_cache_);
  }
  const PlanRules& r = rules_[0];
  bool indent = layout == PlanLayout::kIndent4;
  std::string s = indent ? "{\n    \"alphas\": " : "{\"alphas\": ";
  append_matrix_python(s, r.alphas, r.alphas_int, indent, 1);
  s += indent ? ",\n    \"betas\": " : ", \"betas\": ";
  append_matrix_python(s, r.betas, r.betas_int, indent, 1);
  for (auto& [k, v] : extra_.items()) {
    s += indent ? ",\n    " : ", ";
    s += json(k).dump() + ": " + v.dump();
  }
  s += indent ? "\n}" : "}";
  return s;
}

std::string Plan::to_extended_text() const {
  std::string s = "{\n";
  s += fmt::format("  \"format\": \"{}\",\n", kPlanFormat);
  if (model_) s += fmt::format("  \"model\": {},\n", json(*model_).dump());
  s += fmt::format("  \"sink\": {},\n  \"block\": {},\n  \"min_cache\": {},\n", sink_, block_,
                   min_cache_);
  if (per_kv_head_) s += "  \"per_kv_head\": true,\n";
  s += "  \"rules\": [\n";
  for (size_t i = 0; i < rules_.size(); ++i) {
    const PlanRules& r = rules_[i];
    s += "    {\n      \"max_length\": ";
    s += r.max_length ? std::to_string(*r.max_length) : "null";
    s += ",\n      \"alphas\": ";
    append_matrix_rows(s, r.alphas, r.alphas_int, "      ");
    s += ",\n      \"betas\": ";
    append_matrix_rows(s, r.betas, r.betas_int, "      ");
    s += i + 1 < rules_.size() ? "\n    },\n" : "\n    }\n";
  }
  s += "  ]";
  if (!density_.empty()) {
    s += ",\n  \"density\": {";
    bool first = true;
    for (auto& [n, d] : density_) {
      s += fmt::format("{}\"{}\": {}", first ? "" : ", ", n, json(d).dump());
      first = false;
    }
    s += "}";
  }
  if (!lengths_.is_null()) s += ",\n  \"lengths\": " + lengths_.dump();
  for (auto& [k, v] : extra_.items()) s += ",\n  " + json(k).dump() + ": " + v.dump();
  s += "\n}\n";
  return s;
}

void Plan::save(const std::filesystem::path& path, PlanForm form) const {
  std::string text = form == PlanForm::kReference ? to_reference_text() : to_extended_text();
  write_text_atomic(path, text);
}

}  // namespace moa
