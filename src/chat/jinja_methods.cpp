// Methods of strings (upper, split, replace...) and dicts (get, items, dictsort...) as bound
// functions, with the reference's argument handling: strip/lstrip/rstrip ignore their argument,
// capitalize leaves the rest of the string alone.
#include <cmath>

#include "chat/jinja_eval.h"
#include "chat/jinja_text.h"

namespace moa::jinja {

Value arg_or(const Args& pos, size_t i, const std::shared_ptr<ObjectData>& kw, const char* name,
             Value fallback) {
  if (i < pos.size()) return pos[i];
  if (const Value* v = kw ? kw->find(name) : nullptr) return *v;
  return fallback;
}

void merge_sort(std::vector<Value>& v, const std::function<int(const Value&, const Value&)>& cmp) {
  std::vector<Value> tmp(v.size());
  for (size_t width = 1; width < v.size(); width *= 2) {
    for (size_t lo = 0; lo < v.size(); lo += 2 * width) {
      const size_t mid = std::min(lo + width, v.size()), hi = std::min(lo + 2 * width, v.size());
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) tmp[k++] = cmp(v[j], v[i]) < 0 ? v[j++] : v[i++];
      while (i < mid) tmp[k++] = v[i++];
      while (j < hi) tmp[k++] = v[j++];
    }
    v.swap(tmp);
  }
}

namespace {

std::string title_case(std::string_view s) {
  std::string r(s);
  for (size_t i = 0; i < r.size(); ++i) {
    const auto c = static_cast<unsigned char>(r[i]);
    if (is_word_byte(c) && (i == 0 || !is_word_byte(static_cast<unsigned char>(r[i - 1]))) &&
        c >= 'a' && c <= 'z') {
      r[i] = static_cast<char>(c - 32);
    }
  }
  return r;
}

std::string capitalize(std::string_view s) {
  std::string r(s);
  if (!r.empty() && r[0] >= 'a' && r[0] <= 'z') r[0] = static_cast<char>(r[0] - 32);
  return r;
}

std::string js_replace(Interp& in, const std::string& s, const std::string& from,
                       const std::string& to, double count) {
  if (count == 0) return s;
  double remaining = std::isnan(count) || count < 0 ? INFINITY : count;
  std::string out;
  if (from.empty()) {
    // An empty pattern matches before every code point and at the end.
    for (size_t i = 0; i <= s.size();) {
      if (remaining > 0) {
        out += to;
        --remaining;
      }
      if (i == s.size()) break;
      const size_t len = decode_utf8(s, i).len;
      out.append(s, i, len);
      i += len;
      if (out.size() > in.max_string()) break;
    }
    return out;
  }
  size_t i = 0;
  while (true) {
    const size_t j = remaining > 0 ? s.find(from, i) : std::string::npos;
    if (j == std::string::npos) break;
    out.append(s, i, j - i);
    out += to;
    --remaining;
    i = j + from.size();
    if (out.size() > in.max_string()) break;
  }
  out.append(s, i);
  return out;
}

}  // namespace

