#include "chat/jinja_value.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "chat/jinja_text.h"

namespace moa::jinja {

void fail(std::string message, size_t pos) { throw TemplateError{std::move(message), pos}; }

Value Value::null() {
  Value v;
  v.kind = Kind::kNull;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind = Kind::kBool;
  v.flag = b;
  return v;
}

Value Value::integer(double x) {
  Value v;
  v.kind = Kind::kInt;
  v.num = x;
  return v;
}

Value Value::floating(double x) {
  Value v;
  v.kind = Kind::kFloat;
  v.num = x;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind = Kind::kString;
  v.str = std::make_shared<const std::string>(std::move(s));
  return v;
}

Value Value::array(std::vector<Value> items, bool tuple) {
  auto data = std::make_shared<ArrayData>();
  int depth = 0;
  bool ns = false;
  for (const Value& x : items) {
    depth = std::max(depth, value_depth(x));
    ns = ns || holds_namespace(x);
  }
  if (depth + 1 > kMaxValueDepth) fail(fmt_depth_error());
  data->items = std::move(items);
  data->depth = depth + 1;
  data->has_namespace = ns;
  Value v;
  v.kind = Kind::kArray;
  v.flag = tuple;
  v.arr = std::move(data);
  return v;
}

Value Value::object(std::shared_ptr<ObjectData> o, Kind kind, ObjTag tag) {
  Value v;
  v.kind = kind;
  v.tag = tag;
  v.obj = std::move(o);
  return v;
}

Value Value::function(std::string name, std::function<Value(Args&, Env*)> call) {
  Value v;
  v.kind = Kind::kFunction;
  v.fn = std::make_shared<FunctionData>(FunctionData{std::move(name), std::move(call)});
  return v;
}

const std::vector<Value>& Value::items() const { return arr->items; }

const char* Value::type_name() const {
  switch (kind) {
    case Kind::kUndefined:
      return "undefined";
    case Kind::kNull:
      return "none";
    case Kind::kBool:
      return "boolean";
    case Kind::kInt:
      return "integer";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "string";
    case Kind::kArray:
      return flag ? "tuple" : "list";
    case Kind::kObject:
      return tag == ObjTag::kKwargs ? "keyword arguments" : "dict";
    case Kind::kNamespace:
      return "namespace";
    case Kind::kFunction:
      return "function";
  }
  return "?";
}

std::string fmt_depth_error() {
  return "values nested deeper than " + std::to_string(kMaxValueDepth) + " levels";
}

const Value* ObjectData::find(std::string_view key) const {
  if (entries.size() < 8) {
    for (const auto& [k, v] : entries) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  const auto it = index.find(std::string(key));
  return it == index.end() ? nullptr : &entries[it->second].second;
}

void ObjectData::set(const std::string& key, Value v) {
  const int d = value_depth(v);
  if (d + 1 > kMaxValueDepth) fail(fmt_depth_error());
  depth = std::max(depth, d + 1);
  has_namespace = has_namespace || holds_namespace(v);
  if (const Value* old = find(key)) {
    *const_cast<Value*>(old) = std::move(v);
    return;
  }
  entries.emplace_back(key, std::move(v));
  if (entries.size() == 8) {
    for (size_t i = 0; i < entries.size(); ++i) index.emplace(entries[i].first, i);
  } else if (entries.size() > 8) {
    index.emplace(key, entries.size() - 1);
  }
}

int value_depth(const Value& v) {
  if (v.kind == Kind::kArray) return v.arr->depth;
  if (v.kind == Kind::kObject || v.kind == Kind::kNamespace) return v.obj->depth;
  return 0;
}

bool holds_namespace(const Value& v) {
  if (v.kind == Kind::kNamespace) return true;
  if (v.kind == Kind::kArray) return v.arr->has_namespace;
  if (v.kind == Kind::kObject) return v.obj->has_namespace;
  return false;
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
    case Kind::kNull:
      return false;
    case Kind::kBool:
      return v.flag;
    case Kind::kInt:
    case Kind::kFloat:
      return v.num != 0 && !std::isnan(v.num);
    case Kind::kString:
      return !v.s().empty();
    case Kind::kArray:
      return !v.items().empty();
    case Kind::kObject:
      return !v.obj->entries.empty();
    case Kind::kNamespace:  // a JavaScript Map object
    case Kind::kFunction:
      return true;
  }
  return false;
}

namespace {

// The JavaScript type of the reference's underlying value.
enum class JsType { kUndefined, kNull, kBool, kNumber, kString, kObject };

JsType js_type(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
      return JsType::kUndefined;
    case Kind::kNull:
      return JsType::kNull;
    case Kind::kBool:
      return JsType::kBool;
    case Kind::kInt:
    case Kind::kFloat:
      return JsType::kNumber;
    case Kind::kString:
      return JsType::kString;
    default:
      return JsType::kObject;
  }
}

const void* identity(const Value& v) {
  if (v.kind == Kind::kArray) return v.arr.get();
  if (v.kind == Kind::kFunction) return v.fn.get();
  return v.obj.get();
}

// Loose equality of two primitives (after objects were converted to strings).
bool loose_prim(JsType ta, double na, const std::string* sa, JsType tb, double nb,
                const std::string* sb) {
  if (ta == JsType::kString && tb == JsType::kString) return *sa == *sb;
  const double x = ta == JsType::kString ? js_to_number(*sa) : na;
  const double y = tb == JsType::kString ? js_to_number(*sb) : nb;
  return x == y;
}

}  // namespace

