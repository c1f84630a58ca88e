#include "krill/io/plot.hpp"

#include <plplot.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <mutex>

#include "krill/util/error.hpp"

namespace krill::io {
namespace {

std::mutex g_plplot_mutex;  // PLplot keeps global state

// A colour-blind-friendly palette (Okabe-Ito); index 0 is the background, 1 the axes.
const int kPalette[][3] = {{255, 255, 255}, {40, 40, 40},  {0, 114, 178},  {213, 94, 0},  {0, 158, 115},
                           {204, 121, 167}, {86, 180, 233}, {230, 159, 0}, {240, 228, 66}, {0, 0, 0}, {215, 215, 215}};
constexpr int kGridColour = 10;
constexpr int kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);
constexpr int kSeriesColours = 8;  // palette entries 2..9

bool cairo_driver_available() {
  std::error_code ec;
  for (const char* dir : {"/usr/lib/x86_64-linux-gnu/plplot5.15.0/drivers", "/usr/lib/plplot5.15.0/drivers"})
    if (std::filesystem::exists(std::string(dir) + "/cairo.so", ec)) return true;
  // other layouts: let PLplot try
  return true;
}

// The corner whose legend-sized box (in axis fractions) holds the fewest curve samples; ties go
// to top right, top left, bottom right, bottom left in that order.
LinePlotOptions::Legend best_legend_corner(const std::vector<Series>& series, bool log_y, double xmin, double xmax,
                                           double ymin, double ymax) {
  std::size_t longest = 0;
  for (const auto& s : series) longest = std::max(longest, s.name.size());
  const double bw = std::min(0.7, 0.12 + 0.016 * static_cast<double>(longest));
  const double bh = std::min(0.9, 0.04 + 0.055 * static_cast<double>(series.size()));
  using L = LinePlotOptions::Legend;
  const L corners[] = {L::TopRight, L::TopLeft, L::BottomRight, L::BottomLeft};
  std::size_t hits[4] = {0, 0, 0, 0};
  auto count = [&](double fx, double fy) {
    const bool right = fx >= 1 - bw, left = fx <= bw, top = fy >= 1 - bh, bottom = fy <= bh;
    hits[0] += right && top;
    hits[1] += left && top;
    hits[2] += right && bottom;
    hits[3] += left && bottom;
  };
  for (const auto& s : series) {
    bool have_prev = false;
    double px = 0, py = 0;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      double y = s.y[i];
      if (!std::isfinite(s.x[i]) || !std::isfinite(y) || (log_y && y <= 0)) continue;
      if (log_y) y = std::log10(y);
      const double fx = (s.x[i] - xmin) / (xmax - xmin), fy = (y - ymin) / (ymax - ymin);
      if (have_prev)  // samples along the segment, so a line through a corner counts
        for (int k = 1; k < 16; ++k) count(px + (fx - px) * k / 16.0, py + (fy - py) * k / 16.0);
      count(fx, fy);
      px = fx, py = fy, have_prev = true;
    }
  }
  std::size_t best = 0;
  for (std::size_t c = 1; c < 4; ++c)
    if (hits[c] < hits[best]) best = c;
  return corners[best];
}

}  // namespace

