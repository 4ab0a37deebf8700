// Effective context on toy data, the results/bench readers, and the HTML report built from
// synthetic results: balanced tags, closed non-empty SVGs, the expected number of heatmap and
// span cells, escaped text; then, when `chromium` is installed, the page as a browser parses
// and renders it (--dump-dom and --screenshot, headless).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "moa/core/error.h"
#include "moa/eval/eval.h"
#include "moa/core/file_io.h"
#include "moa/eval/report.h"
#include "moa/tokenizer/tokenizer.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;

TEST(EffectiveContext, Rule) {
  // 4000 fails, so 8000 does not count even though it passes.
  EXPECT_EQ(effective_context_length({{1000, 1.0}, {2000, 0.95}, {4000, 0.85}, {8000, 0.95}}),
            2000);
  EXPECT_EQ(effective_context_length({{1000, 0.9}, {2000, 0.9}}), 2000);  // >= 0.9 passes
  EXPECT_EQ(effective_context_length({{1000, 0.89}, {2000, 1.0}}), 0);
  EXPECT_EQ(effective_context_length({}), 0);
  EXPECT_EQ(effective_context_length({{500, 0.6}, {900, 0.55}}, 0.5), 900);
}

TEST(EffectiveContext, MeanSpans) {
  EXPECT_DOUBLE_EQ(MethodSpan::dense().mean_span(3000), 3000.0);
  // StreamingLLM 0.5: cache = ceil_64(max(128, min(N/2, N))).
  EXPECT_DOUBLE_EQ(MethodSpan::streaming(0.5).mean_span(4096), 2048.0);
  EXPECT_DOUBLE_EQ(MethodSpan::streaming(0.5).mean_span(3000), 1536.0);
  EXPECT_DOUBLE_EQ(MethodSpan::streaming(0.5).mean_span(100), 100.0);  // min cache 128 > N
  EXPECT_DOUBLE_EQ(MethodSpan::h2o(0.25).mean_span(1000), 250.0);
  EXPECT_DOUBLE_EQ(MethodSpan::h2o(0.001).mean_span(1000), 2.0);
  // A 1-layer, 2-head plan: one head 256 + 0 N, one head 0 + 1 N.
  PlanRules rules;
  rules.alphas = {{256, 0}};
  rules.betas = {{0, 1}};
  const MethodSpan p = MethodSpan::of_plan(Plan::from_rules({rules}), ModelShape{1, 2, 2});
  EXPECT_DOUBLE_EQ(p.mean_span(2000), (256.0 + 2000.0) / 2);

  const auto e =
      effective_context({{1000, 1.0}, {3000, 0.95}, {6000, 0.2}}, MethodSpan::streaming(0.5));
  EXPECT_EQ(e.length, 3000);
  EXPECT_DOUBLE_EQ(e.mean_span, 1536.0);
  EXPECT_DOUBLE_EQ(e.ratio, 3000.0 / 1536.0);
  const auto d = effective_context({{1000, 1.0}, {3000, 0.95}}, MethodSpan::dense());
  EXPECT_DOUBLE_EQ(d.ratio, 1.0);
  const auto none = effective_context({{1000, 0.1}}, MethodSpan::dense());
  EXPECT_EQ(none.length, 0);
  EXPECT_EQ(none.ratio, 0.0);
}

// A synthetic retrieval result: accuracy falls with length, faster for sparser methods.
nlohmann::json fake_retrieval(const std::string& method, double density,
                              const std::vector<int64_t>& lines, uint32_t seed) {
  std::mt19937 rng(seed);
  nlohmann::json bl = nlohmann::json::object(), blp = nlohmann::json::object(),
                 pt = nlohmann::json::object();
  double sum = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string k = std::to_string(lines[i]);
    nlohmann::json row = nlohmann::json::object();
    double rs = 0;
    for (int b = 0; b < 5; ++b) {
      const double base =
          std::clamp(1.0 - double(i) * (1.0 - density) * 0.35 - 0.1 * (rng() % 3), 0.0, 1.0);
      const double a = std::round(base * 4) / 4;
      row[fmt::format("{:.1f}-{:.1f}", 0.2 * b, 0.2 * (b + 1))] = a;
      rs += a;
    }
    blp[k] = row;
    bl[k] = rs / 5;
    pt[k] = 17.3 * double(lines[i]) + 60;
    sum += rs / 5;
  }
  nlohmann::json j = {{"accuracy", sum / double(lines.size())},
                      {"n", 20 * lines.size()},
                      {"by_lines", bl},
                      {"by_lines_position", blp},
                      {"prompt_tokens", pt},
                      {"by_position", nlohmann::json::object()},
                      {"method", method},
                      {"task", "longeval"}};
  if (method != "dense") j["density"] = density;
  return j;
}

