// Plans as GGUF metadata: see include/moa/model/plan_gguf.h.
#include "moa/model/plan_gguf.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "moa/core/error.h"
#include "moa/model/model.h"

namespace moa {

namespace {

using nlohmann::json;

std::string rule_key(size_t i, const char* field) {
  return fmt::format("moa.rules.{}.{}", i, field);
}

// Layer-major flattening of a (layers, rows) table into FLOAT32s.
std::vector<float> flatten(const std::vector<std::vector<double>>& t) {
  std::vector<float> out;
  for (const auto& row : t) {
    for (double x : row) out.push_back(float(x));
  }
  return out;
}

int64_t get_u32(const GgufFile& g, const std::string& key) {
  const GgufValue* v = g.find(key);
  if (!v)
    input_error("{}: missing metadata key '{}' (expected UINT32; the plan is incomplete)", g.file(),
                key);
  if (v->type != GgufType::kU32) {
    input_error("{}: metadata key '{}' is {}, expected UINT32", g.file(), key,
                gguf_type_name(v->type));
  }
  return int64_t(v->u);
}

// alphas or betas of rule set i as a (layers, rows) JSON table; sets rows from the first table.
json read_table(const GgufFile& g, size_t i, const char* field, int64_t layers,
                const ModelConfig& c, int64_t& rows) {
  const std::string key = rule_key(i, field);
  if (!g.find(key))
    input_error("{}: missing metadata key '{}' (expected ARRAY of FLOAT32)", g.file(), key);
  const GgufValue& a = g.get_array(key, GgufType::kF32);
  const uint64_t per_q = uint64_t(layers * c.heads), per_kv = uint64_t(layers * c.kv_heads);
  if (rows == 0 && (a.count == per_q || a.count == per_kv))
    rows = a.count == per_q ? c.heads : c.kv_heads;
  if (rows == 0 || a.count != uint64_t(layers * rows)) {
    input_error(
        "{}: metadata key '{}' has {} values, expected {} layers x {} heads = {} (or x {} KV heads "
        "= {}; is this plan for another model?)",
        g.file(), key, a.count, layers, c.heads, per_q, c.kv_heads, per_kv);
  }
  json t = json::array();
  for (int64_t l = 0; l < layers; ++l) {
    json row = json::array();
    for (int64_t h = 0; h < rows; ++h) row.push_back(double(a.at(uint64_t(l * rows + h)).f));
    t.push_back(std::move(row));
  }
  return t;
}

}  // namespace

std::vector<std::pair<std::string, GgufOwnedValue>> plan_gguf_metadata(const Plan& plan) {
  using V = GgufOwnedValue;
  std::vector<std::pair<std::string, V>> kv;
  kv.emplace_back("moa.format", V::string(kPlanFormat));
  kv.emplace_back("moa.sink", V::u32(uint32_t(plan.sink())));
  kv.emplace_back("moa.block", V::u32(uint32_t(plan.block())));
  kv.emplace_back("moa.min_cache", V::u32(uint32_t(plan.min_cache())));
  kv.emplace_back("moa.rule_count", V::u32(uint32_t(plan.rule_set_count())));
  for (size_t i = 0; i < plan.rule_set_count(); ++i) {
    const PlanRules& r = plan.rule_sets()[i];
    if (r.max_length) kv.emplace_back(rule_key(i, "max_length"), V::u64(uint64_t(*r.max_length)));
    kv.emplace_back(rule_key(i, "alphas"), V::f32_array(flatten(r.alphas)));
    kv.emplace_back(rule_key(i, "betas"), V::f32_array(flatten(r.betas)));
  }
  if (plan.model()) kv.emplace_back("moa.model", V::string(*plan.model()));
  return kv;
}

bool is_plan_gguf_key(const std::string& key) { return key.rfind("moa.", 0) == 0; }

std::optional<Plan> embedded_plan(const GgufFile& g) {
  const GgufValue* fmt_v = g.find("moa.format");
  if (!fmt_v) {
    for (const auto& [k, v] : g.metadata()) {
      if (is_plan_gguf_key(k)) {
        input_error("{}: metadata key '{}' without 'moa.format' (expected moa.format = \"{}\")",
                    g.file(), k, kPlanFormat);
      }
    }
    return std::nullopt;
  }
  const std::string format = g.get_string("moa.format");
  if (format != kPlanFormat) {
    input_error("{}: metadata key 'moa.format' is '{}', expected '{}'", g.file(), format,
                kPlanFormat);
  }
  const ModelConfig c = config_from_gguf(g);
  const int64_t count = get_u32(g, "moa.rule_count");
  if (count < 1 || count > 1024) {
    input_error("{}: metadata key 'moa.rule_count' is {}, expected 1..1024", g.file(), count);
  }
  json j = {{"format", kPlanFormat},
            {"sink", get_u32(g, "moa.sink")},
            {"block", get_u32(g, "moa.block")},
            {"min_cache", get_u32(g, "moa.min_cache")}};
  if (g.find("moa.model")) j["model"] = g.get_string("moa.model");
  int64_t rows = 0;
  json rules = json::array();
  for (size_t i = 0; i < size_t(count); ++i) {
    json r = {{"max_length", nullptr}};
    const std::string mk = rule_key(i, "max_length");
    if (const GgufValue* v = g.find(mk)) {
      if (v->type != GgufType::kU64 || v->u == 0 || v->u > uint64_t(INT64_MAX)) {
        input_error("{}: metadata key '{}' is {} {}, expected UINT64 > 0", g.file(), mk,
                    gguf_type_name(v->type), v->u);
      }
      r["max_length"] = int64_t(v->u);
    }
    r["alphas"] = read_table(g, i, "alphas", c.layers, c, rows);
    r["betas"] = read_table(g, i, "betas", c.layers, c, rows);
    rules.push_back(std::move(r));
  }
  j["rules"] = std::move(rules);
  if (rows != c.heads) j["per_kv_head"] = true;
  Plan p = Plan::from_json(j, g.file() + " (moa.* keys)");
  p.check_shape(c.layers, c.heads, c.kv_heads);
  return p;
}

}  // namespace moa
