#include "moa/compress/pipeline.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <optional>

#include "moa/data/calib.h"
#include "moa/compress/calib_set.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/core/hash.h"
#include "moa/compress/optimizer.h"
#include "moa/compress/profiler.h"
#include "moa/data/tasks.h"
#include "moa/compress/validate.h"

namespace moa {

namespace fs = std::filesystem;

namespace {

std::string density_tag(double d) { return fmt::format("d{:.4f}", d); }

// Rate and ETA lines at most every few seconds, so logs stay short.
struct Throttle {
  std::chrono::steady_clock::time_point last{};
  bool due(bool final) {
    auto now = std::chrono::steady_clock::now();
    if (!final && now - last < std::chrono::seconds(3)) return false;
    last = now;
    return true;
  }
};

}  // namespace

std::string model_fingerprint(const fs::path& dir) {
  uint64_t h = kFnv1aBasis;
  std::vector<fs::path> files;
  if (fs::is_regular_file(dir)) {
    files.push_back(dir);  // a .gguf file is the whole model
  } else {
    for (const auto& e : fs::directory_iterator(dir)) {
      const auto name = e.path().filename().string();
      if (name == "config.json" || e.path().extension() == ".safetensors") files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<char> buf;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) input_error("{}: cannot read", f.string());
    const auto size = int64_t(fs::file_size(f));
    const std::string name = f.filename().string() + ":" + std::to_string(size);
    h = fnv1a(name, h);
    const int64_t chunk = std::min<int64_t>(size, int64_t(1) << 20);
    for (int64_t off : {int64_t(0), size - chunk}) {
      buf.resize(size_t(chunk));
      in.seekg(off);
      in.read(buf.data(), chunk);
      h = fnv1a(std::string_view(buf.data(), size_t(in.gcount())), h);
    }
  }
  return fmt::format("{:016x}", h);
}

// Every stage depends on the calibration prompts, which depend on --samples and --seed: a work
// directory made with other values would otherwise be reused silently (calib_L.jsonl is reused by
// name). The values are stamped in calib.json; on a change, or in a directory with stages but no
// stamp (older versions), this project's stage files are removed and made again. Only files
// with the stage names are touched: --work may point at a directory holding other things.
static void clear_stages_of_other_calibration(const CompressOptions& o,
                                              const std::function<void(const std::string&)>& log) {
  const fs::path stamp = o.work / "calib.json";
  const nlohmann::json want = {{"samples", o.samples}, {"seed", o.seed}};
  auto is_stage = [](const fs::directory_entry& e) {
    const std::string n = e.path().filename().string();
    if (e.is_directory()) return n.starts_with("plans-d");
    return (n.starts_with("calib_") && n.ends_with(".jsonl")) ||
           (n.starts_with("profile_") && n.ends_with(".safetensors")) ||
           (n.starts_with("validate-d") && n.ends_with(".json"));
  };
  std::vector<fs::path> stages;
  for (const auto& e : fs::directory_iterator(o.work)) {
    if (is_stage(e)) stages.push_back(e.path());
  }
  std::optional<nlohmann::json> had;
  if (fs::exists(stamp)) had = nlohmann::json::parse(read_text(stamp), nullptr, false);
  if (had && !had->is_object()) had.reset();  // unreadable: as if unrecorded
  if (had && *had == want) return;
  if (!stages.empty()) {
    log(fmt::format(
        "{} holds stages made with {}; this run has --samples {} --seed {}: "
        "making every stage again",
        o.work.string(),
        had ? fmt::format("--samples {} --seed {}", had->value("samples", nlohmann::json()).dump(),
                          had->value("seed", nlohmann::json()).dump())
            : std::string("unrecorded calibration settings"),
        o.samples, o.seed));
    for (const fs::path& p : stages) fs::remove_all(p);
  }
  write_text_atomic(stamp, want.dump() + "\n");
}

CompressResult run_compress(const Model& m, const Tokenizer& tok, const std::string& model_name,
                            const CompressOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  CompressOptions o = opt;
  auto log = [&](const std::string& s) {
    if (o.log) o.log(s);
  };
  if (!(o.density > 0 && o.density <= 1)) input_error("--density {}: expected a KV density in (0, 1]", o.density);
  const int64_t C = m.cfg.max_position;
  if (C < 512) input_error("compress: the model's context ({} tokens) is too short to profile; need >= 512", C);
  if (o.profile_lengths.empty()) {
    // A LongEval prompt needs ~130 tokens before its first line: shorter profiles hold nothing.
    for (int64_t L : {C / 4, C / 2, C}) {
      L = std::max<int64_t>(L, 256);
      if (o.profile_lengths.empty() || o.profile_lengths.back() != L) o.profile_lengths.push_back(L);
    }
  }
  if (o.extend_lengths.empty()) o.extend_lengths = {2 * C};
  if (o.validation_length == 0) o.validation_length = 3 * C / 4;
  const bool short_by_default = o.short_validation_length == 0;
  if (short_by_default) o.short_validation_length = std::max<int64_t>(256, C / 8);
  if (o.short_validation_length < -1 || (o.short_validation_length > 0 && o.short_validation_length < 128)) {
    input_error("--short-validation-length {}: expected a length in [128, {}], or -1 for none", o.short_validation_length, C);
  }
  if (o.short_validation_length > C) {
    input_error("--short-validation-length {} exceeds the model's context {}", o.short_validation_length, C);
  }
  std::vector<int64_t> vlengths = {o.validation_length};
  if (o.short_validation_length > 0 && o.short_validation_length != o.validation_length) {
    vlengths.insert(vlengths.begin(), o.short_validation_length);
  }
  for (int64_t L : o.profile_lengths) {
    if (L < 128 || L > C) input_error("--profile-lengths: {} is outside [128, {}] (the model's context)", L, C);
  }
  if (o.validation_length > C) input_error("--validation-length {} exceeds the model's context {}", o.validation_length, C);
  if (o.work.empty()) o.work = o.out.parent_path() / ("moa-work-" + model_name);
  fs::create_directories(o.work);
  if (!o.model_id.empty()) {
    const fs::path stamp = o.work / "model_id.txt";
    if (fs::exists(stamp)) {
      std::string had = read_text(stamp);
      while (!had.empty() && (had.back() == '\n' || had.back() == ' ')) had.pop_back();
      if (had != o.model_id) {
        input_error("{}: holds stages computed for another checkpoint (model id {}, this one is {}); "
                    "remove the directory or pass another --work", o.work.string(), had, o.model_id);
      }
    } else {
      write_text_atomic(stamp, o.model_id + "\n");
    }
  }
  clear_stages_of_other_calibration(o, log);
  CompressResult res;
  res.density = o.density;

  // 1. Calibration prompts per length, answered by the dense model.
  std::vector<int64_t> calib_lengths = o.profile_lengths;
  for (int64_t L : vlengths) {
    if (std::find(calib_lengths.begin(), calib_lengths.end(), L) == calib_lengths.end()) calib_lengths.push_back(L);
  }
  WordLists words = WordLists::load(o.words.empty() ? WordLists::default_dir() : o.words);
  for (int64_t L : calib_lengths) {
    const fs::path f = o.work / fmt::format("calib_{}.jsonl", L);
    if (fs::exists(f)) {
      res.reused.push_back(f.filename().string());
      continue;
    }
    CalibOptions c;
    c.lengths = {L};
    c.samples_per_length = o.samples;
    c.seed = o.seed * 7919 + uint64_t(L);
    Throttle th;
    auto t = std::chrono::steady_clock::now();
    auto progress = [&](int64_t done, int64_t total) {
      if (!th.due(done == total)) return;
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
      log(fmt::format("calib {}: {}/{}  {:.2f} prompts/s  ETA {:.0f}s", L, done, total, double(done) / el,
                      el / double(done) * double(total - done)));
    };
    std::vector<nlohmann::json> rows;
    try {
      rows = make_calibration_set(m, tok, words, c, progress);
    } catch (const InputError& e) {
      // The default short length may hold no prompt with this tokenizer: validate without it.
      if (!(short_by_default && L == o.short_validation_length)) throw;
      log(fmt::format("validate: no short validation at {} tokens ({})", L, e.what()));
      vlengths.erase(std::remove(vlengths.begin(), vlengths.end(), L), vlengths.end());
      continue;
    }
    write_text_atomic(f, to_jsonl(rows));
  }

  // 2. Profiles (each resumes from its own partial checkpoint).
  std::vector<Profile> profiles;
  std::vector<std::string> names;
  for (int64_t L : o.profile_lengths) {
    const fs::path f = o.work / fmt::format("profile_{}.safetensors", L);
    std::optional<Profile> have;
    if (fs::exists(f)) have = Profile::load(f);
    if (have && have->influence_kind != influence_name(o.influence)) {
      log(fmt::format("profile {}: {} holds '{}' influence, this run '{}'; profiling again", L, f.string(),
                      have->influence_kind, influence_name(o.influence)));
      fs::remove(f);
      have.reset();
    }
    if (have) {
      res.reused.push_back(f.filename().string());
      profiles.push_back(std::move(*have));
    } else {
      const fs::path data = o.work / fmt::format("calib_{}.jsonl", L);
      std::vector<TokenizedSample> samples;
      for (const auto& s : load_calib(data)) samples.push_back(tokenize_sample(tok, s));
      ProfileOptions po;
      po.length = L;
      po.model_name = model_name;
      po.kind = o.influence;
      Throttle th;
      po.progress = [&](const ProfileProgress& p) {
        if (!th.due(p.done == p.total)) return;
        log(fmt::format("profile {}: {}/{}  {:.2f} samples/s  ETA {:.0f}s", L, p.done, p.total, p.samples_per_s, p.eta_s));
      };
      run_profile(m, samples, data, f, po);
      profiles.push_back(Profile::load(f));
    }
    names.push_back(f.string());
  }

  // 3. Pareto plans at this density.
  const fs::path plans_dir = o.work / ("plans-" + density_tag(o.density));
  check_profiles(profiles, names);
  // A length where even the minimum cache exceeds the budget (min_cache > D*N: every head keeps
  // at least 128 tokens) cannot take part: its density bound is unreachable. A length where the
  // minimum cache takes more than half the budget leaves no room to choose either: its bound
  // forces nearly every head to the minimum at that length, and the elastic rules then cannot
  // reach far at the long lengths (moa-tiny at 0.25 with 512 profiled: every head beta 0.25,
  // validation NLL 0.90 against dense's 0.009; without it 0.06). Such lengths are left out of
  // this density's objectives and constraints while a roomier one remains, and said so.
  std::vector<Profile> used;
  std::vector<int64_t> used_lengths, extend;
  std::vector<std::string> left_out;
  auto share = [&](int64_t L) { return double(kPlanMinCache) / (o.density * double(L)); };
  bool any_roomy = false;
  for (const Profile& p : profiles) any_roomy = any_roomy || share(p.length) <= 0.5;
  for (size_t i = 0; i < profiles.size(); ++i) {
    const double sh = share(profiles[i].length);
    if (sh <= (any_roomy ? 0.5 : 1.0)) {
      used.push_back(profiles[i]);
      used_lengths.push_back(profiles[i].length);
    } else {
      left_out.push_back(fmt::format("optimize: profile length {} left out at density {} (the minimum cache of {} tokens is "
                                     "{:.2f} of its budget{})",
                                     profiles[i].length, o.density, kPlanMinCache, sh, sh <= 1.0 ? ", over half" : ""));
    }
  }
  for (int64_t L : o.extend_lengths) {
    if (double(kPlanMinCache) <= o.density * double(L)) extend.push_back(L);
  }
  // Plans made under other lengths (other options, or an older selection rule) are made again.
  const nlohmann::json lengths_key = {
      {"profile", used_lengths}, {"extend", extend}, {"influence", influence_name(o.influence)}};
  const fs::path vfile = o.work / ("validate-" + density_tag(o.density) + ".json");
  if (fs::exists(plans_dir / "summary.json") &&
      nlohmann::json::parse(read_text(plans_dir / "summary.json")).value("lengths", nlohmann::json()) != lengths_key) {
    log(fmt::format("optimize: {} was made for other lengths or another influence kind; making it again", plans_dir.string()));
    fs::remove_all(plans_dir);
    fs::remove(vfile);
  }
  if (fs::exists(plans_dir / "summary.json")) {
    res.reused.push_back(plans_dir.filename().string());
  } else {
    for (const std::string& line : left_out) log(line);
    if (used.empty()) {
      input_error("--density {}: below the minimum cache ({} tokens) at every profile length; profile longer lengths",
                  o.density, kPlanMinCache);
    }
    auto rules = candidate_rules(used_lengths, extend);
    RuleTables tables = build_rule_tables(used, extend, rules);
    OptimizeOptions oo;
    oo.density = o.density;
    oo.max_rules_per_layer = int32_t(o.max_rules_per_layer);
    oo.grid = o.grid;
    oo.solver = o.solver;
    oo.node_limit = o.node_limit;
    oo.cbc_seconds = o.cbc_seconds;
    const auto t_solve = std::chrono::steady_clock::now();
    oo.progress = [&](int64_t done, int64_t total, const std::string& what) {
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_solve).count();
      const double eta = done > 0 ? el / double(done) * double(total - done) : 0;
      log(fmt::format("optimize: solve {}/{} {} [{:.1f} s, ETA {:.0f} s]", done, total, what, el, eta));
    };
    OptimizeResult r = optimize_pareto(tables, oo);
    fs::create_directories(plans_dir);
    nlohmann::json summary = {{"density", o.density}, {"plans", nlohmann::json::array()}};
    for (size_t i = 0; i < r.plans.size(); ++i) {
      const std::string file = fmt::format("plan_{:03d}.json", i);
      Plan p = make_plan(tables, r.plans[i]);
      p.save(plans_dir / file, PlanForm::kExtended);
      nlohmann::json loss = nlohmann::json::object(), dens = nlohmann::json::object();
      for (size_t k = 0; k < tables.profile_lengths.size(); ++k) loss[std::to_string(tables.profile_lengths[k])] = r.plans[i].loss[k];
      for (size_t k = 0; k < tables.lengths.size(); ++k) dens[std::to_string(tables.lengths[k])] = r.plans[i].density[k];
      summary["plans"].push_back({{"file", file}, {"loss", loss}, {"density", dens}});
    }
    summary["lengths"] = lengths_key;
    summary["solves"] = r.solves;
    summary["cbc_fallbacks"] = r.cbc_fallbacks;
    summary["unproven_solves"] = r.unproven_solves;
    summary["seconds"] = r.seconds;
    write_text_atomic(plans_dir / "summary.json", summary.dump(2) + "\n");
    log(fmt::format("optimize: {} Pareto plans from {} solves ({} handed to CBC at the node limit) in {:.1f}s",
                    r.plans.size(), r.solves, r.cbc_fallbacks, r.seconds));
    if (r.unproven_solves > 0) log(fmt::format("optimize: warning: {} solves not proven optimal", r.unproven_solves));
  }

