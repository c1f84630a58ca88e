// CSV reader: one pass over a memory buffer, unescaping fields in place into one buffer and
// recording one offset per field. See include/krill/data/csv.hpp for the accepted format.
#include "krill/data/csv.hpp"
#include "krill/util/text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <system_error>
#include <unordered_map>

namespace krill::data {

namespace {

using text::closest_name;
using text::is_space;
using text::lower_alnum;
using text::shell_arg;
using text::show_value;
using text::trim;

std::string errno_message(int err) { return std::system_category().message(err); }

// Checks that the start of the file is UTF-8 text; throws FormatError otherwise.
void check_text(const unsigned char* p, std::size_t n, const std::string& source) {
  auto fail = [&](const std::string& why) {
    throw FormatError(source + " does not look like a CSV text file (" + why +
                      "); krill reads UTF-8 text with comma-separated values");
  };
  if (n >= 2 && ((p[0] == 0xFF && p[1] == 0xFE) || (p[0] == 0xFE && p[1] == 0xFF)))
    fail("it starts with a UTF-16 byte-order mark: save it as UTF-8");
  std::size_t limit = std::min<std::size_t>(n, 1024);
  std::size_t i = 0;
  while (i < limit) {
    unsigned char c = p[i];
    if (c == 0) fail("NUL byte at offset " + std::to_string(i));
    if (c < 0x80) { ++i; continue; }
    std::size_t len;
    unsigned int cp;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
    else fail("invalid UTF-8 byte 0x" + [&] { char b[4]; std::snprintf(b, sizeof b, "%02X", c); return std::string(b); }() +
              " at offset " + std::to_string(i));
    for (std::size_t k = 1; k < len; ++k) {
      if (i + k >= n) return;           // truncated at the end of the file
      if (i + k >= limit) return;       // sequence cut by the 1 KB window
      unsigned char cc = p[i + k];
      if ((cc & 0xC0) != 0x80) fail("invalid UTF-8 sequence at offset " + std::to_string(i));
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      fail("invalid UTF-8 sequence at offset " + std::to_string(i));
    i += len;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Parser

struct CsvParser {
  // Parses `in[0, n)` writing unescaped field text to `buf` (which may be `in` itself: the
  // write position never passes the read position).
  static CsvTable parse(std::shared_ptr<char[]> buf, const char* in, std::size_t n, std::string source,
                        const CsvOptions& opt) {
    CsvTable t;
    t.source_ = std::move(source);
    t.missing_ = opt.missing_values;
    const std::string& src = t.source_;

    const char delim = opt.delimiter;
    const char quote = opt.quote;
    if (delim == '\n' || delim == '\r' || delim == quote)
      throw ValueError(src + ": the CSV delimiter " + show_value(std::string_view(&delim, 1)) +
                       " cannot be a line break or the quote character");

    const char* p = in;
    const char* end = in + n;
    if (n >= 3 && static_cast<unsigned char>(p[0]) == 0xEF && static_cast<unsigned char>(p[1]) == 0xBB &&
        static_cast<unsigned char>(p[2]) == 0xBF)
      p += 3;
    check_text(reinterpret_cast<const unsigned char*>(p), static_cast<std::size_t>(end - p), src);

    // Trailing blank / whitespace-only lines are ignored: cut after the line break that
    // follows the last non-blank character.
    {
      const char* q = end;
      while (q > p && (is_space(q[-1]) || q[-1] == '\n' || q[-1] == '\r')) --q;
      if (q == p)
        throw FormatError(src + " is empty" + (end > p ? " (only blank lines)" : "") +
                          ": expected a header line and data rows");
      while (q < end && *q != '\n' && *q != '\r') ++q;
      end = q;
    }

    // Characters that end an unquoted field.
    std::array<bool, 256> special{};
    special[static_cast<unsigned char>(delim)] = true;
    special['\n'] = true;
    special['\r'] = true;

    char* const base = buf.get();
    char* w = base;
    std::vector<std::uint32_t>& off = t.offsets_;
    std::vector<std::uint64_t>& row_start = t.row_start_;
    std::vector<std::int64_t>& lines = t.lines_;
    std::int64_t line = 1;
    std::size_t ncols = 0;
    bool have_header = false;
    std::size_t rows = 0;
    bool reserved = false;

    while (p < end) {
      const std::int64_t record_line = line;
      const char c0 = *p;
      if ((c0 == '\n' || c0 == '\r') && opt.skip_blank_lines) {
        ++p;
        if (c0 == '\r' && p < end && *p == '\n') ++p;
        ++line;
        continue;
      }
      const std::size_t first_field = off.size();
      char* const record_start = w;
      // ---- one record ----
      for (;;) {
        off.push_back(static_cast<std::uint32_t>(w - record_start));
        if (p < end && *p == quote) {
          const std::int64_t quote_line = line;
          ++p;
          for (;;) {
            if (p >= end)
              throw FormatError(src + ": quote opened on line " + std::to_string(quote_line) +
                                " is never closed (the field runs to the end of the file; a quote inside a "
                                "quoted field must be doubled: \"\")");
            char c = *p++;
            if (c == quote) {
              if (p < end && *p == quote) { *w++ = quote; ++p; continue; }
              break;
            }
            if (c == '\n') ++line;
            else if (c == '\r' && !(p < end && *p == '\n')) ++line;
            *w++ = c;
          }
        }
        // Unquoted text (or text after a closing quote, kept like Python's csv module does).
        while (p < end && !special[static_cast<unsigned char>(*p)]) *w++ = *p++;
        if (p >= end) break;
        char c = *p++;
        if (c == delim) continue;
        // line break
        if (c == '\r' && p < end && *p == '\n') ++p;
        ++line;
        break;
      }
      const std::size_t nfields = off.size() - first_field;
      if (static_cast<std::uint64_t>(w - record_start) > std::numeric_limits<std::uint32_t>::max())
        throw FormatError(src + " line " + std::to_string(record_line) +
                          ": the record is longer than 4 GiB (is a quote never closed?)");

      if (!have_header) {
        have_header = true;
        ncols = nfields;
        if (opt.has_header) {
          set_header(t, record_start, off, first_field, static_cast<std::size_t>(w - record_start), record_line, opt);
          off.clear();
          w = base;
          continue;
        }
        for (std::size_t i = 0; i < ncols; ++i) t.columns_.push_back(std::to_string(i));
      } else if (nfields != ncols) {
        std::string msg = src + " line " + std::to_string(record_line) + " has " + std::to_string(nfields) +
                          (nfields == 1 ? " field" : " fields") + ", the " +
                          (opt.has_header ? std::string("header has ") : "first row has ") + std::to_string(ncols);
        if (nfields == 1 && w == record_start)
          msg += " (the line is blank)";
        else if (nfields > ncols)
          msg += " (a field containing the delimiter must be quoted)";
        throw FormatError(msg);
      }
      lines.push_back(record_line);
      row_start.push_back(static_cast<std::uint64_t>(record_start - base));
      ++rows;
      if (!reserved && rows == 256) {
        // Estimate the total from the first rows so the offsets grow once.
        reserved = true;
        double per_byte = static_cast<double>(rows) / static_cast<double>(p - in);
        auto est = static_cast<std::size_t>(per_byte * static_cast<double>(end - in) * 1.05) + 16;
        lines.reserve(est);
        row_start.reserve(est + 1);
        off.reserve(est * ncols);
      }
    }
    if (!have_header) throw FormatError(src + " is empty: expected a header line and data rows");
    row_start.push_back(static_cast<std::uint64_t>(w - base));
    t.rows_ = rows;
    t.buf_ = std::move(buf);
    return t;
  }

  static void set_header(CsvTable& t, const char* base, const std::vector<std::uint32_t>& off, std::size_t first,
                         std::size_t end_off, std::int64_t line, const CsvOptions& opt) {
    const std::size_t n = off.size() - first;
    std::unordered_map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < n; ++i) {
      std::uint64_t b = off[first + i];
      std::uint64_t e = i + 1 < n ? off[first + i + 1] : end_off;
      std::string_view name(base + b, e - b);
      if (opt.trim_header) name = trim(name);
      std::string s = name.empty() ? "Unnamed: " + std::to_string(i) : std::string(name);
      auto [it, inserted] = seen.emplace(s, i);
      if (!inserted)
        throw FormatError(t.source_ + " line " + std::to_string(line) + ": columns " + std::to_string(it->second + 1) +
                          " and " + std::to_string(i + 1) + " are both named '" + s +
                          "' (column names must be unique)");
      t.columns_.push_back(std::move(s));
    }
  }
};

CsvTable parse_csv(std::string_view text, std::string source_name, const CsvOptions& options) {
  std::shared_ptr<char[]> buf(new char[std::max<std::size_t>(text.size(), 1)]);
  return CsvParser::parse(std::move(buf), text.data(), text.size(), std::move(source_name), options);
}

CsvTable read_csv(const std::string& path, const CsvOptions& options) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    throw IOError("cannot open CSV file '" + path + "': " + errno_message(err));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    throw IOError("cannot read CSV file '" + path + "': " + errno_message(err));
  }
  if (S_ISDIR(st.st_mode)) throw IOError("cannot read CSV file '" + path + "': it is a directory");

  std::shared_ptr<char[]> buf;
  std::size_t size = 0;
  auto read_fail = [&](int err) { throw IOError("cannot read CSV file '" + path + "': " + errno_message(err)); };
  if (S_ISREG(st.st_mode)) {
    std::size_t cap = static_cast<std::size_t>(st.st_size);
    buf.reset(new char[std::max<std::size_t>(cap, 1)]);
    while (size < cap) {
      ssize_t r = ::read(fd, buf.get() + size, cap - size);
      if (r < 0) {
        if (errno == EINTR) continue;
        read_fail(errno);
      }
      if (r == 0) break;  // file shrank while reading
      size += static_cast<std::size_t>(r);
    }
  } else {  // pipe, /dev/stdin, ...: size unknown
    std::vector<char> data;
    char chunk[1 << 16];
    for (;;) {
      ssize_t r = ::read(fd, chunk, sizeof chunk);
      if (r < 0) {
        if (errno == EINTR) continue;
        read_fail(errno);
      }
      if (r == 0) break;
      data.insert(data.end(), chunk, chunk + r);
    }
    size = data.size();
    buf.reset(new char[std::max<std::size_t>(size, 1)]);
    if (size) std::memcpy(buf.get(), data.data(), size);
  }
  const char* in = buf.get();
  return CsvParser::parse(buf, in, size, path, options);
}

// ---------------------------------------------------------------------------------------------
// CsvTable

void CsvTable::require_rows() const {
  if (rows_ == 0) throw FormatError(source_ + ": has a header but no data rows");
}

const std::string& CsvTable::column_name(int col) const {
  if (col < 0 || static_cast<std::size_t>(col) >= columns_.size())
    throw IndexError(source_ + ": column index " + std::to_string(col) + " is out of range (the file has " +
                     std::to_string(columns_.size()) + " columns)");
  return columns_[static_cast<std::size_t>(col)];
}

std::optional<int> CsvTable::find_column(std::string_view name) const {
  for (std::size_t i = 0; i < columns_.size(); ++i)
    if (columns_[i] == name) return static_cast<int>(i);
  return std::nullopt;
}

int CsvTable::column_index(std::string_view name) const {
  if (auto i = find_column(name)) return *i;
  std::string msg = source_ + ": no column '" + std::string(name) + "'; columns are: ";
  constexpr std::size_t kList = 40;
  for (std::size_t i = 0; i < columns_.size() && i < kList; ++i) msg += (i ? ", " : "") + columns_[i];
  if (columns_.size() > kList) msg += ", ... (" + std::to_string(columns_.size() - kList) + " more)";
  std::string best = closest_name(name, columns_);
  if (!best.empty()) msg += "; did you mean '" + best + "'?";
  if (columns_.size() == 1) {
    for (char d : {';', '\t', '|'})
      if (columns_[0].find(d) != std::string::npos) {
        msg += std::string("; the header has a single column containing '") + (d == '\t' ? "\\t" : std::string(1, d)) +
               "': is the file separated by '" + (d == '\t' ? "\\t" : std::string(1, d)) +
               "' rather than ','? (set the delimiter)";
        break;
      }
  }
  throw ValueError(msg);
}

std::string CsvTable::where(std::size_t row, int col) const {
  return source_ + " line " + std::to_string(lines_[row]) + ", column '" + column_name(col) + "'";
}

bool CsvTable::is_missing(std::size_t row, int col) const {
  std::string_view v = trim(field(row, col));
  for (const auto& m : missing_)
    if (v.size() == m.size() && v == m) return true;
  return false;
}

namespace {

// Parses a trimmed decimal number; nullopt when the text is not one.
std::optional<double> parse_double(std::string_view v, std::errc* ec_out = nullptr) {
  const char* b = v.data();
  const char* e = b + v.size();
  if (b < e && *b == '+' && e - b > 1 && b[1] != '-' && b[1] != '+') ++b;
  double x = 0;
  auto [ptr, ec] = std::from_chars(b, e, x, std::chars_format::general);
  if (ec_out) *ec_out = ec;
  if (ec != std::errc() || ptr != e || b == e) return std::nullopt;
  return x;
}

bool looks_like_decimal_comma(std::string_view v) {
  auto c = v.find(',');
  if (c == std::string_view::npos || c == 0 || c + 1 == v.size()) return false;
  return std::all_of(v.begin(), v.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) || ch == ',' || ch == '-'; });
}

}  // namespace

