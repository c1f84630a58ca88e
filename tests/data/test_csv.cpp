// CSV reader: RFC 4180 cases, missing values, numbers, every error message (names the file and
// the line / column), numeric_matrix, agreement with Python's csv module, speed.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "krill/data/csv.hpp"
#include "support/oracle.hpp"

using krill::data::CsvOptions;
using krill::data::CsvTable;
using krill::data::numeric_matrix;
using krill::data::NumericMatrixOptions;
using krill::data::parse_csv;
using krill::data::read_csv;

namespace {

// Runs `fn`, expects an exception of type E whose message contains every string in `parts`.
template <typename E>
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception containing '" << parts.front() << "'";
  } catch (const E& e) {
    std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nmissing: " << p;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

std::vector<std::vector<std::string>> all_fields(const CsvTable& t) {
  std::vector<std::vector<std::string>> out;
  for (std::size_t r = 0; r < t.rows(); ++r) {
    std::vector<std::string> row;
    for (std::size_t c = 0; c < t.cols(); ++c) row.emplace_back(t.field(r, static_cast<int>(c)));
    out.push_back(row);
  }
  return out;
}

using Rows = std::vector<std::vector<std::string>>;
using Cols = std::vector<std::string>;

void write_file(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary);
  f << content;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Format

TEST(Csv, Basic) {
  auto t = parse_csv("a,b,c\n1,2,3\n4,5,6\n", "x.csv");
  EXPECT_EQ(t.columns(), (Cols{"a", "b", "c"}));
  EXPECT_EQ(t.rows(), 2u);
  EXPECT_EQ(t.cols(), 3u);
  EXPECT_FALSE(t.empty());
  EXPECT_EQ(all_fields(t), (Rows{{"1", "2", "3"}, {"4", "5", "6"}}));
  EXPECT_EQ(t.line(0), 2);
  EXPECT_EQ(t.line(1), 3);
  EXPECT_EQ(t.source(), "x.csv");
  EXPECT_EQ(t.column_index("c"), 2);
  EXPECT_EQ(t.find_column("zz"), std::nullopt);
  EXPECT_TRUE(t.has_column("b"));
  EXPECT_EQ(t.where(1, 2), "x.csv line 3, column 'c'");
}

TEST(Csv, QuotedFields) {
  std::string text =
      "name,comment,n\n"
      "\"Smith, John\",\"said \"\"hi\"\"\",1\n"
      "\"multi\nline\",\"x\r\ny\",2\n"
      "plain,\"\",3\n"
      "\"\"\"\",\",\",4\n";
  auto t = parse_csv(text, "q.csv");
  EXPECT_EQ(all_fields(t), (Rows{{"Smith, John", "said \"hi\"", "1"},
                                 {"multi\nline", "x\r\ny", "2"},
                                 {"plain", "", "3"},
                                 {"\"", ",", "4"}}));
  // Line numbers count the newlines inside quoted fields.
  EXPECT_EQ(t.line(0), 2);
  EXPECT_EQ(t.line(1), 3);
  EXPECT_EQ(t.line(2), 6);  // row 2 spans lines 3-5
  EXPECT_EQ(t.line(3), 7);
}

TEST(Csv, LineEndings) {
  Rows expected{{"1", "2"}, {"3", "4"}};
  for (std::string text : {"a,b\r\n1,2\r\n3,4\r\n", "a,b\n1,2\n3,4\n", "a,b\r\n1,2\r\n3,4", "a,b\n1,2\n3,4",
                           "a,b\r1,2\r3,4\r", "a,b\n1,2\r\n3,4"}) {
    auto t = parse_csv(text, "e.csv");
    EXPECT_EQ(t.columns(), (Cols{"a", "b"})) << text;
    EXPECT_EQ(all_fields(t), expected) << text;
    EXPECT_EQ(t.line(1), 3);
  }
  // Last field empty, no newline at the end.
  auto t = parse_csv("a,b\n1,", "e.csv");
  EXPECT_EQ(all_fields(t), (Rows{{"1", ""}}));
}

TEST(Csv, ByteOrderMarkAndHeaderNames) {
  auto t = parse_csv("\xEF\xBB\xBFSpecies,Body Mass (g), Culmen Length (mm) ,\"Flipper, length\"\nA,1,2,3\n", "p.csv");
  EXPECT_EQ(t.columns(), (Cols{"Species", "Body Mass (g)", "Culmen Length (mm)", "Flipper, length"}));
  EXPECT_EQ(t.column_index("Species"), 0);
  EXPECT_EQ(t.column_index("Body Mass (g)"), 1);
  // Untrimmed on request.
  CsvOptions o;
  o.trim_header = false;
  auto u = parse_csv("a, b\n1,2\n", "p.csv", o);
  EXPECT_EQ(u.columns(), (Cols{"a", " b"}));
  // Empty header names (a pandas index column) are named like pandas does.
  auto v = parse_csv(",x,\n0,1,2\n", "p.csv");
  EXPECT_EQ(v.columns(), (Cols{"Unnamed: 0", "x", "Unnamed: 2"}));
  // UTF-8 text is fine.
  auto w = parse_csv("Île,城市\nZürich,企鹅\n", "u.csv");
  EXPECT_EQ(w.columns(), (Cols{"Île", "城市"}));
  EXPECT_EQ(w.field(0, 1), "企鹅");
}

TEST(Csv, BlankLines) {
  // At the end (LF, CRLF, whitespace-only): ignored.
  for (std::string text : {"a,b\n1,2\n\n\n", "a,b\r\n1,2\r\n\r\n\r\n", "a,b\n1,2\n  \n\t\n", "a,b\n1,2  \n\n"}) {
    auto t = parse_csv(text, "b.csv");
    ASSERT_EQ(t.rows(), 1u) << text;
    EXPECT_EQ(t.field(0, 0), "1");
  }
  // Trailing spaces of the last field are kept.
  EXPECT_EQ(parse_csv("a,b\n1,2  \n\n", "b.csv").field(0, 1), "2  ");
  // In the middle and at the start: skipped, line numbers stay right.
  auto t = parse_csv("\n\na,b\n1,2\n\n3,4\n", "b.csv");
  EXPECT_EQ(t.columns(), (Cols{"a", "b"}));
  EXPECT_EQ(all_fields(t), (Rows{{"1", "2"}, {"3", "4"}}));
  EXPECT_EQ(t.line(0), 4);
  EXPECT_EQ(t.line(1), 6);
  // Not skipped on request: a blank line is then a one-field record.
  CsvOptions o;
  o.skip_blank_lines = false;
  expect_error<krill::FormatError>([&] { parse_csv("a,b\n1,2\n\n3,4\n", "b.csv", o); },
                                   {"b.csv line 3 has 1 field, the header has 2", "blank"});
  auto one = parse_csv("a\n1\n\n2\n", "b.csv", o);
  EXPECT_EQ(all_fields(one), (Rows{{"1"}, {""}, {"2"}}));
}

TEST(Csv, Delimiters) {
  CsvOptions o;
  o.delimiter = ';';
  auto t = parse_csv("a;b c\n1,5;\"x;y\"\n", "s.csv", o);
  EXPECT_EQ(t.columns(), (Cols{"a", "b c"}));
  EXPECT_EQ(all_fields(t), (Rows{{"1,5", "x;y"}}));
  o.delimiter = '\t';
  auto u = parse_csv("a\tb\n1\t\n", "t.tsv", o);
  EXPECT_EQ(all_fields(u), (Rows{{"1", ""}}));
  o.delimiter = '\n';
  expect_error<krill::ValueError>([&] { parse_csv("a\n", "t.csv", o); }, {"delimiter"});
}

TEST(Csv, LenientLikePython) {
  // A quote inside an unquoted field is literal; text after a closing quote is appended.
  auto t = parse_csv("a,b\nab\"cd,\"xy\"z\n", "l.csv");
  EXPECT_EQ(all_fields(t), (Rows{{"ab\"cd", "xyz"}}));
}

TEST(Csv, NoHeader) {
  CsvOptions o;
  o.has_header = false;
  auto t = parse_csv("1,2\n3,4\n", "n.csv", o);
  EXPECT_EQ(t.columns(), (Cols{"0", "1"}));
  EXPECT_EQ(all_fields(t), (Rows{{"1", "2"}, {"3", "4"}}));
  EXPECT_EQ(t.line(0), 1);
  expect_error<krill::FormatError>([&] { parse_csv("1,2\n3\n", "n.csv", o); },
                                   {"n.csv line 2 has 1 field, the first row has 2"});
}

// ---------------------------------------------------------------------------------------------
// Missing values and numbers

TEST(Csv, MissingValues) {
  auto t = parse_csv("a,b\n,1\nNA,1\nNaN,1\nnan,1\nN/A,1\nnull,1\n\"\",1\n NA ,1\nna,1\n0,1\n", "m.csv");
  for (std::size_t r = 0; r < 8; ++r) {
    EXPECT_TRUE(t.is_missing(r, 0)) << r;
    EXPECT_EQ(t.number_or_missing(r, 0), std::nullopt);
  }
  EXPECT_FALSE(t.is_missing(8, 0));  // "na" is not in the default list
  EXPECT_FALSE(t.is_missing(9, 0));
  EXPECT_EQ(t.number_or_missing(9, 0), 0.0);
  expect_error<krill::FormatError>([&] { t.number(1, 0); }, {"m.csv line 3, column 'a'", "missing", "'NA'"});

  CsvOptions o;
  o.missing_values = {"?", "-"};
  auto u = parse_csv("a\n?\n-\n\nNA\n", "m.csv", o);
  EXPECT_TRUE(u.is_missing(0, 0));
  EXPECT_TRUE(u.is_missing(1, 0));
  EXPECT_FALSE(u.is_missing(2, 0));  // "NA" no longer means missing
  expect_error<krill::FormatError>([&] { u.number(2, 0); }, {"m.csv line 5, column 'a': 'NA' is not a number"});
}

TEST(Csv, Numbers) {
  auto t = parse_csv("x\n1\n-2.5\n3e2\n+4.25\n  5 \n\"6.5\"\n1e-3\n-0\n.5\n39.1\n", "n.csv");
  std::vector<double> expected{1, -2.5, 300, 4.25, 5, 6.5, 1e-3, -0.0, 0.5, 39.1};
  ASSERT_EQ(t.rows(), expected.size());
  for (std::size_t r = 0; r < expected.size(); ++r) EXPECT_EQ(t.number(r, 0), expected[r]) << r;
}

TEST(Csv, NumberErrors) {
  auto t = parse_csv(
      "Island,Body Mass (g)\nTorgersen,1\nx,inf\nx,-inf\nx,Infinity\nx,1e999\nx,\"1,5\"\nx,++1\nx,0x10\nx,1.5.2\n", "penguins.csv");
  expect_error<krill::FormatError>(
      [&] { t.number(0, 0); },
      {"penguins.csv line 2, column 'Island': 'Torgersen' is not a number (use --categorical Island to encode text columns)"});
  expect_error<krill::FormatError>([&] { t.number(1, 1); }, {"penguins.csv line 3, column 'Body Mass (g)'", "'inf'", "infinite"});
  expect_error<krill::FormatError>([&] { t.number(2, 1); }, {"line 4", "'-inf'", "infinite"});
  expect_error<krill::FormatError>([&] { t.number(3, 1); }, {"line 5", "'Infinity'", "infinite"});
  expect_error<krill::FormatError>([&] { t.number(4, 1); }, {"line 6", "'1e999'", "out of range"});
  expect_error<krill::FormatError>([&] { t.number(5, 1); }, {"line 7", "'1,5'", "decimal comma"});
  expect_error<krill::FormatError>([&] { t.number(6, 1); },
                                   {"line 8", "'++1' is not a number", "--categorical 'Body Mass (g)'"});
  expect_error<krill::FormatError>([&] { t.number(7, 1); }, {"line 9", "'0x10' is not a number"});
  expect_error<krill::FormatError>([&] { t.number(8, 1); }, {"line 10", "'1.5.2' is not a number"});
  // nan when it is not a missing value.
  CsvOptions o;
  o.missing_values = {""};
  auto u = parse_csv("a\nnan\n", "n.csv", o);
  expect_error<krill::FormatError>([&] { u.number(0, 0); }, {"n.csv line 2, column 'a'", "'nan'", "not a finite number"});
}

TEST(Csv, UnknownColumn) {
  auto t = parse_csv("Species,Island,CulmenLength,Body Mass (g)\nA,B,1,2\n", "penguins.csv");
  expect_error<krill::ValueError>(
      [&] { t.column_index("Specie"); },
      {"penguins.csv: no column 'Specie'; columns are: Species, Island, CulmenLength, Body Mass (g); did you mean "
       "'Species'?"});
  expect_error<krill::ValueError>([&] { t.column_index("island"); }, {"did you mean 'Island'?"});
  expect_error<krill::ValueError>([&] { t.column_index("BodyMass"); }, {"did you mean 'Body Mass (g)'?"});
  try {
    t.column_index("Zebra");
    FAIL();
  } catch (const krill::ValueError& e) {
    EXPECT_EQ(std::string(e.what()).find("did you mean"), std::string::npos) << e.what();
  }
  // A semicolon-separated file read with ',' has one column: say so.
  auto u = parse_csv("a;b;c\n1;2;3\n", "semi.csv");
  expect_error<krill::ValueError>([&] { u.column_index("b"); }, {"semi.csv: no column 'b'", "separated by ';'"});
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST(Csv, EmptyAndHeaderOnly) {
  expect_error<krill::FormatError>([] { parse_csv("", "e.csv"); }, {"e.csv is empty"});
  expect_error<krill::FormatError>([] { parse_csv("\n\r\n  \n", "e.csv"); }, {"e.csv is empty"});
  expect_error<krill::FormatError>([] { parse_csv("\xEF\xBB\xBF", "e.csv"); }, {"e.csv is empty"});
  auto t = parse_csv("a,b\n", "h.csv");
  EXPECT_EQ(t.rows(), 0u);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.columns(), (Cols{"a", "b"}));
  expect_error<krill::FormatError>([&] { t.require_rows(); }, {"h.csv: has a header but no data rows"});
  parse_csv("a,b\n1,2", "h.csv").require_rows();
}

TEST(Csv, Binary) {
  std::string nul = std::string("a,b\n1,2\n") + '\0' + "xyz\n";
  expect_error<krill::FormatError>([&] { parse_csv(nul, "bin.csv"); },
                                   {"bin.csv does not look like a CSV text file", "NUL byte at offset 8"});
  expect_error<krill::FormatError>([] { parse_csv("a,b\n\xC3\x28,1\n", "bin.csv"); },
                                   {"bin.csv does not look like a CSV text file", "invalid UTF-8"});
  expect_error<krill::FormatError>([] { parse_csv("\x89PNG\r\n\x1a\n", "img.png"); },
                                   {"img.png does not look like a CSV text file"});
  expect_error<krill::FormatError>([] { parse_csv(std::string("\xFF\xFE" "a\0,\0", 6), "u16.csv"); },
                                   {"u16.csv does not look like a CSV text file", "UTF-16"});
  // Latin-1 text (invalid UTF-8) is refused, overlong encodings too.
  expect_error<krill::FormatError>([] { parse_csv("city\nZ\xFCrich\n", "l1.csv"); }, {"invalid UTF-8"});
  expect_error<krill::FormatError>([] { parse_csv("a\n\xC0\xAF\n", "o.csv"); }, {"invalid UTF-8"});
  // Only the first KB is checked; a multi-byte character cut by the 1 KB window is fine.
  std::string big = "a\n" + std::string(1021, 'x') + "\xE4\xBC\x81\n";
  EXPECT_EQ(parse_csv(big, "ok.csv").rows(), 1u);
}

TEST(Csv, RaggedRows) {
  std::string text = "a,b,c,d,e,f\n1,2,3,4,5,6\n1,2,3,4,5,6\n1,2,3,4,5,6\n1,2,3,4,5,6\n1,2,3,4,5,6\n1,2,3,4,5\n";
  expect_error<krill::FormatError>([&] { parse_csv(text, "r.csv"); }, {"r.csv line 7 has 5 fields, the header has 6"});
  expect_error<krill::FormatError>([] { parse_csv("a,b\n1,2,3\n", "r.csv"); },
                                   {"r.csv line 2 has 3 fields, the header has 2", "must be quoted"});
  // The line is the record's first line, counted past multi-line quoted fields.
  expect_error<krill::FormatError>([] { parse_csv("a,b\n\"x\ny\nz\",1\n1\n", "r.csv"); },
                                   {"r.csv line 5 has 1 field, the header has 2"});
  expect_error<krill::FormatError>([] { parse_csv("a,b\r\n1,2\r\n\r\n1,2,\r\n", "r.csv"); },
                                   {"r.csv line 4 has 3 fields, the header has 2"});
}

TEST(Csv, UnterminatedQuote) {
  expect_error<krill::FormatError>([] { parse_csv("a,b\n1,2\n3,4\n5,6\n7,8\n9,0\n1,2\n2,3\n\"oops,1\n4,5\n6,7\n", "u.csv"); },
                                   {"u.csv: quote opened on line 9 is never closed"});
  expect_error<krill::FormatError>([] { parse_csv("\"a,b\n", "u.csv"); }, {"u.csv: quote opened on line 1 is never closed"});
  expect_error<krill::FormatError>([] { parse_csv("a,b\n\"x\"\"\n", "u.csv"); }, {"quote opened on line 2 is never closed"});
}

TEST(Csv, DuplicateHeader) {
  expect_error<krill::FormatError>([] { parse_csv("x,y,z,w,x\n1,2,3,4,5\n", "d.csv"); },
                                   {"d.csv line 1: columns 1 and 5 are both named 'x'"});
  expect_error<krill::FormatError>([] { parse_csv("\n\na, a\n1,2\n", "d.csv"); },
                                   {"d.csv line 3: columns 1 and 2 are both named 'a'"});
}

// ---------------------------------------------------------------------------------------------
// Files

TEST(Csv, ReadFile) {
  std::string dir = krill::test::make_temp_dir("csv");
  std::string path = dir + "/penguins.csv";
  std::string text = "\xEF\xBB\xBFSpecies,Island,Body Mass (g)\r\n0,Torgersen,3750\r\n1,\"Biscoe\",NA\r\n";
  write_file(path, text);
  auto t = read_csv(path);
  EXPECT_EQ(t.source(), path);
  EXPECT_EQ(t.columns(), (Cols{"Species", "Island", "Body Mass (g)"}));
  EXPECT_EQ(all_fields(t), all_fields(parse_csv(text, "s")));
  EXPECT_TRUE(t.is_missing(1, 2));
  EXPECT_EQ(t.number(0, 2), 3750.0);
  // The table keeps its buffer alive across copies and moves.
  CsvTable copy = t;
  t = CsvTable();
  EXPECT_EQ(copy.field(1, 1), "Biscoe");

  expect_error<krill::IOError>([&] { read_csv(dir + "/nope.csv"); },
                               {dir + "/nope.csv", "No such file or directory"});
  expect_error<krill::IOError>([&] { read_csv(dir); }, {dir, "directory"});
  write_file(dir + "/empty.csv", "");
  expect_error<krill::FormatError>([&] { read_csv(dir + "/empty.csv"); }, {dir + "/empty.csv is empty"});
  std::filesystem::remove_all(dir);
}

TEST(Csv, ReadFileErrorsAreIOErrorsNotFormatErrors) {
  try {
    read_csv("/nonexistent/dir/file.csv");
    FAIL();
  } catch (const krill::FormatError&) {
    FAIL() << "a missing file is not a FormatError";
  } catch (const krill::IOError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/file.csv"), std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// numeric_matrix

TEST(CsvNumeric, FeaturesAndLabels) {
  auto t = parse_csv("f1,name,f2,label\n1.5,a,2,0\n-3,b,4e1,2\n0.25,c,+6, 1.0 \n", "n.csv");
  auto m = numeric_matrix(t, {"f2", "f1"}, "label");
  EXPECT_EQ(m.features.dtype(), krill::kFloat32);
  EXPECT_EQ(m.features.shape(), (krill::Shape{3, 2}));
  EXPECT_EQ(m.labels.dtype(), krill::kInt64);
  EXPECT_EQ(m.labels.shape(), (krill::Shape{3}));
  const float* x = m.features.data_ptr<float>();
  std::vector<float> xs(x, x + 6);
  EXPECT_EQ(xs, (std::vector<float>{2, 1.5f, 40, -3, 6, 0.25f}));
  const std::int64_t* y = m.labels.data_ptr<std::int64_t>();
  EXPECT_EQ(std::vector<std::int64_t>(y, y + 3), (std::vector<std::int64_t>{0, 2, 1}));
  EXPECT_EQ(m.feature_names, (Cols{"f2", "f1"}));
  EXPECT_EQ(m.dropped, 0u);
  EXPECT_EQ(m.rows, (std::vector<std::size_t>{0, 1, 2}));
}

TEST(CsvNumeric, AllColumnsExceptLabelAndNoLabel) {
  auto t = parse_csv("a,y,b\n1,0,2\n3,1,4\n", "n.csv");
  auto m = numeric_matrix(t, {}, "y");
  EXPECT_EQ(m.feature_names, (Cols{"a", "b"}));
  const float* x = m.features.data_ptr<float>();
  EXPECT_EQ(std::vector<float>(x, x + 4), (std::vector<float>{1, 2, 3, 4}));
  auto p = numeric_matrix(t, {"a", "b"}, "");
  EXPECT_FALSE(p.labels.defined());
  EXPECT_EQ(p.features.shape(), (krill::Shape{2, 2}));
}

TEST(CsvNumeric, Missing) {
  auto t = parse_csv("a,b,y,unused\n1,2,0,\n3,NA,1,\n5,6,,x\n7,8,1,\n", "m.csv");
  expect_error<krill::FormatError>([&] { numeric_matrix(t, {"a", "b"}, "y"); },
                                   {"m.csv line 3, column 'b': missing value 'NA'", "--drop-missing"});
  NumericMatrixOptions o;
  o.drop_missing = true;
  auto m = numeric_matrix(t, {"a", "b"}, "y", o);
  EXPECT_EQ(m.dropped, 2u);
  EXPECT_EQ(m.rows, (std::vector<std::size_t>{0, 3}));
  const float* x = m.features.data_ptr<float>();
  EXPECT_EQ(std::vector<float>(x, x + 4), (std::vector<float>{1, 2, 7, 8}));
  const std::int64_t* y = m.labels.data_ptr<std::int64_t>();
  EXPECT_EQ(std::vector<std::int64_t>(y, y + 2), (std::vector<std::int64_t>{0, 1}));
  auto all = parse_csv("a,y\nNA,1\n", "m.csv");
  expect_error<krill::FormatError>([&] { numeric_matrix(all, {"a"}, "y", o); }, {"m.csv", "all 1 rows"});
}

TEST(CsvNumeric, Errors) {
  auto t = parse_csv("a,Species\n1,0\n2,2.5\n", "p.csv");
  expect_error<krill::FormatError>([&] { numeric_matrix(t, {"a"}, "Species"); },
                                   {"p.csv line 3, column 'Species': class label '2.5' is not an integer"});
  auto neg = parse_csv("a,y\n1,-1\n", "p.csv");
  expect_error<krill::FormatError>([&] { numeric_matrix(neg, {"a"}, "y"); }, {"p.csv line 2, column 'y'", "negative"});
  auto text = parse_csv("a,Species\n1,Adelie\n", "p.csv");
  expect_error<krill::FormatError>([&] { numeric_matrix(text, {"a"}, "Species"); },
                                   {"p.csv line 2, column 'Species'", "'Adelie'", "--categorical Species"});
  auto feat = parse_csv("a,Island,y\n1,Dream,0\n", "p.csv");
  expect_error<krill::FormatError>([&] { numeric_matrix(feat, {"a", "Island"}, "y"); },
                                   {"p.csv line 2, column 'Island': 'Dream' is not a number", "--categorical Island"});
  expect_error<krill::ValueError>([&] { numeric_matrix(feat, {"a", "Islnd"}, "y"); },
                                  {"no column 'Islnd'", "did you mean 'Island'?"});
  expect_error<krill::ValueError>([&] { numeric_matrix(feat, {"a"}, "label"); }, {"no column 'label'"});
  expect_error<krill::ValueError>([&] { numeric_matrix(feat, {"a", "y"}, "y"); }, {"'y' is both a feature and the label"});
  expect_error<krill::ValueError>([&] { numeric_matrix(feat, {"a", "a"}, "y"); }, {"listed twice"});
  auto header_only = parse_csv("a,y\n", "h.csv");
  expect_error<krill::FormatError>([&] { numeric_matrix(header_only, {"a"}, "y"); }, {"h.csv: has a header but no data rows"});
  auto label_only = parse_csv("y\n1\n", "l.csv");
  expect_error<krill::ValueError>([&] { numeric_matrix(label_only, {}, "y"); }, {"no feature columns"});
}

// ---------------------------------------------------------------------------------------------
// Agreement with Python's csv module on random tricky files

namespace {

std::string hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) out += d[c >> 4], out += d[c & 15];
  return out;
}

// A random field value and its CSV spelling (quoted when needed or at random).
std::string random_field(std::mt19937_64& rng, std::string* spelled) {
  static const std::vector<std::string> atoms = {"a", "Z", "0", "1.5", " ", ",", "\"", "\n", "\r\n", "é", "企",
                                                 "x y", "(g)", "NA", "\t", ";", "\r"};
  std::uniform_int_distribution<int> len(0, 5), pick(0, static_cast<int>(atoms.size()) - 1), coin(0, 3);
  std::string v;
  int n = len(rng);
  for (int i = 0; i < n; ++i) v += atoms[static_cast<std::size_t>(pick(rng))];
  bool needs = v.find_first_of(",\"\r\n") != std::string::npos;
  if (needs || coin(rng) == 0) {
    std::string q = "\"";
    for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    *spelled = q + "\"";
  } else {
    *spelled = v;
  }
  return v;
}

}  // namespace

TEST(CsvPython, RandomFilesAgreeWithPythonCsvModule) {
  std::mt19937_64 rng(krill::test::run_seed());
  std::string dir = krill::test::make_temp_dir("csv-py");
  const char* eols[] = {"\n", "\r\n", "\r"};
  for (int file = 0; file < 20; ++file) {
    std::uniform_int_distribution<int> ncols_d(1, 5), nrows_d(1, 30), eol_d(0, 2), coin(0, 1);
    int ncols = ncols_d(rng), nrows = nrows_d(rng);
    std::string eol = eols[eol_d(rng)];
    std::string text = coin(rng) ? "\xEF\xBB\xBF" : "";
    for (int r = 0; r <= nrows; ++r) {
      if (r > 0 && coin(rng) && ncols > 1) text += eol;  // blank line in the middle
      for (int c = 0; c < ncols; ++c) {
        std::string spelled;
        if (r == 0) spelled = "\"col " + std::to_string(c) + " (x)\"";
        else random_field(rng, &spelled);
        // A one-column record that spells as nothing would be a blank line: quote it.
        // (Same for a whitespace-only one at the end, which the reader drops as blank.)
        if (ncols == 1 && spelled.find_first_not_of(" \t") == std::string::npos) spelled = "\"" + spelled + "\"";
        text += (c ? "," : "") + spelled;
      }
      if (r < nrows || coin(rng)) text += eol;
    }
    // Lenient cases shared with Python: literal quote in an unquoted field, text after a
    // closing quote.
    if (ncols == 2) {
      if (text.size() < eol.size() || text.compare(text.size() - eol.size(), eol.size(), eol) != 0) text += eol;
      text += std::string("ab\"c,\"q\"tail") + eol;
    }

    std::string path = dir + "/f" + std::to_string(file) + ".csv";
    write_file(path, text);
    auto t = read_csv(path);

    std::string script = dir + "/dump.py";
    write_file(script,
               "import csv, sys\n"
               "with open(sys.argv[1], encoding='utf-8-sig', newline='') as f:\n"
               "    for row in csv.reader(f):\n"
               "        if row:\n"
               "            print(' '.join(x.encode('utf-8').hex() or '-' for x in row))\n");
    std::string out;
    int rc = krill::test::run_command("/usr/bin/python3 '" + script + "' '" + path + "'", &out);
    ASSERT_EQ(rc, 0) << out;
    std::ostringstream ours;
    ours << [&] {
      std::string h;
      for (std::size_t c = 0; c < t.cols(); ++c) h += (c ? " " : "") + (t.columns()[c].empty() ? "-" : hex(t.columns()[c]));
      return h;
    }() << "\n";
    for (std::size_t r = 0; r < t.rows(); ++r) {
      for (std::size_t c = 0; c < t.cols(); ++c) {
        std::string h = hex(t.field(r, static_cast<int>(c)));
        ours << (c ? " " : "") << (h.empty() ? "-" : h);
      }
      ours << "\n";
    }
    ASSERT_EQ(ours.str(), out) << "file " << path << " (seed " << krill::test::run_seed() << ")";
  }
  std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
// Speed: ~100 MB of numbers

TEST(CsvSpeed, HundredMegabytes) {
  std::string text = "a,b,c,d,e,f,g,h,label\n";
  text.reserve(105u << 20);
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(-1000, 1000);
  char buf[64];
  std::string row;
  while (text.size() < (100u << 20)) {
    row.clear();
    for (int c = 0; c < 8; ++c) {
      int n = std::snprintf(buf, sizeof buf, "%.6g,", u(rng));
      row.append(buf, static_cast<std::size_t>(n));
    }
    row += std::to_string(rng() % 3) + "\n";
    text += row;
  }
  auto t0 = std::chrono::steady_clock::now();
  auto t = parse_csv(text, "big.csv");
  auto t1 = std::chrono::steady_clock::now();
  auto m = numeric_matrix(t, {}, "label");
  auto t2 = std::chrono::steady_clock::now();
  double parse_s = std::chrono::duration<double>(t1 - t0).count();
  double num_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf("[csv speed] %.1f MB, %zu rows: parse %.3f s (%.0f MB/s), numeric_matrix %.3f s\n",
              static_cast<double>(text.size()) / 1e6, t.rows(), parse_s, static_cast<double>(text.size()) / 1e6 / parse_s,
              num_s);
  EXPECT_EQ(m.features.shape()[0], static_cast<std::int64_t>(t.rows()));
#ifdef NDEBUG
  // Well under a second on an idle core (~0.2 s here); generous because test machines are shared.
  EXPECT_LT(parse_s, 2.0);
#endif
}
