// The chat template renderer (moa/chat) against the reference implementation, @huggingface/jinja:
// real chat templates with several conversations and a corpus of feature snippets, compared byte
// for byte with tests/data/chat_templates/expected.json (written by make_expected.mjs there). When
// node and tests/js/node_modules are installed, the reference is also run live and must agree with
// the committed file. Then the error paths, the limits and the plain fallback.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "moa/chat/chat_template.h"
#include "moa/chat/jinja.h"
#include "moa/core/error.h"
#include "test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const fs::path kDir = fs::path(MOA_TEST_DATA) / "chat_templates";

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const json& expected() {
  static const json e = json::parse(read_file(kDir / "expected.json"));
  return e;
}

moa::jinja::DateTime now_of(const json& e) {
  const json& n = e["now"];
  return {n["year"].get<int>(), n["month"].get<int>(), n["day"].get<int>(), n["hour"].get<int>(),
          n["minute"].get<int>()};
}

// Where two renders first differ, with a little context, for the failure message.
std::string diff(const std::string& got, const std::string& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  const size_t from = i < 20 ? 0 : i - 20;
  return "first difference at byte " + std::to_string(i) + " (of " + std::to_string(got.size()) +
         " vs " + std::to_string(want.size()) + "): got " +
         json(got.substr(from, 60)).dump(-1, ' ', false, json::error_handler_t::replace) +
         ", want " +
         json(want.substr(from, 60)).dump(-1, ' ', false, json::error_handler_t::replace);
}

struct Outcome {
  bool ok;
  std::string text;  // the output, or the error message
};

// Compares one render with the reference's result; returns an empty string when they agree.
// Where the reference raises, so must we; a raise_exception message must be passed through.
std::string compare(const Outcome& got, const json& want) {
  if (want.contains("output")) {
    if (!got.ok) return "threw: " + got.text;
    if (got.text != want["output"].get<std::string>())
      return diff(got.text, want["output"].get<std::string>());
    return "";
  }
  if (got.ok) return "rendered, but the reference fails with: " + want["error"].get<std::string>();
  const std::string raised = "raised an exception: ";
  const size_t at = got.text.find(raised);
  if (at != std::string::npos &&
      got.text.substr(at + raised.size()) != want["error"].get<std::string>()) {
    return "raise_exception message '" + got.text + "', reference '" +
           want["error"].get<std::string>() + "'";
  }
  return "";
}

Outcome render_case(const json& e, const json& c) {
  const json& t = e["templates"][c["template"].get<std::string>()];
  const json& conv = e["conversations"][c["conversation"].get<std::string>()];
  moa::ChatTemplateInputs in;
  in.messages = conv["messages"];
  in.add_generation_prompt = conv["add_generation_prompt"].get<bool>();
  in.bos_token = t["bos_token"].get<std::string>();
  in.eos_token = t["eos_token"].get<std::string>();
  in.now = now_of(e);
  try {
    return {true, moa::render_chat_template(read_file(kDir / t["file"].get<std::string>()), in)};
  } catch (const moa::InputError& err) {
    return {false, err.what()};
  }
}

Outcome render_snippet(const json& e, const json& s) {
  moa::jinja::RenderOptions opt;
  opt.now = now_of(e);
  try {
    return {true, moa::jinja::render(s["source"].get<std::string>(), s["context"], opt)};
  } catch (const moa::InputError& err) {
    return {false, err.what()};
  }
}

// Checks every case and snippet of a reference file; prints how many matched.
void check_all(const json& e) {
  size_t matched = 0, outputs = 0;
  for (const json& c : e["cases"]) {
    const std::string bad = compare(render_case(e, c), c);
    EXPECT_EQ(bad, "") << c["template"] << " x " << c["conversation"];
    matched += bad.empty();
    outputs += c.contains("output");
  }
  std::printf(
      "templates: %zu of %zu (template, conversation) pairs agree with %s (%zu outputs, %zu "
      "errors)\n",
      matched, e["cases"].size(), e["reference"].get<std::string>().c_str(), outputs,
      e["cases"].size() - outputs);
  matched = 0;
  for (const json& s : e["snippets"]) {
    const std::string bad = compare(render_snippet(e, s), s);
    EXPECT_EQ(bad, "") << "snippet " << s["source"];
    matched += bad.empty();
  }
  std::printf("snippets: %zu of %zu agree\n", matched, e["snippets"].size());
}

std::string run(const std::string& src, const json& ctx = json::object(),
                const moa::jinja::RenderOptions& opt = {}) {
  return moa::jinja::render(src, ctx, opt);
}

