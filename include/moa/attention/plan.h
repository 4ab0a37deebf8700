// MoA plans: one elastic rule (alpha, beta) per (layer, head), and what they mean at a length N.
//
// At length N a head keeps
//   cache(N) = ceil_block(max(min_cache, min(floor(alpha + beta*N), N)))      (raw, may exceed N)
//   kept(N)  = min(N, cache(N))                                               (tokens held)
//   sink     = min(cache(N), plan sink)                                       (first tokens)
//   window   = cache(N) - sink                                                (most recent tokens)
// and query i sees key j iff j <= i and (j < sink or i - j < window)  (docs/ARCHITECTURE.md, "The mask").
// The reference plans use block 64, min_cache 128, sink 64.
//
// A plan holds one or more rule sets keyed by max_length: the first whose max_length >= N
// applies (null = unbounded); beyond the last bounded set the last set applies.
// Rows are query heads, or KV heads when the plan is per KV head (then each query head of a group
// uses its KV head's rule). Plans know nothing of the model: shapes come in as AttentionShape.
//
// Files: the reference form {"alphas": [[...]], "betas": [[...]]} (layer x head) is read and
// written unchanged; the extended form {"format": "moa-plan/1", ...} adds sink, block, min_cache,
// rule sets, the model name, a density map and free "lengths" (docs/ARCHITECTURE.md, "Formats").
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "moa/attention/attention_spec.h"

namespace moa {

inline constexpr int64_t kPlanSink = 64;
inline constexpr int64_t kPlanBlock = 64;
inline constexpr int64_t kPlanMinCache = 128;
inline constexpr const char* kPlanFormat = "moa-plan/1";

// One rule set: alphas[layer][head], betas[layer][head].
struct PlanRules {
  std::optional<int64_t> max_length;  // applies to N <= max_length; nullopt = unbounded
  std::vector<std::vector<double>> alphas, betas;
  // Formatting only: which values were integer literals in the file they were read from (so
  // that a rewrite keeps `1024` as `1024` and `1024.0` as `1024.0`). Empty = none. A flagged value
  // that is no longer integral is written as a float.
  std::vector<std::vector<bool>> alphas_int, betas_int;
};

// What one head keeps at one length: the rule evaluated at N, and the mask it gives.
struct HeadCache {
  int64_t cache = 0;  // raw cache(N): a multiple of block, >= min_cache, may exceed N
  int64_t kept = 0;   // min(N, cache): tokens actually held
  // sink = min(cache, plan sink); window = cache - sink: the most recent tokens seen (the query
  // itself included).
  HeadSpan span{0, 0};
};

// Per-(layer, query head) caches at one length: at[layer * heads + head].
struct PlanCaches {
  int64_t length = 0;
  int64_t layers = 0;
  int64_t heads = 0;  // query heads
  std::vector<HeadCache> at;
  const HeadCache& operator()(int64_t layer, int64_t head) const {
    return at[layer * heads + head];
  }
};

enum class PlanForm { kReference, kExtended };

// How a reference-form file was laid out, so that it can be rewritten byte for byte: Python's
// json.dump without indent (", " and ": " separators) or with indent=4.
enum class PlanLayout { kCompact, kIndent4 };

class Plan {
 public:
  Plan() = default;

  // --- construction ---------------------------------------------------------------------------
  // One rule set (unbounded) with these rules; reference parameters (sink 64, block 64, min 128).
  // Checks that the shape is rectangular and non-empty and values finite (MOA_CHECK: callers
  // building plans in code pass well-formed data; files go through load/parse).
  static Plan from_rules(std::vector<PlanRules> rule_sets);
  // Every head (alpha, beta). StreamingLLM at KV density D is uniform(L, H, 0, D).
  static Plan uniform(int64_t layers, int64_t heads, double alpha, double beta);
  // alpha 0, beta 1: cache(N) >= N for every head at every N (see is_dense_at).
  static Plan dense(int64_t layers, int64_t heads);

  // --- files ----------------------------------------------------------------------------------
  // Reads either form. Every bad input is one InputError naming `source`, the field
  // (`alphas[3]`, `rules[1].betas[0][7]`), the value seen and what was expected.
  static Plan load(const std::filesystem::path& path);
  static Plan parse(const std::string& text, const std::string& source);
  static Plan from_json(const nlohmann::json& j, const std::string& source);

  // Writes atomically (temp file + rename). The reference form needs exactly one unbounded rule
  // set and reference parameters (sink 64, block 64, min_cache 128); otherwise InputError.
  void save(const std::filesystem::path& path, PlanForm form) const;
  void save(const std::filesystem::path& path) const { save(path, form_); }
  std::string to_reference_text(PlanLayout layout) const;
  std::string to_reference_text() const { return to_reference_text(layout_); }
  std::string to_extended_text() const;
  bool representable_as_reference() const;

  // --- shape ----------------------------------------------------------------------------------
  int64_t layers() const;
  int64_t heads() const;  // rows per layer: query heads, or KV heads when per_kv_head()
  size_t rule_set_count() const { return rules_.size(); }
  const std::vector<PlanRules>& rule_sets() const { return rules_; }
  // The rule set that applies at length N.
  const PlanRules& rules_for(int64_t n) const;