void write_line_plot(const std::string& path, const std::vector<Series>& series, const LinePlotOptions& o) {
  if (series.empty()) throw ValueError("plot " + path + ": no series to draw");
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (const auto& s : series) {
    if (s.x.size() != s.y.size())
      throw ValueError("plot " + path + ": series '" + s.name + "' has " + std::to_string(s.x.size()) + " x and " +
                       std::to_string(s.y.size()) + " y values");
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      double y = s.y[i];
      if (!std::isfinite(s.x[i]) || !std::isfinite(y) || (o.log_y && y <= 0)) continue;
      if (o.log_y) y = std::log10(y);
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, y);
      ymax = std::max(ymax, y);
    }
  }
  if (!std::isfinite(xmin)) throw ValueError("plot " + path + ": no finite points to draw");
  if (xmax == xmin) { xmin -= 0.5; xmax += 0.5; }
  if (ymax == ymin) { ymin -= 0.5; ymax += 0.5; }
  const double pad = 0.04 * (ymax - ymin);
  ymin -= pad;
  ymax += pad;
  LinePlotOptions::Legend legend = o.legend;
  if (legend == LinePlotOptions::Legend::Best) legend = best_legend_corner(series, o.log_y, xmin, xmax, ymin, ymax);
  PLINT legend_position = PL_POSITION_INSIDE;
  legend_position |= (legend == LinePlotOptions::Legend::TopRight || legend == LinePlotOptions::Legend::TopLeft)
                         ? PL_POSITION_TOP : PL_POSITION_BOTTOM;
  legend_position |= (legend == LinePlotOptions::Legend::TopRight || legend == LinePlotOptions::Legend::BottomRight)
                         ? PL_POSITION_RIGHT : PL_POSITION_LEFT;
  if (!cairo_driver_available()) throw IOError("plot: PLplot's cairo driver is missing (apt-get install plplot-driver-cairo)");

  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::lock_guard<std::mutex> lock(g_plplot_mutex);
    plsstrm(0);
    plsdev("pngcairo");
    plsfnam(tmp.c_str());
    const std::string geometry = std::to_string(o.width) + "x" + std::to_string(o.height);
    plsetopt("geometry", geometry.c_str());
    for (int i = 0; i < kPaletteSize; ++i) plscol0(i, kPalette[i][0], kPalette[i][1], kPalette[i][2]);
    plinit();
    plschr(0.0, 1.1);
    pladv(0);
    plvsta();
    plvpor(0.11, 0.95, 0.12, 0.9);
    plwind(xmin, xmax, ymin, ymax);
    plwidth(1.0);
    plcol0(kGridColour);  // light grid under the data, dark frame and ticks
    plbox("g", 0.0, 0, o.log_y ? "lg" : "g", 0.0, 0);
    plcol0(1);
    plbox("bcnst", 0.0, 0, o.log_y ? "bcnstlv" : "bcnstv", 0.0, 0);
    pllab(o.x_label.c_str(), o.y_label.c_str(), o.title.c_str());
    std::vector<PLINT> opt_array, text_colors, line_colors, line_styles;
    std::vector<PLFLT> line_widths;
    std::vector<const char*> texts;
    for (std::size_t k = 0; k < series.size(); ++k) {
      const auto& s = series[k];
      const int colour = 2 + static_cast<int>(k % kSeriesColours);
      std::vector<PLFLT> xs, ys;
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i]) || (o.log_y && s.y[i] <= 0)) continue;
        xs.push_back(s.x[i]);
        ys.push_back(o.log_y ? std::log10(s.y[i]) : s.y[i]);
      }
      plcol0(colour);
      plwidth(2.0);
      if (xs.size() == 1) plpoin(1, xs.data(), ys.data(), 17);
      else if (!xs.empty()) plline(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
      opt_array.push_back(PL_LEGEND_LINE);
      text_colors.push_back(1);
      line_colors.push_back(colour);
      line_styles.push_back(1);
      line_widths.push_back(2.0);
      texts.push_back(s.name.c_str());
    }
    PLFLT legend_w, legend_h;
    const PLINT n = static_cast<PLINT>(series.size());
    pllegend(&legend_w, &legend_h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, legend_position, 0.02, 0.02, 0.1, 0, 1, 1, 0, 0, n, opt_array.data(), 1.0, 1.0, 2.0, 1.0,
             text_colors.data(), const_cast<const char**>(texts.data()), nullptr, nullptr, nullptr, nullptr,
             line_colors.data(), line_styles.data(), line_widths.data(), nullptr, nullptr, nullptr, nullptr);
    plend();
  }
  std::error_code ec;
  if (!std::filesystem::exists(tmp, ec) || std::filesystem::file_size(tmp, ec) == 0) {
    std::filesystem::remove(tmp, ec);
    throw IOError("plot: PLplot did not write " + path +
                  " (is the cairo driver installed? apt-get install plplot-driver-cairo)");
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);  // nothing half-written is left behind
    throw IOError("plot: cannot move the plot into " + path + ": " + ec.message());
  }
}

}  // namespace krill::io
