// Filters, tests, methods of strings and dicts, and the global functions, each with the argument
// handling and the per-type availability of @huggingface/jinja (a filter it lacks for a type is
// an error here too).
#include <cmath>
#include <ctime>
#include <unordered_set>

#include "chat/jinja_eval.h"
#include "chat/jinja_text.h"

namespace moa::jinja {
namespace {

[[noreturn]] void no_filter(const std::string& name, const Value& v) {
  static const std::unordered_set<std::string> kKnown = {
      "safe",       "tojson", "list",    "first",    "last",  "length", "reverse",    "sort",
      "join",       "string", "unique",  "upper",    "lower", "title",  "capitalize", "trim",
      "indent",     "int",    "float",   "abs",      "items", "bool",   "default",    "selectattr",
      "rejectattr", "map",    "replace", "dictsort", "get",   "keys",   "values"};
  if (!kKnown.count(name)) fail("unknown filter '" + name + "'");
  fail("filter '" + name + "' does not apply to a " + v.type_name() + " (or not in this form)");
}

// The reference reads a few flags as JavaScript truthiness of the raw value.
bool raw_truthy(const Value& v) {
  return v.is_array() || v.is_attr_container() || v.is(Kind::kFunction) ? true : truthy(v);
}

const Value* kwarg(const std::shared_ptr<ObjectData>& kw, const char* name) {
  return kw->find(name);
}

// getAttributeValue: "a.b.0" through dicts, namespaces and list indices.
Value attribute_path(const Value& item, const std::string& path) {
  Value v = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (v.is_attr_container()) {
      const Value* x = v.obj->find(part);
      v = x ? *x : Value::undefined();
    } else if (v.is_array()) {
      const double idx = js_parse_int(part);
      if (std::isnan(idx) || idx < 0 || idx >= static_cast<double>(v.items().size()))
        return Value::undefined();
      v = v.items()[static_cast<size_t>(idx)];
    } else {
      return Value::undefined();
    }
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

std::string unique_key(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
    case Kind::kNull:  // none's value is undefined in the reference
      return "u";
    case Kind::kBool:
      return v.flag ? "b1" : "b0";
    case Kind::kInt:
    case Kind::kFloat: {
      if (std::isnan(v.num)) return "#nan";
      std::string k = "#";
      k += js_number(v.num == 0 ? 0.0 : v.num);  // SameValueZero: -0 is 0
      return k;
    }
    case Kind::kString: {
      std::string k = "s";
      k += v.s();
      return k;
    }
    default: {
      const void* p = v.is_array()            ? static_cast<const void*>(v.arr.get())
                      : v.is(Kind::kFunction) ? static_cast<const void*>(v.fn.get())
                                              : static_cast<const void*>(v.obj.get());
      std::string k = "o";
      k += std::to_string(reinterpret_cast<uintptr_t>(p));
      return k;
    }
  }
}

std::string indent_text(const std::string& s, const std::string& ind, bool first, bool blank) {
  std::string out;
  size_t start = 0;
  for (size_t line = 0;; ++line) {
    const size_t nl = s.find('\n', start);
    const std::string_view x(s.data() + start, (nl == std::string::npos ? s.size() : nl) - start);
    if ((line == 0 && !first) || (x.empty() && !blank)) {
      out += x;
    } else {
      out += ind;
      out += x;
    }
    if (nl == std::string::npos) break;
    out += '\n';
    start = nl + 1;
  }
  return out;
}

}  // namespace

bool Interp::has_test(const std::string& name) const {
  static const std::unordered_set<std::string> kTests = {
      "boolean", "callable", "odd",       "even",     "false",   "true",     "none",
      "string",  "number",   "integer",   "iterable", "mapping", "sequence", "lower",
      "upper",   "defined",  "undefined", "equalto",  "eq"};
  return kTests.count(name) > 0;
}

bool Interp::run_test(const std::string& name, const Value& a, const Value* b, size_t pos) {
  if (name == "boolean") return a.is(Kind::kBool);
  if (name == "callable") return a.is(Kind::kFunction);
  if (name == "odd" || name == "even") {
    if (!a.is(Kind::kInt)) fail("test '" + name + "' needs an integer, got " + a.type_name(), pos);
    return (std::fmod(a.num, 2) != 0) == (name == "odd");
  }
  if (name == "false") return a.is(Kind::kBool) && !a.flag;
  if (name == "true") return a.is(Kind::kBool) && a.flag;
  if (name == "none") return a.is(Kind::kNull);
  if (name == "string") return a.is(Kind::kString);
  if (name == "number") return a.is_number();
  if (name == "integer") return a.is(Kind::kInt);
  if (name == "iterable") return (a.is_array() && !a.flag) || a.is(Kind::kString);
  if (name == "mapping") return a.is_object();
  if (name == "sequence") return a.is_array() || a.is_object() || a.is(Kind::kString);
  if (name == "lower") return a.is(Kind::kString) && a.s() == ascii_lower(a.s());
  if (name == "upper") return a.is(Kind::kString) && a.s() == ascii_upper(a.s());
  if (name == "defined") return !a.is(Kind::kUndefined);
  if (name == "undefined") return a.is(Kind::kUndefined);
  if (name == "equalto" || name == "eq") {
    if (!b) fail("test '" + name + "' needs a value to compare with (use ==)", pos);
    return strict_equal(a, *b);
  }
  fail("unknown test '" + name + "'", pos);
}

Value Interp::apply_filter(const Value& v, const Node& f, const EnvPtr& env, size_t pos) {
  try {
    if (f.kind == NodeKind::kName) {
      const std::string& name = f.text;
      if (name == "safe") return v;
      if (name == "tojson") return str(to_json(v, JsonOptions{}, true, max_string()));
      if (v.is_array()) {
        const auto& items = v.items();
        if (name == "list") return v;
        if (name == "first") return items.empty() ? Value::undefined() : items.front();
        if (name == "last") return items.empty() ? Value::undefined() : items.back();
        if (name == "length") return Value::integer(static_cast<double>(items.size()));
        if (name == "reverse") return list(std::vector<Value>(items.rbegin(), items.rend()));
        if (name == "sort") {
          std::vector<Value> sorted = items;
          merge_sort(sorted,
                     [](const Value& a, const Value& b) { return compare_values(a, b, false); });
          return list(std::move(sorted));
        }
        if (name == "join") {
          std::string out;
          for (const Value& x : items) {
            if (!x.is(Kind::kNull) && !x.is(Kind::kUndefined)) out += to_js_string(x, max_string());
            if (out.size() > max_string()) break;
          }
          return str(std::move(out));
        }
        if (name == "string") return str(to_json(v, JsonOptions{}, false, max_string()));
        if (name == "unique") {
          std::unordered_set<std::string> seen;
          std::vector<Value> out;
          for (const Value& x : items) {
            if (seen.insert(unique_key(x)).second) out.push_back(x);
          }
          return list(std::move(out));
        }
      } else if (v.is(Kind::kString)) {
        const std::string& s = v.s();
        if (name == "length" || name == "upper" || name == "lower" || name == "title" ||
            name == "capitalize") {
          const Value m = method(v, name);
          if (m.is(Kind::kInt)) return m;
          Args none;
          return m.fn->call(none, env.get());
        }
        if (name == "trim") return str(std::string(js_trim(s)));
        if (name == "indent") return str(indent_text(s, "    ", false, false));
        if (name == "join" || name == "string") return v;
        if (name == "int") {
          const double x = js_parse_int(s);
          return Value::integer(std::isnan(x) ? 0 : x);
        }
        if (name == "float") {
          const double x = js_parse_float(s);
          return Value::floating(std::isnan(x) ? 0 : x);
        }
      } else if (v.is_number()) {
        if (name == "abs")
          return v.is(Kind::kInt) ? Value::integer(std::fabs(v.num))
                                  : Value::floating(std::fabs(v.num));
        if (name == "int") return Value::integer(std::trunc(v.num) + 0.0);
        if (name == "float") return Value::floating(v.num);
        if (name == "string") return str(to_output(v));
      } else if (v.is_object()) {
        if (name == "length") return Value::integer(static_cast<double>(v.obj->entries.size()));
        const Value m = method(v, name);
        if (m.is(Kind::kFunction)) {
          Args none;
          return m.fn->call(none, env.get());
        }
        if (!m.is(Kind::kUndefined)) return m;
      } else if (v.is(Kind::kBool)) {
        if (name == "bool") return v;
        if (name == "int") return Value::integer(v.flag ? 1 : 0);
        if (name == "float") return Value::floating(v.flag ? 1 : 0);
        if (name == "string") return str(v.flag ? "true" : "false");
      }
      no_filter(name, v);
    }
    if (f.kind != NodeKind::kCall || f.a->kind != NodeKind::kName)
      fail("unsupported filter expression");
    const std::string& name = f.a->text;
    const NodeList& argn = f.items;
    if (name == "tojson") {
      auto [pos_args, kw] = eval_args(argn, env);
      JsonOptions opt;
      if (const Value* ind = kwarg(kw, "indent")) {
        if (ind->is(Kind::kInt)) {
          if (std::fabs(ind->num) > 1e6) fail("tojson: indent out of range");
          opt.indent = static_cast<int>(ind->num);
        } else if (!ind->is(Kind::kNull)) {
          fail("tojson: indent must be an integer");
        }
      }
      if (const Value* ea = kwarg(kw, "ensure_ascii")) {
        if (!ea->is(Kind::kBool)) fail("tojson: ensure_ascii must be a boolean");
        opt.ensure_ascii = ea->flag;
      }
      if (const Value* sk = kwarg(kw, "sort_keys")) {
        if (!sk->is(Kind::kBool)) fail("tojson: sort_keys must be a boolean");
        opt.sort_keys = sk->flag;
      }
      if (const Value* sep = kwarg(kw, "separators")) {
        if (sep->is_array()) {
          if (sep->items().size() != 2 || !sep->items()[0].is(Kind::kString) ||
              !sep->items()[1].is(Kind::kString)) {
            fail("tojson: separators must be a tuple of two strings");
          }
          opt.has_separators = true;
          opt.item_separator = sep->items()[0].s();
          opt.key_separator = sep->items()[1].s();
        } else if (!sep->is(Kind::kNull)) {
          fail("tojson: separators must be a tuple of two strings");
        }
      }
      return str(to_json(v, opt, true, max_string()));
    }
    if (name == "join") {
      if (!v.is(Kind::kString) && !v.is_array()) no_filter(name, v);
      auto [pa, kw] = eval_args(argn, env);
      const Value sep = arg_or(pa, 0, kw, "separator", Value::string(""));
      if (!sep.is(Kind::kString)) fail("join: the separator must be a string");
      std::string out;
      if (v.is(Kind::kString)) {
        bool first = true;
        for (size_t i = 0; i < v.s().size();) {
          const size_t len = decode_utf8(v.s(), i).len;
          if (!first) out += sep.s();
          first = false;
          out.append(v.s(), i, len);
          i += len;
          if (out.size() > max_string()) break;
        }
      } else {
        for (size_t i = 0; i < v.items().size(); ++i) {
          if (i > 0) out += sep.s();
          const Value& x = v.items()[i];
          if (!x.is(Kind::kNull) && !x.is(Kind::kUndefined)) out += to_js_string(x, max_string());
          if (out.size() > max_string()) break;
        }
      }
      return str(std::move(out));
    }
    if (name == "int" || name == "float") {
      const bool is_int = name == "int";
      auto [pa, kw] = eval_args(argn, env);
      const Value def =
          arg_or(pa, 0, kw, "default", is_int ? Value::integer(0) : Value::floating(0));
      if (v.is(Kind::kString)) {
        const double x = is_int ? js_parse_int(v.s()) : js_parse_float(v.s());
        if (std::isnan(x)) return def;
        return is_int ? Value::integer(x) : Value::floating(x);
      }
      if (v.is_number())
        return is_int ? Value::integer(std::trunc(v.num) + 0.0) : Value::floating(v.num);
      if (v.is(Kind::kBool)) return is_int ? Value::integer(v.flag) : Value::floating(v.flag);
      no_filter(name, v);
    }
    if (name == "default") {
      auto [pa, kw] = eval_args(argn, env);
      const Value def = pa.size() > 0 ? pa[0] : Value::string("");
      const Value boolean = arg_or(pa, 1, kw, "boolean", Value::boolean(false));
      if (!boolean.is(Kind::kBool)) fail("default: the flag must be a boolean");
      if (v.is(Kind::kUndefined) || (boolean.flag && !truthy(v))) return def;
      return v;
    }
    if (v.is_array()) {
      if (name == "sort") {
        auto [pa, kw] = eval_args(argn, env);
        const Value rev = arg_or(pa, 0, kw, "reverse", Value::boolean(false));
        if (!rev.is(Kind::kBool)) fail("sort: reverse must be a boolean");
        const Value cs = arg_or(pa, 1, kw, "case_sensitive", Value::boolean(false));
        if (!cs.is(Kind::kBool)) fail("sort: case_sensitive must be a boolean");
        const Value attr = arg_or(pa, 2, kw, "attribute", Value::null());
        if (!attr.is(Kind::kString) && !attr.is(Kind::kInt) && !attr.is(Kind::kNull)) {
          fail("sort: attribute must be a string, an integer or none");
        }
        auto key = [&](const Value& item) {
          if (attr.is(Kind::kNull)) return item;
          return attribute_path(item, attr.is(Kind::kInt) ? js_number(attr.num) : attr.s());
        };
        std::vector<Value> sorted = v.items();
        merge_sort(sorted, [&](const Value& a, const Value& b) {
          const int r = compare_values(key(a), key(b), cs.flag);
          return rev.flag ? -r : r;
        });
        return list(std::move(sorted));
      }
      if (name == "selectattr" || name == "rejectattr") {
        const bool select = name == "selectattr";
        for (const Value& x : v.items()) {
          if (!x.is_attr_container()) fail(name + " applies to a list of dicts");
        }
        for (const NodePtr& a : argn) {
          if (a->kind != NodeKind::kStr)
            fail(name + ": the arguments must be string literals", a->pos);
        }
        Args a;
        for (const NodePtr& n : argn) a.push_back(eval(*n, env));
        if (a.empty()) fail(name + " needs an attribute name");
        const std::string attr = a[0].s();
        const std::string test_name = a.size() > 1 ? a[1].s() : "";
        if (!test_name.empty() && !has_test(test_name)) fail("unknown test '" + test_name + "'");
        const Value arg = a.size() > 2 ? a[2] : Value::undefined();
        std::vector<Value> out;
        for (const Value& x : v.items()) {
          step();
          const Value* field = x.obj->find(attr);
          bool r = false;
          if (field)
            r = test_name.empty() ? truthy(*field) : run_test(test_name, *field, &arg, pos);
          if (r == select) out.push_back(x);
        }
        return list(std::move(out));
      }
      if (name == "map") {
        auto [pa, kw] = eval_args(argn, env);
        const Value* attr = kw->find("attribute");
        if (!attr) fail("unsupported: map without attribute=");
        if (!attr->is(Kind::kString)) fail("map: attribute must be a string");
        const Value* def = kw->find("default");
        std::vector<Value> out;
        for (const Value& x : v.items()) {
          if (!x.is_attr_container()) fail("map(attribute=) applies to a list of dicts");
          const Value y = attribute_path(x, attr->s());
          out.push_back(y.is(Kind::kUndefined) && def ? *def : y);
        }
        return list(std::move(out));
      }
      no_filter(name, v);
    }
    if (v.is(Kind::kString)) {
      if (name == "indent") {
        auto [pa, kw] = eval_args(argn, env);
        const Value width = arg_or(pa, 0, kw, "width", Value::integer(4));
        if (!width.is(Kind::kInt) && !width.is(Kind::kString))
          fail("indent: width must be an integer or a string");
        const bool first = raw_truthy(arg_or(pa, 1, kw, "first", Value::boolean(false)));
        const bool blank = raw_truthy(arg_or(pa, 2, kw, "blank", Value::boolean(false)));
        if (width.is(Kind::kInt) && width.num > static_cast<double>(max_string()))
          fail("indent: width too large");
        const std::string ind =
            width.is(Kind::kString)
                ? width.s()
                : std::string(static_cast<size_t>(std::max(0.0, width.num)), ' ');
        const size_t lines = static_cast<size_t>(std::count(v.s().begin(), v.s().end(), '\n')) + 1;
        if (ind.size() * lines > max_string())
          fail("a string longer than the limit of " + std::to_string(max_string()) + " bytes");
        return str(indent_text(v.s(), ind, first, blank));
      }
      if (name == "replace") {
        auto [pa, kw] = eval_args(argn, env);
        pa.push_back(Value::object(kw, Kind::kObject, ObjTag::kKwargs));
        return method(v, "replace").fn->call(pa, env.get());
      }
      no_filter(name, v);
    }
    if (v.is_object()) {
      const Value m = method(v, name);
      if (m.is(Kind::kFunction)) {
        Args a = eval_call_args(argn, env);
        return m.fn->call(a, env.get());
      }
    }
    no_filter(name, v);
  } catch (TemplateError& e) {
    if (e.pos == std::string::npos) e.pos = pos;
    throw;
  }
}

namespace {

std::string strftime_js(const DateTime& t, const std::string& format) {
  static const char* kShort[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  static const char* kLong[] = {"January",   "February", "March",    "April",
                                "May",       "June",     "July",     "August",
                                "September", "October",  "November", "December"};
  auto pad2 = [](int n) {
    std::string r = n < 10 ? "0" : "";
    r += std::to_string(n);
    return r;
  };
  const int m = std::clamp(t.month, 1, 12) - 1;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = i + 1 < format.size() ? format[i + 1] : '\0';
    if (format[i] != '%' || std::string_view("YmdbBHM%").find(c) == std::string_view::npos ||
        c == '\0') {
      out += format[i];
      continue;
    }
    switch (c) {
      case 'Y':
        out += std::to_string(t.year);
        break;
      case 'm':
        out += pad2(t.month);
        break;
      case 'd':
        out += pad2(t.day);
        break;
      case 'b':
        out += kShort[m];
        break;
      case 'B':
        out += kLong[m];
        break;
      case 'H':
        out += pad2(t.hour);
        break;
      case 'M':
        out += pad2(t.minute);
        break;
      default:
        out += '%';
    }
    ++i;
  }
  return out;
}

DateTime local_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  return {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min};
}

}  // namespace

