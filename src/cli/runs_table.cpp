#include "runs_table.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace krill::cli::runs_text {

std::size_t terminal_width() {
  winsize ws{};
  if (::isatty(STDOUT_FILENO) && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* c = std::getenv("COLUMNS"); c && *c) {
    char* end = nullptr;
    long v = std::strtol(c, &end, 10);
    if (end && *end == '\0' && v > 0) return static_cast<std::size_t>(v);
  }
  return 0;
}

namespace {
bool continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }
}  // namespace

std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += continuation(c) ? 0 : 1;
  return n;
}

std::string ellipsize(const std::string& s, std::size_t width) {
  if (display_width(s) <= width) return s;
  if (width == 0) return "";
  std::size_t keep = width - 1, cols = 0, i = 0;
  for (; i < s.size(); ++i) {
    if (!continuation(s[i])) {
      if (cols == keep) break;
      ++cols;
    }
  }
  return s.substr(0, i) + "…";
}

std::string local_time(std::int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  if (!::localtime_r(&t, &tm)) return std::to_string(ms);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string duration(std::int64_t ms) {
  if (ms < 0) ms = 0;
  char buf[32];
  const std::int64_t s = ms / 1000;
  if (ms < 1000) std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  else if (ms < 60'000) std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else if (s < 86400) std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600), static_cast<long long>(s % 3600 / 60));
  else std::snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(s / 86400), static_cast<long long>(s % 86400 / 3600));
  return buf;
}

std::string number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string short_id(const std::string& id) { return id.substr(0, 8); }

void Table::add_column(std::string header, std::size_t cap, bool right, int drop) {
  columns_.push_back({std::move(header), cap, right, drop});
}

void Table::add_row(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  for (auto& c : cells)  // a newline or tab in a name would break the table's lines
    for (char& ch : c)
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = ' ';
  rows_.push_back({std::move(cells), false});
}

void Table::add_note(std::string text) { rows_.push_back({{std::move(text)}, true}); }

std::string Table::render(std::size_t max_width, std::size_t indent, std::vector<std::string>* dropped) const {
  const std::size_t n = columns_.size();
  std::vector<std::size_t> width(n);
  auto cell = [&](std::size_t c, const std::string& s) {
    return columns_[c].cap ? ellipsize(s, columns_[c].cap) : s;
  };
  for (std::size_t c = 0; c < n; ++c) {
    width[c] = display_width(cell(c, columns_[c].header));
    for (const auto& r : rows_)
      if (!r.note) width[c] = std::max(width[c], display_width(cell(c, r.cells[c])));
  }
  std::vector<bool> show(n, true);
  auto total = [&] {
    std::size_t t = indent, shown = 0;
    for (std::size_t c = 0; c < n; ++c)
      if (show[c]) t += width[c] + (shown++ ? 2 : 0);
    return t;
  };
  while (max_width && total() > max_width) {
    std::size_t victim = n;
    for (std::size_t c = 0; c < n; ++c)
      if (show[c] && columns_[c].drop >= 0 && (victim == n || columns_[c].drop >= columns_[victim].drop)) victim = c;
    if (victim == n) break;
    show[victim] = false;
  }
  if (dropped) {
    dropped->clear();
    for (std::size_t c = 0; c < n; ++c)
      if (!show[c]) dropped->push_back(columns_[c].header);
  }
  std::string out;
  auto line = [&](auto&& text_of) {
    std::string l(indent, ' ');
    bool first = true;
    for (std::size_t c = 0; c < n; ++c) {
      if (!show[c]) continue;
      std::string s = cell(c, text_of(c));
      std::string pad(width[c] - display_width(s), ' ');
      if (!first) l += "  ";
      first = false;
      l += columns_[c].right ? pad + s : s + pad;
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line([&](std::size_t c) -> const std::string& { return columns_[c].header; });
  for (const auto& r : rows_) {
    if (r.note) out += r.cells[0] + "\n";
    else line([&](std::size_t c) -> const std::string& { return r.cells[c]; });
  }
  return out;
}

}  // namespace krill::cli::runs_text