Value Interp::method(const Value& self, const std::string& name) {
  auto fn = [&](std::function<Value(Args&)> body) {
    return Value::function(name, [body = std::move(body)](Args& a, Env*) { return body(a); });
  };
  Interp* in = this;
  if (self.is(Kind::kString)) {
    const std::shared_ptr<const std::string> s = self.str;
    if (name == "length") return Value::integer(static_cast<double>(utf16_length(*s)));
    if (name == "upper") return fn([in, s](Args&) { return in->str(ascii_upper(*s)); });
    if (name == "lower") return fn([in, s](Args&) { return in->str(ascii_lower(*s)); });
    // strip/lstrip/rstrip ignore their argument, as in the reference.
    if (name == "strip") return fn([in, s](Args&) { return in->str(std::string(js_trim(*s))); });
    if (name == "lstrip")
      return fn([in, s](Args&) { return in->str(std::string(js_trim_start(*s))); });
    if (name == "rstrip")
      return fn([in, s](Args&) { return in->str(std::string(js_trim_end(*s))); });
    if (name == "title") return fn([in, s](Args&) { return in->str(title_case(*s)); });
    if (name == "capitalize") return fn([in, s](Args&) { return in->str(capitalize(*s)); });
    if (name == "startswith" || name == "endswith") {
      const bool start = name == "startswith";
      return fn([s, start, name](Args& a) {
        if (a.empty()) fail(name + "() needs an argument");
        auto match = [&](const std::string& p) {
          return p.size() <= s->size() &&
                 (start ? s->compare(0, p.size(), p) == 0
                        : s->compare(s->size() - p.size(), p.size(), p) == 0);
        };
        if (a[0].is(Kind::kString)) return Value::boolean(match(a[0].s()));
        if (a[0].is_array()) {
          for (const Value& x : a[0].items()) {
            if (!x.is(Kind::kString)) fail(name + "() needs strings");
            if (match(x.s())) return Value::boolean(true);
          }
          return Value::boolean(false);
        }
        fail(name + "() needs a string or a tuple of strings");
      });
    }
    if (name == "split") {
      return fn([in, s](Args& a) {
        const Value sep = a.size() > 0 ? a[0] : Value::null();
        if (!sep.is(Kind::kString) && !sep.is(Kind::kNull))
          fail("split(): the separator must be a string or none");
        const Value maxv = a.size() > 1 ? a[1] : Value::integer(-1);
        if (!maxv.is(Kind::kInt)) fail("split(): maxsplit must be an integer");
        const double maxsplit = maxv.num;
        std::vector<Value> parts;
        if (sep.is(Kind::kNull)) {
          const std::string_view text = js_trim_start(*s);
          size_t i = 0;
          while (i < text.size()) {
            i += js_space_run(text, i);
            if (i >= text.size()) break;
            size_t j = i;
            while (j < text.size() && js_space_run(text, j) == 0) j += decode_utf8(text, j).len;
            if (maxsplit >= 0 && static_cast<double>(parts.size()) >= maxsplit) {
              parts.push_back(in->str(std::string(text.substr(i))));
              break;
            }
            parts.push_back(in->str(std::string(text.substr(i, j - i))));
            i = j;
            in->step();
          }
        } else {
          const std::string& d = sep.s();
          if (d.empty()) fail("split(): empty separator");
          size_t i = 0;
          while (true) {
            const size_t j = s->find(d, i);
            if (j == std::string::npos ||
                (maxsplit >= 0 && static_cast<double>(parts.size()) >= maxsplit)) {
              parts.push_back(in->str(s->substr(i)));
              break;
            }
            parts.push_back(in->str(s->substr(i, j - i)));
            i = j + d.size();
            in->step();
          }
        }
        return in->list(std::move(parts));
      });
    }
    if (name == "replace") {
      return fn([in, s](Args& a) {
        if (a.size() < 2) fail("replace() needs at least two arguments");
        if (!a[0].is(Kind::kString) || !a[1].is(Kind::kString))
          fail("replace() arguments must be strings");
        Value count = Value::null();
        if (a.size() > 2) {
          if (a[2].is_object() && a[2].tag == ObjTag::kKwargs) {
            const Value* c = a[2].obj->find("count");
            count = c ? *c : Value::null();
          } else {
            count = a[2];
          }
        }
        if (!count.is(Kind::kInt) && !count.is(Kind::kNull))
          fail("replace(): count must be an integer or none");
        const double n = count.is(Kind::kNull) ? -1 : count.num;
        return in->str(js_replace(*in, *s, a[0].s(), a[1].s(), n));
      });
    }
    return Value::undefined();
  }
  if (self.is_array()) {
    if (name == "length") return Value::integer(static_cast<double>(self.items().size()));
    return Value::undefined();
  }
  if (!self.is_object()) return Value::undefined();
  const std::shared_ptr<ObjectData> o = self.obj;
  auto pairs = [in, o]() {
    std::vector<Value> items;
    for (const auto& [k, v] : o->entries) items.push_back(in->list({Value::string(k), v}));
    return items;
  };
  if (name == "get") {
    return fn([o](Args& a) {
      if (a.empty() || !a[0].is(Kind::kString)) {
        fail(std::string("get(): the key must be a string, got ") +
             (a.empty() ? "nothing" : a[0].type_name()));
      }
      if (const Value* v = o->find(a[0].s())) return *v;
      return a.size() > 1 ? a[1] : Value::null();
    });
  }
  if (name == "items") return fn([in, pairs](Args&) { return in->list(pairs()); });
  if (name == "keys") {
    return fn([in, o](Args&) {
      std::vector<Value> keys;
      for (const auto& e : o->entries) keys.push_back(Value::string(e.first));
      return in->list(std::move(keys));
    });
  }
  if (name == "values") {
    return fn([in, o](Args&) {
      std::vector<Value> values;
      for (const auto& e : o->entries) values.push_back(e.second);
      return in->list(std::move(values));
    });
  }
  if (name == "dictsort") {
    return fn([in, pairs](Args& a) {
      std::shared_ptr<ObjectData> kw;
      Args pos;
      for (const Value& x : a) {
        if (x.is_object() && x.tag == ObjTag::kKwargs) {
          kw = x.obj;
        } else {
          pos.push_back(x);
        }
      }
      const Value cs = arg_or(pos, 0, kw, "case_sensitive", Value::boolean(false));
      if (!cs.is(Kind::kBool)) fail("dictsort(): case_sensitive must be a boolean");
      const Value by = arg_or(pos, 1, kw, "by", Value::string("key"));
      if (!by.is(Kind::kString) || (by.s() != "key" && by.s() != "value"))
        fail("dictsort(): by must be 'key' or 'value'");
      const Value rev = arg_or(pos, 2, kw, "reverse", Value::boolean(false));
      if (!rev.is(Kind::kBool)) fail("dictsort(): reverse must be a boolean");
      std::vector<Value> items = pairs();
      const size_t idx = by.s() == "key" ? 0 : 1;
      merge_sort(items, [&](const Value& x, const Value& y) {
        const int r = compare_values(x.items()[idx], y.items()[idx], cs.flag);
        return rev.flag ? -r : r;
      });
      return in->list(std::move(items));
    });
  }
  return Value::undefined();
}

}  // namespace moa::jinja
