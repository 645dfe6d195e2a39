// One PNG for docs/EVALUATION.md: the share of full attention's answer probability each policy keeps (rows) on each
// evaluation run (columns), read from the "retained relative to full" table `lcllm eval niah|ruler` writes into its
// comparison.md (its "all" column). A cell a run lacks is grey.
//   retained_heatmap OUT.png TITLE [--alias NAME=POLICY ...] LABEL=RUN/comparison.md [LABEL=...]
// --alias files a run's plan name under a policy row (e.g. hip_r1=hip: a variant run under the preset's name); it
// applies to every run wherever it stands. A "-" cell (no prompt scored under both) is grey.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "plot/heatmap.h"

namespace {

// The table's cells of one markdown row "| a | b | c |" → {a, b, c}.
std::vector<std::string> table_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream in(line);
  std::string cell;
  std::getline(in, cell, '|');  // before the first bar
  while (std::getline(in, cell, '|')) {
    const size_t b = cell.find_first_not_of(' '), e = cell.find_last_not_of(' ');
    cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
  }
  if (!cells.empty() && cells.back().empty()) cells.pop_back();  // after the last bar
  return cells;
}

// (policy, retained share in [0, 1]) of the retained table's "all" column; throws naming the file and the rule.
std::vector<std::pair<std::string, float>> read_retained(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot be read (give a comparison.md that `lcllm eval` wrote)");
  std::string line;
  bool in_section = false;
  std::vector<std::pair<std::string, float>> rows;
  while (std::getline(in, line)) {
    if (!in_section) {
      in_section = line.rfind("Answer probability retained relative to full", 0) == 0;
      continue;
    }
    if (line.empty()) {
      if (!rows.empty()) break;  // the blank line after the table
      continue;
    }
    const std::vector<std::string> cells = table_cells(line);
    if (cells.size() < 2 || cells[0] == "policy" || cells[1].rfind("---", 0) == 0 || cells[1].rfind(":--", 0) == 0) {
      continue;  // header and separator
    }
    if (cells.back() == "-") {  // the policy shares no scored prompt with full: no data
      rows.emplace_back(cells[0], NAN);
      continue;
    }
    size_t used = 0;
    float v = 0.f;
    try {
      v = std::stof(cells.back(), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != cells.back().size() || !std::isfinite(v) || v < 0.f || v > 100.f) {  // whole cell, a percentage
      throw std::runtime_error(path + ": policy '" + cells[0] + "' has retained '" + cells.back() +
                               "', not a percentage in [0, 100]");
    }
    rows.emplace_back(cells[0], v / 100.f);
  }
  if (rows.empty()) {
    throw std::runtime_error(path + ": no \"Answer probability retained relative to full\" table (written by lcllm "
                             "eval when full is among the policies)");
  }
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s OUT.png TITLE [--alias NAME=POLICY ...] LABEL=RUN/comparison.md [LABEL=...]\n",
                 argv[0]);
    return 2;
  }
  try {
    lcllm::plot::Heatmap h;
    h.title = argv[2];
    h.x_label = "run";
    h.y_label = "policy";
    std::vector<std::vector<std::pair<std::string, float>>> runs;
    std::vector<std::pair<std::string, std::string>> aliases, run_args;  // (plan name, row), (label, path)
    for (int i = 3; i < argc; ++i) {
      const bool alias = std::string(argv[i]) == "--alias";
      if (alias && ++i == argc) throw std::runtime_error("--alias needs NAME=POLICY");
      const std::string arg = argv[i];
      const size_t eq = arg.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size()) {
        throw std::runtime_error("'" + arg + "' is not " + (alias ? "NAME=POLICY" : "LABEL=PATH") +
                                 " (e.g. --alias hip_r1=hip, gemma-16k=runs/gemma_16k/niah/comparison.md)");
      }
      (alias ? aliases : run_args).emplace_back(arg.substr(0, eq), arg.substr(eq + 1));
    }
    if (run_args.empty()) throw std::runtime_error("no LABEL=PATH run given");
    for (const auto& [label, path] : run_args) {
      h.col_labels.push_back(label);
      runs.push_back(read_retained(path));
      for (auto& [policy, value] : runs.back()) {
        for (const auto& [name, row] : aliases) policy = policy == name ? row : policy;
      }
      for (const auto& [policy, value] : runs.back()) {
        bool known = false;
        for (const std::string& r : h.row_labels) known = known || r == policy;
        if (!known) h.row_labels.push_back(policy);
      }
    }
    for (const std::string& policy : h.row_labels) {
      for (const auto& run : runs) {
        float v = NAN;
        for (const auto& [p, value] : run) v = p == policy ? value : v;
        h.values.push_back(v);
      }
    }
    lcllm::plot::write_heatmap_png(h, argv[1]);
    std::printf("%s: %zu policies x %zu runs\n", argv[1], h.row_labels.size(), h.col_labels.size());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
