#include "moa/core/jsonl.h"

#include "moa/core/error.h"
#include "moa/core/file_io.h"

namespace moa {

const char* json_kind(const nlohmann::json& j) {
  if (j.is_string()) return "a string";
  if (j.is_number_integer()) return "an integer";
  if (j.is_number()) return "a number";
  if (j.is_boolean()) return "a boolean";
  if (j.is_null()) return "null";
  if (j.is_array()) return "an array";
  return "an object";
}

int64_t for_each_jsonl_object(
    const std::string& text, const std::string& source,
    const std::function<void(const nlohmann::json&, const std::string&)>& on_object) {
  size_t pos = 0;
  int64_t line_no = 0, objects = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = source + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      input_error("{}: not JSON ({}); expected one object per line", where, e.what());
    }
    if (!j.is_object()) input_error("{}: is {}, expected a JSON object", where, json_kind(j));
    on_object(j, where);
    ++objects;
  }
  return objects;
}

int64_t for_each_jsonl_object(
    const std::filesystem::path& path,
    const std::function<void(const nlohmann::json&, const std::string&)>& on_object) {
  return for_each_jsonl_object(read_text(path), path.string(), on_object);
}

std::vector<std::string> load_prompts_jsonl(const std::filesystem::path& path) {
  std::vector<std::string> out;
  for_each_jsonl_object(path, [&](const nlohmann::json& j, const std::string& where) {
    auto p = j.find("prompt");
    if (p == j.end() || !p->is_string()) {
      input_error("{}: field 'prompt' is {}, expected a string", where,
                  p == j.end() ? "missing" : json_kind(*p));
    }
    out.push_back(p->get<std::string>());
  });
  if (out.empty()) input_error("{}: no records", path.string());
  return out;
}

}  // namespace moa