double CsvTable::number(std::size_t row, int col) const {
  std::string_view raw = field(row, col);
  std::string_view v = trim(raw);
  if (is_missing(row, col))
    throw FormatError(where(row, col) + ": missing value " + show_value(raw) +
                      " where a number is needed (use --drop-missing to drop incomplete rows)");
  std::errc ec{};
  std::optional<double> x = parse_double(v, &ec);
  if (!x) {
    if (ec == std::errc::result_out_of_range)
      throw FormatError(where(row, col) + ": " + show_value(v) + " is out of range for a number");
    std::string msg = where(row, col) + ": " + show_value(v) + " is not a number";
    if (looks_like_decimal_comma(v))
      msg += " (decimal commas are not supported: write 1.5, not 1,5)";
    else
      msg += " (use --categorical " + shell_arg(column_name(col)) + " to encode text columns)";
    throw FormatError(msg);
  }
  if (std::isnan(*x))
    throw FormatError(where(row, col) + ": " + show_value(v) +
                      " is not a finite number (add it to the missing values to treat it as missing)");
  if (std::isinf(*x))
    throw FormatError(where(row, col) + ": " + show_value(v) +
                      " is infinite; only finite numbers are allowed (replace it or mark the row as missing)");
  return *x;
}

std::optional<double> CsvTable::number_or_missing(std::size_t row, int col) const {
  if (is_missing(row, col)) return std::nullopt;
  return number(row, col);
}

