#include "moa/eval/inspect.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "eval/report_svg.h"
#include "moa/attention/attention.h"
#include "moa/model/backward.h"
#include "moa/core/error.h"

namespace moa {

const std::vector<std::string>& head_stat_names() {
  static const std::vector<std::string> kNames = {"mean_distance", "sink_mass", "local_mass",
                                                  "far_mass"};
  return kNames;
}

double head_stat(const HeadStats& s, const std::string& name) {
  if (name == "mean_distance") return s.mean_distance;
  if (name == "sink_mass") return s.sink_mass;
  if (name == "local_mass") return s.local_mass;
  if (name == "far_mass") return s.far_mass;
  input_error("--stat '{}': expected one of mean_distance, sink_mass, local_mass, far_mass", name);
}

void layer_attention_stats(const float* q, const float* k, int64_t T, int64_t H, int64_t G,
                           int64_t D, std::vector<HeadStats>& all, std::vector<HeadStats>& tail) {
  MOA_CHECK(T > 0 && G > 0 && H % G == 0, "T {} H {} G {}", T, H, G);
  const int64_t group = H / G;
  const double scale = 1.0 / std::sqrt(double(D));
  // Keys in double once per layer: k (T, G, D).
  std::vector<double> kd(static_cast<size_t>(T * G * D));
  for (size_t i = 0; i < kd.size(); ++i) kd[i] = double(k[i]);
  // Per (head, row) statistics, summed in a fixed order afterwards: thread-count independent.
  std::vector<HeadStats> rows(static_cast<size_t>(H * T));
#pragma omp parallel
  {
    std::vector<double> p(static_cast<size_t>(T)), qd(static_cast<size_t>(D));
#pragma omp for schedule(dynamic, 16)
    for (int64_t hi = 0; hi < H * T; ++hi) {
      const int64_t h = hi / T, i = hi % T, g = h / group;
      for (int64_t d = 0; d < D; ++d) qd[size_t(d)] = double(q[(i * H + h) * D + d]) * scale;
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j <= i; ++j) {
        const double* kr = &kd[size_t((j * G + g) * D)];
        double s = 0;
        for (int64_t d = 0; d < D; ++d) s += qd[size_t(d)] * kr[d];
        p[size_t(j)] = s;
        mx = std::max(mx, s);
      }
      double z = 0;
      for (int64_t j = 0; j <= i; ++j) z += (p[size_t(j)] = std::exp(p[size_t(j)] - mx));
      HeadStats r;
      for (int64_t j = 0; j <= i; ++j) {
        const double a = p[size_t(j)] / z;
        const int64_t dist = i - j;
        r.mean_distance += a * double(dist);
        if (j < kInspectSink) r.sink_mass += a;
        if (dist < kInspectLocal) r.local_mass += a;
        if (dist >= kInspectFar) r.far_mass += a;
      }
      rows[size_t(hi)] = r;
    }
  }
  const int64_t tail_rows = std::min(T, kInspectTail);
  all.assign(size_t(H), HeadStats{});
  tail.assign(size_t(H), HeadStats{});
  auto add = [](HeadStats& a, const HeadStats& b, double w) {
    a.mean_distance += w * b.mean_distance;
    a.sink_mass += w * b.sink_mass;
    a.local_mass += w * b.local_mass;
    a.far_mass += w * b.far_mass;
  };
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t i = 0; i < T; ++i) {
      add(all[size_t(h)], rows[size_t(h * T + i)], 1.0 / double(T));
      if (i >= T - tail_rows)
        add(tail[size_t(h)], rows[size_t(h * T + i)], 1.0 / double(tail_rows));
    }
  }
}

HeadStatsTable inspect_heads(const Model& m, const std::vector<std::vector<int32_t>>& samples,
                             const std::function<void(int64_t, int64_t)>& progress) {
  const ModelConfig& c = m.cfg;
  HeadStatsTable t;
  t.layers = c.layers;
  t.heads = c.heads;
  t.all.assign(size_t(c.layers * c.heads), HeadStats{});
  t.tail = t.all;
  if (samples.empty()) input_error("inspect: no samples");
  const double w = 1.0 / double(samples.size());
  std::vector<HeadStats> all, tail;
  for (size_t si = 0; si < samples.size(); ++si) {
    const auto& ids = samples[si];
    const int64_t T = int64_t(ids.size());
    if (T < 1) input_error("inspect: sample {} is empty", si);
    if (T > c.max_position) {
      input_error(
          "inspect: sample {} has {} tokens, more than the model's context of {} "
          "(max_position_embeddings); use fewer --lines",
          si, T, c.max_position);
    }
    const AttentionSpec spec = AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, T);
    BackwardOptions opt;
    // Layer activations are not kept: only the forward runs (no loss weight, no backward).
    opt.recompute_layers = true;
    opt.attention_override = [&](int64_t layer, const float* q, const float* k, const float* v,
                                 int64_t n, float* out, float* lse) {
      attention_forward(spec, layer, q, k, v, n, out, lse);
      layer_attention_stats(q, k, n, c.heads, c.kv_heads, c.head_dim, all, tail);
      for (int64_t h = 0; h < c.heads; ++h) {
        HeadStats& a = t.all[size_t(layer * c.heads + h)];
        HeadStats& b = t.tail[size_t(layer * c.heads + h)];
        const HeadStats& x = all[size_t(h)];
        const HeadStats& y = tail[size_t(h)];
        a.mean_distance += w * x.mean_distance, a.sink_mass += w * x.sink_mass;
        a.local_mass += w * x.local_mass, a.far_mass += w * x.far_mass;
        b.mean_distance += w * y.mean_distance, b.sink_mass += w * y.sink_mass;
        b.local_mass += w * y.local_mass, b.far_mass += w * y.far_mass;
      }
    };
    std::vector<float> no_loss(static_cast<size_t>(T), 0.0f);
    forward_backward(m, spec, ids, no_loss, nullptr, opt);
    t.mean_tokens += w * double(T);
    t.samples += 1;
    if (progress) progress(int64_t(si + 1), int64_t(samples.size()));
  }
  return t;
}

