// The interpreter: scopes, statements, expressions (jinja_eval.cpp) and the built-in filters,
// tests and globals (jinja_builtins.cpp) and methods (jinja_methods.cpp), following
// @huggingface/jinja's semantics.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/jinja_ast.h"
#include "chat/jinja_value.h"
#include "moa/chat/jinja.h"

namespace moa::jinja {

// A scope. Loops and macro calls open one; `set` writes to the innermost.
struct Env {
  std::shared_ptr<Env> parent;
  std::unordered_map<std::string, Value> vars;
  bool call_block_scope = false;  // the scope a {% call %} block calls its macro from
};
using EnvPtr = std::shared_ptr<Env>;

// break / continue unwinding to the innermost loop.
struct BreakSignal {};
struct ContinueSignal {};

class Interp {
 public:
  explicit Interp(const RenderOptions& opt);

  // Declares the globals (range, namespace, ...) and the context's variables in a new scope.
  EnvPtr global_scope(const nlohmann::json& context);
  void render_block(const NodeList& body, const EnvPtr& env, std::string& out);

  // Values the template builds go through these, which enforce the limits.
  Value str(std::string s);
  Value list(std::vector<Value> items, bool tuple = false);
  void step(uint64_t n = 1);
  size_t max_string() const { return opt_.max_output_bytes; }

 private:
  struct DepthGuard {
    explicit DepthGuard(Interp& in, size_t pos);
    ~DepthGuard() { --in_.depth_; }
    Interp& in_;
  };

  Value eval(const Node& n, const EnvPtr& env);
  Value eval_inner(const Node& n, const EnvPtr& env);
  Value lookup(const Env& env, const std::string& name) const;
  Value binary(const Node& n, const EnvPtr& env);
  Value unary(const Node& n, const EnvPtr& env);
  Value member(const Node& n, const EnvPtr& env);
  Value slice(const Value& obj, const Node& s, const EnvPtr& env);
  Value call(const Node& n, const EnvPtr& env);
  Value test(const Node& n, const EnvPtr& env);
  Value dict(const Node& n, const EnvPtr& env);

  // Positional values, then keyword arguments: the reference's evaluateArguments.
  std::pair<Args, std::shared_ptr<ObjectData>> eval_args(const NodeList& args, const EnvPtr& env);
  // Its calling convention: positional values, then one keyword-arguments dict if any were given.
  Args eval_call_args(const NodeList& args, const EnvPtr& env);

  void render_for(const Node& n, const EnvPtr& env, std::string& out);
  void bind_target(const Node& target, const Value& v, Env& scope);
  void exec_set(const Node& n, const EnvPtr& env);
  void define_macro(const Node& n, const EnvPtr& env);
  Value call_block(const Node& n, const EnvPtr& env);
  void bind_macro_args(const std::string& display, const NodeList& params, uint8_t special,
                       Args args, const EnvPtr& scope);
  void append(std::string& out, const std::string& s);

  // jinja_builtins.cpp, jinja_methods.cpp
  Value apply_filter(const Value& operand, const Node& filter, const EnvPtr& env, size_t pos);
  Value method(const Value& self, const std::string& name);
  bool run_test(const std::string& name, const Value& a, const Value* b, size_t pos);
  bool has_test(const std::string& name) const;
  void declare_globals(Env& env);

  RenderOptions opt_;
  uint64_t steps_ = 0;
  uint64_t string_bytes_ = 0;
  int depth_ = 0;
  Value namespace_fn_;
};

// args.at(i) ?? kwargs.get(name) ?? fallback, the reference's reading of optional arguments.
Value arg_or(const Args& pos, size_t i, const std::shared_ptr<ObjectData>& kw, const char* name,
             Value fallback);
// A stable merge sort: the comparison may throw, and need not be a strict weak order (NaN), so
// std::sort's preconditions could not be promised.
void merge_sort(std::vector<Value>& v, const std::function<int(const Value&, const Value&)>& cmp);

// Nested evaluation frames allowed (macro recursion counts); keeps the C++ stack bounded.
inline constexpr int kMaxEvalDepth = 200;

}  // namespace moa::jinja
