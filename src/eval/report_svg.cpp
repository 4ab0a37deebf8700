#include "eval/report_svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace moa::svg {
namespace {

struct Rgb {
  double r, g, b;
};

std::string hex(Rgb c) {
  auto q = [](double v) { return int(std::lround(std::clamp(v, 0.0, 255.0))); };
  return fmt::format("#{:02x}{:02x}{:02x}", q(c.r), q(c.g), q(c.b));
}

// Piecewise-linear ramp through three colours at t = 0, 0.5, 1.
std::string ramp3(double t, Rgb a, Rgb b, Rgb c) {
  if (std::isnan(t)) return "#e3e3e3";
  t = std::clamp(t, 0.0, 1.0);
  const Rgb& lo = t < 0.5 ? a : b;
  const Rgb& hi = t < 0.5 ? b : c;
  const double u = t < 0.5 ? t * 2 : (t - 0.5) * 2;
  return hex({lo.r + (hi.r - lo.r) * u, lo.g + (hi.g - lo.g) * u, lo.b + (hi.b - lo.b) * u});
}

// Rough rendered width of a label in sans-serif (bold is wider): enough to lay out margins.
double text_width(const std::string& s, double px = 10, bool bold = false) {
  return double(s.size()) * px * (bold ? 0.68 : 0.62);
}

}  // namespace

std::string escape(std::string_view s) {
  std::string o;
  o.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += ch;
    }
  }
  return o;
}

std::string num(double v, int digits) {
  if (std::isnan(v)) return "n/a";
  return fmt::format("{:.{}g}", v, digits);
}

std::string accuracy_color(double t) {
  return ramp3(t, {215, 48, 39}, {254, 224, 139}, {26, 152, 80});
}

std::string sequential_color(double t) {
  return ramp3(t, {255, 255, 204}, {65, 182, 196}, {37, 52, 148});
}

std::string palette(size_t i) {
  static const char* kColors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                  "#E69F00", "#56B4E9", "#000000", "#999933"};
  return kColors[i % (sizeof(kColors) / sizeof(kColors[0]))];
}