void Interp::declare_globals(Env& env) {
  env.vars["false"] = Value::boolean(false);
  env.vars["true"] = Value::boolean(true);
  env.vars["none"] = Value::null();
  env.vars["False"] = Value::boolean(false);
  env.vars["True"] = Value::boolean(true);
  env.vars["None"] = Value::null();
  env.vars["raise_exception"] = Value::function("raise_exception", [](Args& a, Env*) -> Value {
    const std::string msg = a.empty() || a[0].is(Kind::kUndefined) || a[0].is(Kind::kNull)
                                ? ""
                                : to_js_string(a[0], size_t{1} << 16);
    throw RaisedError{msg};
  });
  Interp* in = this;
  env.vars["range"] = Value::function("range", [in](Args& a, Env*) {
    for (const Value& x : a) {
      if (!x.is_number()) fail(std::string("range() needs numbers, got ") + x.type_name());
    }
    double start = 0, stop = 0, step = 1;
    if (a.size() == 1) {
      stop = a[0].num;
    } else if (a.size() >= 2) {
      start = a[0].num, stop = a[1].num;
      if (a.size() >= 3) step = a[2].num;
    }
    if (step == 0) fail("range() step must not be zero");
    if (std::isnan(start) || std::isnan(stop) || std::isnan(step)) return in->list({});
    const double n = std::ceil((stop - start) / step);
    if (n > static_cast<double>(in->opt_.max_items)) {
      fail("range() of more than " + std::to_string(in->opt_.max_items) + " items");
    }
    std::vector<Value> items;
    for (double i = start; step > 0 ? i < stop : i > stop; i += step) {
      items.push_back(std::floor(i) == i ? Value::integer(i) : Value::floating(i));
      if (items.size() > in->opt_.max_items) fail("range() of too many items");
    }
    return in->list(std::move(items));
  });
  env.vars["strftime_now"] = Value::function("strftime_now", [in](Args& a, Env*) {
    if (a.empty() || !a[0].is(Kind::kString)) fail("strftime_now() needs a format string");
    return in->str(strftime_js(in->opt_.now ? *in->opt_.now : local_now(), a[0].s()));
  });
  namespace_fn_ = Value::function("namespace", [in](Args& a, Env*) {
    Args pos = a;
    std::shared_ptr<ObjectData> kw;
    if (!pos.empty() && pos.back().is_object() && pos.back().tag == ObjTag::kKwargs) {
      kw = pos.back().obj;
      pos.pop_back();
    }
    if (pos.size() > 1) fail("namespace() takes at most 1 positional argument");
    auto o = std::make_shared<ObjectData>();
    if (pos.size() == 1) {
      const Value& src = pos[0];
      if (src.is_object()) {
        for (const auto& [k, x] : src.obj->entries) o->set(k, x);
      } else if (src.is_array()) {
        for (const Value& pair : src.items()) {
          std::vector<Value> kv;
          if (pair.is_array()) {
            kv = pair.items();
          } else if (pair.is(Kind::kString)) {
            for (size_t i = 0; i < pair.s().size();) {
              const size_t len = decode_utf8(pair.s(), i).len;
              kv.push_back(Value::string(pair.s().substr(i, len)));
              i += len;
            }
          }
          if (kv.size() != 2) fail("namespace() needs a dict or a list of (key, value) pairs");
          if (!kv[0].is(Kind::kString)) fail("namespace() keys must be strings");
          o->set(kv[0].s(), kv[1]);
        }
      } else {
        fail(std::string("namespace() cannot read a ") + src.type_name());
      }
    }
    if (kw) {
      for (const auto& [k, x] : kw->entries) o->set(k, x);
    }
    in->step(o->entries.size());
    return Value::object(std::move(o), Kind::kNamespace);
  });
}

}  // namespace moa::jinja