// ---------------------------------------------------------------------------------------------
// numeric_matrix

namespace {

std::int64_t parse_label(const CsvTable& t, std::size_t row, int col) {
  std::string_view v = trim(t.field(row, col));
  std::int64_t k = 0;
  const char* b = v.data();
  const char* e = b + v.size();
  if (b < e && *b == '+') ++b;
  auto [ptr, ec] = std::from_chars(b, e, k);
  if (ec == std::errc() && ptr == e && b != e) {
    if (k < 0)
      throw FormatError(t.where(row, col) + ": class label " + show_value(v) +
                        " is negative; labels must be integers 0, 1, 2, ...");
    return k;
  }
  std::optional<double> x = parse_double(v);
  if (x && std::isfinite(*x) && *x == std::floor(*x)) {
    if (*x < 0)
      throw FormatError(t.where(row, col) + ": class label " + show_value(v) +
                        " is negative; labels must be integers 0, 1, 2, ...");
    if (*x > 9007199254740992.0)
      throw FormatError(t.where(row, col) + ": class label " + show_value(v) + " is too large");
    return static_cast<std::int64_t>(*x);
  }
  if (x)
    throw FormatError(t.where(row, col) + ": class label " + show_value(v) +
                      " is not an integer; labels must be integers 0, 1, 2, ...");
  throw FormatError(t.where(row, col) + ": class label " + show_value(v) +
                    " is not an integer; labels must be integers 0, 1, 2, ... (use --categorical " +
                    shell_arg(t.column_name(col)) + " to encode text labels)");
}

}  // namespace