  // Checks the plan against a model: same layer count, and rows per layer equal to the query
  // heads or the KV heads. Throws InputError like
  //   "plan.json: layer 12 has 30 heads, model has 32 query heads and 8 KV heads (is this plan
  //    for another model?)".
  // Returns true when the plan is per KV head for this model (rows == kv_heads != heads), and
  // refuses a plan marked per_kv_head whose rows are not the model's KV heads.
  bool check_shape(int64_t layers, int64_t heads, int64_t kv_heads) const;
  bool check_shape(const AttentionShape& m) const { return check_shape(m.layers, m.heads, m.kv_heads); }
  // Plan row used by query head `q_head` of a model with these heads (after check_shape).
  int64_t row_of(int64_t q_head, const AttentionShape& m) const;

  // --- the cache rule -------------------------------------------------------------------------
  // Plan row coordinates (layer, row); N >= 1.
  HeadCache head_cache(int64_t layer, int64_t row, int64_t n) const;
  int64_t cache_tokens(int64_t layer, int64_t row, int64_t n) const;   // raw cache(N)
  int64_t kept_tokens(int64_t layer, int64_t row, int64_t n) const;    // min(N, cache(N))
  int64_t sink_tokens(int64_t layer, int64_t row, int64_t n) const;    // min(cache(N), sink)
  int64_t window_tokens(int64_t layer, int64_t row, int64_t n) const;  // cache(N) - sink
  // Per-(layer, query head) caches for a model at length N (checks the shape first).
  PlanCaches caches(const AttentionShape& m, int64_t n) const;
  // KV density at N: mean over query heads of min(N, cache(N)) / N.
  double kv_density(const AttentionShape& m, int64_t n) const;
  // Stored KV density at N: the fraction of dense KV bytes the caches hold (up to the sink and
  // block rounding of KvCache). A KV head stores the largest cache of its query group, so this is
  // the mean over (layer, KV head) of the group's largest min(N, cache(N)) / N: kv_density for MHA
  // or a per-KV-head plan, more when a GQA group's query heads have different rules.
  double stored_density(const AttentionShape& m, int64_t n) const;
  // Prefill density at N: kept causal entries / (N(N+1)/2) summed over query heads, exact in
  // O(heads): query i of a head with cache c sees min(i+1, c) keys.
  double prefill_density(const AttentionShape& m, int64_t n) const;
  // True when every head keeps all N tokens at length N (the plan is dense there).
  bool is_dense_at(int64_t n) const;
  // (alpha, beta) when every head of every rule set has the same rule.
  std::optional<std::pair<double, double>> uniform_rule() const;

  // --- parameters -----------------------------------------------------------------------------
  int64_t sink() const { return sink_; }
  int64_t block() const { return block_; }
  int64_t min_cache() const { return min_cache_; }
  // InputError when sink < 0 or sink >= min_cache (the window would be empty).
  void set_sink(int64_t sink);
  // InputError when block or min_cache is outside 1..2^40, or sink >= min_cache.
  void set_params(int64_t sink, int64_t block, int64_t min_cache);
  bool per_kv_head() const { return per_kv_head_; }
  void set_per_kv_head(bool v) { per_kv_head_ = v; }

  // --- metadata (extended form) ---------------------------------------------------------------
  const std::optional<std::string>& model() const { return model_; }
  void set_model(std::optional<std::string> m) { model_ = std::move(m); }
  const std::map<int64_t, double>& density() const { return density_; }  // {N: KV density}
  std::map<int64_t, double>& density() { return density_; }
  const nlohmann::json& lengths() const { return lengths_; }  // free object, null when absent
  void set_lengths(nlohmann::json l) { lengths_ = std::move(l); }
  const nlohmann::json& extra() const { return extra_; }  // unknown top-level keys, kept as read
  PlanForm form() const { return form_; }
  PlanLayout layout() const { return layout_; }
  const std::string& source() const { return source_; }

 private:
  std::vector<PlanRules> rules_;
  int64_t sink_ = kPlanSink;
  int64_t block_ = kPlanBlock;
  int64_t min_cache_ = kPlanMinCache;
  bool per_kv_head_ = false;
  std::optional<std::string> model_;
  std::map<int64_t, double> density_;
  nlohmann::json lengths_;  // null when absent
  nlohmann::json extra_ = nlohmann::json::object();
  PlanForm form_ = PlanForm::kExtended;
  PlanLayout layout_ = PlanLayout::kCompact;
  std::string source_ = "plan";
};

// The cache rule for one head, with explicit parameters (shared by the plan, the optimiser and
// the runtime so that they cannot drift apart). N >= 1.
HeadCache head_cache_rule(double alpha, double beta, int64_t n, int64_t sink, int64_t block,
                          int64_t min_cache);
// Kept causal entries of one head with raw cache c at length N: sum_{i<N} min(i+1, c).
int64_t prefill_entries(int64_t cache, int64_t n);

}  // namespace moa
