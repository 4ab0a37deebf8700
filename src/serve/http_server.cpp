#include "moa/serve/http_server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <random>

#include "moa/core/error.h"
#include "moa/serve/api.h"

namespace moa::serve {

using nlohmann::json;

struct HttpServer::Impl {
  Engine& engine;
  const Tokenizer& tok;
  ChatRenderer chat;
  ServerOptions opt;
  httplib::Server svr;
  std::atomic<bool> refusing{false};
  std::atomic<uint64_t> next_id{1};
  std::mutex status_mu;
  std::map<int, int64_t> responses;  // by HTTP status, for /metrics
  int64_t tok_vocab = 0;

  Impl(Engine& e, const Tokenizer& t, ChatRenderer c, ServerOptions o)
      : engine(e), tok(t), chat(std::move(c)), opt(std::move(o)) {}

  void send_error(httplib::Response& res, int status, const std::string& type,
                  const std::string& message, const std::string& param = "") {
    res.status = status;
    res.set_content(error_body(type, message, param).dump(), "application/json");
  }

  void send_json(httplib::Response& res, const json& j) {
    res.status = 200;
    res.set_content(j.dump(), "application/json");
  }

  // Runs a handler: ApiError and InputError become their 4xx, anything else 500; never throws.
  template <typename F>
  httplib::Server::Handler guarded(F f) {
    return [this, f](const httplib::Request& req, httplib::Response& res) {
      try {
        f(req, res);
      } catch (const ApiError& e) {
        send_error(res, e.status, e.type, e.what(), e.param);
      } catch (const InputError& e) {
        send_error(res, 400, "invalid_request_error", e.what());
      } catch (const std::exception& e) {
        send_error(res, 500, "server_error", e.what());
      }
    };
  }

  json usage(const JobResult& r) const {
    return {{"prompt_tokens", r.prompt_tokens},
            {"completion_tokens", r.completion_tokens},
            {"total_tokens", r.prompt_tokens + r.completion_tokens},
            {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}}};
  }