namespace {

nlohmann::json stats_json(const HeadStats& s) {
  return {{"mean_distance", s.mean_distance},
          {"sink_mass", s.sink_mass},
          {"local_mass", s.local_mass},
          {"far_mass", s.far_mass}};
}

nlohmann::json summary_json(const std::vector<HeadStats>& v) {
  int64_t far = 0, local = 0, sink = 0;
  for (const auto& s : v) {
    far += s.far_mass > 0.5;
    local += s.local_mass > 0.5;
    sink += s.sink_mass > 0.5;
  }
  return {{"far_heads", far}, {"local_heads", local}, {"sink_heads", sink}};
}

}  // namespace

nlohmann::json HeadStatsTable::to_json() const {
  nlohmann::json stats = nlohmann::json::array();
  for (int64_t l = 0; l < layers; ++l) {
    for (int64_t h = 0; h < heads; ++h) {
      nlohmann::json e = {{"layer", l}, {"head", h}};
      e.update(stats_json(at(l, h)));
      e["last32"] = stats_json(tail_at(l, h));
      stats.push_back(std::move(e));
    }
  }
  nlohmann::json summary = summary_json(all);
  summary["last32"] = summary_json(tail);
  return {{"layers", layers},           {"heads", heads}, {"samples", samples},
          {"mean_tokens", mean_tokens}, {"stats", stats}, {"summary", summary}};
}

std::string HeadStatsTable::to_text() const {
  std::string o = fmt::format(
      "{} samples, {:.0f} tokens on average; all rows | last {} rows\n"
      "layer head  mean_dist   sink  local    far |  mean_dist   sink  local    far\n",
      samples, mean_tokens, kInspectTail);
  for (int64_t l = 0; l < layers; ++l) {
    for (int64_t h = 0; h < heads; ++h) {
      const HeadStats& a = at(l, h);
      const HeadStats& b = tail_at(l, h);
      o += fmt::format(
          "{:5} {:4} {:10.1f} {:6.3f} {:6.3f} {:6.3f} | {:10.1f} {:6.3f} {:6.3f} {:6.3f}\n", l, h,
          a.mean_distance, a.sink_mass, a.local_mass, a.far_mass, b.mean_distance, b.sink_mass,
          b.local_mass, b.far_mass);
    }
  }
  const nlohmann::json s = summary_json(all), st = summary_json(tail);
  o += fmt::format(
      "heads with far_mass > 0.5: {} (last rows {}), local_mass > 0.5: {} (last rows {})\n",
      s["far_heads"].get<int64_t>(), st["far_heads"].get<int64_t>(),
      s["local_heads"].get<int64_t>(), st["local_heads"].get<int64_t>());
  return o;
}

std::string head_stats_svg(const HeadStatsTable& t, const std::string& stat, bool tail) {
  svg::Grid g;
  const bool distance = stat == "mean_distance";
  double hi = 1;
  std::vector<double> vals;
  for (int64_t l = 0; l < t.layers; ++l) {
    for (int64_t h = 0; h < t.heads; ++h) {
      vals.push_back(head_stat(tail ? t.tail_at(l, h) : t.at(l, h), stat));
    }
  }
  if (distance) {
    hi = 1;
    for (double v : vals) hi = std::max(hi, v);
  }
  g.values = vals;
  g.title = fmt::format("{} per head", stat);
  g.subtitle =
      fmt::format("{}; {} samples of {:.0f} tokens",
                  tail ? fmt::format("last {} query rows", kInspectTail) : "all query rows",
                  t.samples, t.mean_tokens);
  g.x_title = "query head";
  g.y_title = "layer";
  for (int64_t h = 0; h < t.heads; ++h) g.col_labels.push_back(std::to_string(h));
  for (int64_t l = 0; l < t.layers; ++l) g.row_labels.push_back(std::to_string(l));
  g.color = [hi](double v) { return svg::sequential_color(v / hi); };
  g.text_color = [hi](double v) { return v / hi > 0.6 ? "#ffffff" : "#111111"; };
  g.cell_w = 34;
  g.cell_h = 20;
  g.cell_text = [distance](double v) {
    return distance ? fmt::format("{:.0f}", v) : fmt::format("{:.2f}", v);
  };
  g.tooltip = [&](int64_t r, int64_t c, double v) {
    return fmt::format("layer {} head {}: {} = {}", r, c, stat, svg::num(v, 4));
  };
  g.standalone = true;
  g.label_every = t.heads > 40 ? 4 : 1;
  return svg::grid_svg(g);
}

}  // namespace moa
