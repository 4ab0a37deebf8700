// The syntax tree of a template: one node type, its fields used per kind as listed below.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace moa::jinja {

enum class NodeKind : uint8_t {
  // Statements.
  kText,       // text
  kComment,    //
  kIf,         // a: test, body, alt: else branch (an elif is one kIf in alt)
  kFor,        // a: target (kName or kTuple), b: iterable (kSelect: `xs if cond`), body, alt: else
  kSet,        // a: target, b: value (null: block set, body)
  kMacro,      // text: name, items: parameters (kName or kKwarg), body
  kCallBlock,  // a: the kCall, items: caller parameters, body
  kFilterBlock,  // a: filter (kName or kCall), body
  kBreak,
  kContinue,
  // Expressions.
  kName,      // text
  kInt,       // num
  kFloat,     // num
  kStr,       // text
  kList,      // items
  kTuple,     // items
  kDict,      // items: key, value, key, value...
  kMember,    // a: object, b: property (kSlice when sliced), flag: computed (a[b], not a.b)
  kCall,      // a: callee, items: arguments (kKwarg, kSpread, kKwSpread among them)
  kBinary,    // text: operator, a, b
  kUnary,     // text: operator (not, -, +), a
  kFilter,    // a: operand, b: filter (kName or kCall)
  kTest,      // a: operand, text: test name, flag: negated
  kSelect,    // a: value, b: condition (`a if b` without else)
  kTernary,   // a: condition, b: value if true, c: value if false
  kSlice,     // a: start, b: stop, c: step (each may be null)
  kKwarg,     // text: name, a: value
  kSpread,    // a
  kKwSpread,  // a
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using NodeList = std::vector<NodePtr>;

struct Node {
  NodeKind kind;
  size_t pos = 0;  // byte offset in the source
  int depth = 1;   // of the expression tree below (bounded, so evaluation recursion is too)
  std::string text;
  double num = 0;
  bool flag = false;
  NodePtr a, b, c;
  NodeList body, alt, items;
};

// Nesting limits of the parser: expressions deeper than this, or statements nested deeper than
// kMaxStatementDepth, are an error rather than a deep recursion.
inline constexpr int kMaxAstDepth = 100;
inline constexpr int kMaxStatementDepth = 64;

}  // namespace moa::jinja
