// The HTTP face of the engine (cpp-httplib): OpenAI-compatible completions and chat completions
// (with server-sent-event streaming), tokenize / detokenize, health, models and Prometheus
// metrics. Every request is answered: bad input gets 4xx with an OpenAI-style error body, a full
// queue 503, and nothing a client sends can stop the server.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "moa/serve/engine.h"
#include "moa/tokenizer/tokenizer.h"

namespace moa::serve {

// A chat as prompt text: the model's template (or the plain fallback) applied to the messages.
// add_special: whether encoding the text must add BOS (a template writes its own).
struct RenderedChat {
  std::string text;
  bool add_special = false;
};
using ChatRenderer = std::function<RenderedChat(const nlohmann::json& messages)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;           // 0: any free port (bound() tells which)
  std::string api_key;       // empty: no authentication
  size_t max_body = size_t(1) << 20;
  std::string model_name;    // what /v1/models lists and responses name
  int http_threads = 64;     // connections served at once (streams hold one each)
};

class HttpServer {
 public:
  HttpServer(Engine& engine, const Tokenizer& tok, ChatRenderer chat, ServerOptions opt);
  ~HttpServer();
  // Binds the socket; returns the port (InputError when it cannot be bound).
  int bind();
  // Serves until stop(); call bind() first.
  void run();
  void stop();
  // Requests get 503 from now on (a draining server).
  void refuse_new();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moa::serve