  void completion(const httplib::Request& req, httplib::Response& res, bool is_chat) {
    const CompletionRequest r = parse_completion_request(req.body, is_chat);
    std::vector<int32_t> ids;
    if (is_chat) {
      const RenderedChat c = chat(r.messages);
      ids = tok.encode(c.text, c.add_special);
    } else if (r.prompt_text) {
      ids = tok.encode(*r.prompt_text, true);
    } else {
      ids = r.prompt_ids;
      for (size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] >= tok_vocab) {
          bad_request("prompt", fmt::format("'prompt[{}]' is {}, expected a token id below the vocabulary size {}", i, ids[i], tok_vocab));
        }
      }
    }
    if (ids.empty()) bad_request(is_chat ? "messages" : "prompt", "the prompt encodes to no tokens");
    const int64_t P = int64_t(ids.size()), ctx = engine.context_size();
    if (P >= ctx) {
      bad_request(is_chat ? "messages" : "prompt",
                  fmt::format("the prompt has {} tokens, the context is {} (--ctx-size): it must leave room for at least one more", P, ctx));
    }
    GenParams g;
    if (r.max_tokens) {
      if (P + *r.max_tokens > ctx) {
        bad_request("max_tokens", fmt::format("'max_tokens' is {}: with the prompt's {} tokens that exceeds the context of {} (at most {})",
                                              *r.max_tokens, P, ctx, ctx - P));
      }
      g.max_tokens = *r.max_tokens;
    } else {
      // OpenAI's defaults: 16 for completions, the rest of the context for chat.
      g.max_tokens = is_chat ? ctx - P : std::min<int64_t>(16, ctx - P);
    }
    g.temperature = r.temperature;
    g.top_p = r.top_p;
    g.seed = r.seed ? *r.seed : std::random_device{}();
    g.stop = r.stop;
    g.ignore_eos = r.ignore_eos;
    if (refusing) throw ApiError(503, "server_error", "the server is shutting down");
    std::shared_ptr<Job> job = engine.submit(std::move(ids), std::move(g));
    if (!job) throw ApiError(503, "server_error", "the server is busy: every slot is taken and the queue is full; retry later");

    const std::string id = fmt::format("{}-{}", is_chat ? "chatcmpl" : "cmpl", next_id++);
    const int64_t created = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch()).count();
    const std::string model = r.model.empty() ? opt.model_name : r.model;
    const std::string object = is_chat ? "chat.completion" : "text_completion";
    if (!r.stream) {
      const JobResult out = job->wait();
      if (out.finish_reason == "error") throw std::runtime_error("generation failed: " + out.error);
      json choice = {{"index", 0}, {"finish_reason", out.finish_reason}, {"logprobs", json()}};
      if (is_chat) {
        choice["message"] = {{"role", "assistant"}, {"content", out.text}};
      } else {
        choice["text"] = out.text;
      }
      send_json(res, {{"id", id}, {"object", object}, {"created", created}, {"model", model},
                      {"choices", json::array({choice})}, {"usage", usage(out)}});
      return;
    }
    const std::string chunk_object = is_chat ? "chat.completion.chunk" : "text_completion";
    // One event: a choice's piece, or (choice null) the usage event, whose choices are empty.
    auto chunk = [=](const json& choice, const json& usage_of = json()) {
      json e = {{"id", id}, {"object", chunk_object}, {"created", created}, {"model", model},
                {"choices", choice.is_null() ? json::array() : json::array({choice})}};
      if (!usage_of.is_null()) e["usage"] = usage_of;
      return "data: " + e.dump() + "\n\n";
    };
    // Chat streams open with the role, then content deltas, then an empty delta with the reason.
    auto piece_choice = [=](const std::string& text, const json& finish, bool role = false) {
      json c = {{"index", 0}, {"finish_reason", finish}};
      if (!is_chat) {
        c["text"] = text;
        c["logprobs"] = json();
      } else if (role) {
        c["delta"] = {{"role", "assistant"}, {"content", ""}};
      } else {
        c["delta"] = finish.is_null() ? json{{"content", text}} : json::object();
      }
      return c;
    };
    const bool include_usage = r.include_usage;
    auto started = std::make_shared<bool>(false);
    res.set_chunked_content_provider(
        "text/event-stream",
        [=](size_t, httplib::DataSink& sink) {
          auto write = [&](const std::string& s) {
            if (sink.write(s.data(), s.size())) return true;
            job->cancel();  // the client went away: free its slot
            return false;
          };
          if (is_chat && !*started) {
            *started = true;
            if (!write(chunk(piece_choice("", json(), true)))) return false;
          }
          std::string piece;
          const bool more = job->next(&piece);
          if (!piece.empty() && !write(chunk(piece_choice(piece, json())))) return false;
          if (more) return true;
          const JobResult out = job->result();
          if (out.finish_reason == "error") {
            if (!write("data: " + error_body("server_error", "generation failed: " + out.error).dump() + "\n\n")) return false;
          } else {
            if (!write(chunk(piece_choice("", out.finish_reason)))) return false;
            if (include_usage && !write(chunk(json(), usage(out)))) return false;
          }
          if (!write("data: [DONE]\n\n")) return false;
          sink.done();
          return true;
        },
        [job](bool) { job->cancel(); });  // no-op once finished; frees the slot of an aborted stream
  }

  std::string metrics_text() {
    const EngineMetrics m = engine.metrics();
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help, int64_t v) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, v);
    };
    metric("moa_requests_total", "counter", "Generation requests accepted.", m.requests);
    metric("moa_prompt_tokens_total", "counter", "Prompt tokens of accepted requests.", m.prompt_tokens);
    metric("moa_generated_tokens_total", "counter", "Tokens generated.", m.generated_tokens);
    metric("moa_prompt_tokens_reused_total", "counter", "Prompt tokens served from a slot's cache instead of being run.", m.reused_tokens);
    metric("moa_prompt_reprefills_total", "counter", "Requests that shared a longer prefix with a slot than could be reused, and re-ran it.", m.reprefills);
    metric("moa_prompt_tokens_recomputed_total", "counter", "Prompt tokens a slot held but that had to be run again.", m.recomputed_tokens);
    metric("moa_slots_busy", "gauge", "Slots serving a request.", m.slots_busy);
    metric("moa_slots", "gauge", "Slots (--parallel).", m.slots);
    metric("moa_requests_queued", "gauge", "Requests waiting for a slot.", m.queued);
    metric("moa_kv_bytes", "gauge", "Bytes of KV cache held (every slot and its checkpoint).", m.kv_bytes);
    std::lock_guard<std::mutex> lk(status_mu);
    out += "# HELP moa_http_responses_total HTTP responses by status.\n# TYPE moa_http_responses_total counter\n";
    for (auto& [status, n] : responses) out += fmt::format("moa_http_responses_total{{status=\"{}\"}} {}\n", status, n);
    return out;
  }

  void routes() {
    tok_vocab = tok.vocab_size();
    svr.set_payload_max_length(opt.max_body);
    // Streams write one small event per token: without this, Nagle's algorithm and the client's
    // delayed ACK hold each one back by up to 40 ms.
    svr.set_tcp_nodelay(true);
    const int threads = std::max(opt.http_threads, 1);
    svr.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (opt.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
      if (req.get_header_value("Authorization") == "Bearer " + opt.api_key) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      send_error(res, 401, "authentication_error", "missing or wrong API key: send the header 'Authorization: Bearer <key>'");
      return httplib::Server::HandlerResponse::Handled;
    });
    svr.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // already an error body of ours
      if (res.status == 413) {
        send_error(res, 413, "invalid_request_error", fmt::format("the request body is over the limit of {} bytes", opt.max_body));
      } else if (res.status == 404) {
        send_error(res, 404, "invalid_request_error", fmt::format("no endpoint {} {}", req.method, req.path));
      } else {
        send_error(res, res.status, "invalid_request_error", fmt::format("HTTP {}", res.status));
      }
    });
    svr.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      send_error(res, 500, "server_error", "internal error");
    });
    svr.set_logger([this](const httplib::Request&, const httplib::Response& res) {
      std::lock_guard<std::mutex> lk(status_mu);
      ++responses[res.status];
    });
    svr.Get("/health", guarded([this](const httplib::Request&, httplib::Response& res) {
      send_json(res, {{"status", refusing ? "shutting down" : "ok"}});
    }));
    svr.Get("/v1/models", guarded([this](const httplib::Request&, httplib::Response& res) {
      send_json(res, {{"object", "list"},
                      {"data", json::array({{{"id", opt.model_name}, {"object", "model"}, {"created", 0},
                                             {"owned_by", "moa.cpp"}, {"context_length", engine.context_size()}}})}});
    }));
    svr.Post("/v1/completions", guarded([this](const httplib::Request& q, httplib::Response& r) { completion(q, r, false); }));
    svr.Post("/v1/chat/completions", guarded([this](const httplib::Request& q, httplib::Response& r) { completion(q, r, true); }));
    svr.Post("/tokenize", guarded([this](const httplib::Request& req, httplib::Response& res) {
      const TokenizeRequest t = parse_tokenize_request(req.body);
      send_json(res, {{"tokens", tok.encode(t.content, t.add_special)}});
    }));
    svr.Post("/detokenize", guarded([this](const httplib::Request& req, httplib::Response& res) {
      const std::vector<int32_t> ids = parse_detokenize_request(req.body);
      for (size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] >= tok_vocab) bad_request("tokens", fmt::format("'tokens[{}]' is {}, expected a token id below the vocabulary size {}", i, ids[i], tok_vocab));
      }
      send_json(res, {{"content", tok.decode(ids)}});
    }));
    svr.Get("/metrics", guarded([this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_text(), "text/plain; version=0.0.4");
    }));
  }
};

HttpServer::HttpServer(Engine& engine, const Tokenizer& tok, ChatRenderer chat, ServerOptions opt)
    : impl_(std::make_unique<Impl>(engine, tok, std::move(chat), std::move(opt))) {
  impl_->routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  Impl& s = *impl_;
  int port = s.opt.port;
  if (port == 0) {
    port = s.svr.bind_to_any_port(s.opt.host);
    if (port < 0) input_error("cannot bind {} to any port", s.opt.host);
  } else if (!s.svr.bind_to_port(s.opt.host, port)) {
    input_error("cannot bind {}:{} (in use, or not an address of this machine)", s.opt.host, port);
  }
  return port;
}

void HttpServer::run() { impl_->svr.listen_after_bind(); }
void HttpServer::stop() { impl_->svr.stop(); }
void HttpServer::refuse_new() { impl_->refusing = true; }

}  // namespace moa::serve
