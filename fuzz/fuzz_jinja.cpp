// libFuzzer harness for the chat template renderer (moa/chat): lexer, parser and interpreter.
// The input is a template; after its first NUL byte, if any, comes the text of one message, so
// the fuzzer can vary both. It is rendered with a chat context (the variables the server passes)
// and with values of every type, under small limits so that a slow input is caught as a hang.
//
// Bad input must end in moa::InputError; anything else (another exception, a sanitizer report, a
// MOA_CHECK abort, a hang, a deep recursion or a huge allocation) is a finding.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "moa/chat/jinja.h"
#include "moa/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string source = input.substr(0, nul);
  const std::string content =
      nul == std::string::npos ? "Hello \xc3\xa9 \"quoted\"\n" : input.substr(nul + 1);

  using nlohmann::json;
  json messages = json::array({{{"role", "system"}, {"content", "You are helpful."}},
                               {{"role", "user"}, {"content", content}},
                               {{"role", "assistant"}, {"content", "<think>x</think> ok"}},
                               {{"role", "user"}, {"content", ""}}});
  const json chat = {{"messages", messages},
                     {"add_generation_prompt", true},
                     {"bos_token", "<s>"},
                     {"eos_token", "</s>"}};
  const json values = {
      {"messages", messages},
      {"s", content},
      {"n", 3},
      {"f", -2.5},
      {"b", false},
      {"z", nullptr},
      {"l", json::array({1, "two", 3.5, nullptr, json::array({true})})},
      {"d", {{"k", "v"}, {"n", json::object({{"x", 1}})}}},
      {"tools", json::array({{{"type", "function"},
                              {"function", {{"name", "f"}, {"parameters", json::object()}}}}})}};
  moa::jinja::RenderOptions opt;
  opt.now = moa::jinja::DateTime{};
  opt.max_output_bytes = size_t{1} << 20;
  opt.max_steps = 200'000;
  opt.max_string_bytes = uint64_t{32} << 20;
  opt.max_items = 20'000;
  for (const json* ctx : {&chat, &values}) {
    try {
      (void)moa::jinja::render(source, *ctx, opt);
    } catch (const moa::InputError&) {
    }
  }
  return 0;
}
