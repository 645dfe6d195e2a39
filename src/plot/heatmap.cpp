#include "plot/heatmap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "lcllm/error.h"

namespace lcllm::plot {
namespace {

constexpr int32_t kPad = 10;
constexpr int32_t kLabelScale = 2;      // axis labels, title
constexpr int32_t kValueScale = 1;      // numbers inside cells
constexpr int32_t kColorbarWidth = 18;

void check(const Heatmap& h) {
  if (h.row_labels.empty() || h.col_labels.empty())
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "heat map '" + h.title + "' has no rows or no columns");
  if (h.values.size() != h.row_labels.size() * h.col_labels.size())
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "heat map '" + h.title + "': " + std::to_string(h.values.size()) + " values for " +
                    std::to_string(h.row_labels.size()) + " rows x " + std::to_string(h.col_labels.size()) +
                    " columns");
  if (!(h.vmax > h.vmin))
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "heat map '" + h.title + "': vmax must exceed vmin");
}

std::string format_value(float v, float vmin, float vmax) {
  char buf[32];
  if (std::fabs(vmax) <= 1.0f && std::fabs(vmin) <= 1.0f) std::snprintf(buf, sizeof buf, "%.2f", double(v));
  else std::snprintf(buf, sizeof buf, "%.3g", double(v));
  return buf;
}

int32_t max_text_width(const std::vector<std::string>& labels, int32_t scale) {
  int32_t w = 0;
  for (const auto& s : labels) w = std::max(w, text_width(s, scale));
  return w;
}

}  // namespace

HeatmapLayout heatmap_layout(const Heatmap& h) {
  const int32_t rows = int32_t(h.row_labels.size()), cols = int32_t(h.col_labels.size());
  HeatmapLayout l{};
  l.cell_w = std::clamp(720 / cols, 6, 64);
  // Wider cells when that lets every column label show (up to a 1,400-pixel grid); else labels are thinned.
  const int32_t label_w = max_text_width(h.col_labels, kLabelScale) + 6;
  if (label_w > l.cell_w && int64_t(label_w) * cols <= 1400) l.cell_w = label_w;
  l.cell_h = std::clamp(480 / rows, 6, 40);
  // Left: vertical y label, then row labels.
  l.left = kPad + (h.y_label.empty() ? 0 : text_height(kLabelScale) + kPad) +
           max_text_width(h.row_labels, kLabelScale) + kPad;
  l.top = kPad + (h.title.empty() ? 0 : text_height(kLabelScale) + kPad);
  return l;
}

Canvas render_heatmap(const Heatmap& h) {
  check(h);
  const int32_t rows = int32_t(h.row_labels.size()), cols = int32_t(h.col_labels.size());
  const HeatmapLayout l = heatmap_layout(h);
  const int32_t grid_w = cols * l.cell_w, grid_h = rows * l.cell_h;
  const int32_t label_h = text_height(kLabelScale);
  // Column labels: every `stride`-th one, so neighbours never overlap.
  const int32_t col_label_w = max_text_width(h.col_labels, kLabelScale);
  const int32_t stride = std::max(1, (col_label_w + 6 + l.cell_w - 1) / l.cell_w);
  const std::string vmin_s = format_value(h.vmin, h.vmin, h.vmax), vmax_s = format_value(h.vmax, h.vmin, h.vmax);
  const int32_t bar_x = l.left + grid_w + 2 * kPad;
  const int32_t width = bar_x + kColorbarWidth + kPad +
                        std::max(text_width(vmin_s, kLabelScale), text_width(vmax_s, kLabelScale)) + kPad;
  const int32_t height = l.top + grid_h + kPad + label_h + (h.x_label.empty() ? 0 : kPad + label_h) + kPad;
  Canvas c(std::max(width, kPad * 2 + text_width(h.title, kLabelScale)), height);

  if (!h.title.empty()) c.draw_text(kPad, kPad, h.title, kBlack, kLabelScale);
  const int32_t value_w = text_width(format_value(-0.99f, h.vmin, h.vmax), kValueScale);
  const bool annotate = l.cell_w >= value_w + 4 && l.cell_h >= text_height(kValueScale) + 4;
  for (int32_t r = 0; r < rows; ++r) {
    for (int32_t col = 0; col < cols; ++col) {
      float v = h.values[size_t(r) * size_t(cols) + size_t(col)];
      Rgb bg = std::isnan(v) ? kGrey : colormap_viridis((v - h.vmin) / (h.vmax - h.vmin));
      int32_t x = l.left + col * l.cell_w, y = l.top + r * l.cell_h;
      c.fill_rect(x, y, l.cell_w, l.cell_h, bg);
      if (annotate && !std::isnan(v)) {
        std::string s = format_value(v, h.vmin, h.vmax);
        c.draw_text(x + (l.cell_w - text_width(s, kValueScale)) / 2, y + (l.cell_h - text_height(kValueScale)) / 2,
                    s, text_color_on(bg), kValueScale);
      }
    }
  }
  c.draw_rect(l.left - 1, l.top - 1, grid_w + 2, grid_h + 2, kBlack);
  // Row labels, right-aligned against the grid, vertically centred on their row.
  for (int32_t r = 0; r < rows; ++r) {
    int32_t y = l.top + r * l.cell_h + (l.cell_h - label_h) / 2;
    if (l.cell_h < label_h && r % std::max(1, (label_h + 2 + l.cell_h - 1) / l.cell_h) != 0) continue;
    c.draw_text(l.left - kPad - text_width(h.row_labels[size_t(r)], kLabelScale), y, h.row_labels[size_t(r)], kBlack,
                kLabelScale);
  }
  for (int32_t col = 0; col < cols; col += stride) {
    const std::string& s = h.col_labels[size_t(col)];
    c.draw_text(l.left + col * l.cell_w + (l.cell_w - text_width(s, kLabelScale)) / 2, l.top + grid_h + kPad, s,
                kBlack, kLabelScale);
  }
  if (!h.x_label.empty())
    c.draw_text(l.left + (grid_w - text_width(h.x_label, kLabelScale)) / 2, l.top + grid_h + 2 * kPad + label_h,
                h.x_label, kBlack, kLabelScale);
  if (!h.y_label.empty())
    c.draw_text_vertical(kPad, l.top + std::max(0, (grid_h - text_width(h.y_label, kLabelScale)) / 2), h.y_label,
                         kBlack, kLabelScale);
  // Colour bar: vmax at the top, vmin at the bottom.
  for (int32_t y = 0; y < grid_h; ++y)
    c.fill_rect(bar_x, l.top + y, kColorbarWidth, 1, colormap_viridis(1.0f - float(y) / float(std::max(1, grid_h - 1))));
  c.draw_rect(bar_x - 1, l.top - 1, kColorbarWidth + 2, grid_h + 2, kBlack);
  c.draw_text(bar_x + kColorbarWidth + kPad / 2, l.top, vmax_s, kBlack, kLabelScale);
  c.draw_text(bar_x + kColorbarWidth + kPad / 2, l.top + grid_h - label_h, vmin_s, kBlack, kLabelScale);
  return c;
}

void write_heatmap_png(const Heatmap& h, const std::string& path) { render_heatmap(h).write_png(path); }

}  // namespace lcllm::plot