const std::vector<int64_t> kLines = {50, 100, 150, 200};

nlohmann::json synthetic_results() {
  nlohmann::json runs = nlohmann::json::array();
  runs.push_back({{"method", "dense"}, {"result", fake_retrieval("dense", 1.0, kLines, 1)}});
  uint32_t seed = 2;
  for (const char* m : {"streaming", "h2o", "moa"}) {
    for (double d : {0.5, 0.25}) {
      nlohmann::json r = fake_retrieval(m, d, kLines, seed++);
      if (std::string(m) == "moa") r.erase("density");  // density given by the run entry instead
      runs.push_back({{"method", m}, {"density", d}, {"task", "longeval"}, {"result", r}});
    }
  }
  // A label that needs escaping.
  runs.back()["label"] = "MoA <b>&\"x\"";
  runs.push_back({{"method", "dense"},
                  {"result",
                   {{"ppl", 12.5},
                    {"nll", std::log(12.5)},
                    {"tokens", 4000},
                    {"windows", 2},
                    {"method", "dense"},
                    {"task", "ppl"},
                    {"source", "wiki.txt"}}}});
  runs.push_back({{"method", "moa"},
                  {"density", 0.5},
                  {"result",
                   {{"ppl", 13.0},
                    {"nll", std::log(13.0)},
                    {"tokens", 4000},
                    {"windows", 2},
                    {"method", "moa"},
                    {"task", "ppl"},
                    {"source", "wiki.txt"}}}});
  return {{"runs", runs}};
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = 0; (p = s.find(what, p)) != std::string::npos; p += what.size()) ++n;
  return n;
}

// Every element closed in order (void elements and self-closing tags aside); the <style> body
// is skipped. Returns "" when well formed, else what broke.
std::string check_tags(const std::string& html) {
  std::vector<std::string> stack;
  size_t p = 0;
  while ((p = html.find('<', p)) != std::string::npos) {
    const size_t e = html.find('>', p);
    if (e == std::string::npos) return fmt::format("unterminated tag at {}", p);
    std::string tag = html.substr(p + 1, e - p - 1);
    p = e + 1;
    if (tag.rfind("!", 0) == 0 || tag.rfind("?", 0) == 0) continue;
    const bool closing = tag[0] == '/';
    const bool self = !tag.empty() && tag.back() == '/';
    std::string name = tag.substr(closing ? 1 : 0);
    name = name.substr(0, name.find_first_of(" \t\n/"));
    if (name == "meta" || name == "br") continue;
    if (self) continue;
    if (!closing) {
      stack.push_back(name);
      if (name == "style") {
        const size_t end = html.find("</style>", p);
        if (end == std::string::npos) return "unclosed <style>";
        p = end;
      }
      continue;
    }
    if (stack.empty() || stack.back() != name) {
      return fmt::format("</{}> at {} closes <{}>", name, p,
                         stack.empty() ? "nothing" : stack.back());
    }
    stack.pop_back();
  }
  return stack.empty() ? "" : fmt::format("<{}> never closed", stack.back());
}

// Each <svg ...>...</svg> holds drawn shapes.
void expect_svgs_nonempty(const std::string& html, size_t want) {
  size_t n = 0;
  for (size_t p = 0; (p = html.find("<svg", p)) != std::string::npos; ++n) {
    const size_t e = html.find("</svg>", p);
    ASSERT_NE(e, std::string::npos) << "svg " << n << " not closed";
    const std::string body = html.substr(p, e - p);
    EXPECT_TRUE(body.find("<rect") != std::string::npos ||
                body.find("<polyline") != std::string::npos ||
                body.find("<circle") != std::string::npos)
        << "svg " << n << " is empty";
    p = e;
  }
  EXPECT_EQ(n, want);
}

