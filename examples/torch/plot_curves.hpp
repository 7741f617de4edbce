// The picture of a fine-tuning comparison: every DIR/curve_<method>.csv the
// example (or mezo_peer.py) wrote, as test accuracy against forward passes
// and against training seconds, and test loss against forward passes, in
// DIR/curves.svg (the demo's SVG writer).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "svg_plot.hpp"

namespace curves {

/// Writes DIR/curves.svg from DIR/curve_*.csv (columns step, forward_passes,
/// seconds, train_loss, test_loss, test_accuracy); returns the number of
/// curves. Throws std::runtime_error when there is none.
inline std::size_t plot(const std::string& dir, const std::string& title) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("curve_", 0) == 0 && entry.path().extension() == ".csv") {
      files.push_back(entry.path());
    }
  }
  if (files.empty()) throw std::runtime_error("no curve_*.csv in '" + dir + "'");
  std::sort(files.begin(), files.end());
  const std::vector<std::string> palette = {"#1f77b4", "#d62728", "#9467bd", "#2ca02c",
                                            "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
  demo::Panel by_passes{"Test accuracy", "forward passes", "accuracy (%)", {}};
  demo::Panel by_time{"Test accuracy", "training seconds", "accuracy (%)", {}};
  demo::Panel loss{"Test loss", "forward passes", "cross-entropy", {}};
  for (std::size_t k = 0; k < files.size(); ++k) {
    const std::string method = files[k].stem().string().substr(6);
    // The PyTorch peer is dashed, so that it stays visible on zoopt's curve.
    const std::string dash = method.find("pytorch") != std::string::npos ? "7,5" : "";
    demo::Series acc{method, palette[k % palette.size()], dash, {}};
    demo::Series acc_t = acc;
    demo::Series l = acc;
    std::ifstream in(files[k]);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::stringstream row(line);
      std::vector<double> v;
      for (std::string cell; std::getline(row, cell, ',');) v.push_back(std::stod(cell));
      if (v.size() != 6 || !std::isfinite(v[4]) || !std::isfinite(v[5])) continue;
      acc.points.emplace_back(v[1], 100.0 * v[5]);
      acc_t.points.emplace_back(v[2], 100.0 * v[5]);
      l.points.emplace_back(v[1], v[4]);
    }
    by_passes.series.push_back(acc);
    by_time.series.push_back(acc_t);
    loss.series.push_back(l);
  }
  demo::write_svg((fs::path(dir) / "curves.svg").string(), title, {by_passes, by_time, loss});
  return files.size();
}

}  // namespace curves
