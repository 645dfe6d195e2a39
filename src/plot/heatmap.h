// Heat maps as PNG: NIAH accuracy (context length × needle depth), retrieval scores (layer × KV head), top-k
// overlap between layers. Cells are coloured with a viridis-like map over [vmin, vmax] and annotated with their
// value when they are large enough to hold it; NaN cells (no data) are grey.
#pragma once
#include <string>
#include <vector>

#include "plot/canvas.h"

namespace lcllm::plot {

struct Heatmap {
  std::string title, x_label, y_label;
  std::vector<std::string> row_labels;  // [rows] top to bottom
  std::vector<std::string> col_labels;  // [cols] left to right
  std::vector<float> values;            // [rows, cols] row-major; NaN = no data
  float vmin = 0, vmax = 1;             // colour scale; values outside are clamped
};

// Renders the heat map; throws lcllm::Error (INVALID_ARGUMENT) when values.size() != rows × cols or the labels are
// empty, or vmax <= vmin.
Canvas render_heatmap(const Heatmap& heatmap);
// render_heatmap + PNG file; throws lcllm::Error (ERROR_KIND_IO) naming the path when it cannot be written.
void write_heatmap_png(const Heatmap& heatmap, const std::string& path);

// Where cell (row, col) was drawn in the last render of this layout (tests read pixels back through it).
struct HeatmapLayout {
  int32_t left, top, cell_w, cell_h;
};
HeatmapLayout heatmap_layout(const Heatmap& heatmap);

}  // namespace lcllm::plot
