// A one-line progress bar on stderr: redrawn in place on a terminal, a single summary line otherwise (logs
// and CI stay readable).
#pragma once
#include <chrono>
#include <cstddef>
#include <string>

namespace lcllm {

class ProgressBar {
 public:
  ProgressBar(std::string label, bool enabled);
  void update(size_t done, size_t total);  // cheap to call often; redraws at most ~20 times a second
  void finish();

 private:
  void draw(size_t done, size_t total);
  std::string label_;
  bool enabled_;
  bool tty_;
  bool finished_ = false;
  size_t last_done_ = 0, last_total_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace lcllm
