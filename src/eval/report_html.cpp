// The HTML page of `moa report`: sections in the order of the MoA paper's evaluation (retrieval
// heatmaps, accuracy vs density and vs length, effective context, perplexity, the plan's spans,
// speed and memory). Self-contained: inline CSS and SVG, no scripts.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "eval/report_svg.h"
#include "moa/eval/report.h"

namespace moa {
namespace {

using svg::escape;
using svg::num;

constexpr const char* kCss = R"(
body { font-family: "DejaVu Sans", Arial, sans-serif; color: #222; background: #fff;
       max-width: 1120px; margin: 20px auto; padding: 0 16px; font-size: 14px; line-height: 1.4; }
h1 { font-size: 22px; margin: 0 0 6px 0; }
h2 { font-size: 17px; margin: 30px 0 8px 0; padding-bottom: 4px; border-bottom: 1px solid #ddd; }
h3 { font-size: 14px; margin: 14px 0 6px 0; color: #333; }
p.note, div.note { color: #555; font-size: 12.5px; margin: 4px 0 8px 0; }
ul.sources { color: #555; font-size: 12.5px; margin: 4px 0; }
table.data { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 10px 0; }
table.data th, table.data td { padding: 4px 10px; border-bottom: 1px solid #e6e6e6; text-align: right; }
table.data th { background: #f4f4f4; font-weight: 600; }
table.data td.l, table.data th.l { text-align: left; }
div.fig1 { overflow-x: auto; }
table.fig1 { border-collapse: collapse; margin: 6px 0; }
table.fig1 th { font-size: 12px; font-weight: 600; padding: 3px 8px; color: #333; }
table.fig1 th.row { text-align: right; vertical-align: middle; }
table.fig1 td { vertical-align: top; padding: 2px 6px 8px 6px; }
table.fig1 td.none { vertical-align: middle; text-align: center; }
div.charts { display: flex; flex-wrap: wrap; gap: 12px; }
div.legend { margin: 2px 0 6px 0; }
.empty { color: #999; font-size: 12px; }
)";

std::string pct(double d) { return fmt::format("{}%", num(d * 100, 3)); }

// 1712 -> "1.7k", 850 -> "850"
std::string tokens_short(double t) {
  if (t >= 10000) return fmt::format("{:.0f}k", t / 1000);
  if (t >= 1000) return fmt::format("{:.1f}k", t / 1000);
  return std::to_string(std::llround(t));
}

int method_rank(const std::string& m) {
  if (m == "dense") return 0;
  if (m == "streaming") return 1;
  if (m == "h2o") return 2;
  if (m == "moa") return 3;
  return 4;
}

// Line colour of a method (the same in every chart) and a dash pattern per density rank.
std::string method_color(const std::string& m) {
  static const char* kColors[] = {"#333333", "#0072B2", "#009E73", "#D55E00"};
  const int r = method_rank(m);
  return r < 4 ? kColors[r] : svg::palette(std::hash<std::string>{}(m) % 3 + 3);
}
std::string dash_of_rank(size_t rank) {
  static const char* kDash[] = {"", "7,3", "2,3", "9,3,2,3", "4,4"};
  return kDash[rank % 5];
}

// "0.2-0.4" -> "20-40%"; other keys unchanged.
std::string depth_label(const std::string& k) {
  double a = 0, b = 0;
  if (std::sscanf(k.c_str(), "%lf-%lf", &a, &b) == 2)
    return fmt::format("{:.0f}-{:.0f}%", a * 100, b * 100);
  return k;
}

std::vector<std::string> tasks_of(const std::vector<RunRecord>& runs, bool retrieval) {
  std::vector<std::string> t;
  for (const auto& r : runs) {
    if ((retrieval ? r.retrieval() : r.perplexity()) &&
        std::find(t.begin(), t.end(), r.task) == t.end()) {
      t.push_back(r.task);
    }
  }
  return t;
}

// Runs of one task, ordered by method then density (descending).
std::vector<const RunRecord*> task_runs(const std::vector<RunRecord>& runs, const std::string& task,
                                        bool retrieval) {
  std::vector<const RunRecord*> out;
  for (const auto& r : runs) {
    if (r.task == task && (retrieval ? r.retrieval() : r.perplexity())) out.push_back(&r);
  }
  std::stable_sort(out.begin(), out.end(), [](const RunRecord* a, const RunRecord* b) {
    if (method_rank(a->method) != method_rank(b->method))
      return method_rank(a->method) < method_rank(b->method);
    if (a->method != b->method) return a->method < b->method;
    return a->density.value_or(1.0) > b->density.value_or(1.0);
  });
  return out;
}

// Length x depth heatmap of one retrieval run (falls back to one "all" row without
// by_lines_position).
std::string run_heatmap(const RunRecord& r) {
  const nlohmann::json& j = r.result;
  const bool has_tokens = j.contains("prompt_tokens");
  std::vector<std::pair<int64_t, std::string>> lines;  // (lines, key)
  for (const auto& [k, v] : j["by_lines"].items()) lines.push_back({std::stoll(k), k});
  std::sort(lines.begin(), lines.end());
  std::vector<std::string> depths;
  const bool by_pos = j.contains("by_lines_position") && !j["by_lines_position"].empty();
  if (by_pos) {
    std::set<std::string> ks;
    for (const auto& [lk, row] : j["by_lines_position"].items()) {
      for (const auto& [dk, v] : row.items()) ks.insert(dk);
    }
    depths.assign(ks.begin(), ks.end());
  } else {
    depths.push_back("all");
  }
  svg::Grid g;
  g.cell_class = "hm-cell";
  g.cell_h = 13;
  // Row and column headers name the method and density; a custom label tells runs of one cell
  // apart.
  const double acc = 100 * j["accuracy"].get<double>();
  g.title = r.label.empty() ? fmt::format("{:.0f}% correct", acc)
                            : fmt::format("{}: {:.0f}%", r.label, acc);
  g.cell_w = lines.size() > 10 ? 15 : 20;
  g.x_title = has_tokens ? "prompt tokens" : (r.task == "passkey" ? "filler repeats" : "lines");
  g.y_title = "depth";
  for (const auto& [n, k] : lines) {
    const bool t = has_tokens && j["prompt_tokens"].contains(k);
    g.col_labels.push_back(t ? tokens_short(j["prompt_tokens"][k].get<double>()) : k);
  }
  for (const auto& d : depths) g.row_labels.push_back(by_pos ? depth_label(d) : d);
  for (const auto& d : depths) {
    for (const auto& [n, k] : lines) {
      double v = std::nan("");
      if (by_pos) {
        const auto& bl = j["by_lines_position"];
        if (bl.contains(k) && bl[k].contains(d)) v = bl[k][d].get<double>();
      } else {
        v = j["by_lines"][k].get<double>();
      }
      g.values.push_back(v);
    }
  }
  g.label_every = int64_t(lines.size()) > 14 ? 2 : 1;
  g.tooltip = [&](int64_t row, int64_t col, double v) {
    const auto& k = lines[size_t(col)].second;
    std::string len = k + (r.task == "passkey" ? " filler repeats" : " lines");
    if (has_tokens && j["prompt_tokens"].contains(k)) {
      len += fmt::format(" ({:.0f} tokens)", j["prompt_tokens"][k].get<double>());
    }
    return fmt::format("{}, depth {}: {}", len, g.row_labels[size_t(row)],
                       std::isnan(v) ? "no items" : fmt::format("accuracy {:.2f}", v));
  };
  return svg::grid_svg(g);
}

std::string section_heatmaps(const std::vector<RunRecord>& runs, const std::string& task) {
  const auto rs = task_runs(runs, task, true);
  // Columns: densities, descending (dense sits at 100%); rows: methods.
  std::vector<double> dens;
  std::vector<std::string> methods;
  auto dkey = [](const RunRecord* r) {
    return r->method == "dense" ? 1.0 : r->density.value_or(-1.0);
  };
  for (const auto* r : rs) {
    const double d = dkey(r);
    if (std::find(dens.begin(), dens.end(), d) == dens.end()) dens.push_back(d);
    if (std::find(methods.begin(), methods.end(), r->method) == methods.end())
      methods.push_back(r->method);
  }
  std::sort(dens.rbegin(), dens.rend());
  std::string o = fmt::format(
      "<h3>{}</h3>\n<div class=\"fig1\"><table class=\"fig1\"><tr><th></th>", escape(task));
  for (double d : dens)
    o += "<th>" + (d < 0 ? std::string("density n/a") : "KV " + pct(d)) + "</th>";
  o += "</tr>\n";
  for (const auto& m : methods) {
    o += "<tr><th class=\"row\">" + escape(method_display(m)) + "</th>";
    for (double d : dens) {
      std::string cell;
      for (const auto* r : rs) {
        if (r->method == m && dkey(r) == d) cell += run_heatmap(*r);
      }
      o += cell.empty() ? "<td class=\"none\"><span class=\"empty\">&#8212;</span></td>"
                        : "<td>" + cell + "</td>";
    }
    o += "</tr>\n";
  }
  o += "</table></div>\n";
  return o;
}

std::string chart_vs_density(const std::vector<RunRecord>& runs, const std::string& task) {
  const auto rs = task_runs(runs, task, true);
  std::map<std::string, std::vector<std::pair<double, double>>> by_method;
  std::optional<double> dense;
  std::set<double> xs;
  for (const auto* r : rs) {
    if (r->method == "dense") {
      if (!dense) dense = r->result["accuracy"].get<double>();
      continue;
    }
    if (!r->density) continue;
    by_method[r->method].push_back({*r->density, r->result["accuracy"].get<double>()});
    xs.insert(*r->density);
  }
  if (xs.empty()) return "";
  svg::LineChart c;
  c.title = fmt::format("{}: accuracy vs KV density", task);
  c.x_title = "KV density";
  c.y_title = "accuracy";
  const double lo = *xs.begin(), hi = std::max(1.0, *xs.rbegin());
  c.x_min = std::max(0.0, lo - 0.05);
  c.x_max = hi;
  for (double x : xs) c.x_ticks.push_back({x, pct(x)});
  if (!xs.count(1.0)) c.x_ticks.push_back({1.0, "100%"});
  std::vector<std::string> order;
  for (const auto& [m, pts] : by_method) order.push_back(m);
  std::sort(order.begin(), order.end(), [](const std::string& a, const std::string& b) {
    return method_rank(a) != method_rank(b) ? method_rank(a) < method_rank(b) : a < b;
  });
  for (const auto& m : order) {
    auto pts = by_method[m];
    std::sort(pts.begin(), pts.end());
    c.series.push_back({method_display(m), method_color(m), "", pts});
  }
  if (dense)
    c.series.push_back(
        {"Dense", method_color("dense"), "6,4", {{c.x_min, *dense}, {c.x_max, *dense}}});
  return svg::line_chart_svg(c);
}

std::string chart_vs_length(const std::vector<RunRecord>& runs, const std::string& task) {
  const auto rs = task_runs(runs, task, true);
  svg::LineChart c;
  c.title = fmt::format("{}: accuracy vs input length", task);
  c.y_title = "accuracy";
  std::set<int64_t> xs;
  bool all_tokens = true;
  std::map<std::string, size_t> rank;  // runs seen per method: densities descend within one
  for (size_t i = 0; i < rs.size(); ++i) {
    bool tokens = true;
    const auto acc = accuracy_by_length(rs[i]->result, &tokens);
    all_tokens = all_tokens && tokens;
    svg::Series s{
        run_label(*rs[i]), method_color(rs[i]->method), dash_of_rank(rank[rs[i]->method]++), {}};
    for (const auto& [n, a] : acc) {
      s.points.push_back({double(n), a});
      xs.insert(n);
    }
    c.series.push_back(std::move(s));
  }
  if (xs.empty()) return "";
  c.x_title = all_tokens ? "prompt tokens" : "input length";
  c.x_min = double(*xs.begin());
  c.x_max = double(*xs.rbegin());
  if (c.x_max == c.x_min) c.x_max = c.x_min + 1;
  c.x_min -= 0.03 * (c.x_max - c.x_min);
  // Tick labels at tested lengths, thinned so that they do not overlap.
  double last = -1e18;
  const double min_gap = (c.x_max - c.x_min) / 9;
  for (int64_t x : xs) {
    if (double(x) - last < min_gap) continue;
    c.x_ticks.push_back({double(x), tokens_short(double(x))});
    last = double(x);
  }
  return svg::line_chart_svg(c);
}

std::string section_effective(const std::vector<RunRecord>& runs) {
  std::string o =
      "<table class=\"data\"><tr><th class=\"l\">run</th><th class=\"l\">task</th>"
      "<th class=\"l\">accuracy at tested lengths (tokens)</th><th>effective context</th>"
      "<th>mean span there</th><th>ratio</th></tr>\n";
  bool any = false;
  for (const auto& task : tasks_of(runs, true)) {
    for (const auto* r : task_runs(runs, task, true)) {
      bool tokens = true;
      const auto acc = accuracy_by_length(r->result, &tokens);
      std::string tested;
      for (const auto& [n, a] : acc)
        tested += fmt::format("{}{}: {:.2f}", tested.empty() ? "" : ", ", n, a);
      const int64_t len = effective_context_length(acc);
      std::string span = "n/a", ratio = "n/a";
      if (len > 0 && tokens && r->span) {
        const EffectiveContext e = effective_context(acc, *r->span);
        span = fmt::format("{:.0f}", e.mean_span);
        ratio = fmt::format("{:.2f}", e.ratio);
      } else if (len == 0) {
        span = ratio = "&#8212;";
      }
      o += fmt::format(
          "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td>"
          "<td>{}</td><td>{}</td></tr>\n",
          escape(run_label(*r)), escape(task), escape(tested),
          len > 0 ? fmt::format("{}{}", len, tokens ? "" : " lines") : "none", span, ratio);
      any = true;
    }
  }
  o += "</table>\n";
  return any ? o : "";
}

std::string section_ppl(const std::vector<RunRecord>& runs) {
  std::string o =
      "<table class=\"data\"><tr><th class=\"l\">run</th><th class=\"l\">data</th><th>tokens</th>"
      "<th>perplexity</th><th>NLL</th><th>vs dense</th></tr>\n";
  bool any = false;
  for (const auto& task : tasks_of(runs, false)) {
    const auto rs = task_runs(runs, task, false);
    for (const auto* r : rs) {
      const auto& j = r->result;
      const std::string src = j.value("source", std::string());
      std::optional<double> rel;
      if (j.contains("relative_change") && j["relative_change"].is_number()) {
        rel = j["relative_change"].get<double>();
      } else if (r->method != "dense") {
        for (const auto* d : rs) {
          if (d->method == "dense" && d->result.value("source", std::string()) == src) {
            rel = j["ppl"].get<double>() / d->result["ppl"].get<double>() - 1.0;
            break;
          }
        }
      }
      o += fmt::format(
          "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{:.4f}</td><td>{}</td>"
          "<td>{}</td></tr>\n",
          escape(run_label(*r)), escape(src), j.contains("tokens") ? j["tokens"].dump() : "n/a",
          j["ppl"].get<double>(),
          j.contains("nll") ? fmt::format("{:.5f}", j["nll"].get<double>()) : "n/a",
          rel ? fmt::format("{:+.2f}%", 100 * *rel) : "&#8212;");
      any = true;
    }
  }
  o += "</table>\n";
  return any ? o : "";
}

std::string section_spans(const SpanMap& m) {
  svg::Grid g;
  g.cell_class = "span-cell";
  const bool big = m.heads > 16;
  g.cell_w = big ? 18 : 40;
  g.cell_h = big ? 13 : 20;
  g.title = m.title;
  g.x_title = "query head";
  g.y_title = "layer";
  for (int64_t h = 0; h < m.heads; ++h) g.col_labels.push_back(std::to_string(h));
  for (int64_t l = 0; l < m.layers; ++l) g.row_labels.push_back(std::to_string(l));
  for (int64_t k : m.kept) g.values.push_back(double(k) / double(m.length));
  g.color = svg::sequential_color;
  g.label_every = m.heads > 32 ? 4 : (big ? 2 : 1);
  if (!big) {
    g.cell_text = [n = m.length](double v) { return tokens_short(v * double(n)); };
    g.text_color = [](double v) { return v > 0.6 ? "#ffffff" : "#111111"; };
  }
  g.tooltip = [&m](int64_t r, int64_t c, double v) {
    return fmt::format("layer {} head {}: keeps {} of {} tokens ({:.1f}%)", r, c,
                       m.kept[size_t(r * m.heads + c)], m.length, 100 * v);
  };
  std::string o = fmt::format(
      "<p class=\"note\">Tokens each head keeps (sink + recent window) at N = {}; KV density "
      "{:.1f}%.</p>\n",
      m.length, 100 * m.kv_density);
  o += "<div class=\"legend\">" +
       svg::legend_svg(svg::sequential_color, "0", tokens_short(double(m.length)), "tokens kept") +
       "</div>\n";
  o += svg::grid_svg(g);
  return o;
}

std::string bench_label(const BenchRecord& b) {
  if (!b.label.empty()) return b.label;
  std::string l = b.method.empty() ? "run" : method_display(b.method);
  if (b.density && b.method != "dense") l += " " + pct(*b.density);
  return l;
}

std::string section_bench(const std::vector<BenchRecord>& bench) {
  auto i64 = [](const nlohmann::json& j, const char* f) {
    return j.contains(f) && j[f].is_number() ? j[f].get<double>() : std::nan("");
  };
  std::string o =
      "<table class=\"data\"><tr><th class=\"l\">run</th><th>ctx</th><th>batch</th>"
      "<th>prefill tok/s</th><th>decode tok/s</th><th>KV MiB</th><th>peak RSS MiB</th>"
      "<th>decode vs dense</th><th>KV vs dense</th></tr>\n";
  for (const auto& b : bench) {
    const auto& j = b.result;
    const BenchRecord* dense = nullptr;
    for (const auto& d : bench) {
      if (&d != &b && d.method == "dense" && i64(d.result, "ctx") == i64(j, "ctx") &&
          i64(d.result, "batch") == i64(j, "batch")) {
        dense = &d;
        break;
      }
    }
    std::string speed = "&#8212;", kv = "&#8212;";
    if (dense) {
      speed = fmt::format("{:.2f}x", i64(j, "decode_tok_s") / i64(dense->result, "decode_tok_s"));
      const double dk = i64(dense->result, "kv_bytes");
      if (dk > 0) kv = fmt::format("{:.2f}x", i64(j, "kv_bytes") / dk);
    }
    auto cell = [](double v, const char* f) {
      return std::isnan(v) ? std::string("n/a") : fmt::format(fmt::runtime(f), v);
    };
    o += fmt::format(
        "<tr><td "
        "class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td></tr>\n",
        escape(bench_label(b)), cell(i64(j, "ctx"), "{:.0f}"), cell(i64(j, "batch"), "{:.0f}"),
        cell(i64(j, "prefill_tok_s"), "{:.1f}"), cell(i64(j, "decode_tok_s"), "{:.2f}"),
        cell(i64(j, "kv_bytes") / 1048576.0, "{:.2f}"),
        cell(i64(j, "peak_rss_bytes") / 1048576.0, "{:.1f}"), speed, kv);
  }
  o += "</table>\n";
  return o;
}

}  // namespace

std::string method_display(const std::string& m) {
  if (m == "dense") return "Dense";
  if (m == "streaming") return "StreamingLLM";
  if (m == "h2o") return "H2O";
  if (m == "moa") return "MoA";
  return m;
}

std::string run_label(const RunRecord& r) {
  if (!r.label.empty()) return r.label;
  std::string l = method_display(r.method);
  if (r.density && r.method != "dense") l += " " + pct(*r.density);
  return l;
}

std::string render_report_html(const ReportInput& in) {
  std::string o = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
                  escape(in.title) + "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n";
  o += "<h1>" + escape(in.title) + "</h1>\n";
  if (!in.sources.empty()) {
    o += "<ul class=\"sources\">\n";
    for (const auto& s : in.sources) o += "<li>" + escape(s) + "</li>\n";
    o += "</ul>\n";
  }
  const auto rtasks = tasks_of(in.runs, true);
  if (!rtasks.empty()) {
    o += "<h2>Retrieval accuracy by input length and answer depth</h2>\n";
    o += "<p class=\"note\">Each small map: columns are input lengths, rows the depth of the asked "
         "line in the prompt; green = answered correctly, red = wrong, grey = no items. Title: "
         "overall accuracy. Hover a cell for its numbers.</p>\n";
    o += "<div class=\"legend\">" + svg::legend_svg(svg::accuracy_color, "0%", "100%", "accuracy") +
         "</div>\n";
    for (const auto& t : rtasks) o += section_heatmaps(in.runs, t);
    o += "<h2>Accuracy vs density and vs length</h2>\n<div class=\"charts\">\n";
    for (const auto& t : rtasks) {
      o += chart_vs_density(in.runs, t);
      o += chart_vs_length(in.runs, t);
    }
    o += "</div>\n";
    o += "<h2>Effective context length</h2>\n";
    o += fmt::format(
        "<p class=\"note\">The largest tested length with accuracy &#8805; {0} such that every "
        "shorter tested length also reaches {0}; ratio = that length / the mean over heads of the "
        "tokens kept at that length (N for dense, the plan's cache for MoA and StreamingLLM, the "
        "budget for H2O).</p>\n",
        kEffectiveContextThreshold);
    o += section_effective(in.runs);
  }
  const std::string ppl = section_ppl(in.runs);
  if (!ppl.empty()) o += "<h2>Perplexity</h2>\n" + ppl;
  if (in.spans) o += "<h2>Per-head spans of the plan</h2>\n" + section_spans(*in.spans);
  if (!in.bench.empty()) o += "<h2>Speed and memory</h2>\n" + section_bench(in.bench);
  if (rtasks.empty() && ppl.empty() && !in.spans && in.bench.empty()) {
    o += "<p class=\"empty\">No results.</p>\n";
  }
  o += "</body>\n</html>\n";
  return o;
}

}  // namespace moa
