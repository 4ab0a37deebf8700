#include "chat/jinja_eval.h"

#include <cmath>

#include "chat/jinja_text.h"

namespace moa::jinja {

Interp::DepthGuard::DepthGuard(Interp& in, size_t pos) : in_(in) {
  if (++in_.depth_ > kMaxEvalDepth) {
    --in_.depth_;
    fail("evaluation nested deeper than " + std::to_string(kMaxEvalDepth) +
             " levels (a recursive macro?)",
         pos);
  }
}

Interp::Interp(const RenderOptions& opt) : opt_(opt) {}

void Interp::step(uint64_t n) {
  steps_ += n;
  if (steps_ > opt_.max_steps) {
    fail("the template ran more than " + std::to_string(opt_.max_steps) + " steps");
  }
}

Value Interp::str(std::string s) {
  if (s.size() > opt_.max_output_bytes) {
    fail("a string longer than the limit of " + std::to_string(opt_.max_output_bytes) + " bytes");
  }
  string_bytes_ += s.size();
  if (string_bytes_ > opt_.max_string_bytes) {
    fail("the template built more than " + std::to_string(opt_.max_string_bytes) +
         " bytes of strings");
  }
  return Value::string(std::move(s));
}

Value Interp::list(std::vector<Value> items, bool tuple) {
  if (items.size() > opt_.max_items) {
    fail("a list of more than " + std::to_string(opt_.max_items) + " items");
  }
  step(items.size() / 8);
  return Value::array(std::move(items), tuple);
}

void Interp::append(std::string& out, const std::string& s) {
  if (out.size() + s.size() > opt_.max_output_bytes) {
    fail("output longer than the limit of " + std::to_string(opt_.max_output_bytes) + " bytes");
  }
  out += s;
}

EnvPtr Interp::global_scope(const nlohmann::json& context) {
  auto env = std::make_shared<Env>();
  declare_globals(*env);
  if (!context.is_object() && !context.is_null()) fail("the context must be a JSON object");
  if (context.is_object()) {
    for (const auto& [key, value] : context.items()) {
      if (env->vars.count(key) || key == "namespace") {
        fail("the context variable '" + key + "' would replace a built-in");
      }
      env->vars[key] = from_json(value);
    }
  }
  return env;
}

Value Interp::lookup(const Env& env, const std::string& name) const {
  // The reference declares `namespace` in every scope, so only the innermost can override it.
  if (name == "namespace") {
    const auto it = env.vars.find(name);
    return it != env.vars.end() ? it->second : namespace_fn_;
  }
  for (const Env* e = &env; e; e = e->parent.get()) {
    const auto it = e->vars.find(name);
    if (it != e->vars.end()) return it->second;
  }
  return Value::undefined();
}

Value Interp::eval(const Node& n, const EnvPtr& env) {
  DepthGuard guard(*this, n.pos);
  step();
  try {
    return eval_inner(n, env);
  } catch (TemplateError& e) {
    if (e.pos == std::string::npos) e.pos = n.pos;
    throw;
  }
}

Value Interp::eval_inner(const Node& n, const EnvPtr& env) {
  switch (n.kind) {
    case NodeKind::kName:
      return lookup(*env, n.text);
    case NodeKind::kInt:
      return Value::integer(n.num);
    case NodeKind::kFloat:
      return Value::floating(n.num);
    case NodeKind::kStr:
      return Value::string(n.text);
    case NodeKind::kBinary:
      return binary(n, env);
    case NodeKind::kUnary:
      return unary(n, env);
    case NodeKind::kMember:
      return member(n, env);
    case NodeKind::kCall:
      return call(n, env);
    case NodeKind::kFilter:
      return apply_filter(eval(*n.a, env), *n.b, env, n.pos);
    case NodeKind::kTest:
      return test(n, env);
    case NodeKind::kTernary:
      return truthy(eval(*n.a, env)) ? eval(*n.b, env) : eval(*n.c, env);
    case NodeKind::kSelect:
      return truthy(eval(*n.b, env)) ? eval(*n.a, env) : Value::undefined();
    case NodeKind::kList:
    case NodeKind::kTuple: {
      std::vector<Value> items;
      items.reserve(n.items.size());
      for (const NodePtr& x : n.items) items.push_back(eval(*x, env));
      return list(std::move(items), n.kind == NodeKind::kTuple);
    }
    case NodeKind::kDict:
      return dict(n, env);
    case NodeKind::kKwarg:
    case NodeKind::kSpread:
    case NodeKind::kKwSpread:
      fail("keyword arguments and unpacking are only allowed in calls");
    default:
      fail("unexpected statement inside an expression");
  }
}

Value Interp::dict(const Node& n, const EnvPtr& env) {
  auto o = std::make_shared<ObjectData>();
  for (size_t i = 0; i + 1 < n.items.size(); i += 2) {
    const Value key = eval(*n.items[i], env);
    if (!key.is(Kind::kString))
      fail(std::string("dict keys must be strings, got ") + key.type_name(), n.items[i]->pos);
    o->set(key.s(), eval(*n.items[i + 1], env));
  }
  return Value::object(std::move(o));
}

namespace {

Value number(double v, bool is_float) { return is_float ? Value::floating(v) : Value::integer(v); }

}  // namespace

Value Interp::binary(const Node& n, const EnvPtr& env) {
  const std::string& op = n.text;
  Value l = eval(*n.a, env);
  if (op == "and") return truthy(l) ? eval(*n.b, env) : l;
  if (op == "or") return truthy(l) ? l : eval(*n.b, env);
  Value r = eval(*n.b, env);
  if (op == "==") return Value::boolean(loose_equal(l, r));
  if (op == "!=") return Value::boolean(!loose_equal(l, r));
  const bool is_in = op == "in" || op == "not in";
  if (l.is_number() && r.is_number() && op != "~" && op != "**") {
    const double a = l.num, b = r.num;
    const bool f = l.is(Kind::kFloat) || r.is(Kind::kFloat);
    if (op == "+") return number(a + b, f);
    if (op == "-") return number(a - b, f);
    if (op == "*") return number(a * b, f);
    if (op == "/") return Value::floating(a / b);
    if (op == "//") return number(std::floor(a / b), f);
    if (op == "%") return number(std::fmod(a, b), f);  // JavaScript's %: the dividend's sign
    if (op == "<") return Value::boolean(a < b);
    if (op == ">") return Value::boolean(a > b);
    if (op == ">=") return Value::boolean(a >= b);
    if (op == "<=") return Value::boolean(a <= b);
  } else if (l.is(Kind::kUndefined) || r.is(Kind::kUndefined)) {
    if (r.is(Kind::kUndefined) && is_in) return Value::boolean(op == "not in");
    if (op == "~" && !l.is(Kind::kNull) && !r.is(Kind::kNull)) {
      std::string s = l.is(Kind::kUndefined) ? "" : to_js_string(l, max_string());
      s += r.is(Kind::kUndefined) ? "" : to_js_string(r, max_string());
      return str(std::move(s));
    }
    fail("cannot apply '" + op + "' to an undefined value");
  } else if (l.is(Kind::kNull) || r.is(Kind::kNull)) {
    fail("cannot apply '" + op + "' to none");
  } else if (op == "~") {
    return str(to_js_string(l, max_string()) + to_js_string(r, max_string()));
  } else if (op == "**" && l.is_numeric_like() && r.is_numeric_like()) {
    const double a = l.is(Kind::kBool) ? l.flag : l.num, b = r.is(Kind::kBool) ? r.flag : r.num;
    if (a == 0 && b < 0) fail("0.0 cannot be raised to a negative power");
    const double v = std::pow(a, b);
    if (!std::isfinite(v)) fail("'**' gave no finite real number");
    return number(v, l.is(Kind::kFloat) || r.is(Kind::kFloat) || b < 0);
  } else if (l.is_array() && r.is_array()) {
    if (op == "+") {
      std::vector<Value> items = l.items();
      items.insert(items.end(), r.items().begin(), r.items().end());
      return list(std::move(items));
    }
  } else if (r.is_array()) {
    if (is_in) {
      step(r.items().size() / 8);
      bool found = false;
      for (const Value& x : r.items()) {
        if (strict_equal(x, l)) {
          found = true;
          break;
        }
      }
      return Value::boolean(found == (op == "in"));
    }
  }
  if ((l.is(Kind::kString) || r.is(Kind::kString)) && op == "+") {
    return str(to_js_string(l, max_string()) + to_js_string(r, max_string()));
  }
  if (l.is(Kind::kString) && r.is(Kind::kString) && is_in) {
    return Value::boolean((r.s().find(l.s()) != std::string::npos) == (op == "in"));
  }
  if (l.is(Kind::kString) && r.is_object() && is_in) {
    return Value::boolean((r.obj->find(l.s()) != nullptr) == (op == "in"));
  }
  fail("unsupported operator '" + op + "' between " + l.type_name() + " and " + r.type_name());
}

Value Interp::unary(const Node& n, const EnvPtr& env) {
  const Value v = eval(*n.a, env);
  if (n.text == "not") return Value::boolean(!truthy(v));
  if (!v.is_numeric_like()) fail("unary '" + n.text + "' needs a number, got " + v.type_name());
  const double x = v.is(Kind::kBool) ? v.flag : v.num;
  return number(n.text == "-" ? -x : x, v.is(Kind::kFloat));
}

Value Interp::member(const Node& n, const EnvPtr& env) {
  const Value obj = eval(*n.a, env);
  if (n.flag && n.b->kind == NodeKind::kSlice) return slice(obj, *n.b, env);
  Value prop;
  if (n.flag) {
    prop = eval(*n.b, env);
  } else if (n.b->kind == NodeKind::kInt) {
    prop = Value::integer(n.b->num);
  } else {
    prop = Value::string(n.b->text);
  }
  if (obj.is_attr_container()) {
    if (!prop.is(Kind::kString))
      fail(std::string("a ") + obj.type_name() + " key must be a string, got " + prop.type_name());
    if (const Value* v = obj.obj->find(prop.s())) return *v;
    return obj.is_object() ? method(obj, prop.s()) : Value::undefined();
  }
  if (obj.is_array() || obj.is(Kind::kString)) {
    if (prop.is(Kind::kInt)) {
      // Past 2^53 no index exists (and the cast to int64 would overflow).
      if (!std::isfinite(prop.num) || std::fabs(prop.num) > 9007199254740992.0)
        return Value::undefined();
      auto i = static_cast<int64_t>(std::trunc(prop.num));
      if (obj.is(Kind::kString)) {
        std::string ch;
        return utf16_at(obj.s(), i, ch) ? Value::string(std::move(ch)) : Value::undefined();
      }
      const auto size = static_cast<int64_t>(obj.items().size());
      if (i < 0) i += size;
      return i >= 0 && i < size ? obj.items()[static_cast<size_t>(i)] : Value::undefined();
    }
    if (prop.is(Kind::kString)) return method(obj, prop.s());
    fail(std::string("a ") + obj.type_name() + " index must be an integer or a name, got " +
         prop.type_name());
  }
  if (!prop.is(Kind::kString)) {
    fail(std::string("cannot index a ") + obj.type_name() + " with a " + prop.type_name());
  }
  return method(obj, prop.s());
}

Value Interp::slice(const Value& obj, const Node& s, const EnvPtr& env) {
  if (!obj.is_array() && !obj.is(Kind::kString))
    fail(std::string("cannot slice a ") + obj.type_name());
  const Node* parts[3] = {s.a.get(), s.b.get(), s.c.get()};
  bool given[3];
  double v[3];
  for (int k = 0; k < 3; ++k) {
    const Value x = parts[k] ? eval(*parts[k], env) : Value::undefined();
    if (!x.is(Kind::kInt) && !x.is(Kind::kUndefined)) fail("slice bounds must be integers");
    given[k] = x.is(Kind::kInt);
    v[k] = x.num;
  }
  // Python's slice rules, as the reference's slice(): code points for strings.
  std::vector<std::string> chars;
  if (obj.is(Kind::kString)) {
    for (size_t i = 0; i < obj.s().size();) {
      const size_t len = decode_utf8(obj.s(), i).len;
      chars.push_back(obj.s().substr(i, len));
      i += len;
    }
  }
  const double len = obj.is(Kind::kString) ? static_cast<double>(chars.size())
                                           : static_cast<double>(obj.items().size());
  const double step_v = given[2] ? v[2] : 1;
  double start, stop;
  if (step_v >= 0) {
    start = !given[0] ? 0 : v[0] < 0 ? std::max(len + v[0], 0.0) : std::min(v[0], len);
    stop = !given[1] ? len : v[1] < 0 ? std::max(len + v[1], 0.0) : std::min(v[1], len);
  } else {
    start = !given[0] ? len - 1 : v[0] < 0 ? std::max(len + v[0], -1.0) : std::min(v[0], len - 1);
    stop = !given[1] ? -1 : v[1] < -1 ? std::max(len + v[1], -1.0) : std::min(v[1], len - 1);
  }
  const double dir = step_v > 0 ? 1 : step_v < 0 ? -1 : 0;
  std::vector<Value> items;
  std::string text;
  for (double i = start; dir * i < dir * stop; i += step_v) {
    step();
    const auto k = static_cast<size_t>(i);
    if (obj.is(Kind::kString)) {
      text += chars[k];
    } else {
      items.push_back(obj.items()[k]);
    }
  }
  return obj.is(Kind::kString) ? str(std::move(text)) : list(std::move(items));
}

std::pair<Args, std::shared_ptr<ObjectData>> Interp::eval_args(const NodeList& args,
                                                               const EnvPtr& env) {
  Args pos;
  auto kw = std::make_shared<ObjectData>();
  for (const NodePtr& a : args) {
    if (a->kind == NodeKind::kSpread) {
      const Value v = eval(*a->a, env);
      if (!v.is_array()) fail(std::string("cannot unpack a ") + v.type_name() + " with *", a->pos);
      pos.insert(pos.end(), v.items().begin(), v.items().end());
    } else if (a->kind != NodeKind::kKwarg && a->kind != NodeKind::kKwSpread) {
      pos.push_back(eval(*a, env));
    }
  }
  auto add = [&](const std::string& key, Value v, size_t at) {
    if (kw->find(key)) fail("keyword argument '" + key + "' given twice", at);
    kw->set(key, std::move(v));
  };
  for (const NodePtr& a : args) {
    if (a->kind == NodeKind::kKwarg) {
      add(a->text, eval(*a->a, env), a->pos);
    } else if (a->kind == NodeKind::kKwSpread) {
      const Value v = eval(*a->a, env);
      if (!v.is_object()) fail(std::string("** needs a dict, got a ") + v.type_name(), a->pos);
      for (const auto& [k, x] : v.obj->entries) add(k, x, a->pos);
    }
  }
  return {std::move(pos), std::move(kw)};
}

Args Interp::eval_call_args(const NodeList& args, const EnvPtr& env) {
  for (const NodePtr& a : args) {
    if (a->kind == NodeKind::kKwarg || a->kind == NodeKind::kSpread ||
        a->kind == NodeKind::kKwSpread) {
      auto [pos, kw] = eval_args(args, env);
      if (!kw->entries.empty())
        pos.push_back(Value::object(std::move(kw), Kind::kObject, ObjTag::kKwargs));
      return pos;
    }
  }
  Args pos;
  pos.reserve(args.size());
  for (const NodePtr& a : args) pos.push_back(eval(*a, env));
  return pos;
}

Value Interp::call(const Node& n, const EnvPtr& env) {
  Args args = eval_call_args(n.items, env);
  const Value fn = eval(*n.a, env);
  if (!fn.is(Kind::kFunction)) {
    const Node& c = *n.a;
    const bool named = c.kind == NodeKind::kName || (c.kind == NodeKind::kMember && !c.flag);
    fail(named ? "cannot call '" + (c.kind == NodeKind::kName ? c.text : c.b->text) + "': it is " +
                     (fn.is(Kind::kUndefined) ? "undefined (not a supported function or method)"
                                              : std::string("a ") + fn.type_name())
               : std::string("cannot call a ") + fn.type_name());
  }
  return fn.fn->call(args, env.get());
}

Value Interp::test(const Node& n, const EnvPtr& env) {
  const Value v = eval(*n.a, env);
  if (!has_test(n.text)) fail("unknown test '" + n.text + "'");
  const bool r = run_test(n.text, v, nullptr, n.pos);
  return Value::boolean(n.flag ? !r : r);
}

void Interp::render_block(const NodeList& body, const EnvPtr& env, std::string& out) {
  for (const NodePtr& p : body) {
    const Node& n = *p;
    switch (n.kind) {
      case NodeKind::kText:
        append(out, n.text);
        break;
      case NodeKind::kComment:
        break;
      case NodeKind::kIf: {
        DepthGuard guard(*this, n.pos);
        render_block(truthy(eval(*n.a, env)) ? n.body : n.alt, env, out);
        break;
      }
      case NodeKind::kFor: {
        DepthGuard guard(*this, n.pos);
        render_for(n, env, out);
        break;
      }
      case NodeKind::kSet:
        exec_set(n, env);
        break;
      case NodeKind::kMacro:
        define_macro(n, env);
        break;
      case NodeKind::kBreak:
        throw BreakSignal{};
      case NodeKind::kContinue:
        throw ContinueSignal{};
      case NodeKind::kCallBlock:
      case NodeKind::kFilterBlock:
      default: {
        Value v;
        if (n.kind == NodeKind::kCallBlock) {
          v = call_block(n, env);
        } else if (n.kind == NodeKind::kFilterBlock) {
          DepthGuard guard(*this, n.pos);
          std::string text;
          render_block(n.body, env, text);
          v = apply_filter(str(std::move(text)), *n.a, env, n.pos);
        } else {
          v = eval(n, env);
        }
        if (!v.is(Kind::kNull) && !v.is(Kind::kUndefined)) {
          try {
            append(out, to_output(v, max_string()));
          } catch (TemplateError& e) {
            if (e.pos == std::string::npos) e.pos = n.pos;
            throw;
          }
        }
      }
    }
  }
}

void Interp::bind_target(const Node& target, const Value& v, Env& scope) {
  if (target.kind == NodeKind::kName) {
    scope.vars[target.text] = v;
    return;
  }
  const auto& values = v.items();
  for (size_t j = 0; j < target.items.size(); ++j) {
    if (target.items[j]->kind != NodeKind::kName)
      fail("can only unpack into names", target.items[j]->pos);
    scope.vars[target.items[j]->text] = values[j];
  }
}

void Interp::render_for(const Node& n, const EnvPtr& env, std::string& out) {
  auto scope = std::make_shared<Env>();
  scope->parent = env;
  const Node* cond = nullptr;
  Value iterable;
  if (n.b->kind == NodeKind::kSelect) {
    iterable = eval(*n.b->a, scope);
    cond = n.b->b.get();
  } else {
    iterable = eval(*n.b, scope);
  }
  if (iterable.is_object()) {
    std::vector<Value> keys;
    for (const auto& e : iterable.obj->entries) keys.push_back(Value::string(e.first));
    iterable = list(std::move(keys));
  }
  if (!iterable.is_array())
    fail(std::string("cannot loop over a ") + iterable.type_name(), n.b->pos);
  const Node& target = *n.a;
  std::vector<Value> items;
  for (const Value& x : iterable.items()) {
    step();
    if (target.kind == NodeKind::kTuple) {
      if (!x.is_array() || x.flag)
        fail(std::string("cannot unpack a ") + x.type_name(), target.pos);
      if (x.items().size() != target.items.size()) {
        fail(std::string("too ") + (target.items.size() > x.items().size() ? "few" : "many") +
                 " items to unpack",
             target.pos);
      }
    }
    if (cond) {
      auto test_scope = std::make_shared<Env>();
      test_scope->parent = scope;
      bind_target(target, x, *test_scope);
      if (!truthy(eval(*cond, test_scope))) continue;
    }
    items.push_back(x);
  }
  bool none = true;
  const size_t count = items.size();
  for (size_t i = 0; i < count; ++i) {
    step();
    auto loop = std::make_shared<ObjectData>();
    const double di = static_cast<double>(i), dn = static_cast<double>(count);
    loop->set("index", Value::integer(di + 1));
    loop->set("index0", Value::integer(di));
    loop->set("revindex", Value::integer(dn - di));
    loop->set("revindex0", Value::integer(dn - di - 1));
    loop->set("first", Value::boolean(i == 0));
    loop->set("last", Value::boolean(i + 1 == count));
    loop->set("length", Value::integer(dn));
    loop->set("previtem", i > 0 ? items[i - 1] : Value::undefined());
    loop->set("nextitem", i + 1 < count ? items[i + 1] : Value::undefined());
    scope->vars["loop"] = Value::object(std::move(loop), Kind::kObject, ObjTag::kLoop);
    bind_target(target, items[i], *scope);
    // As in the reference, an iteration cut short by break or continue adds no output, and
    // does not count as an iteration for the else block.
    const size_t mark = out.size();
    try {
      render_block(n.body, scope, out);
    } catch (const ContinueSignal&) {
      out.resize(mark);
      continue;
    } catch (const BreakSignal&) {
      out.resize(mark);
      break;
    }
    none = false;
  }
  if (none) render_block(n.alt, scope, out);
}

void Interp::exec_set(const Node& n, const EnvPtr& env) {
  Value rhs;
  if (n.b) {
    rhs = eval(*n.b, env);
  } else {
    DepthGuard guard(*this, n.pos);
    std::string text;
    render_block(n.body, env, text);
    rhs = str(std::move(text));
  }
  const Node& t = *n.a;
  if (t.kind == NodeKind::kName) {
    env->vars[t.text] = rhs;
  } else if (t.kind == NodeKind::kTuple) {
    if (!rhs.is_array()) fail(std::string("cannot unpack a ") + rhs.type_name(), t.pos);
    if (rhs.items().size() != t.items.size()) {
      fail(std::string("too ") + (t.items.size() > rhs.items().size() ? "few" : "many") +
               " items to unpack",
           t.pos);
    }
    bind_target(t, rhs, *env);
  } else if (t.kind == NodeKind::kMember) {
    const Value obj = eval(*t.a, env);
    if (!obj.is(Kind::kNamespace))
      fail(std::string("cannot set an attribute of a ") + obj.type_name(), t.pos);
    if (t.b->kind != NodeKind::kName) fail("a namespace attribute must be a name", t.b->pos);
    // The one way to make a cycle of values; no chat template needs it.
    if (holds_namespace(rhs))
      fail("unsupported: setting a namespace attribute to a value holding a namespace", t.pos);
    obj.obj->set(t.b->text, rhs);
  } else {
    fail("cannot assign to this expression", t.pos);
  }
}

namespace {

// Which of caller / kwargs / varargs a macro's body refers to.
enum Special : uint8_t { kCaller = 1, kKwargsName = 2, kVarargs = 4 };

uint8_t special_names(const NodeList& body) {
  uint8_t found = 0;
  std::vector<const Node*> stack;
  for (const NodePtr& p : body) stack.push_back(p.get());
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    if (n->kind == NodeKind::kName) {
      if (n->text == "caller") found |= kCaller;
      if (n->text == "kwargs") found |= kKwargsName;
      if (n->text == "varargs") found |= kVarargs;
    }
    // A filter's, test's or attribute's name is not a variable.
    const bool skip_b = (n->kind == NodeKind::kFilter && n->b->kind == NodeKind::kName) ||
                        (n->kind == NodeKind::kMember && !n->flag);
    for (const NodePtr* c : {&n->a, &n->b, &n->c}) {
      if (*c && !(skip_b && c == &n->b)) stack.push_back(c->get());
    }
    if (n->kind == NodeKind::kCall && n->a && n->a->kind == NodeKind::kName &&
        n->a->text == "caller") {
      found |= kCaller;
    }
    for (const NodeList* l : {&n->body, &n->alt, &n->items}) {
      for (const NodePtr& c : *l) stack.push_back(c.get());
    }
  }
  return found;
}

}  // namespace

