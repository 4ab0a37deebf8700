// Runtime values of the Jinja interpreter, shaped after @huggingface/jinja's: lists, dicts and
// namespaces are shared by reference (== compares them by identity, as JavaScript does), numbers
// are doubles with an "integer" flag, and undefined is a value of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace moa::jinja {

// An error the template caused; pos is a byte offset of the source (npos: the node being
// evaluated names it).
struct TemplateError {
  std::string message;
  size_t pos = std::string::npos;
};
[[noreturn]] void fail(std::string message, size_t pos = std::string::npos);

// raise_exception(message) from the template.
struct RaisedError {
  std::string message;
};

enum class Kind : uint8_t {
  kUndefined,
  kNull,
  kBool,
  kInt,
  kFloat,
  kString,
  kArray,
  kObject,
  kNamespace,
  kFunction
};
// Dicts that are not plain in the reference: keyword arguments (not JSON-serialisable) and loop.
enum class ObjTag : uint8_t { kPlain, kKwargs, kLoop };

struct Value;
struct Env;
struct ArrayData;
struct ObjectData;
struct FunctionData;

using Args = std::vector<Value>;

struct Value {
  Kind kind = Kind::kUndefined;
  bool flag = false;  // kBool: the value; kArray: a tuple
  ObjTag tag = ObjTag::kPlain;
  double num = 0;
  std::shared_ptr<const std::string> str;
  std::shared_ptr<ArrayData> arr;
  std::shared_ptr<ObjectData> obj;  // kObject and kNamespace
  std::shared_ptr<FunctionData> fn;

  static Value undefined() { return {}; }
  static Value null();
  static Value boolean(bool b);
  static Value integer(double v);
  static Value floating(double v);
  static Value string(std::string s);
  static Value array(std::vector<Value> items, bool tuple = false);
  static Value object(std::shared_ptr<ObjectData> o, Kind kind = Kind::kObject,
                      ObjTag tag = ObjTag::kPlain);
  static Value function(std::string name, std::function<Value(Args&, Env*)> call);

  bool is(Kind k) const { return kind == k; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat; }
  bool is_numeric_like() const { return is_number() || kind == Kind::kBool; }
  // ArrayValue or ObjectValue in the reference (tuples are arrays; kwargs and loop are objects).
  bool is_array() const { return kind == Kind::kArray; }
  bool is_object() const { return kind == Kind::kObject; }
  bool is_attr_container() const { return kind == Kind::kObject || kind == Kind::kNamespace; }
  const std::string& s() const { return *str; }
  const std::vector<Value>& items() const;
  // The reference's type names, for error messages.
  const char* type_name() const;
};

// Containers record their nesting depth when built, so walks over values stay bounded.
struct ArrayData {
  std::vector<Value> items;
  int depth = 1;
  bool has_namespace = false;
};

struct ObjectData {
  std::vector<std::pair<std::string, Value>> entries;
  std::unordered_map<std::string, size_t> index;
  int depth = 1;
  bool has_namespace = false;

  const Value* find(std::string_view key) const;
  // Overwriting keeps the key's first position (as a JavaScript Map does).
  void set(const std::string& key, Value v);
};

struct FunctionData {
  std::string name;
  std::function<Value(Args&, Env*)> call;
};

// Deepest container nesting a value may have; deeper input or results are an error.
inline constexpr int kMaxValueDepth = 64;
int value_depth(const Value& v);
bool holds_namespace(const Value& v);

bool truthy(const Value& v);
// `a == b` (JavaScript's loose equality on the reference's underlying values) and `===`.
bool loose_equal(const Value& a, const Value& b);
bool strict_equal(const Value& a, const Value& b);
// Ordering for sort and dictsort: numbers (and booleans) with numbers, strings with strings.
int compare_values(const Value& a, const Value& b, bool case_sensitive);

inline constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();
std::string fmt_depth_error();

// RuntimeValue.toString(): what {{ v }} prints. Strings longer than limit are an error.
std::string to_output(const Value& v, size_t limit = kNoLimit);
// String(v.value): what `~`, `+` with a string and join use.
std::string to_js_string(const Value& v, size_t limit = kNoLimit);

struct JsonOptions {
  int indent = 0;  // 0: one line
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool has_separators = false;
  std::string item_separator, key_separator;
};
std::string to_json(const Value& v, const JsonOptions& opt, bool undefined_as_null = true,
                    size_t limit = kNoLimit);

Value from_json(const nlohmann::json& j, int depth = 0);

}  // namespace moa::jinja
