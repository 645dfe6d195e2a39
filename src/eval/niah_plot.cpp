#include "eval/niah_plot.h"

#include <utility>

#include "eval/result_io.h"
#include "plot/heatmap.h"

namespace lcllm {

std::string eval_length_label(int32_t tokens) {
  if (tokens >= 1024 && tokens % (1024 * 1024) == 0) return std::to_string(tokens / (1024 * 1024)) + "M";
  if (tokens >= 1024 && tokens % 1024 == 0) return std::to_string(tokens / 1024) + "k";
  return std::to_string(tokens);
}

void niah_write_heatmap(const std::string& path, const std::string& title, const std::vector<float>& grid,
                        const std::vector<int32_t>& depths, const std::vector<int32_t>& lengths) {
  plot::Heatmap h;
  h.title = title;
  h.x_label = "prompt length (tokens)";
  h.y_label = "needle depth (%)";
  for (int32_t d : depths) h.row_labels.push_back(std::to_string(d));
  for (int32_t l : lengths) h.col_labels.push_back(eval_length_label(l));
  h.values = grid;
  h.vmin = 0;
  h.vmax = 1;
  plot::write_heatmap_png(h, path);
}

void eval_write_retained_heatmap(const std::string& out_dir, const std::string& title,
                                 const std::vector<AnswerLikelihood>& records, const std::vector<std::string>& policies,
                                 const std::vector<int32_t>& lengths) {
  const std::string path = out_dir + "/retained.png";
  std::vector<float> grid = answer_retained_grid(records, policies, lengths);
  if (grid.empty() || policies.size() < 2) {
    eval_remove_file(path);
    return;
  }
  plot::Heatmap h;
  h.title = title + ", answer probability retained vs full";
  h.x_label = "prompt length (tokens)";
  h.y_label = "policy";
  h.row_labels = policies;
  for (int32_t l : lengths) h.col_labels.push_back(eval_length_label(l));
  h.col_labels.push_back("all");
  h.values = std::move(grid);
  h.vmin = 0;
  h.vmax = 1;
  plot::write_heatmap_png(h, path);
}

}  // namespace lcllm
