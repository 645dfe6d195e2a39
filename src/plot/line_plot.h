// Line plots as PNG (benchmark curves: tokens/s or latency against context length, percentiles against
// concurrency). Each series gets a distinct colour, a marker at every point and a legend entry.
#pragma once
#include <string>
#include <vector>

#include "plot/canvas.h"

namespace lcllm::plot {

struct Series {
  std::string name;
  std::vector<double> x, y;  // [points] each; NaN y = gap
};

struct LinePlot {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool log_x = false;  // log2 axis, for context lengths 1k, 2k, 4k, ...
  bool y_from_zero = true;
};

// Throws lcllm::Error (INVALID_ARGUMENT) for no series, mismatched x/y sizes, or non-positive x on a log axis.
Canvas render_line_plot(const LinePlot& plot);
void write_line_plot_png(const LinePlot& plot, const std::string& path);

// Tick label: 1234567 → "1.23M", 4096 → "4k" (powers of two of 1024 as "k"), 0.5 → "0.5".
std::string format_tick(double v);

}  // namespace lcllm::plot
