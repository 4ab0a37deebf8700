#include "moa/chat/jinja.h"

#include "chat/jinja_eval.h"
#include "chat/jinja_lexer.h"
#include "chat/jinja_parser.h"
#include "moa/core/error.h"

namespace moa::jinja {

std::string render(const std::string& source, const nlohmann::json& context,
                   const RenderOptions& options) {
  auto where = [&](size_t pos) {
    if (pos == std::string::npos) return options.name;
    const LineCol lc = line_col(source, pos);
    return fmt::format("{} line {}, column {}", options.name, lc.line, lc.column);
  };
  try {
    const NodeList program = parse(tokenize(source));
    Interp interp(options);
    const EnvPtr global = interp.global_scope(context);
    std::string out;
    try {
      interp.render_block(program, global, out);
    } catch (const BreakSignal&) {
      fail("'{% break %}' outside a loop");
    } catch (const ContinueSignal&) {
      fail("'{% continue %}' outside a loop");
    }
    return out;
  } catch (const TemplateError& e) {
    throw InputError(fmt::format("{}: {}", where(e.pos), e.message));
  } catch (const RaisedError& e) {
    throw InputError(fmt::format("{} raised an exception: {}", options.name, e.message));
  }
}

}  // namespace moa::jinja
