// A Jinja interpreter for Hugging Face chat templates. Its reference is @huggingface/jinja (the
// implementation transformers.js renders chat templates with; pinned in tests/js/package.json),
// and it follows that implementation byte for byte where templates can tell, including where it
// differs from Python's Jinja2:
//  - the source is lexed with trim_blocks and lstrip_blocks ON (as transformers renders), and one
//    trailing newline of the template is dropped; {%- -%} {{- -}} {#- -#} strip whitespace;
//    transformers' {% generation %} / {% endgeneration %} tags are removed;
//  - values print as JavaScript does: true/false, integers without ".0", floats with one decimal
//    when integral ("2.0"), lists and dicts as JSON; undefined and none print nothing;
//  - strip/lstrip/rstrip ignore their argument and trim whitespace; capitalize only uppercases
//    the first character; length counts UTF-16 code units; `==` is JavaScript's loose equality.
//
// Supported: {{ }}, {% %}, {# #}; if/elif/else, for (loop.index, index0, revindex, revindex0,
// first, last, length, previtem, nextitem; else; tuple unpacking; `for x in xs if cond`), break,
// continue, set (names, tuples, namespace attributes, {% set x %}...{% endset %}), macro (defaults,
// keyword arguments, varargs/kwargs, caller), call blocks, filter blocks. Expressions: string
// (escapes \n \t \r \b \f \v \' \" \\ \xHH \uHHHH), integer and float literals, true/false/none
// (and True/False/None), lists, tuples, dicts, attribute and subscript access, slices, calls with
// keyword arguments and */** unpacking, + - * / // % **, ~, comparisons, and/or/not, in/not in,
// `x if c else y` (and `x if c`), filters, tests.
// Filters: safe, tojson (indent, ensure_ascii, sort_keys, separators), length, list, first, last,
// reverse, sort (reverse, case_sensitive, attribute), join, string, unique, items, upper, lower,
// title, capitalize, trim, indent (width, first, blank), int, float, abs, bool, default(value,
// boolean), map(attribute=, default=), selectattr / rejectattr (attribute, test, value), replace,
// dictsort, and a dict's get/keys/values. As in the reference, which filters apply depends on the
// value's type and on the form: `x | default('y')` works, a bare `x | default` does not. Tests:
// defined, undefined, none, string, number, integer, boolean, true, false, iterable, mapping,
// sequence, callable, odd, even, lower, upper, equalto/eq. Methods: str.upper lower strip lstrip
// rstrip title capitalize startswith endswith split replace, str.length; list.length; dict.get
// items keys values dictsort. Globals: range, namespace, raise_exception, strftime_now (%Y %m %d %b
// %B %H %M %%).
//
// Not supported (each is a clear InputError naming it, never a crash): include, extends, block,
// import, with, raw and other statements; filters and tests outside the lists above (e.g. count,
// reject, select, batch, wordcount, tests with arguments such as divisibleby(3)); str.format and
// other Python string methods; a namespace attribute set to a value that holds a namespace (the
// one way to build a cycle). Known gaps against the reference: upper/lower/title map ASCII
// letters only; sort_keys orders keys by byte, not by locale; numbers are IEEE doubles as in
// JavaScript, but the context's dict keys come in nlohmann::json's order (sorted), where
// JavaScript would keep the order of the JSON text (dict literals keep theirs). Where the reference
// itself crashes or prints JavaScript, this differs on purpose: `[] | first` is undefined (it
// fails with a TypeError when printed there) and printing a function is an error (there: its
// JavaScript source).
//
// Limits (RenderOptions): nesting depth, output size, evaluation steps, bytes of strings built and
// items per list; exceeding one is an InputError naming it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace moa::jinja {

// The local date and time strftime_now() formats.
struct DateTime {
  int year = 2024, month = 7, day = 26;  // month 1..12
  int hour = 0, minute = 0;
};

struct RenderOptions {
  std::string name = "template";  // names the template in error messages
  std::optional<DateTime> now;    // strftime_now's clock; unset: the current local time
  size_t max_output_bytes = size_t{16} << 20;       // also the largest string a template may build
  uint64_t max_steps = 20'000'000;                  // expression evaluations and loop iterations
  uint64_t max_string_bytes = uint64_t{512} << 20;  // total bytes of all strings built
  size_t max_items = size_t{1} << 20;               // elements of one list (range, +, split...)
};

// Renders Jinja `source` with the variables of `context` (a JSON object). Throws moa::InputError:
// "<name> line L, column C: <what>" for syntax errors, unsupported constructs and runtime errors,
// "<name> raised an exception: <message>" for raise_exception(message).
std::string render(const std::string& source, const nlohmann::json& context,
                   const RenderOptions& options = {});

}  // namespace moa::jinja