void Interp::bind_macro_args(const std::string& display, const NodeList& params, uint8_t special,
                             Args args, const EnvPtr& scope) {
  std::shared_ptr<ObjectData> kw = std::make_shared<ObjectData>();
  if (!args.empty() && args.back().is_object() && args.back().tag == ObjTag::kKwargs) {
    for (const auto& [k, v] : args.back().obj->entries) kw->set(k, v);
    args.pop_back();
  }
  std::vector<std::pair<std::string, const Node*>> pending;
  for (size_t i = 0; i < params.size(); ++i) {
    const Node& p = *params[i];
    const std::string& name = p.text;
    Value v;
    bool have = i < args.size();
    if (have) v = args[i];
    if (!have) {
      if (const Value* k = kw->find(name)) {
        v = *k;
        have = true;
        auto rest = std::make_shared<ObjectData>();
        for (const auto& [key, x] : kw->entries) {
          if (key != name) rest->set(key, x);
        }
        kw = rest;
      }
    }
    if (!have && p.kind == NodeKind::kKwarg) pending.emplace_back(name, p.a.get());
    scope->vars[name] = v;
  }
  if (special & kKwargsName) {
    scope->vars["kwargs"] = Value::object(kw);
  } else if (!kw->entries.empty()) {
    fail("macro " + display + " takes no keyword argument '" + kw->entries.front().first + "'");
  }
  if (special & kVarargs) {
    std::vector<Value> rest;
    for (size_t i = params.size(); i < args.size(); ++i) rest.push_back(args[i]);
    scope->vars["varargs"] = list(std::move(rest));
  } else if (args.size() > params.size()) {
    fail("macro " + display + " takes not more than " + std::to_string(params.size()) +
         " argument(s)");
  }
  for (const auto& [name, def] : pending) scope->vars[name] = eval(*def, scope);
}