std::string grid_svg(const Grid& g) {
  const int64_t rows = int64_t(g.row_labels.size()), cols = int64_t(g.col_labels.size());
  double row_label_w = 0, col_label_w = 0;
  for (const auto& l : g.row_labels) row_label_w = std::max(row_label_w, text_width(l));
  for (const auto& l : g.col_labels) col_label_w = std::max(col_label_w, text_width(l));
  // Column labels rotate when they do not fit under their cell.
  const bool rotate = col_label_w > g.cell_w * double(std::max<int64_t>(1, g.label_every)) - 2;
  const double left = (g.y_title.empty() ? 4 : 20) + row_label_w + 6;
  const double top = (g.title.empty() ? 6 : 22) + (g.subtitle.empty() ? 0 : 14);
  const double label_band = rotate ? col_label_w * 0.75 + 10 : 16;
  const double bottom = label_band + (g.x_title.empty() ? 4 : 18);
  const double width =
      std::max({left + double(cols) * g.cell_w + 8, left + text_width(g.title, 12, true) + 8,
                left + text_width(g.subtitle) + 8});
  const double height = top + double(rows) * g.cell_h + bottom;
  std::string o;
  if (g.standalone) o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"10\">\n",
      num(width, 6), num(height, 6), num(width, 6), num(height, 6));
  if (g.standalone) o += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  if (!g.title.empty()) {
    o += fmt::format("<text x=\"{}\" y=\"15\" font-size=\"12\" font-weight=\"bold\">{}</text>\n",
                     num(left, 6), escape(g.title));
  }
  if (!g.subtitle.empty()) {
    o += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#555555\">{}</text>\n", num(left, 6),
                     g.title.empty() ? 15 : 30, escape(g.subtitle));
  }
  for (int64_t r = 0; r < rows; ++r) {
    o += fmt::format(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>\n",
        num(left - 4, 6), num(top + (double(r) + 0.5) * g.cell_h, 6),
        escape(g.row_labels[size_t(r)]));
    for (int64_t c = 0; c < cols; ++c) {
      const double v = g.values[size_t(r * cols + c)];
      const double x = left + double(c) * g.cell_w, y = top + double(r) * g.cell_h;
      o += fmt::format(
          "<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
          "stroke=\"#ffffff\" stroke-width=\"1\">",
          g.cell_class, num(x, 6), num(y, 6), num(g.cell_w, 6), num(g.cell_h, 6), g.color(v));
      if (g.tooltip) o += "<title>" + escape(g.tooltip(r, c, v)) + "</title>";
      o += "</rect>\n";
      if (g.cell_text && !std::isnan(v)) {
        o += fmt::format(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" dominant-baseline=\"middle\" "
            "font-size=\"9\" fill=\"{}\">{}</text>\n",
            num(x + g.cell_w / 2, 6), num(y + g.cell_h / 2, 6),
            g.text_color ? g.text_color(v) : "#111111", escape(g.cell_text(v)));
      }
    }
  }
  const double ly = top + double(rows) * g.cell_h + 4;
  const int64_t every = std::max<int64_t>(1, g.label_every);
  for (int64_t c = 0; c < cols; ++c) {
    if (c % every != 0 && c != cols - 1) continue;
    const double x = left + (double(c) + 0.5) * g.cell_w;
    if (rotate) {
      o += fmt::format(
          "<text x=\"{0}\" y=\"{1}\" text-anchor=\"end\" dominant-baseline=\"middle\" "
          "transform=\"rotate(-45 {0} {1})\">{2}</text>\n",
          num(x, 6), num(ly + 4, 6), escape(g.col_labels[size_t(c)]));
    } else {
      o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", num(x, 6),
                       num(ly + 9, 6), escape(g.col_labels[size_t(c)]));
    }
  }
  if (!g.x_title.empty()) {
    o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444444\">{}</text>\n",
                     num(left + double(cols) * g.cell_w / 2, 6), num(height - 5, 6),
                     escape(g.x_title));
  }
  if (!g.y_title.empty()) {
    const double cy = top + double(rows) * g.cell_h / 2;
    o += fmt::format(
        "<text x=\"11\" y=\"{0}\" text-anchor=\"middle\" fill=\"#444444\" "
        "transform=\"rotate(-90 11 {0})\">{1}</text>\n",
        num(cy, 6), escape(g.y_title));
  }
  o += "</svg>\n";
  return o;
}

