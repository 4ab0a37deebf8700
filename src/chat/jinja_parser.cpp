#include "chat/jinja_parser.h"

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <set>
#include <string_view>

#include "chat/jinja_value.h"

namespace moa::jinja {
namespace {

class Parser {
 public:
  explicit Parser(const std::vector<Token>& t) : t_(t) {}

  NodeList program() {
    NodeList out;
    while (!at(Tok::kEnd)) out.push_back(any());
    return out;
  }

 private:
  // Counts nested parse calls; the tree's own depth is checked in make().
  struct Guard {
    explicit Guard(Parser& p) : p_(p) {
      if (++p_.nesting_ > kMaxAstDepth) fail("expression nested too deeply", p_.peek().pos);
    }
    ~Guard() { --p_.nesting_; }
    Parser& p_;
  };
  struct StatementGuard {
    explicit StatementGuard(Parser& p) : p_(p) {
      if (++p_.statements_ > kMaxStatementDepth) {
        fail("statements nested deeper than " + std::to_string(kMaxStatementDepth), p_.peek().pos);
      }
    }
    ~StatementGuard() { --p_.statements_; }
    Parser& p_;
  };

  const Token& peek(size_t k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  const Token& next() {
    const Token& tok = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return tok;
  }
  bool at(Tok type, size_t k = 0) const { return peek(k).type == type; }
  bool at_name(std::string_view name, size_t k = 0) const {
    return at(Tok::kIdentifier, k) && peek(k).value == name;
  }
  bool at_statement(std::initializer_list<std::string_view> names) const {
    if (!at(Tok::kOpenStatement) || !at(Tok::kIdentifier, 1)) return false;
    return std::find(names.begin(), names.end(), peek(1).value) != names.end();
  }

  [[noreturn]] void unexpected(const std::string& expected) {
    const Token& tok = peek();
    std::string got = tok_name(tok.type);
    if (tok.type == Tok::kIdentifier || tok.type == Tok::kComparison) got += " '" + tok.value + "'";
    fail("syntax error: expected " + expected + ", got " + got, tok.pos);
  }
  const Token& expect(Tok type, const std::string& what) {
    if (!at(type)) unexpected(what);
    return next();
  }
  void expect_name(std::string_view name) {
    if (!at_name(name)) unexpected("'" + std::string(name) + "'");
    next();
  }

  NodePtr make(NodeKind kind, size_t pos) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->pos = pos;
    return n;
  }
  // Sets the depth of a finished expression node from its children.
  NodePtr done(NodePtr n) {
    int d = 0;
    for (const NodePtr* c : {&n->a, &n->b, &n->c}) {
      if (*c) d = std::max(d, (*c)->depth);
    }
    for (const NodePtr& c : n->items) d = std::max(d, c->depth);
    n->depth = d + 1;
    if (n->depth > kMaxAstDepth) fail("expression nested too deeply", n->pos);
    return n;
  }

  // Statements up to one of `ends` (not consumed); `opener` names the block for the error.
  NodeList body_until(std::initializer_list<std::string_view> ends, const char* opener,
                      size_t opener_pos) {
    NodeList out;
    while (!at_statement(ends)) {
      if (at(Tok::kEnd)) {
        fail(std::string("syntax error: '") + opener + "' is never closed (missing {% end" +
                 opener + " %})",
             opener_pos);
      }
      out.push_back(any());
    }
    return out;
  }

  void expect_end(std::string_view name) {
    expect(Tok::kOpenStatement, "'{% " + std::string(name) + " %}'");
    expect_name(name);
    expect(Tok::kCloseStatement, "'%}'");
  }

  NodePtr any() {
    StatementGuard guard(*this);
    const Token& tok = peek();
    switch (tok.type) {
      case Tok::kComment: {
        auto n = make(NodeKind::kComment, tok.pos);
        next();
        return n;
      }
      case Tok::kText: {
        auto n = make(NodeKind::kText, tok.pos);
        n->text = next().value;
        return n;
      }
      case Tok::kOpenStatement:
        return statement();
      case Tok::kOpenExpression: {
        next();
        NodePtr e = expression();
        expect(Tok::kCloseExpression, "'}}'");
        return e;
      }
      default:
        unexpected("text, '{{' or '{%'");
    }
  }

