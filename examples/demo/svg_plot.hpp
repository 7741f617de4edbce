// A dependency-free SVG line chart for the demo: one or more panels side by
// side, each with axes, ticks, grid lines and one line per series.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace demo {

struct Series {
  std::string name;
  std::string color;  ///< any SVG colour, e.g. "#1f77b4"
  std::string dash;   ///< SVG stroke-dasharray ("" = solid)
  std::vector<std::pair<double, double>> points;
};

struct Panel {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<Series> series;
};

namespace svg_detail {

inline std::string escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

inline std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

inline std::string tick_label(double v) {
  char b[32];
  if (v != 0.0 && (std::abs(v) >= 1e5 || std::abs(v) < 1e-3)) {
    std::snprintf(b, sizeof b, "%.0e", v);
  } else {
    std::snprintf(b, sizeof b, "%g", v);
  }
  return b;
}

/// About `count` round tick values covering [lo, hi].
inline std::vector<double> ticks(double lo, double hi, int count) {
  const double span = hi - lo;
  const double raw = span / count;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (const double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) {
    t.push_back(std::abs(v) < 1e-12 * span ? 0.0 : v);
  }
  return t;
}

}  // namespace svg_detail

/// Writes the panels next to each other into `path`. Throws
/// std::runtime_error if the file cannot be written.
inline void write_svg(const std::string& path, const std::string& title,
                      const std::vector<Panel>& panels) {
  using namespace svg_detail;
  const double pw = 460, ph = 340;                  // panel size
  const double ml = 64, mr = 16, mt = 36, mb = 48;  // panel margins
  const double legend_h = 28;
  const double width = pw * static_cast<double>(panels.size());
  const double height = ph + 40 + legend_h;
  std::ofstream f(path);
  if (!f) throw std::runtime_error("cannot write '" + path + "'");
  f << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(width) << "\" height=\""
    << num(height) << "\" viewBox=\"0 0 " << num(width) << ' ' << num(height)
    << "\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << num(width / 2) << "\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">"
    << escape(title) << "</text>\n";
  for (std::size_t p = 0; p < panels.size(); ++p) {
    const Panel& panel = panels[p];
    const double ox = pw * static_cast<double>(p);
    const double oy = 40;
    const double x0 = ox + ml, x1 = ox + pw - mr, y0 = oy + ph - mb, y1 = oy + mt;
    double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin;
    double ymin = xmin, ymax = -xmin;
    for (const Series& s : panel.series) {
      for (const auto& [x, y] : s.points) {
        if (!std::isfinite(x) || !std::isfinite(y)) continue;
        xmin = std::min(xmin, x);
        xmax = std::max(xmax, x);
        ymin = std::min(ymin, y);
        ymax = std::max(ymax, y);
      }
    }
    if (!std::isfinite(xmin)) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
    if (xmax <= xmin) xmax = xmin + 1;
    if (ymax <= ymin) ymax = ymin + 1e-3 * std::max(1.0, std::abs(ymin));
    const double pad = 0.06 * (ymax - ymin);
    ymin -= pad;
    ymax += pad;
    auto sx = [&](double x) { return x0 + (x - xmin) / (xmax - xmin) * (x1 - x0); };
    auto sy = [&](double y) { return y0 - (y - ymin) / (ymax - ymin) * (y0 - y1); };
    f << "<text x=\"" << num((x0 + x1) / 2) << "\" y=\"" << num(oy + 20)
      << "\" text-anchor=\"middle\" font-size=\"14\">" << escape(panel.title) << "</text>\n";
    for (const double t : ticks(ymin, ymax, 5)) {
      f << "<line x1=\"" << num(x0) << "\" y1=\"" << num(sy(t)) << "\" x2=\"" << num(x1)
        << "\" y2=\"" << num(sy(t)) << "\" stroke=\"#e0e0e0\"/>\n"
        << "<text x=\"" << num(x0 - 6) << "\" y=\"" << num(sy(t) + 4) << "\" text-anchor=\"end\">"
        << tick_label(t) << "</text>\n";
    }
    for (const double t : ticks(xmin, xmax, 5)) {
      f << "<line x1=\"" << num(sx(t)) << "\" y1=\"" << num(y0) << "\" x2=\"" << num(sx(t))
        << "\" y2=\"" << num(y1) << "\" stroke=\"#e0e0e0\"/>\n"
        << "<text x=\"" << num(sx(t)) << "\" y=\"" << num(y0 + 16) << "\" text-anchor=\"middle\">"
        << tick_label(t) << "</text>\n";
    }
    f << "<rect x=\"" << num(x0) << "\" y=\"" << num(y1) << "\" width=\"" << num(x1 - x0)
      << "\" height=\"" << num(y0 - y1) << "\" fill=\"none\" stroke=\"black\"/>\n"
      << "<text x=\"" << num((x0 + x1) / 2) << "\" y=\"" << num(y0 + 36)
      << "\" text-anchor=\"middle\">" << escape(panel.x_label) << "</text>\n"
      << "<text transform=\"translate(" << num(ox + 16) << ',' << num((y0 + y1) / 2)
      << ") rotate(-90)\" text-anchor=\"middle\">" << escape(panel.y_label) << "</text>\n";
    for (const Series& s : panel.series) {
      f << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\"";
      if (!s.dash.empty()) f << " stroke-dasharray=\"" << s.dash << "\"";
      f << " points=\"";
      for (const auto& [x, y] : s.points) {
        if (std::isfinite(x) && std::isfinite(y)) f << num(sx(x)) << ',' << num(sy(y)) << ' ';
      }
      f << "\"/>\n";
    }
  }
  // Legend (series of the first panel).
  if (!panels.empty()) {
    double lx = 20;
    const double ly = height - legend_h / 2;
    for (const Series& s : panels.front().series) {
      f << "<line x1=\"" << num(lx) << "\" y1=\"" << num(ly) << "\" x2=\"" << num(lx + 24)
        << "\" y2=\"" << num(ly) << "\" stroke=\"" << s.color << "\" stroke-width=\"3\""
        << (s.dash.empty() ? std::string() : " stroke-dasharray=\"" + s.dash + "\"") << "/>\n"
        << "<text x=\"" << num(lx + 30) << "\" y=\"" << num(ly + 4) << "\">" << escape(s.name)
        << "</text>\n";
      lx += 40 + 8.0 * static_cast<double>(s.name.size()) + 20;
    }
  }
  f << "</svg>\n";
  if (!f) throw std::runtime_error("writing '" + path + "' failed");
}

}  // namespace demo
