// Line charts written as PNG by PLplot (Debian's libplplot with the cairo driver): loss curves
// of a training run, metric curves of several runs.
#pragma once
#include <string>
#include <vector>

namespace krill::io {

struct Series {
  std::string name;             // legend entry
  std::vector<double> x, y;     // same length
};

struct LinePlotOptions {
  std::string title;
  std::string x_label = "x";
  std::string y_label = "y";
  int width = 800, height = 600;
  bool log_y = false;
  // Where the legend goes, inside the axes. Best: the corner the curves pass through least.
  enum class Legend { TopRight, TopLeft, BottomRight, BottomLeft, Best };
  Legend legend = Legend::TopRight;
};

// Draws `series` (each in its own colour, with a legend) and writes a PNG to `path`
// (atomically: a temporary file renamed into place). Throws IOError when PLplot or its cairo
// driver is unavailable or the file cannot be written; ValueError for empty or mismatched series.
void write_line_plot(const std::string& path, const std::vector<Series>& series, const LinePlotOptions& options);

}  // namespace krill::io
