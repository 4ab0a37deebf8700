// moa serve: the OpenAI-compatible HTTP server (src/serve/). One engine thread runs every slot's
// steps; HTTP connections each have a thread that only waits on their request. SIGINT / SIGTERM
// drain: new requests get 503, running ones finish, then the process exits 0.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include <fmt/format.h>

#include "command.h"
#include "option_checks.h"
#include "common.h"
#include "moa/chat/chat_template.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/gguf/gguf.h"
#include "moa/model/forward.h"
#include "moa/serve/engine.h"
#include "moa/serve/http_server.h"
#include "moa/tokenizer/tokenizer.h"

namespace moa::cli {
namespace {

// Read by the watcher thread, so an atomic (lock-free, hence safe in a handler), not a volatile.
std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);
extern "C" void on_signal(int sig) { g_signal = sig; }

struct ServeOptions {
  std::string model, host = "127.0.0.1", api_key, alias, chat_template_file;
  int port = 8080;
  int64_t parallel = 1, ctx = 0, chunk = 512, queue = 64;
  size_t max_body = size_t(1) << 20;
  int threads = 0, http_threads = 64;
  bool json = false;
  AttentionOptions attn;
};

// The model's chat template: --chat-template-file, else a GGUF's tokenizer.chat_template, else
// tokenizer_config.json's chat_template (a string, or transformers' list of named templates, of
// which "default" is the chat one). Empty: the model has none.
std::string model_chat_template(const std::string& model, const std::string& file) {
  if (!file.empty()) return read_text(file);
  if (is_gguf_path(model)) return GgufFile(model).get_string("tokenizer.chat_template", "");
  const std::filesystem::path cfg = std::filesystem::path(model) / "tokenizer_config.json";
  if (!std::filesystem::exists(cfg)) return "";
  const nlohmann::json j = nlohmann::json::parse(read_text(cfg), nullptr, false);
  if (j.is_discarded() || !j.is_object()) input_error("{}: not a JSON object", cfg.string());
  const nlohmann::json& t = j.value("chat_template", nlohmann::json());
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array()) {
    for (const auto& e : t) {
      if (e.is_object() && e.value("name", "") == "default" && e.contains("template") &&
          e["template"].is_string()) {
        return e["template"].get<std::string>();
      }
    }
  }
  if (!t.is_null()) {
    input_error("{}: chat_template is neither a string nor a list holding a \"default\" template",
                cfg.string());
  }
  return "";
}

// Messages to prompt text: the model's template (which writes BOS itself, as transformers'
// apply_chat_template does, so encoding adds none), or, for a model without one, the documented
// plain fallback (render_plain_chat), encoded with BOS like any prompt.
serve::ChatRenderer chat_renderer(const std::string& tmpl, const Tokenizer& tok) {
  if (tmpl.empty()) {
    return [](const nlohmann::json& messages) {
      ChatTemplateInputs in;
      in.messages = messages;
      return serve::RenderedChat{render_plain_chat(in), true};
    };
  }
  const std::vector<int32_t> eos = tok.eos_ids();
  const std::string bos_text = tok.bos_id() >= 0 ? tok.decode({tok.bos_id()}) : "";
  const std::string eos_text = eos.empty() ? "" : tok.decode({eos[0]});
  return [tmpl, bos_text, eos_text](const nlohmann::json& messages) {
    ChatTemplateInputs in;
    in.messages = messages;
    in.bos_token = bos_text;
    in.eos_token = eos_text;
    return serve::RenderedChat{render_chat_template(tmpl, in), false};
  };
}