  NodePtr statement() {
    const size_t open = next().pos;  // {%
    if (!at(Tok::kIdentifier)) unexpected("a statement name");
    const Token& name_tok = next();
    const std::string& name = name_tok.value;
    if (name == "set") return set_statement(open);
    if (name == "if") {
      NodePtr n = if_statement(open);
      expect_end("endif");
      return n;
    }
    if (name == "for") {
      NodePtr n = for_statement(open);
      expect_end("endfor");
      return n;
    }
    if (name == "macro") {
      auto n = make(NodeKind::kMacro, open);
      NodePtr id = primary();
      if (id->kind != NodeKind::kName) fail("syntax error: expected a macro name", id->pos);
      n->text = id->text;
      n->items = args(true);
      expect(Tok::kCloseStatement, "'%}'");
      n->body = body_until({"endmacro"}, "macro", open);
      expect_end("endmacro");
      return n;
    }
    if (name == "call") {
      auto n = make(NodeKind::kCallBlock, open);
      if (at(Tok::kOpenParen)) n->items = args(true);
      NodePtr callee = primary();
      if (callee->kind != NodeKind::kName)
        fail("syntax error: expected a macro name after 'call'", callee->pos);
      auto call = make(NodeKind::kCall, callee->pos);
      call->a = std::move(callee);
      call->items = args(false);
      n->a = done(std::move(call));
      expect(Tok::kCloseStatement, "'%}'");
      n->body = body_until({"endcall"}, "call", open);
      expect_end("endcall");
      return n;
    }
    if (name == "filter") {
      auto n = make(NodeKind::kFilterBlock, open);
      NodePtr f = primary();
      if (f->kind == NodeKind::kName && at(Tok::kOpenParen)) f = call_expression(std::move(f));
      n->a = std::move(f);
      expect(Tok::kCloseStatement, "'%}'");
      n->body = body_until({"endfilter"}, "filter", open);
      expect_end("endfilter");
      return n;
    }
    if (name == "break" || name == "continue") {
      expect(Tok::kCloseStatement, "'%}'");
      return make(name == "break" ? NodeKind::kBreak : NodeKind::kContinue, open);
    }
    static const std::set<std::string, std::less<>> kEnds = {
        "elif", "else", "endif", "endfor", "endset", "endmacro", "endcall", "endfilter"};
    if (kEnds.count(name)) fail("syntax error: unexpected '{% " + name + " %}'", name_tok.pos);
    fail("unsupported statement '{% " + name + " %}'", name_tok.pos);
  }

  NodePtr set_statement(size_t open) {
    auto n = make(NodeKind::kSet, open);
    n->a = sequence(false);
    if (at(Tok::kEquals)) {
      next();
      n->b = sequence(false);
    } else {
      expect(Tok::kCloseStatement, "'=' or '%}'");
      n->body = body_until({"endset"}, "set", open);
      expect(Tok::kOpenStatement, "'{% endset %}'");
      expect_name("endset");
    }
    expect(Tok::kCloseStatement, "'%}'");
    return n;
  }

  NodePtr if_statement(size_t open) {
    StatementGuard guard(*this);  // an elif chain nests
    auto n = make(NodeKind::kIf, open);
    n->a = expression();
    expect(Tok::kCloseStatement, "'%}'");
    n->body = body_until({"elif", "else", "endif"}, "if", open);
    if (at_statement({"elif"})) {
      const size_t elif = next().pos;
      next();
      n->alt.push_back(if_statement(elif));
    } else if (at_statement({"else"})) {
      next();
      next();
      expect(Tok::kCloseStatement, "'%}'");
      n->alt = body_until({"endif"}, "if", open);
    }
    return n;
  }

