#include "cli_errors.h"

#include <algorithm>
#include <sstream>
#include <fmt/format.h>

namespace moa::cli {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::vector<std::string> subcommand_names(CLI::App& app) {
  std::vector<std::string> names;
  for (CLI::App* s : app.get_subcommands([](CLI::App*) { return true; })) names.push_back(s->get_name());
  return names;
}

// "moa", "moa plan", "moa plan check": the command a parse error happened in.
CLI::App* deepest_parsed(CLI::App& app, std::string& path) {
  CLI::App* cur = &app;
  path = "moa";
  for (;;) {
    auto parsed = cur->get_subcommands();
    if (parsed.empty()) return cur;
    cur = parsed.back();
    path += " " + cur->get_name();
  }
}

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// What a value of this option must look like, from CLI11's type name ("INT", "UINT:a number >= 0",
// "FLOAT", "[INT]" ...).
std::string expected_value(const CLI::Option& opt) {
  std::string t = opt.get_type_name();
  t = t.substr(0, t.find(':'));
  std::string what = "a value";
  if (t.find("UINT") != std::string::npos) {
    what = "a non-negative integer";
  } else if (t.find("INT") != std::string::npos) {
    what = "an integer";
  } else if (t.find("FLOAT") != std::string::npos) {
    what = "a number";
  } else if (t.find("BOOL") != std::string::npos) {
    what = "true or false";
  }
  if (opt.get_items_expected_max() > 1) what = "a comma-separated list of " + what.substr(what.find(' ') + 1) + "s";
  return what;
}

// The value a conversion error quotes: "Could not convert: --seed = abc" -> "abc".
std::string quoted_value(const std::string& msg) {
  const auto eq = msg.find(" = ");
  if (eq != std::string::npos) return msg.substr(eq + 3);
  const std::string lead = "The value ";
  if (msg.rfind(lead, 0) == 0) {
    const auto end = msg.find(" is not an allowed value");
    if (end != std::string::npos) return msg.substr(lead.size(), end - lead.size());
  }
  return {};
}

const CLI::Option* option_named_in(CLI::App& cmd, const std::string& msg) {
  // ValidationError: "--name: ...", ConversionError: "Could not convert: --name = v" or
  // "The value v is not an allowed value for --name".
  for (const CLI::Option* o : cmd.get_options()) {
    const std::string n = o->get_name();
    if (n.empty()) continue;
    if (msg.rfind(n + ":", 0) == 0 || msg.find(": " + n + " = ") != std::string::npos ||
        (msg.size() >= n.size() && msg.compare(msg.size() - n.size(), n.size(), n) == 0 &&
         msg.find(" for " + n) != std::string::npos)) {
      return o;
    }
  }
  return nullptr;
}

std::vector<std::string> option_names(CLI::App& cmd) {
  std::vector<std::string> names;
  for (const CLI::Option* o : cmd.get_options()) {
    for (const auto& l : o->get_lnames()) names.push_back("--" + l);
  }
  return names;
}

}  // namespace

std::vector<std::string> nearest_names(const std::string& word, const std::vector<std::string>& known, size_t k) {
  std::vector<std::pair<size_t, std::string>> d;
  for (const auto& n : known) d.push_back({edit_distance(word, n), n});
  std::sort(d.begin(), d.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < d.size() && i < k; ++i) out.push_back(d[i].second);
  return out;
}

std::optional<std::string> unknown_command(CLI::App& app, int argc, char** argv) {
  CLI::App* cur = &app;
  std::string path = "moa";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.empty() || a[0] == '-') return std::nullopt;  // options (--help ...) are CLI11's to judge
    const auto names = subcommand_names(*cur);
    if (names.empty()) return std::nullopt;             // a leaf command: the rest are its arguments
    if (std::find(names.begin(), names.end(), a) == names.end()) {
      return fmt::format("{}: unknown command '{}' (nearest: {}; `{} --help` lists them all)", path, a,
                         fmt::join(nearest_names(a, names, 3), ", "), path);
    }
    cur = cur->get_subcommand(a);
    path += " " + a;
  }
  return std::nullopt;
}

std::string describe_parse_error(CLI::App& app, const CLI::ParseError& e) {
  std::string path;
  CLI::App* cmd = deepest_parsed(app, path);
  const std::string msg = one_line(e.what());
  const std::string type = e.get_name();
  if (type == "RequiredError" && msg.rfind("A subcommand", 0) == 0) {
    return fmt::format("{}: a command is required, one of: {}", path, fmt::join(subcommand_names(*cmd), ", "));
  }
  if (type == "ConversionError") {
    if (const CLI::Option* o = option_named_in(*cmd, msg)) {
      return fmt::format("{}: {}: expected {}, got '{}'", path, o->get_name(), expected_value(*o), quoted_value(msg));
    }
  }
  if (const auto at = msg.find(" not expected: "); at != std::string::npos) {
    // "The following argument(s) was/were not expected: X Y", listed last to first: name the
    // first option among them, else the first argument.
    std::istringstream words(msg.substr(at + 15));
    std::vector<std::string> extras;
    for (std::string w; words >> w;) extras.push_back(w);
    std::string first = extras.empty() ? std::string() : extras.back();
    for (const auto& w : extras) {
      if (!w.empty() && w[0] == '-') first = w;
    }
    if (!first.empty() && first[0] == '-') {
      const std::string bare = first.substr(0, first.find('='));
      return fmt::format("{}: unknown option '{}' (nearest: {}; `{} --help` lists them all)", path, bare,
                         fmt::join(nearest_names(bare, option_names(*cmd), 3), ", "), path);
    }
    return fmt::format("{}: unexpected argument '{}' (`{} --help` shows the usage)", path, first, path);
  }
  return fmt::format("{}: {}", path, msg);
}

}  // namespace moa::cli