void run(ServeOptions o) {
  set_threads(o.threads);
  Model model = Model::load(o.model);
  adopt_embedded_plan(o.attn, model);
  auto tok = Tokenizer::load(o.model);
  const int64_t ctx = o.ctx > 0 ? o.ctx : model.cfg.max_position;
  if (ctx > model.cfg.max_position) {
    input_error("{}: --ctx-size {} exceeds the model's context of {} (max_position_embeddings)",
                o.model, ctx, model.cfg.max_position);
  }
  const CacheSpec spec = make_cache_spec(model.cfg.attention_shape(), ctx, o.attn);
  serve::EngineOptions eo;
  eo.slots = o.parallel;
  eo.chunk = o.chunk;
  eo.queue_limit = o.queue;
  serve::Engine engine(model, *tok, spec, eo);
  serve::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.api_key = o.api_key;
  so.max_body = o.max_body;
  so.http_threads = o.http_threads;
  so.model_name = o.alias.empty() ? std::filesystem::path(o.model).filename().string() : o.alias;
  if (so.model_name.empty()) so.model_name = std::filesystem::path(o.model).parent_path().filename().string();
  const std::string tmpl = model_chat_template(o.model, o.chat_template_file);
  const serve::ChatRenderer chat = chat_renderer(tmpl, *tok);
  try {  // a template that cannot render a one-line chat would fail every chat request
    (void)chat(nlohmann::json::array({{{"role", "user"}, {"content", "hello"}}}));
  } catch (const InputError& e) {
    input_error("{}: the chat template does not render a one-message chat: {}",
                o.chat_template_file.empty() ? o.model : o.chat_template_file, e.what());
  }
  serve::HttpServer server(engine, *tok, chat, so);
  const int port = server.bind();

  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not end the process
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::thread watcher([&] {
    while (!g_signal) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::fprintf(stderr, "moa serve: signal %d: draining\n", g_signal.load());
    server.refuse_new();
    engine.drain();
    server.stop();
  });
  std::fprintf(stderr,
               "moa serve: %s, %s attention, %lld slots x %lld positions, KV %.2f MiB, chat %s; "
               "listening on http://%s:%d\n",
               so.model_name.c_str(), method_name(o.attn).c_str(), (long long)o.parallel,
               (long long)ctx, double(engine.metrics().kv_bytes) / (1 << 20),
               tmpl.empty() ? "plain fallback (the model has no template)" : "the model's template",
               o.host.c_str(), port);
  std::fflush(stderr);
  if (o.json) {
    // Once listening, so that a script can read the port (with --port 0) and start sending.
    print_json({{"url", fmt::format("http://{}:{}", o.host, port)}, {"host", o.host}, {"port", port},
                {"model", so.model_name}, {"attention", method_name(o.attn)}, {"parallel", o.parallel},
                {"ctx_size", ctx}, {"kv_bytes", engine.metrics().kv_bytes}});
  }
  server.run();
  if (!g_signal) g_signal = SIGTERM;  // the listener ended on its own: let the watcher finish
  watcher.join();
  std::fprintf(stderr, "moa serve: stopped\n");
}

void setup(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  app.add_option("-m,--model", o->model, "checkpoint directory or .gguf file")->required();
  app.add_option("--host", o->host, "address to listen on")->capture_default_str();
  app.add_option("--port", o->port, "port (0: any free port, printed at start)")
      ->check(in_range(0, 65535))->capture_default_str();
  app.add_option("--parallel", o->parallel, "slots: requests served at once")
      ->check(in_range(int64_t(1), int64_t(1024)))->capture_default_str();
  app.add_option("--ctx-size", o->ctx, "positions per slot (default: the model's context)")
      ->check(at_least(0));
  app.add_option("--api-key", o->api_key, "require 'Authorization: Bearer KEY'");
  app.add_option("--alias", o->alias, "model name in /v1/models and responses");
  app.add_option("--chat-template-file", o->chat_template_file,
                 "Jinja chat template to use instead of the model's");
  app.add_option("--chunk", o->chunk, "prompt tokens a newcomer prefills per step")
      ->check(in_range(int64_t(1), int64_t(1) << 20))->capture_default_str();
  app.add_option("--queue", o->queue, "requests waiting for a slot before 503")
      ->check(in_range(int64_t(0), int64_t(1) << 20))->capture_default_str();
  app.add_option("--max-body", o->max_body, "largest request body in bytes (413 above)")
      ->capture_default_str();
  app.add_option("--http-threads", o->http_threads, "connections served at once")
      ->check(in_range(1, 4096))->capture_default_str();
  app.add_flag("--json", o->json, "print one JSON object on stdout once listening (url, port, model, ...)");
  add_threads_option(app, o->threads);
  add_attention_options(app, o->attn);
  app.callback([o] { run(*o); });
}

MOA_COMMAND("serve", "OpenAI-compatible HTTP server with continuous batching", setup);

}  // namespace
}  // namespace moa::cli
