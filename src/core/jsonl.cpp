#include "moa/core/jsonl.h"

#include <algorithm>
#include <cstring>
#include <string_view>

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

namespace {

int64_t for_each_line(
    std::string_view text, const std::string& source,
    const std::function<void(const nlohmann::json&, const std::string&)>& on_object) {
  size_t pos = 0;
  int64_t line_no = 0, objects = 0;
  while (pos < text.size()) {
    // Only up to the limit is searched: a line longer than that is refused before it is parsed.
    const size_t span = std::min(text.size() - pos, kMaxJsonlLineBytes + 1);
    const void* nl = std::memchr(text.data() + pos, '\n', span);
    const size_t end = nl ? size_t(static_cast<const char*>(nl) - text.data()) : pos + span;
    ++line_no;
    if (end - pos > kMaxJsonlLineBytes) {
      input_error(
          "{}:{}: line is longer than {} bytes ({} MiB, the most one record may have) in "
          "a file of {} bytes",
          source, line_no, kMaxJsonlLineBytes, kMaxJsonlLineBytes >> 20, text.size());
    }
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = source + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line.begin(), line.end());
    } catch (const nlohmann::json::exception& e) {
      input_error("{}: not JSON ({}); expected one object per line", where, e.what());
    }
    if (!j.is_object()) input_error("{}: is {}, expected a JSON object", where, json_kind(j));
    on_object(j, where);
    ++objects;
  }
  return objects;
}

}  // namespace

int64_t for_each_jsonl_object(
    const std::string& text, const std::string& source,
    const std::function<void(const nlohmann::json&, const std::string&)>& on_object) {
  return for_each_line(text, source, on_object);
}

int64_t for_each_jsonl_object(
    const std::filesystem::path& path,
    const std::function<void(const nlohmann::json&, const std::string&)>& on_object) {
  // Mapped, not read: a file holding a line of gigabytes is refused without a copy of it.
  const MappedFile map(path);
  return for_each_line(std::string_view(reinterpret_cast<const char*>(map.data()), map.size()),
                       path.string(), on_object);
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
