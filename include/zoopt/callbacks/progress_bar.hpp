// Terminal progress bar for optimize().
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>

#include "zoopt/callbacks/callbacks.hpp"

namespace zoopt {

/// Draws `[#####.....] step/total loss rate ETA` on stderr. On a terminal the
/// line is redrawn in place (at most ~10 times a second); otherwise a plain
/// line is printed every 10% so logs stay readable.
class ProgressBar {
 public:
  explicit ProgressBar(std::string label = "zoopt", std::ostream& out = std::cerr, int width = 30)
      : label_(std::move(label)),
        out_(out),
        width_(width),
        tty_(&out == &std::cerr ? ::isatty(STDERR_FILENO) != 0
                                : (&out == &std::cout && ::isatty(STDOUT_FILENO) != 0)) {}

  void on_begin(std::size_t total) {
    total_ = total;
    last_draw_ = -1.0;
    next_percent_ = 10;
  }

  void on_step(const StepReport& r) {
    const std::size_t done = r.iteration + 1;
    if (tty_) {
      if (done < total_ && r.seconds - last_draw_ < 0.1) return;
      last_draw_ = r.seconds;
      out_ << '\r' << line(r, done) << std::flush;
      if (done == total_) out_ << '\n';
    } else if (total_ > 0 && done * 100 >= next_percent_ * total_) {
      out_ << line(r, done) << '\n';
      while (done * 100 >= next_percent_ * total_) next_percent_ += 10;
    }
  }

  void on_end(const OptimizeResult& res) {
    if (tty_ && res.steps < total_) out_ << '\n';  // stopped early: finish the line
  }

 private:
  std::string line(const StepReport& r, std::size_t done) const {
    const double frac = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
    const int filled = static_cast<int>(frac * width_);
    const double rate = r.seconds > 0 ? static_cast<double>(done) / r.seconds : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    std::ostringstream s;
    s << label_ << " [" << std::string(filled, '#') << std::string(width_ - filled, '.') << "] "
      << done << '/' << total_ << " loss " << std::setprecision(5) << r.loss << "  " << std::fixed
      << std::setprecision(1) << rate << " steps/s  ETA " << eta << "s";
    return s.str();
  }

  std::string label_;
  std::ostream& out_;
  int width_;
  bool tty_;
  std::size_t total_ = 0;
  double last_draw_ = -1.0;
  std::size_t next_percent_ = 10;
};

}  // namespace zoopt
