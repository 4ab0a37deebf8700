// A resumable profiling run: samples in order, a running sum checkpointed atomically beside the
// output, the averaged profile at the end. Under MPI the samples are split across ranks and the
// sum is taken on rank 0 in sample order (core/dist.h).
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <system_error>

#include "moa/core/dist.h"
#include "moa/core/error.h"
#include "moa/compress/profile.h"
#include "moa/compress/profiler.h"
#include "moa/model/safetensors.h"

namespace moa {

namespace {

constexpr const char* kPartialFormat = "moa-profile-partial/1";

// Per-tile sums in f32 with a Neumaier compensation term: close to double accuracy, and both
// halves are f32 so the checkpoint restores them bit for bit.
struct RunningSum {
  std::vector<float> sum, comp;
  explicit RunningSum(size_t n) : sum(n, 0.0f), comp(n, 0.0f) {}
  void add(size_t i, double x) {
    const float xf = float(x), s = sum[i], t = s + xf;
    comp[i] += std::fabs(s) >= std::fabs(xf) ? (s - t) + xf : (xf - t) + s;
    sum[i] = t;
  }
  double value(size_t i) const { return double(sum[i]) + double(comp[i]); }
};

struct DataId {
  std::string path;
  int64_t bytes = -1;
};

DataId data_id(const std::filesystem::path& p) {
  std::error_code ec;
  DataId d;
  auto abs = std::filesystem::weakly_canonical(std::filesystem::absolute(p), ec);
  d.path = ec ? p.string() : abs.string();
  auto size = std::filesystem::file_size(p, ec);
  d.bytes = ec ? -1 : int64_t(size);
  return d;
}

struct State {
  int64_t done = 0;
  double loss_sum = 0;
};

std::string fmt_double(double x) { return fmt::format("{:.17g}", x); }

// Loads the partial checkpoint into sum; InputError when it belongs to another run.
State load_partial(const std::filesystem::path& path, const Model& m, const DataId& data,
                   const ProfileOptions& o, int64_t nb, int64_t total, RunningSum& sum) {
  const std::string file = path.string();
  SafetensorsFile st(path);
  const auto& meta = st.metadata();
  auto get = [&](const char* key) {
    auto it = meta.find(key);
    return it == meta.end() ? std::string("(missing)") : it->second;
  };
  if (get("format") != kPartialFormat) {
    input_error("{}: __metadata__.format is '{}', expected '{}' (delete it or pass --fresh)", file,
                get("format"), kPartialFormat);
  }
  auto mismatch = [&](const char* what, const std::string& seen, const std::string& want) {
    input_error(
        "{}: this checkpoint has {} '{}', this run '{}'; resume with the same inputs, or "
        "delete it (or pass --fresh) to start over",
        file, what, seen, want);
  };
  if (get("data") != data.path) mismatch("data", get("data"), data.path);
  if (get("data_bytes") != std::to_string(data.bytes)) {
    mismatch("data_bytes (the data file changed)", get("data_bytes"), std::to_string(data.bytes));
  }
  if (get("length") != std::to_string(o.length))
    mismatch("length", get("length"), std::to_string(o.length));
  if (get("block") != std::to_string(o.block))
    mismatch("block", get("block"), std::to_string(o.block));
  if (get("model") != o.model_name) mismatch("model", get("model"), o.model_name);
  // Partials from before the influence kind was recorded hold entry sums.
  const std::string kind = get("influence") == "(missing)" ? "entry" : get("influence");
  if (kind != influence_name(o.kind)) mismatch("influence", kind, influence_name(o.kind));
  const std::vector<int64_t> shape = {m.cfg.layers, m.cfg.heads, nb, nb};
  for (const char* name : {"influence_sum", "influence_comp"}) {
    auto it = st.tensors().find(name);
    if (it == st.tensors().end() || it->second.dtype != DType::kF32 || it->second.shape != shape) {
      input_error(
          "{}: tensor '{}' is missing or not F32 [{}, {}, {}, {}] (another model?); delete "
          "it or pass --fresh",
          file, name, shape[0], shape[1], shape[2], shape[3]);
    }
  }
  st.tensors().at("influence_sum").to_f32(sum.sum.data());
  st.tensors().at("influence_comp").to_f32(sum.comp.data());
  State s;
  try {
    s.done = std::stoll(get("samples"));
    s.loss_sum = std::stod(get("loss_sum"));
  } catch (const std::exception&) {
    input_error("{}: __metadata__ samples '{}' / loss_sum '{}' are not numbers", file,
                get("samples"), get("loss_sum"));
  }
  if (s.done < 0) input_error("{}: __metadata__.samples is {}, expected >= 0", file, s.done);
  // More done than this run asks for (a smaller --samples): the sum cannot be undone.
  if (s.done > total) {
    input_error(
        "{}: already holds {} samples but this run profiles {}; raise --samples, or "
        "delete it (or pass --fresh) to start over",
        file, s.done, total);
  }
  return s;
}

void save_partial(const std::filesystem::path& path, const Model& m, const DataId& data,
                  const ProfileOptions& o, int64_t nb, const State& s, const RunningSum& sum) {
  const std::map<std::string, std::string> meta = {{"format", kPartialFormat},
                                                   {"data", data.path},
                                                   {"data_bytes", std::to_string(data.bytes)},
                                                   {"length", std::to_string(o.length)},
                                                   {"block", std::to_string(o.block)},
                                                   {"model", o.model_name},
                                                   {"influence", influence_name(o.kind)},
                                                   {"samples", std::to_string(s.done)},
                                                   {"loss_sum", fmt_double(s.loss_sum)}};
  const std::vector<int64_t> shape = {m.cfg.layers, m.cfg.heads, nb, nb};
  write_safetensors(path,
                    {{"influence_sum", DType::kF32, shape, sum.sum.data()},
                     {"influence_comp", DType::kF32, shape, sum.comp.data()}},
                    meta);
}

}  // namespace

std::filesystem::path partial_profile_path(const std::filesystem::path& out) {
  std::filesystem::path p = out;
  if (p.extension() == ".safetensors") p.replace_extension();
  p += ".partial.safetensors";
  return p;
}

ProfileRunResult run_profile(const Model& m, const std::vector<TokenizedSample>& samples,
                             const std::filesystem::path& data_file,
                             const std::filesystem::path& out, const ProfileOptions& o) {
  if (o.length < 2) input_error("--length {}: expected at least 2 tokens", o.length);
  if (o.block < 1) input_error("--block {}: expected a positive tile edge", o.block);
  MOA_CHECK(o.checkpoint_every >= 1);
  ProfileRunResult r;
  std::vector<const TokenizedSample*> use;
  int64_t shortest = -1;
  for (const TokenizedSample& s : samples) {
    if (shortest < 0 || s.size() < shortest) shortest = s.size();
    if (s.size() > o.length) {
      ++r.too_long;
    } else if (s.scored_tokens() == 0) {
      ++r.no_answer;
    } else if (o.max_samples <= 0 || int64_t(use.size()) < o.max_samples) {
      use.push_back(&s);
    }
  }
  if (use.empty()) {
    input_error(
        "{}: none of its {} samples fits in --length {} with an answer to score (the "
        "shortest has {} tokens)",
        data_file.string(), samples.size(), o.length, shortest);
  }
  r.total = int64_t(use.size());
  const ModelConfig& c = m.cfg;
  const int64_t nb = (o.length + o.block - 1) / o.block, per_layer = c.heads * nb * nb;
  const DataId data = data_id(data_file);
  const std::filesystem::path partial = partial_profile_path(out);
  const size_t tiles = size_t(c.layers * per_layer);
  RunningSum sum(tiles);
  State st;
  // Rank 0 alone reads and writes the checkpoint; the others learn where it stopped.
  dist::root_first([&] {
    if (!o.fresh && std::filesystem::exists(partial)) {
      st = load_partial(partial, m, data, o, nb, r.total, sum);
    }
  });
  dist::broadcast(st.done);
  r.resumed = st.done;
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const int64_t end = o.stop_after >= 0 ? std::min(r.total, st.done + o.stop_after) : r.total;
  // One sample's result: its tiles as f32 (RunningSum::add rounds each to f32 first, so this
  // loses nothing) and its loss. The sum takes them in sample order on rank 0 with any number
  // of ranks, which is what makes the profile bit-identical to one process.
  auto work = [&](int64_t i) {
    std::string out(tiles * sizeof(float) + sizeof(double), '\0');
    float* t = reinterpret_cast<float*>(out.data());
    const double loss = sample_influence(
        m, *use[size_t(i)], o.length, o.block,
        [&](int64_t l, const double* layer_tiles) {
          float* dst = t + l * per_layer;
          for (int64_t k = 0; k < per_layer; ++k) dst[k] = float(layer_tiles[k]);
        },
        o.recompute_layers, o.kind);
    std::memcpy(out.data() + tiles * sizeof(float), &loss, sizeof loss);
    return out;
  };
  auto consume = [&](int64_t, const std::string& res) {
    MOA_CHECK(res.size() == tiles * sizeof(float) + sizeof(double));
    const float* t = reinterpret_cast<const float*>(res.data());
    for (size_t k = 0; k < tiles; ++k) sum.add(k, double(t[k]));
    double loss = 0;
    std::memcpy(&loss, res.data() + tiles * sizeof(float), sizeof loss);
    st.loss_sum += loss;
    ++st.done;
    if (st.done < r.total && (st.done % o.checkpoint_every == 0 || st.done == end)) {
      save_partial(partial, m, data, o, nb, st, sum);
    }
    if (o.progress) {
      ProfileProgress p;
      p.done = st.done;
      p.total = r.total;
      p.resumed = r.resumed;
      p.seconds = elapsed();
      p.samples_per_s = double(st.done - r.resumed) / p.seconds;
      p.eta_s = double(r.total - st.done) / p.samples_per_s;
      p.mean_loss = st.loss_sum / double(st.done);
      o.progress(p);
    }
  };
  dist::map_ordered(st.done, end, work, consume);
  st.done = end;  // (rank 0 counted them; the others only computed theirs)
  r.samples = st.done;
  r.mean_loss = st.done > 0 ? st.loss_sum / double(st.done) : 0.0;
  r.seconds = elapsed();
  if (st.done < r.total) return r;  // stopped early: the partial holds the state
  if (!dist::is_root()) {
    r.complete = true;
    return r;
  }
  Profile p = Profile::zeros(c.layers, c.heads, o.length, o.block);
  p.samples = st.done;
  p.model = o.model_name;
  p.influence_kind = influence_name(o.kind);
  for (size_t i = 0; i < p.influence.size(); ++i) {
    p.influence[i] = float(sum.value(i) / double(st.done));
  }
  p.save(out);
  std::error_code ec;
  std::filesystem::remove(partial, ec);
  r.complete = true;
  return r;
}

}  // namespace moa
