// Loss log in CSV for optimize().
#pragma once

#include <fstream>
#include <iomanip>
#include <stdexcept>
#include <string>

#include "zoopt/callbacks/callbacks.hpp"

#include "zoopt/core/error.hpp"

namespace zoopt {

/// Writes `step,loss,forward_passes,seconds` per step to a CSV file (header
/// first). Throws std::runtime_error naming the path if it cannot be opened.
class CsvLogger {
 public:
  explicit CsvLogger(const std::string& path, std::size_t every = 1)
      : out_(path), every_(every == 0 ? 1 : every) {
    if (!out_) throw RuntimeError("CsvLogger: cannot open '" + path + "' for writing");
    out_ << "step,loss,forward_passes,seconds\n" << std::setprecision(10);
  }

  void on_step(const StepReport& r) {
    if ((r.iteration + 1) % every_ == 0 || r.iteration + 1 == r.total) {
      out_ << r.step << ',' << r.loss << ',' << r.forward_passes << ',' << r.seconds << '\n';
    }
  }

  void on_end(const OptimizeResult&) { out_.flush(); }

 private:
  std::ofstream out_;
  std::size_t every_;
};

}  // namespace zoopt
