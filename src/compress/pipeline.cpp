#include "moa/compress/pipeline.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <optional>

#include "moa/data/calib.h"
#include "moa/compress/calib_set.h"
#include "moa/core/dist.h"
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
namespace {

using Log = std::function<void(const std::string&)>;

void clear_stages_of_other_calibration(const CompressOptions& o, const Log& log) {
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

// The settings with every default filled in, and the lengths the stages run at.
struct Setup {
  CompressOptions o;
  std::vector<int64_t> vlengths;  // validation lengths, ascending: short first
  bool short_by_default = false;
  Log log;
};

Setup resolve(const Model& m, const std::string& model_name, const CompressOptions& opt) {
  Setup st{opt, {}, false, nullptr};
  CompressOptions& o = st.o;
  st.log = [log = opt.log](const std::string& s) {
    if (log) log(s);
  };
  const double d = o.optimize.density_bound;
  if (!(d > 0 && d <= 1)) input_error("--density {}: expected a KV density in (0, 1]", d);
  const int64_t C = m.cfg.max_position;
  if (C < 512)
    input_error("compress: the model's context ({} tokens) is too short to profile; need >= 512",
                C);
  if (o.profile_lengths.empty()) {
    // A LongEval prompt needs ~130 tokens before its first line: shorter profiles hold nothing.
    for (int64_t L : {C / 4, C / 2, C}) {
      L = std::max<int64_t>(L, 256);
      if (o.profile_lengths.empty() || o.profile_lengths.back() != L)
        o.profile_lengths.push_back(L);
    }
  }
  if (o.extend_lengths.empty()) o.extend_lengths = {2 * C};
  if (o.validation_length == 0) o.validation_length = 3 * C / 4;
  st.short_by_default = o.short_validation_length == 0;
  if (st.short_by_default) o.short_validation_length = std::max<int64_t>(256, C / 8);
  if (o.short_validation_length < -1 ||
      (o.short_validation_length > 0 && o.short_validation_length < 128)) {
    input_error("--short-validation-length {}: expected a length in [128, {}], or -1 for none",
                o.short_validation_length, C);
  }
  if (o.short_validation_length > C) {
    input_error("--short-validation-length {} exceeds the model's context {}",
                o.short_validation_length, C);
  }
  st.vlengths = {o.validation_length};
  if (o.short_validation_length > 0 && o.short_validation_length != o.validation_length) {
    st.vlengths.insert(st.vlengths.begin(), o.short_validation_length);
  }
  for (int64_t L : o.profile_lengths) {
    if (L < 128 || L > C)
      input_error("--profile-lengths: {} is outside [128, {}] (the model's context)", L, C);
  }
  if (o.validation_length > C)
    input_error("--validation-length {} exceeds the model's context {}", o.validation_length, C);
  if (o.work.empty()) o.work = o.out.parent_path() / ("moa-work-" + model_name);
  return st;
}

// Stages computed for another checkpoint are refused, never reused.
void check_model_stamp(const CompressOptions& o) {
  if (o.model_id.empty()) return;
  const fs::path stamp = o.work / "model_id.txt";
  if (!fs::exists(stamp)) {
    write_text_atomic(stamp, o.model_id + "\n");
    return;
  }
  std::string had = read_text(stamp);
  while (!had.empty() && (had.back() == '\n' || had.back() == ' ')) had.pop_back();
  if (had != o.model_id) {
    input_error(
        "{}: holds stages computed for another checkpoint (model id {}, this one is {}); "
        "remove the directory or pass another --work",
        o.work.string(), had, o.model_id);
  }
}

// Rate and ETA of a stage on the log, at most every few seconds.
std::function<void(int64_t, int64_t)> rate_log(const Log& log, std::string what) {
  auto th = std::make_shared<Throttle>();
  const auto t0 = std::chrono::steady_clock::now();
  return [=](int64_t done, int64_t total) {
    if (!th->due(done == total)) return;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log(fmt::format("{}: {}/{}  {:.2f} prompts/s  ETA {:.0f}s", what, done, total,
                    double(done) / el, el / double(done) * double(total - done)));
  };
}

// 1. Calibration prompts per length, answered by the dense model.
void calibration_stage(const Model& m, const Tokenizer& tok, Setup& st, CompressResult& res) {
  const CompressOptions& o = st.o;
  std::vector<int64_t> calib_lengths = o.profile_lengths;
  for (int64_t L : st.vlengths) {
    if (std::find(calib_lengths.begin(), calib_lengths.end(), L) == calib_lengths.end())
      calib_lengths.push_back(L);
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
    try {
      calibrate(m, tok, words, c, f, rate_log(st.log, fmt::format("calib {}", L)));
    } catch (const InputError& e) {
      // The default short length may hold no prompt with this tokenizer: validate without it.
      if (!(st.short_by_default && L == o.short_validation_length)) throw;
      st.log(fmt::format("validate: no short validation at {} tokens ({})", L, e.what()));
      st.vlengths.erase(std::remove(st.vlengths.begin(), st.vlengths.end(), L), st.vlengths.end());
    }
  }
}

// 2. Profiles (each resumes from its own partial checkpoint).
std::vector<Profile> profile_stage(const Model& m, const Tokenizer& tok,
                                   const std::string& model_name, const Setup& st,
                                   CompressResult& res) {
  const CompressOptions& o = st.o;
  std::vector<Profile> profiles;
  for (int64_t L : o.profile_lengths) {
    const fs::path f = o.work / fmt::format("profile_{}.safetensors", L);
    std::optional<Profile> have;
    if (fs::exists(f)) have = Profile::load(f);
    if (have && have->influence_kind != influence_name(o.influence)) {
      st.log(fmt::format("profile {}: {} holds '{}' influence, this run '{}'; profiling again", L,
                         f.string(), have->influence_kind, influence_name(o.influence)));
      dist::root_first([&] { fs::remove(f); });
      have.reset();
    }
    if (have) {
      res.reused.push_back(f.filename().string());
      profiles.push_back(std::move(*have));
      continue;
    }
    const fs::path data = o.work / fmt::format("calib_{}.jsonl", L);
    ProfileOptions po;
    po.length = L;
    po.model_name = model_name;
    po.kind = o.influence;
    auto th = std::make_shared<Throttle>();
    po.progress = [&, th](const ProfileProgress& p) {
      if (!th->due(p.done == p.total)) return;
      st.log(fmt::format("profile {}: {}/{}  {:.2f} samples/s  ETA {:.0f}s", L, p.done, p.total,
                         p.samples_per_s, p.eta_s));
    };
    run_profile(m, load_tokenized_calib(data, tok, m.cfg.vocab), data, f, po);
    dist::barrier();  // rank 0 has written the profile
    profiles.push_back(Profile::load(f));
  }
  return profiles;
}

// The profile lengths this density can use, and the extend lengths it can bound. A length where
// even the minimum cache exceeds the budget (min_cache > D*N: every head keeps at least 128
// tokens) cannot take part: its density bound is unreachable. A length where the minimum cache
// takes more than half the budget leaves no room to choose either: its bound forces nearly every
// head to the minimum at that length, and the elastic rules then cannot reach far at the long
// lengths (moa-tiny at 0.25 with 512 profiled: every head beta 0.25, validation NLL 0.90 against
// dense's 0.009; without it 0.06). Such lengths are left out of this density's objectives and
// constraints while a roomier one remains, and said so.
struct LengthChoice {
  std::vector<size_t> used;  // indices into the profiles
  std::vector<int64_t> used_lengths, extend;
  std::vector<std::string> left_out;  // one line per profile length left out
};

LengthChoice choose_lengths(const std::vector<Profile>& profiles, const CompressOptions& o) {
  const double d = o.optimize.density_bound;
  auto share = [&](int64_t L) { return double(kPlanMinCache) / (d * double(L)); };
  bool any_roomy = false;
  for (const Profile& p : profiles) any_roomy = any_roomy || share(p.length) <= 0.5;
  LengthChoice c;
  for (size_t i = 0; i < profiles.size(); ++i) {
    const double sh = share(profiles[i].length);
    if (sh <= (any_roomy ? 0.5 : 1.0)) {
      c.used.push_back(i);
      c.used_lengths.push_back(profiles[i].length);
    } else {
      c.left_out.push_back(fmt::format(
          "optimize: profile length {} left out at density {} (the minimum cache of {} tokens is "
          "{:.2f} of its budget{})",
          profiles[i].length, d, kPlanMinCache, sh, sh <= 1.0 ? ", over half" : ""));
    }
  }
  // As the rule tables keep them (ascending, once, none equal to a profile length), so that the
  // summary's record of them compares equal on the next run.
  for (int64_t L : o.extend_lengths) {
    const bool profiled =
        std::find(c.used_lengths.begin(), c.used_lengths.end(), L) != c.used_lengths.end();
    if (double(kPlanMinCache) <= d * double(L) && !profiled) c.extend.push_back(L);
  }
  std::sort(c.extend.begin(), c.extend.end());
  c.extend.erase(std::unique(c.extend.begin(), c.extend.end()), c.extend.end());
  return c;
}

// 3. Pareto plans at this density (optimize_to_dir, as `moa optimize` writes them). Plans made
// under other lengths (other options, or an older selection rule) are made again, and their
// validation with them.
fs::path optimize_stage(std::vector<Profile> profiles, const Model& m, const Setup& st,
                        CompressResult& res) {
  const CompressOptions& o = st.o;
  const fs::path plans_dir = o.work / ("plans-" + density_tag(o.optimize.density_bound));
  const fs::path summary = plans_dir / "summary.json";
  std::vector<std::string> names;
  for (int64_t L : o.profile_lengths)
    names.push_back((o.work / fmt::format("profile_{}.safetensors", L)).string());
  check_profiles(profiles, names);
  LengthChoice c = choose_lengths(profiles, o);
  const nlohmann::json lengths_key = {{"profile", c.used_lengths},
                                      {"extend", c.extend},
                                      {"influence", influence_name(o.influence)}};
  if (fs::exists(summary) &&
      nlohmann::json::parse(read_text(summary)).value("lengths", nlohmann::json()) != lengths_key) {
    st.log(fmt::format(
        "optimize: {} was made for other lengths or another influence kind; making it again",
        plans_dir.string()));
    fs::remove_all(plans_dir);
    fs::remove(o.work / ("validate-" + density_tag(o.optimize.density_bound) + ".json"));
  }
  if (fs::exists(summary)) {
    res.reused.push_back(plans_dir.filename().string());
    return plans_dir;
  }
  for (const std::string& line : c.left_out) st.log(line);
  if (c.used.empty()) {
    input_error(
        "--density {}: below the minimum cache ({} tokens) at every profile length; profile longer "
        "lengths",
        o.optimize.density_bound, kPlanMinCache);
  }
  std::vector<Profile> used;
  std::vector<std::string> used_names;
  for (size_t i : c.used) {
    used.push_back(std::move(profiles[i]));
    used_names.push_back(names[i]);
  }
  profiles.clear();
  OptimizeStageOptions so;
  so.optimize = o.optimize;
  so.extend_lengths = c.extend;
  so.kv_heads = m.cfg.kv_heads;
  so.log = [&](const std::string& s) { st.log("optimize: " + s); };
  optimize_to_dir(std::move(used), used_names, plans_dir, so);
  return plans_dir;
}

// 4. Validation at lengths not profiled; the lowest mean NLL / dense NLL wins.
nlohmann::json validation_stage(const Model& m, const Tokenizer& tok, const Setup& st,
                                const fs::path& plans_dir, CompressResult& res) {
  const CompressOptions& o = st.o;
  const fs::path vfile = o.work / ("validate-" + density_tag(o.optimize.density_bound) + ".json");
  if (fs::exists(vfile)) {
    nlohmann::json v = nlohmann::json::parse(read_text(vfile));
    if (v.value("validation_lengths", nlohmann::json()) == nlohmann::json(st.vlengths)) {
      res.reused.push_back(vfile.filename().string());
      return v;
    }
    st.log(fmt::format("validate: {} was made at other lengths; validating again", vfile.string()));
  }
  nlohmann::json per_length = nlohmann::json::object();
  std::map<std::string, double> score;
  for (int64_t L : st.vlengths) {
    auto th = std::make_shared<Throttle>();
    const ValidationResult r =
        validate_plan_dir(m, tok, plans_dir, o.work / fmt::format("calib_{}.jsonl", L), L, 0,
                          [&, th](int64_t done, int64_t total) {
                            if (th->due(done == total))
                              st.log(fmt::format("validate at {}: {}/{}", L, done, total));
                          });
    per_length[std::to_string(L)] = {
        {"best", r.best}, {"nll", r.nll}, {"dense_nll", r.dense_nll}, {"samples", r.samples}};
    // Relative to dense, so that each length weighs the same whatever its NLL scale.
    for (const auto& [name, nll] : r.nll)
      score[name] += nll / std::max(r.dense_nll, 1e-12) / double(st.vlengths.size());
  }
  std::string best;
  for (const auto& [name, sc] : score)  // in name order: the first on ties
    if (best.empty() || sc < score[best]) best = name;
  const nlohmann::json& main = per_length[std::to_string(o.validation_length)];
  nlohmann::json v = {{"best", best},
                      {"score", score},
                      {"nll", main["nll"]},
                      {"dense_nll", main["dense_nll"]},
                      {"samples", main["samples"]},
                      {"length", o.validation_length},
                      {"validation_lengths", st.vlengths},
                      {"per_length", per_length}};
  dist::root_first([&] { write_text_atomic(vfile, v.dump(2) + "\n"); });
  st.log(fmt::format("validate: {} wins (mean NLL / dense NLL {:.4f} over lengths {})", best,
                     score[best], fmt::join(st.vlengths, ", ")));
  return v;
}

// The chosen plan at --out, with where it came from, and its densities.
void write_chosen_plan(const Model& m, const std::string& model_name, const Setup& st,
                       const fs::path& plans_dir, CompressResult& res) {
  const CompressOptions& o = st.o;
  Plan best = Plan::load(plans_dir / res.best);
  nlohmann::json lengths = best.lengths().is_object() ? best.lengths() : nlohmann::json::object();
  lengths["validation"] = o.validation_length;
  lengths["validation_nll"] = res.validation_nll;
  lengths["dense_validation_nll"] = res.dense_validation_nll;
  lengths["validation_lengths"] = st.vlengths;
  best.set_lengths(lengths);
  if (!best.model()) best.set_model(model_name);
  best.save(o.out, PlanForm::kExtended);
  const AttentionShape shape{m.cfg.layers, m.cfg.heads, m.cfg.kv_heads};
  for (const auto* ls : {&o.profile_lengths, &o.extend_lengths, &st.vlengths}) {
    for (int64_t L : *ls) {
      res.kv_density[L] = best.kv_density(shape, L);
      res.stored_density[L] = best.stored_density(shape, L);
      res.prefill_density[L] = best.prefill_density(shape, L);
    }
  }
  res.plan = o.out;
}

}  // namespace

CompressResult run_compress(const Model& m, const Tokenizer& tok, const std::string& model_name,
                            const CompressOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  Setup st = resolve(m, model_name, opt);
  // Under MPI (core/dist.h) rank 0 alone touches the work directory, which every rank must see;
  // the costly loops of the calibration, profile and validation stages are split across ranks.
  dist::root_first([&] {
    fs::create_directories(st.o.work);
    check_model_stamp(st.o);
    clear_stages_of_other_calibration(st.o, st.log);
  });
  CompressResult res;
  res.density_bound = st.o.optimize.density_bound;
  calibration_stage(m, tok, st, res);
  std::vector<Profile> profiles = profile_stage(m, tok, model_name, st, res);
  // The MILP is one process's work; the others wait for its plans.
  const fs::path plans_dir = st.o.work / ("plans-" + density_tag(st.o.optimize.density_bound));
  dist::root_first([&] { MOA_CHECK(optimize_stage(std::move(profiles), m, st, res) == plans_dir); });
  const nlohmann::json v = validation_stage(m, tok, st, plans_dir, res);
  res.best = v["best"].get<std::string>();
  res.validation_nll = v["nll"][res.best].get<double>();
  res.dense_validation_nll = v["dense_nll"].get<double>();
  res.pareto_plans = int64_t(v["nll"].size());
  dist::root_first([&] { write_chosen_plan(m, model_name, st, plans_dir, res); });
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace moa