bool loose_equal(const Value& a, const Value& b) {
  const JsType ta = js_type(a), tb = js_type(b);
  const bool a_nullish = ta == JsType::kUndefined || ta == JsType::kNull;
  const bool b_nullish = tb == JsType::kUndefined || tb == JsType::kNull;
  if (a_nullish || b_nullish) return a_nullish && b_nullish;
  if (ta == JsType::kObject && tb == JsType::kObject) return identity(a) == identity(b);
  auto num_of = [](const Value& v) { return v.kind == Kind::kBool ? (v.flag ? 1.0 : 0.0) : v.num; };
  std::string sa, sb;
  JsType pa = ta == JsType::kBool ? JsType::kNumber : ta;
  JsType pb = tb == JsType::kBool ? JsType::kNumber : tb;
  if (pa == JsType::kObject) {
    sa = to_js_string(a);
    pa = JsType::kString;
  } else if (pa == JsType::kString) {
    sa = a.s();
  }
  if (pb == JsType::kObject) {
    sb = to_js_string(b);
    pb = JsType::kString;
  } else if (pb == JsType::kString) {
    sb = b.s();
  }
  return loose_prim(pa, pa == JsType::kNumber ? num_of(a) : 0, &sa, pb,
                    pb == JsType::kNumber ? num_of(b) : 0, &sb);
}

bool strict_equal(const Value& a, const Value& b) {
  JsType ta = js_type(a), tb = js_type(b);
  if (ta == JsType::kNull) ta = JsType::kUndefined;  // none's value is undefined there (above)
  if (tb == JsType::kNull) tb = JsType::kUndefined;
  if (ta != tb) return false;
  switch (ta) {
    case JsType::kUndefined:
    case JsType::kNull:
      return true;
    case JsType::kBool:
      return a.flag == b.flag;
    case JsType::kNumber:
      return a.num == b.num;
    case JsType::kString:
      return a.s() == b.s();
    case JsType::kObject:
      return identity(a) == identity(b);
  }
  return false;
}

int compare_values(const Value& a, const Value& b, bool case_sensitive) {
  const bool a_null = a.is(Kind::kNull), b_null = b.is(Kind::kNull);
  if (a_null && b_null) return 0;
  if (a_null || b_null)
    fail(std::string("cannot compare ") + a.type_name() + " with " + b.type_name());
  const bool a_undef = a.is(Kind::kUndefined), b_undef = b.is(Kind::kUndefined);
  if (a_undef && b_undef) return 0;
  if (a_undef || b_undef)
    fail(std::string("cannot compare ") + a.type_name() + " with " + b.type_name());
  if (a.is_numeric_like() && b.is_numeric_like()) {
    const double x = a.is(Kind::kBool) ? a.flag : a.num, y = b.is(Kind::kBool) ? b.flag : b.num;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind != b.kind || (a.is_array() && a.flag != b.flag) ||
      (a.is_object() && (a.tag == ObjTag::kKwargs) != (b.tag == ObjTag::kKwargs))) {
    fail(std::string("cannot compare different types: ") + a.type_name() + " and " + b.type_name());
  }
  if (a.is(Kind::kString)) {
    if (case_sensitive) return utf16_compare(a.s(), b.s());
    return utf16_compare(ascii_lower(a.s()), ascii_lower(b.s()));
  }
  fail(std::string("cannot compare values of type ") + a.type_name());
}

