#include "cli/progress_bar.h"

#include <cstdio>
#include <unistd.h>

namespace lcllm {

ProgressBar::ProgressBar(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled), tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()) {}

void ProgressBar::update(size_t done, size_t total) {
  last_done_ = done;
  last_total_ = total;
  if (!enabled_ || !tty_) return;
  auto now = std::chrono::steady_clock::now();
  if (done < total && now - last_draw_ < std::chrono::milliseconds(50)) return;
  last_draw_ = now;
  draw(done, total);
}

void ProgressBar::draw(size_t done, size_t total) {
  const int width = 30;
  const double frac = total ? double(done) / double(total) : 1.0;
  const int filled = int(frac * width);
  std::string bar(size_t(filled), '#');
  bar += std::string(size_t(width - filled), '.');
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  // ETA from the average rate so far (shown once some work is done and some is left).
  char eta[32] = "";
  if (done > 0 && done < total) std::snprintf(eta, sizeof eta, " ETA %.0fs", secs / double(done) * double(total - done));
  std::fprintf(stderr, "\r%s [%s] %3d%% %zu/%zu %.1fs%s  ", label_.c_str(), bar.c_str(), int(frac * 100), done, total,
               secs, eta);
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  draw(last_done_, last_total_);
  std::fprintf(stderr, "\n");
}

}  // namespace lcllm