// The InputError message of render(src), or "" when it renders.
std::string error_of(const std::string& src, const json& ctx = json::object(),
                     const moa::jinja::RenderOptions& opt = {}) {
  try {
    run(src, ctx, opt);
  } catch (const moa::InputError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_ERROR_HAS(src, needle)                                         \
  do {                                                                        \
    const std::string m_ = error_of(src);                                     \
    EXPECT_NE(m_.find(needle), std::string::npos) << "error: '" << m_ << "'"; \
  } while (0)

}  // namespace

TEST(ChatTemplate, RealTemplatesMatchReference) {
  ASSERT_GE(expected()["cases"].size(), 300u);
  check_all(expected());
}

TEST(ChatTemplate, ReferenceLive) {
  const fs::path js = fs::path(MOA_TEST_DATA).parent_path() / "js";
  if (!fs::exists(js / "node_modules" / "@huggingface" / "jinja") ||
      std::system("node --version >/dev/null 2>&1") != 0) {
    GTEST_SKIP()
        << "node or tests/js/node_modules missing (scripts/install-deps.sh installs them); "
           "compared with the committed expected.json only";
  }
  const fs::path out =
      fs::temp_directory_path() / ("moa-chat-expected-" + std::to_string(::getpid()) + ".json");
  // Random templates too, from a fresh seed (printed, so a failure can be replayed).
  const uint64_t seed = moa::test::draw_seed() % 2147483648u;
  const std::string cmd = "node '" + (kDir / "make_expected.mjs").string() + "' --out '" +
                          out.string() + "' --random 2000 --seed " + std::to_string(seed) +
                          " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const json live = json::parse(read_file(out));
  fs::remove(out);
  // The committed fixture must be what the pinned reference gives today.
  EXPECT_EQ(live["reference"], expected()["reference"]);
  EXPECT_TRUE(live["cases"] == expected()["cases"])
      << "expected.json is stale: rerun make_expected.mjs";
  EXPECT_TRUE(live["snippets"] == expected()["snippets"])
      << "expected.json is stale: rerun make_expected.mjs";
  check_all(live);
  size_t matched = 0, outputs = 0;
  for (const json& r : live["random"]) {
    const std::string bad = compare(render_snippet(live, r), r);
    EXPECT_EQ(bad, "") << "random template " << r["source"];
    matched += bad.empty();
    outputs += r.contains("output");
  }
  std::printf("random templates (seed %llu): %zu of %zu agree (%zu outputs)\n",
              static_cast<unsigned long long>(seed), matched, live["random"].size(), outputs);
}

TEST(ChatTemplate, SyntaxErrorNamesLineAndColumn) {
  const std::string m = error_of("{% if x %}\n  {{ 1 + }}\n{% endif %}");
  EXPECT_NE(m.find("template line 2, column 10: syntax error"), std::string::npos) << m;
  const std::string open = error_of("a\n{% for x in xs %}\n{{ x }}");
  EXPECT_NE(open.find("line 2, column 1"), std::string::npos) << open;
  EXPECT_NE(open.find("endfor"), std::string::npos) << open;
  EXPECT_ERROR_HAS("{{ 'unterminated }}", "unterminated string literal");
  EXPECT_ERROR_HAS("{# no end", "unterminated comment");
  EXPECT_ERROR_HAS("{{ 'a\\qb' }}", "unknown escape");
  EXPECT_ERROR_HAS("x\n\n   {{ @ }}", "line 3, column 7: unexpected character '@'");
}

TEST(ChatTemplate, UnsupportedConstructsAreNamed) {
  EXPECT_ERROR_HAS("{{ 'x' | frobnicate }}", "unknown filter 'frobnicate'");
  EXPECT_ERROR_HAS("{{ 3 | upper }}", "filter 'upper' does not apply to a integer");
  EXPECT_ERROR_HAS("{% include 'a.jinja' %}", "unsupported statement '{% include %}'");
  EXPECT_ERROR_HAS("{% raw %}x{% endraw %}", "unsupported statement '{% raw %}'");
  EXPECT_ERROR_HAS("{{ 1 is frobbed }}", "unknown test 'frobbed'");
  EXPECT_ERROR_HAS("{{ [{'a': 1}] | map('x') }}", "map without attribute=");
  EXPECT_ERROR_HAS("{% set ns = namespace() %}{% set ns.me = ns %}",
                   "unsupported: setting a namespace attribute");
  EXPECT_ERROR_HAS("{% break %}", "'{% break %}' outside a loop");
  EXPECT_ERROR_HAS("{{ range }}", "cannot print a function ('range')");
  EXPECT_ERROR_HAS("{{ '{}'.format(1) }}", "cannot call 'format': it is undefined");
  EXPECT_ERROR_HAS("{{ cycler() }}", "cannot call 'cycler'");
  EXPECT_NE(error_of("{{ v }}", {{"range", 1}}).find("would replace a built-in"),
            std::string::npos);
}

TEST(ChatTemplate, RaiseExceptionMessagePassesThrough) {
  moa::ChatTemplateInputs in;
  in.messages =
      json::array({{{"role", "user"}, {"content", "a"}}, {{"role", "user"}, {"content", "b"}}});
  try {
    moa::render_chat_template(read_file(kDir / "llama-2-chat.jinja"), in);
    FAIL() << "no exception";
  } catch (const moa::InputError& e) {
    EXPECT_STREQ(e.what(),
                 "chat template raised an exception: Conversation roles must alternate "
                 "user/assistant/user/assistant/...");
  }
  EXPECT_EQ(error_of("{{ raise_exception('bad ' ~ 1) }}"), "template raised an exception: bad 1");
}

TEST(ChatTemplate, LimitsEndInInputError) {
  // Recursion: a macro calling itself, and expressions nested past the parser's depth.
  EXPECT_ERROR_HAS("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nested deeper than");
  EXPECT_ERROR_HAS("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}",
                   "nested too deeply");
  EXPECT_ERROR_HAS("{{ " + std::string(3000, '-') + "1 }}", "nested too deeply");
  std::string chain = "{{ 1";
  for (int i = 0; i < 5000; ++i) chain += " + 1";
  EXPECT_ERROR_HAS(chain + " }}", "nested too deeply");
  std::string ifs;
  for (int i = 0; i < 2000; ++i) ifs += "{% if true %}";
  EXPECT_ERROR_HAS(ifs, "statements nested deeper than");
  EXPECT_ERROR_HAS(
      "{% set ns = namespace(x=1) %}{% for i in range(200) %}{% set ns.x = [ns.x] %}{% endfor %}",
      "nested deeper than 64");
  // Size: doubling a string, a long output, a huge range, too many steps.
  EXPECT_ERROR_HAS(
      "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% "
      "endfor %}",
      "a string longer than the limit");
  moa::jinja::RenderOptions small;
  small.max_output_bytes = 1000;
  EXPECT_NE(error_of("{% for i in range(2000) %}x{% endfor %}", json::object(), small)
                .find("output longer than"),
            std::string::npos);
  EXPECT_EQ(run("{% for i in range(1000) %}x{% endfor %}", json::object(), small),
            std::string(1000, 'x'));
  EXPECT_ERROR_HAS("{{ range(1000000000000) | length }}", "range() of more than");
  moa::jinja::RenderOptions few;
  few.max_steps = 100000;
  EXPECT_NE(error_of("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
                     json::object(), few)
                .find("steps"),
            std::string::npos);
  // Deep input.
  json deep = 1;
  for (int i = 0; i < 100; ++i) deep = json::array({deep});
  EXPECT_NE(error_of("{{ d }}", {{"d", deep}}).find("nested deeper"), std::string::npos);
}

TEST(ChatTemplate, BytesPassThrough) {
  // Invalid UTF-8 in the content or the template is copied, never a crash.
  const std::string bad = "a\xff\xc3(b\xed\xa0\x80";
  EXPECT_EQ(run("{{ s }}|{{ s | trim }}|{{ s | length }}", {{"s", bad}}), bad + "|" + bad + "|8");
  EXPECT_EQ(run(bad + "{{ 1 }}"), bad + "1");
}

// Inputs the fuzzer (fuzz/fuzz_jinja.cpp) found, each once a sanitizer report.
TEST(ChatTemplate, FuzzFindings) {
  // An index of 8.9e36 was cast to int64 (UBSan: outside the range of representable values).
  EXPECT_EQ(run("{{ s[88888888888888888888888888888888888-1] }}|{{ s[-99999999999999999999] }}|{{ "
                "l[-88888888888888888888] }}",
                {{"s", "abc"}, {"l", json::array({1})}}),
            "||");
  EXPECT_ERROR_HAS("{{ {} | tojson(indent=-100000000000000000000) }}", "indent out of range");
}

TEST(ChatTemplate, StrftimeNowUsesTheGivenClock) {
  moa::jinja::RenderOptions opt;
  opt.now = moa::jinja::DateTime{2025, 1, 5, 14, 7};
  EXPECT_EQ(run("{{ strftime_now('%d %b %Y, %B %H:%M %%') }}", json::object(), opt),
            "05 Jan 2025, January 14:07 %");
  // Without a clock it formats the current date; only its shape is stable.
  EXPECT_EQ(run("{{ strftime_now('%Y') | length }}"), "4");
}

TEST(ChatTemplate, PlainFallback) {
  moa::ChatTemplateInputs in;
  in.messages = json::array({{{"role", "system"}, {"content", "Be brief."}},
                             {{"role", "user"}, {"content", "Hi\nthere"}}});
  EXPECT_EQ(moa::render_plain_chat(in), "system: Be brief.\nuser: Hi\nthere\nassistant:");
  in.add_generation_prompt = false;
  EXPECT_EQ(moa::render_plain_chat(in), "system: Be brief.\nuser: Hi\nthere\n");
  in.messages = json::array({{{"role", "user"}}});
  EXPECT_THROW(moa::render_plain_chat(in), moa::InputError);
  in.messages = json::object();
  EXPECT_THROW(moa::render_plain_chat(in), moa::InputError);
}
