#include "moa/chat/chat_template.h"

#include "moa/core/error.h"

namespace moa {

std::string render_chat_template(const std::string& jinja_source, const ChatTemplateInputs& in) {
  // The variables transformers' apply_chat_template passes (no tools: the server has none yet).
  const nlohmann::json context = {
      {"messages", in.messages},
      {"add_generation_prompt", in.add_generation_prompt},
      {"bos_token", in.bos_token},
      {"eos_token", in.eos_token},
  };
  jinja::RenderOptions opt;
  opt.name = "chat template";
  opt.now = in.now;
  return jinja::render(jinja_source, context, opt);
}

std::string render_plain_chat(const ChatTemplateInputs& in) {
  if (!in.messages.is_array())
    input_error("chat messages: expected an array, got {}", in.messages.type_name());
  std::string out;
  for (size_t i = 0; i < in.messages.size(); ++i) {
    const nlohmann::json& m = in.messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string()) {
      input_error("chat messages[{}]: expected {{\"role\": string, \"content\": string}}", i);
    }
    out += m["role"].get<std::string>() + ": " + m["content"].get<std::string>() + "\n";
  }
  if (in.add_generation_prompt) out += "assistant:";
  return out;
}

}  // namespace moa
