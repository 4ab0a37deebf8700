// Inline SVG pieces for the HTML report and `moa inspect heads --heatmap`: a coloured grid with
// labels, a line chart and a colour legend. Plain strings, no scripts; every text is escaped.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moa::svg {

// &, <, >, " and ' as entities: safe in element text and in quoted attributes.
std::string escape(std::string_view s);
// Compact number: up to `digits` significant digits, no trailing zeros ("0.5", "1024", "1.2e+05").
std::string num(double v, int digits = 4);

// Fill colours, t clamped to [0, 1]; NaN gives light grey (no data).
std::string accuracy_color(double t);    // red (0, wrong) -> yellow -> green (1, correct)
std::string sequential_color(double t);  // pale yellow -> dark blue

// A rows x cols grid of coloured cells (rect class `cell_class`), with column labels below,
// row labels on the left, axis titles and an optional title above.
struct Grid {
  std::string title, subtitle, x_title, y_title;
  std::vector<std::string> col_labels, row_labels;
  std::vector<double> values;  // (rows, cols) row-major; NaN = no data
  std::function<std::string(double)> color = accuracy_color;
  std::function<std::string(double)> cell_text;                  // optional text inside a cell
  std::function<std::string(double)> text_color;                 // of that text; default dark
  std::function<std::string(int64_t, int64_t, double)> tooltip;  // optional <title> of a cell
  double cell_w = 18, cell_h = 14;
  std::string cell_class = "cell";
  int64_t label_every = 1;  // show every k-th column label (crowded axes)
  bool standalone = false;  // a file of its own: XML declaration, xmlns, white background
};
std::string grid_svg(const Grid& g);

struct Series {
  std::string name, color;
  std::string dash;                               // stroke-dasharray ("6,4"); empty = solid
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in this order
};

struct LineChart {
  std::string title, x_title, y_title;
  std::vector<Series> series;
  std::vector<std::pair<double, std::string>> x_ticks;  // (x, label); empty: 5 even ticks
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  double width = 540, height = 320;
};
// Lines with point markers, a y grid, tick labels and a legend to the right.
std::string line_chart_svg(const LineChart& c);

// A horizontal bar of `steps` colour swatches from `lo` to `hi` with end labels.
std::string legend_svg(const std::function<std::string(double)>& color, const std::string& lo,
                       const std::string& hi, const std::string& caption, int steps = 10);

// Distinct line colours (Okabe-Ito), cycled.
std::string palette(size_t i);

}  // namespace moa::svg
