// JSONL input: one JSON object per non-blank line. The one reader behind every dataset loader
// (calibration sets, retrieval sets, prompt lists), so that a bad line reads the same everywhere:
// "data.jsonl:7: not JSON (...)", "data.jsonl:3: is an array, expected a JSON object".
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moa {

// "a string", "an integer", "a number", "a boolean", "null", "an array" or "an object": for
// messages that name what a field holds.
const char* json_kind(const nlohmann::json& j);

// The longest line a JSONL record may have (a LongEval prompt of 1000 lines is ~60 KB): a longer
// one is refused before it is copied or parsed, since parsing needs several times its size.
inline constexpr size_t kMaxJsonlLineBytes = size_t(64) << 20;

// Calls on_object(object, where) for each non-blank line of `text`, in order; `where` is
// "source:LINE". InputError (naming source:LINE) for a line that is not JSON or not an object, or
// longer than kMaxJsonlLineBytes; on_object may throw its own. Returns the number of objects.
int64_t for_each_jsonl_object(
    const std::string& text, const std::string& source,
    const std::function<void(const nlohmann::json&, const std::string&)>& on_object);

// The same over a file, memory-mapped (InputError when it cannot be read).
int64_t for_each_jsonl_object(
    const std::filesystem::path& path,
    const std::function<void(const nlohmann::json&, const std::string&)>& on_object);

// The "prompt" string of every record (InputError naming file:line when a record has none, or
// when the file holds no record).
std::vector<std::string> load_prompts_jsonl(const std::filesystem::path& path);

}  // namespace moa