namespace {

void check_len(const std::string& s, size_t limit) {
  if (s.size() > limit)
    fail("a string longer than the limit of " + std::to_string(limit) + " bytes");
}

void json_into(std::string& out, const Value& v, const JsonOptions& opt, int depth,
               bool undefined_as_null, size_t limit) {
  check_len(out, limit);
  switch (v.kind) {
    case Kind::kNull:
      out += "null";
      return;
    case Kind::kUndefined:
      out += undefined_as_null ? "null" : "undefined";
      return;
    case Kind::kInt:
    case Kind::kFloat:
      out += json_number(v.num);
      return;
    case Kind::kBool:
      out += v.flag ? "true" : "false";
      return;
    case Kind::kString:
      json_quote(out, v.s(), opt.ensure_ascii);
      return;
    default:
      break;
  }
  const bool plain_array = v.is_array() && !v.flag;
  const bool plain_object = (v.is_object() && v.tag != ObjTag::kKwargs) || v.is(Kind::kNamespace);
  if (!plain_array && !plain_object)
    fail(std::string("cannot convert a ") + v.type_name() + " to JSON");
  std::string item_sep = ", ", key_sep = ": ";
  if (opt.has_separators) {
    item_sep = opt.item_separator, key_sep = opt.key_separator;
  } else if (opt.indent > 0) {
    item_sep = ",";
  }
  std::string ind(static_cast<size_t>(std::max(opt.indent, 0)), ' ');
  std::string base = "\n";
  for (int i = 0; i < depth; ++i) base += ind;
  const std::string child = base + ind;
  const bool pretty = opt.indent > 0;
  if (plain_array) {
    const auto& items = v.items();
    out += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out += item_sep;
      if (pretty) out += child;
      json_into(out, items[i], opt, depth + 1, undefined_as_null, limit);
    }
    if (pretty && !items.empty()) out += base;
    out += ']';
    return;
  }
  std::vector<const std::pair<std::string, Value>*> entries;
  for (const auto& e : v.obj->entries) entries.push_back(&e);
  if (opt.sort_keys) {
    std::stable_sort(entries.begin(), entries.end(),
                     [](auto* a, auto* b) { return a->first < b->first; });
  }
  out += '{';
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += item_sep;
    if (pretty) out += child;
    json_quote(out, entries[i]->first, opt.ensure_ascii);
    out += key_sep;
    json_into(out, entries[i]->second, opt, depth + 1, undefined_as_null, limit);
  }
  if (pretty && !entries.empty()) out += base;
  out += '}';
}

}  // namespace

std::string to_json(const Value& v, const JsonOptions& opt, bool undefined_as_null, size_t limit) {
  if (opt.indent < 0) fail("tojson: indent must not be negative");
  std::string out;
  json_into(out, v, opt, 0, undefined_as_null, limit);
  check_len(out, limit);
  return out;
}

std::string to_output(const Value& v, size_t limit) {
  switch (v.kind) {
    // The reference builds none without a value, so it prints as JavaScript's undefined (where
    // it prints at all: {{ none }} prints nothing, and JSON has null).
    case Kind::kUndefined:
    case Kind::kNull:
      return "undefined";
    case Kind::kBool:
      return v.flag ? "true" : "false";
    case Kind::kInt:
      return js_number(v.num);
    case Kind::kFloat:
      return js_float(v.num);
    case Kind::kString:
      return v.s();
    case Kind::kFunction:
      fail("cannot print a function ('" + v.fn->name + "')");
    default:
      return to_json(v, JsonOptions{}, false, limit);
  }
}

std::string to_js_string(const Value& v, size_t limit) {
  switch (v.kind) {
    case Kind::kInt:
    case Kind::kFloat:
      return js_number(v.num);
    case Kind::kArray: {
      std::string out;
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i > 0) out += ',';
        out += to_output(v.items()[i], limit);
        check_len(out, limit);
      }
      return out;
    }
    case Kind::kObject:
    case Kind::kNamespace:
      return "[object Map]";
    default:
      return to_output(v, limit);
  }
}

Value from_json(const nlohmann::json& j, int depth) {
  if (depth > kMaxValueDepth) fail("input " + fmt_depth_error());
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Value::null();
    case nlohmann::json::value_t::boolean:
      return Value::boolean(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value::integer(static_cast<double>(j.get<int64_t>()));
    case nlohmann::json::value_t::number_unsigned:
      return Value::integer(static_cast<double>(j.get<uint64_t>()));
    case nlohmann::json::value_t::number_float: {
      // JSON numbers are JavaScript numbers: 2.0 is the integer 2 there.
      const double x = j.get<double>();
      return std::isfinite(x) && std::floor(x) == x ? Value::integer(x) : Value::floating(x);
    }
    case nlohmann::json::value_t::string:
      return Value::string(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& x : j) items.push_back(from_json(x, depth + 1));
      return Value::array(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      auto o = std::make_shared<ObjectData>();
      for (const auto& [k, x] : j.items()) o->set(k, from_json(x, depth + 1));
      return Value::object(std::move(o));
    }
    default:
      fail("input holds a JSON value of an unsupported type (binary)");
  }
}

}  // namespace moa::jinja
