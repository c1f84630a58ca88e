// Text formatting for `krill runs`: aligned tables that fit a terminal, cells shortened with an
// ellipsis, local times, durations and metric values as people read them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace krill::cli::runs_text {

// Width of the terminal on standard output (TIOCGWINSZ), else $COLUMNS, else 0 (no limit: output
// piped into a file or another program is never cut).
std::size_t terminal_width();

// Columns a UTF-8 string takes (one per code point).
std::size_t display_width(const std::string& s);
// `s` shortened to at most `width` columns, ending in "…" when cut.
std::string ellipsize(const std::string& s, std::size_t width);

// "2024-11-22 09:56:28" in the local time zone (ms since the epoch).
std::string local_time(std::int64_t ms);
// "850ms", "12.3s", "3m21s", "1h02m", "2d03h".
std::string duration(std::int64_t ms);
// A metric value: 6 significant digits ("0.123457", "1.5e-07"), "nan"/"inf" as such.
std::string number(double v);
// The first 8 hex digits of a run id (like git's short hashes).
std::string short_id(const std::string& id);

// A table of aligned columns separated by two spaces. Cells longer than their column's cap are
// ellipsized. When the table is wider than `max_width` (0: no limit), columns are dropped until it
// fits: highest `drop` priority first, the rightmost among equals; a column with drop < 0 always
// stays. render() reports the headers of the dropped columns.
class Table {
 public:
  // `cap`: longest cell shown in full (0: no cap). `right`: right-aligned (numbers). `drop`: see above.
  void add_column(std::string header, std::size_t cap = 0, bool right = false, int drop = -1);
  void add_row(std::vector<std::string> cells);
  // A line of text between rows, printed as is (no indent) and not counted in column widths.
  void add_note(std::string text);
  std::size_t rows() const { return rows_.size(); }
  // The table, one line per row after the header; `indent` spaces before every line.
  std::string render(std::size_t max_width = 0, std::size_t indent = 0,
                     std::vector<std::string>* dropped = nullptr) const;

 private:
  struct Column {
    std::string header;
    std::size_t cap;
    bool right;
    int drop;
  };
  std::vector<Column> columns_;
  struct Row {
    std::vector<std::string> cells;
    bool note = false;
  };
  std::vector<Row> rows_;
};

}  // namespace krill::cli::runs_text
