#include "moa/serve/api.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace moa::serve {

using nlohmann::json;

void bad_request(const std::string& param, const std::string& message) {
  throw ApiError(400, "invalid_request_error", message, param);
}

json error_body(const std::string& type, const std::string& message, const std::string& param) {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json() : json(param)},
            {"code", json()}}}};
}

namespace {

const char* type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

json parse_object(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) bad_request("", "the request body is not valid JSON");
  if (!j.is_object()) bad_request("", fmt::format("the request body is {}, expected a JSON object", type_name(j)));
  return j;
}

// The field, when present and not null.
const json* field(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string get_string(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v) return {};
  if (!v->is_string()) bad_request(key, fmt::format("'{}' is {}, expected a string", key, type_name(*v)));
  return v->get<std::string>();
}

bool get_bool(const json& j, const char* key, bool dflt) {
  const json* v = field(j, key);
  if (!v) return dflt;
  if (!v->is_boolean()) bad_request(key, fmt::format("'{}' is {}, expected true or false", key, type_name(*v)));
  return v->get<bool>();
}

double get_number(const json& j, const char* key, double dflt, double lo, double hi) {
  const json* v = field(j, key);
  if (!v) return dflt;
  if (!v->is_number()) bad_request(key, fmt::format("'{}' is {}, expected a number", key, type_name(*v)));
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi)) bad_request(key, fmt::format("'{}' is {}, expected a number in [{}, {}]", key, x, lo, hi));
  return x;
}

std::optional<int64_t> get_int(const json& j, const char* key) {
  const json* v = field(j, key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) bad_request(key, fmt::format("'{}' is {}, expected an integer", key, type_name(*v)));
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
    bad_request(key, fmt::format("'{}' is {}, too large", key, v->get<uint64_t>()));
  }
  return v->get<int64_t>();
}

std::vector<int32_t> token_ids(const json& a, const char* key) {
  std::vector<int32_t> ids;
  ids.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const json& t = a[i];
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      bad_request(key, fmt::format("'{}[{}]' is {}, expected a token id (an integer >= 0)", key, i,
                                   t.is_number() ? t.dump() : type_name(t)));
    }
    ids.push_back(t.get<int32_t>());
  }
  return ids;
}

}  // namespace