ReportInput synthetic_input() {
  ReportInput in;
  in.runs = parse_results(synthetic_results(), "synthetic.json");
  attach_spans(in.runs, nullptr, std::nullopt);
  in.bench = parse_bench(nlohmann::json::parse(R"({"runs": [
      {"method": "dense", "result": {"ctx": 2048, "batch": 1, "prefill_tok_s": 900.0, "decode_tok_s": 40.0,
                                     "kv_bytes": 8388608, "peak_rss_bytes": 104857600}},
      {"method": "moa", "density": 0.5, "result": {"ctx": 2048, "batch": 1, "prefill_tok_s": 1300.0,
                                     "decode_tok_s": 60.0, "kv_bytes": 4194304, "peak_rss_bytes": 94371840}}]})"),
                         "bench.json");
  PlanRules rules;
  rules.alphas.assign(4, std::vector<double>(6, 0.0));
  rules.betas.assign(4, std::vector<double>(6, 0.0));
  for (int l = 0; l < 4; ++l) {
    for (int h = 0; h < 6; ++h) {
      rules.alphas[size_t(l)][size_t(h)] = 128.0 * h;
      rules.betas[size_t(l)][size_t(h)] = 0.125 * l;
    }
  }
  in.spans =
      plan_span_map(Plan::from_rules({rules}), ModelShape{4, 6, 2}, 3500, "plan.json: kept tokens");
  in.sources = {"results: synthetic.json", "bench: bench.json"};
  return in;
}

// eval_retrieval fills the length x depth table the heatmaps read, consistent with its totals.
// A MoA run is labelled by the density its plan was optimised for (the longest profile length),
// not by the sparser density the elastic rules reach at an extend length.
TEST(Report, MoaLabelIsTheBudgetDensity) {
  PlanRules rules;
  rules.alphas = {{0, 0}};
  rules.betas = {{0.5, 0.5}};
  Plan plan = Plan::from_rules({rules});
  plan.density() = {{512, 0.5}, {2048, 0.5}, {4096, 0.458}};
  std::vector<RunRecord> runs(1);
  runs[0].method = "moa";
  attach_spans(runs, &plan, ModelShape{1, 2, 2});
  ASSERT_TRUE(runs[0].density.has_value());
  EXPECT_DOUBLE_EQ(*runs[0].density, 0.458);  // no lengths recorded: the longest entry
  plan.set_lengths({{"profile", {512, 2048}}, {"extend", {4096}}});
  runs[0].density.reset();
  attach_spans(runs, &plan, ModelShape{1, 2, 2});
  ASSERT_TRUE(runs[0].density.has_value());
  EXPECT_DOUBLE_EQ(*runs[0].density, 0.5);
}

TEST(Report, RetrievalByLinesPosition) {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.layers = 1;
  c.heads = 2;
  c.kv_heads = 1;
  c.head_dim = 8;
  c.hidden = 16;
  c.intermediate = 32;
  c.vocab = kByteLevelVocabSize;
  c.max_position = 256;
  const Model m = Model::random(c, 2, 0.3f);
  const fs::path dir = test::temp_dir("report_retrieval");
  write_text_atomic(dir / "tokenizer.json", make_byte_level_tokenizer_json());
  const auto tok = Tokenizer::load(dir / "tokenizer.json");
  std::vector<RetrievalItem> items;
  for (int i = 0; i < 10; ++i)
    items.push_back({"line " + std::to_string(i), i % 3, i < 5 ? 5 : 10, 0.1 * i + 0.05});
  const RetrievalResult r = eval_retrieval(m, *tok, items, 3, [&](int64_t n) {
    return AttentionSpec::dense(c.layers, c.heads, c.kv_heads, c.head_dim, n);
  });
  int64_t n = 0, correct = 0;
  for (const auto& [lines, buckets] : r.by_lines_depth) {
    int64_t ln = 0, lc = 0;
    for (const auto& [b, v] : buckets) ln += v.second, lc += v.first;
    EXPECT_EQ(ln, r.by_lines.at(lines).second);
    EXPECT_EQ(lc, r.by_lines.at(lines).first);
    n += ln, correct += lc;
  }
  EXPECT_EQ(n, 10);
  EXPECT_EQ(correct, r.correct);
  // depths 0.05, 0.15, ..., 0.95: lines 5 in buckets 0, 0, 1, 1, 2; lines 10 in 2, 3, 3, 4, 4.
  EXPECT_EQ(r.by_lines_depth.at(5).at(0).second, 2);
  EXPECT_EQ(r.by_lines_depth.at(10).at(4).second, 2);
  EXPECT_EQ(r.by_lines_depth.at(10).at(2).second, 1);
  const nlohmann::json j = r.to_json();
  ASSERT_TRUE(j.contains("by_lines_position"));
  EXPECT_TRUE(j["by_lines_position"]["10"].contains("0.8-1.0"));
  EXPECT_FALSE(j["by_lines_position"]["5"].contains("0.8-1.0"));
  // What eval writes is what the report reads.
  nlohmann::json run = j;
  run["method"] = "dense";
  EXPECT_EQ(parse_results(run, "eval.json").size(), 1u);
  fs::remove_all(dir);
}