void Interp::define_macro(const Node& n, const EnvPtr& env) {
  const Node* node = &n;
  // Weak: the macro lives in the scope it captures, and a strong link would be a cycle.
  std::weak_ptr<Env> home = env;
  const uint8_t special = special_names(n.body);
  env->vars[n.text] = Value::function(n.text, [this, node, home, special](Args& args, Env* site) {
    EnvPtr parent = home.lock();
    if (!parent) fail("macro '" + node->text + "' called after its scope ended");
    DepthGuard guard(*this, node->pos);
    if (special & kCaller) {
      Value caller;
      if (site && site->call_block_scope) {
        const auto it = site->vars.find("caller");
        if (it != site->vars.end()) caller = it->second;
      }
      auto with_caller = std::make_shared<Env>();
      with_caller->parent = parent;
      with_caller->vars["caller"] = caller;
      parent = with_caller;
    }
    auto scope = std::make_shared<Env>();
    scope->parent = parent;
    bind_macro_args("'" + node->text + "'", node->items, special, args, scope);
    std::string out;
    render_block(node->body, scope, out);
    return str(std::move(out));
  });
}

Value Interp::call_block(const Node& n, const EnvPtr& env) {
  DepthGuard guard(*this, n.pos);
  const Node* node = &n;
  std::weak_ptr<Env> home = env;
  const uint8_t special = special_names(n.body);
  const Value caller = Value::function("caller", [this, node, home, special](Args& args, Env*) {
    EnvPtr parent = home.lock();
    if (!parent) fail("caller() called after its call block ended");
    DepthGuard inner(*this, node->pos);
    auto scope = std::make_shared<Env>();
    scope->parent = parent;
    bind_macro_args("None", node->items, special, args, scope);
    std::string out;
    render_block(node->body, scope, out);
    return str(std::move(out));
  });
  const Node& call = *n.a;
  auto [args, kw] = eval_args(call.items, env);
  args.push_back(Value::object(std::move(kw), Kind::kObject, ObjTag::kKwargs));
  const Value fn = eval(*call.a, env);
  if (!fn.is(Kind::kFunction)) fail(std::string("cannot call a ") + fn.type_name(), call.pos);
  auto site = std::make_shared<Env>();
  site->parent = env;
  site->call_block_scope = true;
  site->vars["caller"] = caller;
  return fn.fn->call(args, site.get());
}

}  // namespace moa::jinja