CompletionRequest parse_completion_request(const std::string& body, bool chat) {
  const json j = parse_object(body);
  CompletionRequest r;
  r.chat = chat;
  r.model = get_string(j, "model");
  if (chat) {
    const json* m = field(j, "messages");
    if (!m) bad_request("messages", "'messages' is missing, expected an array of {role, content}");
    if (!m->is_array() || m->empty()) {
      bad_request("messages", fmt::format("'messages' is {}, expected a non-empty array of {{role, content}}",
                                          m->is_array() ? "an empty array" : type_name(*m)));
    }
    for (size_t i = 0; i < m->size(); ++i) {
      const json& msg = (*m)[i];
      const std::string p = fmt::format("messages[{}]", i);
      if (!msg.is_object()) bad_request(p, fmt::format("'{}' is {}, expected an object", p, type_name(msg)));
      const json* role = field(msg, "role");
      if (!role || !role->is_string()) bad_request(p + ".role", fmt::format("'{}.role' is {}, expected a string", p, role ? type_name(*role) : "missing"));
      const json* content = field(msg, "content");
      if (content && content->is_array()) {
        // OpenAI's content parts: only text parts can be rendered.
        std::string text;
        for (const json& part : *content) {
          if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
            bad_request(p + ".content", fmt::format("'{}.content' holds a part that is not {{\"type\": \"text\", \"text\": str}}", p));
          }
          text += part["text"].get<std::string>();
        }
        json copy = msg;
        copy["content"] = text;
        r.messages.push_back(copy);
        continue;
      }
      if (content && !content->is_string()) bad_request(p + ".content", fmt::format("'{}.content' is {}, expected a string", p, type_name(*content)));
      json copy = msg;
      if (!content) copy["content"] = "";
      r.messages.push_back(copy);
    }
    r.max_tokens = get_int(j, "max_completion_tokens");
    if (!r.max_tokens) r.max_tokens = get_int(j, "max_tokens");
  } else {
    const json* p = field(j, "prompt");
    if (!p) bad_request("prompt", "'prompt' is missing, expected a string or an array of token ids");
    if (p->is_string()) {
      r.prompt_text = p->get<std::string>();
    } else if (p->is_array() && !p->empty() && p->at(0).is_number()) {
      r.prompt_ids = token_ids(*p, "prompt");
    } else if (p->is_array() && p->size() == 1 && p->at(0).is_string()) {
      r.prompt_text = p->at(0).get<std::string>();
    } else if (p->is_array() && p->size() == 1 && p->at(0).is_array()) {
      r.prompt_ids = token_ids(p->at(0), "prompt");
    } else {
      bad_request("prompt", fmt::format("'prompt' is {}, expected a string or an array of token ids (one prompt per request)",
                                        p->is_array() ? (p->empty() ? "an empty array" : "an array of several prompts") : type_name(*p)));
    }
    r.max_tokens = get_int(j, "max_tokens");
  }
  if (r.max_tokens && *r.max_tokens < 0) {
    bad_request("max_tokens", fmt::format("'max_tokens' is {}, expected an integer >= 0", *r.max_tokens));
  }
  r.temperature = float(get_number(j, "temperature", 1.0, 0.0, 2.0));
  r.top_p = float(get_number(j, "top_p", 1.0, 0.0, 1.0));
  if (field(j, "top_p") && r.top_p <= 0) bad_request("top_p", "'top_p' is 0, expected a number in (0, 1]");
  if (auto s = get_int(j, "seed")) r.seed = uint64_t(*s);
  if (const json* s = field(j, "stop")) {
    if (s->is_string()) {
      r.stop.push_back(s->get<std::string>());
    } else if (s->is_array() && s->size() <= 4) {
      for (size_t i = 0; i < s->size(); ++i) {
        if (!(*s)[i].is_string()) bad_request("stop", fmt::format("'stop[{}]' is {}, expected a string", i, type_name((*s)[i])));
        r.stop.push_back((*s)[i].get<std::string>());
      }
    } else {
      bad_request("stop", fmt::format("'stop' is {}, expected a string or an array of at most 4 strings",
                                      s->is_array() ? "an array of more than 4" : type_name(*s)));
    }
  }
  r.stream = get_bool(j, "stream", false);
  r.ignore_eos = get_bool(j, "ignore_eos", false);
  if (const json* so = field(j, "stream_options")) {
    if (!so->is_object()) bad_request("stream_options", fmt::format("'stream_options' is {}, expected an object", type_name(*so)));
    r.include_usage = get_bool(*so, "include_usage", false);
  }
  if (const json* n = field(j, "n"); n && !(n->is_number_integer() && n->get<int64_t>() == 1)) {
    bad_request("n", "'n' must be 1 (one choice per request)");
  }
  return r;
}

TokenizeRequest parse_tokenize_request(const std::string& body) {
  const json j = parse_object(body);
  const json* c = field(j, "content");
  if (!c || !c->is_string()) bad_request("content", fmt::format("'content' is {}, expected a string", c ? type_name(*c) : "missing"));
  return {c->get<std::string>(), get_bool(j, "add_special", false)};
}

std::vector<int32_t> parse_detokenize_request(const std::string& body) {
  const json j = parse_object(body);
  const json* t = field(j, "tokens");
  if (!t || !t->is_array()) bad_request("tokens", fmt::format("'tokens' is {}, expected an array of token ids", t ? type_name(*t) : "missing"));
  return token_ids(*t, "tokens");
}

}  // namespace moa::serve