TEST(Report, ParseForms) {
  const auto runs = parse_results(synthetic_results(), "s.json");
  ASSERT_EQ(runs.size(), 9u);
  EXPECT_EQ(runs[0].method, "dense");
  EXPECT_FALSE(runs[0].density.has_value());
  EXPECT_EQ(runs[5].method, "moa");
  EXPECT_DOUBLE_EQ(*runs[5].density, 0.5);  // from the run entry
  EXPECT_EQ(runs[1].task, "longeval");
  EXPECT_EQ(runs[7].task, "ppl");
  EXPECT_TRUE(runs[7].perplexity());
  // A list of eval outputs, and one eval output.
  const auto one = fake_retrieval("streaming", 0.5, kLines, 3);
  EXPECT_EQ(parse_results(nlohmann::json::array({one, one}), "l.json").size(), 2u);
  const auto single = parse_results(one, "o.json");
  ASSERT_EQ(single.size(), 1u);
  EXPECT_DOUBLE_EQ(*single[0].density, 0.5);
  // Errors name the file and field.
  auto no_method = one;
  no_method.erase("method");
  try {
    parse_results(nlohmann::json::array({one, no_method}), "bad.json");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json: [1]: field 'method'"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(
      parse_results(nlohmann::json::parse(R"({"runs": [{"method": "moa", "result": {"x": 1}}]})"),
                    "b"),
      InputError);
  EXPECT_THROW(parse_results(nlohmann::json::parse(R"({"runs": [{"method": "moa", "density": 2,
                   "result": {"ppl": 3}}]})"),
                             "b"),
               InputError);
  auto bad_lines = one;
  bad_lines["by_lines"]["abc"] = 0.5;
  EXPECT_THROW(parse_results(bad_lines, "b"), InputError);
  EXPECT_THROW(parse_bench(nlohmann::json::parse(R"({"ctx": 5})"), "b"), InputError);
  const auto acc = accuracy_by_length(one);
  ASSERT_EQ(acc.size(), 4u);
  EXPECT_EQ(acc.begin()->first, int64_t(std::llround(17.3 * 50 + 60)));
}

