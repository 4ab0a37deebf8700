// Chat prompts for `moa serve`: a model's Hugging Face chat template rendered with its messages,
// or the plain fallback for models that have none. The template language is in jinja.h.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "moa/chat/jinja.h"

namespace moa {

struct ChatTemplateInputs {
  nlohmann::json messages;  // array of {"role": str, "content": str}
  bool add_generation_prompt = true;
  std::string bos_token, eos_token;    // the tokenizer's BOS/EOS text ("" when none)
  std::optional<jinja::DateTime> now;  // strftime_now's clock (tests fix it); unset: local time
};

// Renders a Hugging Face chat template (Jinja source) with the variables transformers passes:
// messages, add_generation_prompt, bos_token, eos_token. Throws moa::InputError with one line for
// a template syntax error (naming line and column), an unsupported construct (naming it), or
// raise_exception("...") from the template (its message).
std::string render_chat_template(const std::string& jinja_source, const ChatTemplateInputs& in);

// The plain fallback for models with no template (e.g. the shipped byte-level model): for each
// message "<role>: <content>\n", then "assistant:" when add_generation_prompt (no space after the
// colon; the model writes its own). bos_token and eos_token are not used. Throws moa::InputError
// when messages is not an array of objects with string "role" and "content".
std::string render_plain_chat(const ChatTemplateInputs& in);

}  // namespace moa