  // 4. Validation at lengths not profiled; the lowest mean NLL / dense NLL wins.
  nlohmann::json v;
  if (fs::exists(vfile)) {
    v = nlohmann::json::parse(read_text(vfile));
    if (v.value("validation_lengths", nlohmann::json()) != nlohmann::json(vlengths)) {
      log(fmt::format("validate: {} was made at other lengths; validating again", vfile.string()));
      v = nlohmann::json();
    } else {
      res.reused.push_back(vfile.filename().string());
    }
  }
  if (v.is_null()) {
    std::vector<NamedPlan> plans;
    for (const auto& f : list_plan_files(plans_dir)) plans.push_back({f.filename().string(), Plan::load(f)});
    if (plans.empty()) input_error("{}: no plans to validate", plans_dir.string());
    nlohmann::json per_length = nlohmann::json::object();
    std::map<std::string, double> score;
    for (int64_t L : vlengths) {
      std::vector<TokenizedSample> samples;
      for (const auto& s : load_calib(o.work / fmt::format("calib_{}.jsonl", L))) samples.push_back(tokenize_sample(tok, s));
      Throttle th;
      ValidationResult r = validate_plans(m, plans, samples, L, [&](int64_t done, int64_t total) {
        if (th.due(done == total)) log(fmt::format("validate at {}: {}/{}", L, done, total));
      });
      per_length[std::to_string(L)] = {{"best", r.best}, {"nll", r.nll}, {"dense_nll", r.dense_nll}, {"samples", r.samples}};
      // Relative to dense, so that each length weighs the same whatever its NLL scale.
      for (const auto& [name, nll] : r.nll) score[name] += nll / std::max(r.dense_nll, 1e-12) / double(vlengths.size());
    }
    std::string best;
    for (const auto& [name, sc] : score)  // in name order: the first on ties
      if (best.empty() || sc < score[best]) best = name;
    const nlohmann::json& main = per_length[std::to_string(o.validation_length)];
    v = {{"best", best},
         {"score", score},
         {"nll", main["nll"]},
         {"dense_nll", main["dense_nll"]},
         {"samples", main["samples"]},
         {"length", o.validation_length},
         {"validation_lengths", vlengths},
         {"per_length", per_length}};
    write_text_atomic(vfile, v.dump(2) + "\n");
    log(fmt::format("validate: {} wins (mean NLL / dense NLL {:.4f} over lengths {})", best, score[best],
                    fmt::join(vlengths, ", ")));
  }
  res.best = v["best"].get<std::string>();
  res.validation_nll = v["nll"][res.best].get<double>();
  res.dense_validation_nll = v["dense_nll"].get<double>();
  res.pareto_plans = int64_t(v["nll"].size());

  // The chosen plan, with where it came from.
  Plan best = Plan::load(plans_dir / res.best);
  nlohmann::json lengths = best.lengths().is_object() ? best.lengths() : nlohmann::json::object();
  lengths["validation"] = o.validation_length;
  lengths["validation_nll"] = res.validation_nll;
  lengths["dense_validation_nll"] = res.dense_validation_nll;
  lengths["validation_lengths"] = vlengths;
  best.set_lengths(lengths);
  if (!best.model()) best.set_model(model_name);
  best.save(o.out, PlanForm::kExtended);
  const ModelShape shape{m.cfg.layers, m.cfg.heads, m.cfg.kv_heads};
  for (int64_t L : o.profile_lengths) res.kv_density[L] = best.kv_density(shape, L);
  for (int64_t L : o.extend_lengths) res.kv_density[L] = best.kv_density(shape, L);
  for (int64_t L : vlengths) res.kv_density[L] = best.kv_density(shape, L);
  res.plan = o.out;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace moa