TEST(Report, HtmlStructure) {
  const ReportInput in = synthetic_input();
  const std::string html = render_report_html(in);
  EXPECT_EQ(check_tags(html), "");
  // 7 retrieval runs x 4 lengths x 5 depths; a 4 x 6 span map.
  EXPECT_EQ(count(html, "class=\"hm-cell\""), 7u * 4 * 5);
  EXPECT_EQ(count(html, "class=\"span-cell\""), 24u);
  // 7 heatmaps, 2 legends, 2 charts, 1 span map.
  EXPECT_EQ(count(html, "<svg"), count(html, "</svg>"));
  expect_svgs_nonempty(html, 12);
  // Two polylines per method in the density chart (streaming, h2o, moa, dense line) and one per
  // run.
  EXPECT_EQ(count(html, "class=\"series\""), 4u + 7u);
  EXPECT_NE(html.find("MoA &lt;b&gt;&amp;&quot;x&quot;"), std::string::npos);
  EXPECT_EQ(html.find("<b>&"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  // Nothing fetched from the network: the only URL is the SVG namespace.
  EXPECT_EQ(count(html, "http"), count(html, "http://www.w3.org/2000/svg"));
  EXPECT_NE(html.find("Effective context length"), std::string::npos);
  EXPECT_NE(html.find("+4.00%"), std::string::npos);  // ppl 13 vs 12.5
  EXPECT_NE(html.find("1.50x"), std::string::npos);   // decode 60 vs 40
  EXPECT_NE(html.find("0.50x"), std::string::npos);   // KV 4 MiB vs 8 MiB
  // The effective context column agrees with the library rule.
  const auto dense_acc = accuracy_by_length(in.runs[0].result);
  const int64_t dense_eff = effective_context_length(dense_acc);
  std::string tested;
  for (const auto& [n, a] : dense_acc)
    tested += fmt::format("{}{}: {:.2f}", tested.empty() ? "" : ", ", n, a);
  EXPECT_NE(html.find(fmt::format("<td class=\"l\">Dense</td><td class=\"l\">longeval</td><td "
                                  "class=\"l\">{}</td><td>{}</td>",
                                  tested, dense_eff > 0 ? std::to_string(dense_eff) : "none")),
            std::string::npos)
      << tested;
}

TEST(Report, Cli) {
  const fs::path dir = test::temp_dir("report_cli");
  write_text_atomic(dir / "r.json", synthetic_results().dump());
  write_text_atomic(dir / "b.json",
                    R"({"ctx": 1024, "prefill_tok_s": 1.0, "decode_tok_s": 2.0, "kv_bytes": 10})");
  PlanRules rules;
  rules.alphas.assign(2, std::vector<double>(3, 512.0));
  rules.betas.assign(2, std::vector<double>(3, 0.25));
  Plan::from_rules({rules}).save(dir / "p.json");
  const auto r = test::run_moa(fmt::format("report --results {} --bench {} --plan {} --out {}",
                                           (dir / "r.json").string(), (dir / "b.json").string(),
                                           (dir / "p.json").string(), (dir / "out.html").string()));
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string html = read_text(dir / "out.html");
  EXPECT_EQ(check_tags(html), "");
  EXPECT_EQ(count(html, "class=\"span-cell\""), 6u);
  EXPECT_EQ(count(html, "class=\"hm-cell\""), 140u);
  // The span map's N defaults to the longest tested length (200 lines).
  EXPECT_NE(html.find(fmt::format("at N = {}", std::llround(17.3 * 200 + 60))), std::string::npos);
  write_text_atomic(dir / "bad.json", R"({"runs": [{"result": {"ppl": 1}}]})");
  const auto bad = test::run_moa(fmt::format(
      "report --results {} --out {}", (dir / "bad.json").string(), (dir / "o2.html").string()));
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("field 'method'"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(dir / "o2.html"));
  fs::remove_all(dir);
}

std::string run_capture(const std::string& cmd, int* status) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  *status = pclose(f);
  return out;
}

TEST(Report, ChromiumRendersIt) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "chromium not installed";
  const fs::path dir = test::temp_dir("report_chromium");
  const std::string html = render_report_html(synthetic_input());
  write_text_atomic(dir / "r.html", html);
  const std::string flags = fmt::format(
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage "
      "--user-data-dir={} ",
      (dir / "profile").string());
  int status = -1;
  const std::string dom = run_capture(
      flags + "--dump-dom file://" + (dir / "r.html").string() + " 2>/dev/null", &status);
  ASSERT_EQ(status, 0) << "chromium --dump-dom failed";
  EXPECT_EQ(check_tags(dom.substr(dom.find("<html"))), "");
  EXPECT_EQ(count(dom, "<svg"), 12u);
  EXPECT_EQ(count(dom, "</svg>"), 12u);
  EXPECT_EQ(count(dom, "class=\"hm-cell\""), 140u);
  EXPECT_EQ(count(dom, "class=\"span-cell\""), 24u);
  expect_svgs_nonempty(dom, 12);
  const fs::path png = dir / "shot.png";
  run_capture(flags + "--screenshot=" + png.string() + " --window-size=1200,2000 file://" +
                  (dir / "r.html").string() + " >/dev/null 2>&1",
              &status);
  ASSERT_EQ(status, 0) << "chromium --screenshot failed";
  ASSERT_TRUE(fs::exists(png));
  EXPECT_GT(fs::file_size(png), 20000u);  // a blank page compresses to a few KB
  fs::remove_all(dir);
}

}  // namespace
}  // namespace moa