NumericMatrix numeric_matrix(const CsvTable& table, const std::vector<std::string>& feature_columns,
                             const std::string& label_column, const NumericMatrixOptions& options) {
  NumericMatrix out;
  int label = -1;
  if (!label_column.empty()) label = table.column_index(label_column);

  std::vector<int> feats;
  if (feature_columns.empty()) {
    for (std::size_t i = 0; i < table.cols(); ++i)
      if (static_cast<int>(i) != label) feats.push_back(static_cast<int>(i));
  } else {
    for (const auto& name : feature_columns) {
      int c = table.column_index(name);
      if (c == label)
        throw ValueError(table.source() + ": column '" + name + "' is both a feature and the label");
      if (std::find(feats.begin(), feats.end(), c) != feats.end())
        throw ValueError(table.source() + ": feature column '" + name + "' is listed twice");
      feats.push_back(c);
    }
  }
  if (feats.empty())
    throw ValueError(table.source() + ": no feature columns (the file has only the label column '" + label_column + "')");
  for (int c : feats) out.feature_names.push_back(table.columns()[static_cast<std::size_t>(c)]);

  table.require_rows();
  const std::size_t n = table.rows();
  std::vector<int> used = feats;
  if (label >= 0) used.push_back(label);

  // Pass 1: rows with missing values.
  out.rows.reserve(n);
  for (std::size_t r = 0; r < n; ++r) {
    bool missing = false;
    for (int c : used) {
      if (table.is_missing(r, c)) {
        if (!options.drop_missing)
          throw FormatError(table.where(r, c) + ": missing value " + show_value(table.field(r, c)) +
                            " (use --drop-missing to drop rows with missing values)");
        missing = true;
        break;
      }
    }
    if (missing) ++out.dropped;
    else out.rows.push_back(r);
  }
  if (out.rows.empty())
    throw FormatError(table.source() + ": all " + std::to_string(n) +
                      " rows have missing values in the columns used; nothing is left to train on");

  // Pass 2: values.
  const auto m = static_cast<std::int64_t>(out.rows.size());
  const auto f = static_cast<std::int64_t>(feats.size());
  out.features = empty(Shape{m, f}, TensorOptions(kFloat32));
  float* x = out.features.data_ptr<float>();
  std::int64_t* y = nullptr;
  if (label >= 0) {
    out.labels = empty(Shape{m}, TensorOptions(kInt64));
    y = out.labels.data_ptr<std::int64_t>();
  }
  for (std::int64_t i = 0; i < m; ++i) {
    std::size_t r = out.rows[static_cast<std::size_t>(i)];
    for (std::int64_t j = 0; j < f; ++j) {
      const int c = feats[static_cast<std::size_t>(j)];
      // Fast path (missing values were handled above); number() explains any failure.
      std::optional<double> v = parse_double(trim(table.field(r, c)));
      x[i * f + j] = static_cast<float>(v && std::isfinite(*v) ? *v : table.number(r, c));
    }
    if (y) y[i] = parse_label(table, r, label);
  }
  return out;
}

}  // namespace krill::data