std::string line_chart_svg(const LineChart& c) {
  double legend_w = 0;
  for (const auto& s : c.series) legend_w = std::max(legend_w, text_width(s.name, 11));
  const double left = 54, top = c.title.empty() ? 12 : 28, bottom = 46;
  const double right = legend_w + 40;
  const double pw = c.width - left - right, ph = c.height - top - bottom;
  const double xspan = c.x_max > c.x_min ? c.x_max - c.x_min : 1;
  const double yspan = c.y_max > c.y_min ? c.y_max - c.y_min : 1;
  auto X = [&](double x) { return left + (x - c.x_min) / xspan * pw; };
  auto Y = [&](double y) { return top + ph - (y - c.y_min) / yspan * ph; };
  std::string o = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n",
      num(c.width, 6), num(c.height, 6));
  if (!c.title.empty()) {
    o += fmt::format("<text x=\"{}\" y=\"16\" font-size=\"12\" font-weight=\"bold\">{}</text>\n",
                     num(left, 6), escape(c.title));
  }
  // y grid and labels: five steps
  for (int i = 0; i <= 5; ++i) {
    const double v = c.y_min + yspan * i / 5.0;
    o += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"#dddddd\"/>\n",
                     num(left, 6), num(left + pw, 6), num(Y(v), 6));
    o += fmt::format(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>\n",
        num(left - 5, 6), num(Y(v), 6), num(v, 3));
  }
  std::vector<std::pair<double, std::string>> ticks = c.x_ticks;
  if (ticks.empty()) {
    for (int i = 0; i <= 4; ++i)
      ticks.push_back({c.x_min + xspan * i / 4.0, num(c.x_min + xspan * i / 4.0, 3)});
  }
  for (const auto& [x, label] : ticks) {
    o += fmt::format("<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#888888\"/>\n",
                     num(X(x), 6), num(top + ph, 6), num(top + ph + 4, 6));
    o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", num(X(x), 6),
                     num(top + ph + 16, 6), escape(label));
  }
  o += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888888\"/>\n",
      num(left, 6), num(top, 6), num(pw, 6), num(ph, 6));
  if (!c.x_title.empty()) {
    o += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444444\">{}</text>\n",
                     num(left + pw / 2, 6), num(c.height - 8, 6), escape(c.x_title));
  }
  if (!c.y_title.empty()) {
    const double cy = top + ph / 2;
    o += fmt::format(
        "<text x=\"13\" y=\"{0}\" text-anchor=\"middle\" fill=\"#444444\" "
        "transform=\"rotate(-90 13 {0})\">{1}</text>\n",
        num(cy, 6), escape(c.y_title));
  }
  for (size_t si = 0; si < c.series.size(); ++si) {
    const Series& s = c.series[si];
    const std::string dash = s.dash.empty() ? "" : " stroke-dasharray=\"" + escape(s.dash) + "\"";
    if (s.points.size() > 1) {
      std::string pts;
      for (const auto& [x, y] : s.points) pts += fmt::format("{},{} ", num(X(x), 6), num(Y(y), 6));
      o += fmt::format(
          "<polyline class=\"series\" points=\"{}\" fill=\"none\" stroke=\"{}\" "
          "stroke-width=\"2\"{}/>\n",
          pts, s.color, dash);
    }
    for (const auto& [x, y] : s.points) {
      o += fmt::format(
          "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"><title>{}: ({}, {})</title></circle>\n",
          num(X(x), 6), num(Y(y), 6), s.color, escape(s.name), num(x, 4), num(y, 3));
    }
    const double ly = top + 8 + double(si) * 17;
    o += fmt::format(
        "<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"{3}\" "
        "stroke-width=\"2\"{4}/>\n",
        num(left + pw + 10, 6), num(left + pw + 30, 6), num(ly, 6), s.color, dash);
    o += fmt::format("<text x=\"{}\" y=\"{}\" dominant-baseline=\"middle\">{}</text>\n",
                     num(left + pw + 35, 6), num(ly, 6), escape(s.name));
  }
  o += "</svg>\n";
  return o;
}

std::string legend_svg(const std::function<std::string(double)>& color, const std::string& lo,
                       const std::string& hi, const std::string& caption, int steps) {
  const double sw = 16, h = 12;
  const double lo_w = text_width(lo) + 10;
  const double width = lo_w + sw * steps + 6 + text_width(hi) + 10 + text_width(caption) + 4;
  std::string o = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"20\" viewBox=\"0 0 {0} "
      "20\" "
      "font-family=\"sans-serif\" font-size=\"10\">\n",
      num(width, 6));
  o += fmt::format(
      "<text x=\"{}\" y=\"10\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>\n",
      num(lo_w - 4, 6), escape(lo));
  for (int i = 0; i < steps; ++i) {
    const double t = steps > 1 ? double(i) / double(steps - 1) : 0.5;
    o += fmt::format("<rect x=\"{}\" y=\"4\" width=\"{}\" height=\"{}\" fill=\"{}\"/>\n",
                     num(lo_w + sw * i, 6), num(sw, 6), num(h, 6), color(t));
  }
  const double hx = lo_w + sw * steps + 4;
  o += fmt::format("<text x=\"{}\" y=\"10\" dominant-baseline=\"middle\">{}</text>\n", num(hx, 6),
                   escape(hi));
  o += fmt::format(
      "<text x=\"{}\" y=\"10\" dominant-baseline=\"middle\" fill=\"#444444\">{}</text>\n",
      num(hx + text_width(hi) + 10, 6), escape(caption));
  o += "</svg>\n";
  return o;
}

}  // namespace moa::svg