  NodePtr for_statement(size_t open) {
    auto n = make(NodeKind::kFor, open);
    n->a = sequence(true);
    if (n->a->kind != NodeKind::kName && n->a->kind != NodeKind::kTuple) {
      fail("syntax error: expected a name or names to loop with", n->a->pos);
    }
    expect_name("in");
    n->b = expression();
    expect(Tok::kCloseStatement, "'%}'");
    n->body = body_until({"endfor", "else"}, "for", open);
    if (at_statement({"else"})) {
      next();
      next();
      expect(Tok::kCloseStatement, "'%}'");
      n->alt = body_until({"endfor"}, "for", open);
    }
    return n;
  }

  // a, b, c (a tuple) or a single expression.
  NodePtr sequence(bool primaries) {
    Guard guard(*this);
    const size_t pos = peek().pos;
    NodePtr first = primaries ? primary() : expression();
    if (!at(Tok::kComma)) return first;
    auto t = make(NodeKind::kTuple, pos);
    t->items.push_back(std::move(first));
    while (at(Tok::kComma)) {
      next();
      t->items.push_back(primaries ? primary() : expression());
    }
    return done(std::move(t));
  }

  NodePtr expression() {
    Guard guard(*this);
    NodePtr a = or_expr();
    if (!at_name("if")) return a;
    const size_t pos = next().pos;
    NodePtr test = or_expr();
    if (at_name("else")) {
      next();
      auto t = make(NodeKind::kTernary, pos);
      t->a = std::move(test);
      t->b = std::move(a);
      t->c = expression();
      return done(std::move(t));
    }
    auto s = make(NodeKind::kSelect, pos);
    s->a = std::move(a);
    s->b = std::move(test);
    return done(std::move(s));
  }

  NodePtr binary(std::string op, size_t pos, NodePtr l, NodePtr r) {
    auto n = make(NodeKind::kBinary, pos);
    n->text = std::move(op);
    n->a = std::move(l);
    n->b = std::move(r);
    return done(std::move(n));
  }

  NodePtr or_expr() {
    NodePtr l = and_expr();
    while (at_name("or")) {
      const size_t pos = next().pos;
      l = binary("or", pos, std::move(l), and_expr());
    }
    return l;
  }

  NodePtr and_expr() {
    NodePtr l = not_expr();
    while (at_name("and")) {
      const size_t pos = next().pos;
      l = binary("and", pos, std::move(l), not_expr());
    }
    return l;
  }

  NodePtr not_expr() {
    Guard guard(*this);
    NodePtr result;
    // As in the reference, a second `not` after the operand replaces the first one's result.
    while (at_name("not")) {
      const size_t pos = next().pos;
      auto n = make(NodeKind::kUnary, pos);
      n->text = "not";
      n->a = not_expr();
      result = done(std::move(n));
    }
    return result ? std::move(result) : comparison();
  }

  NodePtr comparison() {
    NodePtr l = additive();
    while (true) {
      std::string op;
      const size_t pos = peek().pos;
      if (at_name("not") && at_name("in", 1)) {
        next();
        next();
        op = "not in";
      } else if (at_name("in")) {
        next();
        op = "in";
      } else if (at(Tok::kComparison)) {
        op = next().value;
      } else {
        return l;
      }
      l = binary(std::move(op), pos, std::move(l), additive());
    }
  }

  NodePtr additive() {
    NodePtr l = multiplicative();
    while (at(Tok::kAdditive)) {
      const Token& op = next();
      l = binary(op.value, op.pos, std::move(l), multiplicative());
    }
    return l;
  }

  NodePtr multiplicative() {
    NodePtr l = power();
    while (at(Tok::kMultiplicative)) {
      const Token& op = next();
      l = binary(op.value, op.pos, std::move(l), power());
    }
    return l;
  }

  NodePtr power() {
    NodePtr l = test();
    while (at(Tok::kPower)) {
      const Token& op = next();
      l = binary("**", op.pos, std::move(l), test());
    }
    return l;
  }

