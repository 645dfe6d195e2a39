#include "plot/line_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "lcllm/error.h"

namespace lcllm::plot {
namespace {

constexpr int32_t kWidth = 800, kHeight = 500, kPad = 12, kScale = 2;
constexpr Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                            {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};

double nice_step(double span, int32_t target_ticks) {
  double raw = span / std::max(1, target_ticks);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

}  // namespace

std::string format_tick(double v) {
  char buf[32];
  double a = std::fabs(v);
  if (a >= 1024 && std::fmod(a, 1024.0) == 0 && a < 1024.0 * 1024 * 1024) {
    if (std::fmod(a, 1024.0 * 1024) == 0) std::snprintf(buf, sizeof buf, "%gM", v / (1024.0 * 1024));
    else std::snprintf(buf, sizeof buf, "%gk", v / 1024.0);
  } else if (a >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.3gM", v / 1e6);
  } else if (a >= 1e4) {
    std::snprintf(buf, sizeof buf, "%.3gk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.4g", v);
  }
  return buf;
}

Canvas render_line_plot(const LinePlot& p) {
  if (p.series.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "plot '" + p.title + "' has no series");
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const Series& s : p.series) {
    if (s.x.size() != s.y.size())
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                  "plot '" + p.title + "', series '" + s.name + "': x and y differ in length");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (p.log_x && !(s.x[i] > 0))
        throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                    "plot '" + p.title + "', series '" + s.name + "': x must be > 0 on a log axis");
      double x = p.log_x ? std::log2(s.x[i]) : s.x[i];
      x0 = std::min(x0, x), x1 = std::max(x1, x);
      if (std::isfinite(s.y[i])) y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1;
  if (!std::isfinite(y0)) y0 = 0, y1 = 1;
  if (p.y_from_zero) y0 = std::min(y0, 0.0);
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  const double ystep = nice_step(y1 - y0, 5);
  y0 = std::floor(y0 / ystep) * ystep;
  y1 = std::ceil(y1 / ystep) * ystep;

  Canvas c(kWidth, kHeight);
  const int32_t th = text_height(kScale);
  const int32_t left = kPad + th + kPad + text_width("0.000M", kScale) + kPad;
  const int32_t top = kPad + th + kPad;
  const int32_t right = kWidth - kPad - text_width("128k", kScale) / 2;  // room for the last x tick label
  const int32_t bottom = kHeight - (kPad + th + kPad + th + kPad);
  auto px = [&](double x) {
    double v = p.log_x ? std::log2(x) : x;
    return left + int32_t(std::lround((v - x0) / (x1 - x0) * double(right - left)));
  };
  auto py = [&](double y) { return bottom - int32_t(std::lround((y - y0) / (y1 - y0) * double(bottom - top))); };

  c.draw_text(kPad, kPad, p.title, kBlack, kScale);
  // Grid and ticks.
  for (double y = y0; y <= y1 + ystep * 0.5; y += ystep) {
    int32_t yy = py(y);
    c.fill_rect(left, yy, right - left, 1, {225, 225, 225});
    std::string s = format_tick(std::fabs(y) < ystep * 1e-9 ? 0.0 : y);
    c.draw_text(left - kPad / 2 - text_width(s, kScale), yy - th / 2, s, kBlack, kScale);
  }
  std::vector<double> xticks;
  if (p.log_x) {
    for (double e = std::ceil(x0); e <= x1 + 1e-9; e += std::max(1.0, std::ceil((x1 - x0) / 8))) xticks.push_back(std::exp2(e));
  } else {
    double xstep = nice_step(x1 - x0, 6);
    for (double x = std::ceil(x0 / xstep) * xstep; x <= x1 + 1e-9; x += xstep) xticks.push_back(x);
  }
  for (double x : xticks) {
    int32_t xx = px(x);
    c.fill_rect(xx, top, 1, bottom - top, {225, 225, 225});
    std::string s = format_tick(x);
    c.draw_text(xx - text_width(s, kScale) / 2, bottom + kPad / 2, s, kBlack, kScale);
  }
  c.draw_rect(left, top, right - left + 1, bottom - top + 1, kBlack);
  c.draw_text(left + (right - left - text_width(p.x_label, kScale)) / 2, kHeight - kPad - th, p.x_label, kBlack, kScale);
  c.draw_text_vertical(kPad, top + std::max(0, (bottom - top - text_width(p.y_label, kScale)) / 2), p.y_label, kBlack,
                       kScale);
  // Series and legend.
  for (size_t si = 0; si < p.series.size(); ++si) {
    const Series& s = p.series[si];
    Rgb col = kPalette[si % std::size(kPalette)];
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      c.fill_rect(px(s.x[i]) - 3, py(s.y[i]) - 3, 7, 7, col);
      if (i + 1 < s.x.size() && std::isfinite(s.y[i + 1]))
        c.draw_line(px(s.x[i]), py(s.y[i]), px(s.x[i + 1]), py(s.y[i + 1]), col, 2);
    }
    int32_t ly = top + kPad + int32_t(si) * (th + 6);
    c.fill_rect(left + kPad, ly + th / 2 - 2, 20, 4, col);
    c.draw_text(left + kPad + 26, ly, s.name, kBlack, kScale);
  }
  return c;
}

void write_line_plot_png(const LinePlot& p, const std::string& path) { render_line_plot(p).write_png(path); }

}  // namespace lcllm::plot
