// The OpenAI-style request bodies the server accepts, parsed and checked field by field. A bad
// request is an ApiError: the HTTP status and one message naming the field and what was expected,
// sent back as OpenAI's {"error": {"message", "type", "param", "code"}}.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace moa::serve {

struct ApiError : std::runtime_error {
  ApiError(int status, std::string type, std::string message, std::string param = "")
      : std::runtime_error(message), status(status), type(std::move(type)), param(std::move(param)) {}
  int status;
  std::string type, param;
};

// 400 invalid_request_error naming `param`.
[[noreturn]] void bad_request(const std::string& param, const std::string& message);
// The error body of an ApiError (or of any status and message).
nlohmann::json error_body(const std::string& type, const std::string& message,
                          const std::string& param = "");

// /v1/completions and /v1/chat/completions.
struct CompletionRequest {
  bool chat = false;
  std::string model;
  std::optional<std::string> prompt_text;   // completions: "prompt" as text
  std::vector<int32_t> prompt_ids;          // completions: "prompt" as token ids
  nlohmann::json messages;                  // chat: [{"role", "content"}]
  std::optional<int64_t> max_tokens;        // max_tokens, or chat's max_completion_tokens
  float temperature = 1.0f, top_p = 1.0f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false, include_usage = false;  // stream_options.include_usage
  bool ignore_eos = false;                     // llama-server's extension: generate past EOS
};

CompletionRequest parse_completion_request(const std::string& body, bool chat);

// /tokenize {"content": str, "add_special": bool} and /detokenize {"tokens": [int]}.
struct TokenizeRequest {
  std::string content;
  bool add_special = false;
};
TokenizeRequest parse_tokenize_request(const std::string& body);
std::vector<int32_t> parse_detokenize_request(const std::string& body);

}  // namespace moa::serve