  NodePtr test() {
    NodePtr operand = filter();
    while (at_name("is")) {
      const size_t pos = next().pos;
      auto n = make(NodeKind::kTest, pos);
      if (at_name("not")) {
        next();
        n->flag = true;
      }
      NodePtr name = primary();
      if (name->kind != NodeKind::kName)
        fail("syntax error: expected a test name after 'is'", name->pos);
      n->text = name->text;
      n->a = std::move(operand);
      operand = done(std::move(n));
    }
    return operand;
  }

  NodePtr filter() {
    NodePtr operand = unary_sign();
    while (at(Tok::kPipe)) {
      const size_t pos = next().pos;
      NodePtr f = primary();
      if (f->kind != NodeKind::kName)
        fail("syntax error: expected a filter name after '|'", f->pos);
      if (at(Tok::kOpenParen)) f = call_expression(std::move(f));
      auto n = make(NodeKind::kFilter, pos);
      n->a = std::move(operand);
      n->b = std::move(f);
      operand = done(std::move(n));
    }
    return operand;
  }

  NodePtr unary_sign() {
    Guard guard(*this);
    const Token& tok = peek();
    if ((tok.type == Tok::kUnary || tok.type == Tok::kAdditive) &&
        (tok.value == "-" || tok.value == "+")) {
      next();
      auto n = make(NodeKind::kUnary, tok.pos);
      n->text = tok.value;
      n->a = unary_sign();
      return done(std::move(n));
    }
    NodePtr m = member(primary());
    if (at(Tok::kOpenParen)) return call_expression(std::move(m));
    return m;
  }

  NodePtr call_expression(NodePtr callee) {
    Guard guard(*this);
    auto n = make(NodeKind::kCall, callee->pos);
    n->a = std::move(callee);
    n->items = args(false);
    NodePtr e = member(done(std::move(n)));
    if (at(Tok::kOpenParen)) return call_expression(std::move(e));
    return e;
  }

  // ( ... ): call arguments, or a macro's parameters (names, name=default).
  NodeList args(bool parameters) {
    expect(Tok::kOpenParen, "'('");
    NodeList out;
    std::set<std::string, std::less<>> names;
    bool saw_keyword = false, saw_spread = false;
    while (!at(Tok::kCloseParen)) {
      if (at(Tok::kEnd)) unexpected("')'");
      const bool kw_spread = at(Tok::kPower);
      const bool spread = at(Tok::kMultiplicative) && peek().value == "*";
      const size_t pos = peek().pos;
      if (parameters && (kw_spread || spread))
        fail("syntax error: no unpacking in a parameter list", pos);
      if (kw_spread) {
        next();
        auto n = make(NodeKind::kKwSpread, pos);
        n->a = expression();
        out.push_back(done(std::move(n)));
        if (at(Tok::kComma)) next();
        if (!at(Tok::kCloseParen)) fail("syntax error: ** must be the last argument", peek().pos);
        break;
      }
      NodePtr arg;
      if (spread) {
        if (saw_spread) fail("syntax error: only one * unpacking is allowed", pos);
        saw_spread = true;
        next();
        arg = make(NodeKind::kSpread, pos);
        arg->a = expression();
        arg = done(std::move(arg));
      } else {
        arg = expression();
        if (at(Tok::kEquals)) {
          next();
          if (arg->kind != NodeKind::kName)
            fail("syntax error: expected a name before '='", arg->pos);
          auto kw = make(NodeKind::kKwarg, arg->pos);
          kw->text = arg->text;
          kw->a = expression();
          arg = done(std::move(kw));
        }
        if (parameters) {
          if (arg->kind != NodeKind::kName && arg->kind != NodeKind::kKwarg) {
            fail("syntax error: expected a parameter name", arg->pos);
          }
          if (!names.insert(arg->text).second)
            fail("syntax error: duplicate parameter '" + arg->text + "'", arg->pos);
        }
        if (arg->kind == NodeKind::kKwarg) {
          saw_keyword = true;
        } else if (saw_keyword) {
          fail(parameters ? "syntax error: a parameter without default follows one with a default"
                          : "syntax error: a positional argument follows a keyword argument",
               arg->pos);
        } else if (saw_spread) {
          fail("syntax error: a positional argument follows * unpacking", arg->pos);
        }
      }
      out.push_back(std::move(arg));
      if (at(Tok::kComma)) next();
    }
    next();  // )
    return out;
  }

  // The inside of [ ]: an index, or a slice start:stop:step.
  NodePtr subscript() {
    std::vector<NodePtr> parts;
    bool slice = false;
    const size_t pos = peek().pos;
    while (!at(Tok::kCloseSquare)) {
      if (at(Tok::kEnd)) unexpected("']'");
      if (at(Tok::kColon)) {
        parts.push_back(nullptr);
        next();
        slice = true;
      } else {
        parts.push_back(expression());
        if (at(Tok::kColon)) {
          next();
          slice = true;
        }
      }
    }
    if (parts.empty()) fail("syntax error: empty subscript []", pos);
    if (!slice) return std::move(parts[0]);
    if (parts.size() > 3) fail("syntax error: a slice has at most 3 parts", pos);
    auto n = make(NodeKind::kSlice, pos);
    n->a = std::move(parts[0]);
    if (parts.size() > 1) n->b = std::move(parts[1]);
    if (parts.size() > 2) n->c = std::move(parts[2]);
    return done(std::move(n));
  }

  NodePtr member(NodePtr object) {
    while (at(Tok::kDot) || at(Tok::kOpenSquare)) {
      const Token& op = next();
      auto n = make(NodeKind::kMember, op.pos);
      if (op.type == Tok::kOpenSquare) {
        n->flag = true;
        n->b = subscript();
        expect(Tok::kCloseSquare, "']'");
      } else {
        n->b = primary();
        if (n->b->kind != NodeKind::kName && n->b->kind != NodeKind::kInt) {
          fail("syntax error: expected a name after '.'", n->b->pos);
        }
      }
      n->a = std::move(object);
      object = done(std::move(n));
    }
    return object;
  }

  NodePtr primary() {
    Guard guard(*this);
    const Token& tok = peek();
    switch (tok.type) {
      case Tok::kNumber: {
        next();
        const bool is_float = tok.value.find('.') != std::string::npos;
        auto n = make(is_float ? NodeKind::kFloat : NodeKind::kInt, tok.pos);
        n->num = std::strtod(tok.value.c_str(), nullptr);
        return n;
      }
      case Tok::kString: {
        next();
        auto n = make(NodeKind::kStr, tok.pos);
        n->text = tok.value;
        while (at(Tok::kString)) n->text += next().value;  // 'a' 'b' is 'ab'
        return n;
      }
      case Tok::kIdentifier: {
        next();
        auto n = make(NodeKind::kName, tok.pos);
        n->text = tok.value;
        return n;
      }
      case Tok::kOpenParen: {
        next();
        NodePtr e = sequence(false);
        expect(Tok::kCloseParen, "')'");
        return e;
      }
      case Tok::kOpenSquare: {
        next();
        auto n = make(NodeKind::kList, tok.pos);
        while (!at(Tok::kCloseSquare)) {
          if (at(Tok::kEnd)) unexpected("']'");
          n->items.push_back(expression());
          if (at(Tok::kComma)) next();
        }
        next();
        return done(std::move(n));
      }
      case Tok::kOpenCurly: {
        next();
        auto n = make(NodeKind::kDict, tok.pos);
        while (!at(Tok::kCloseCurly)) {
          if (at(Tok::kEnd)) unexpected("'}'");
          n->items.push_back(expression());
          expect(Tok::kColon, "':' in a dict literal");
          n->items.push_back(expression());
          if (at(Tok::kComma)) next();
        }
        next();
        return done(std::move(n));
      }
      default:
        unexpected("an expression");
    }
  }

  const std::vector<Token>& t_;
  size_t i_ = 0;
  int nesting_ = 0;
  int statements_ = 0;
};

}  // namespace

NodeList parse(const std::vector<Token>& tokens) { return Parser(tokens).program(); }

}  // namespace moa::jinja
