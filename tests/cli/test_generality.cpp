// Generality of `krill train` on raw tabular CSVs other than the penguins (issue 3, "Proof:
// Generality"): tests/oracle/generality_oracle.py writes synthetic, seeded tables (string labels,
// several categorical columns whose values hold commas and quotes, numeric columns with NA / NaN /
// empty missing values, a quoted free-text column and an id column that are not used, header
// names with spaces, parentheses, '%', '$', '°', CRLF line endings in one file) and trains a
// PyTorch MLP on each with krill's recipe (pandas read, dropna on the used columns, sorted
// category and class indexes, train_test_split, StandardScaler fitted on the training split,
// Linear + ReLU layers with log_softmax, CrossEntropyLoss, Adam, shuffled batches).
//
// For each table, `krill train` with the same recipe must keep and split the same rows, find the
// same classes and categories, and end with a validation accuracy no more than kAccuracySlack
// below PyTorch's and well above the majority class; `krill predict --input` on the table's
// complete rows (raw text, as in the file) must name the classes, agree across the text, json and
// --output forms and with `--row`, and be about as accurate as the PyTorch model; on the raw
// table with missing values it must fail with a one-line error naming the line and column.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "cli/cli_helpers.hpp"
#include "krill/data/csv.hpp"
#include "support/oracle.hpp"

using krill::test::make_temp_dir;
using krill::test::run_oracle;
using krill::test::run_seed;
using namespace krill::test::cli;
using json = nlohmann::json;

namespace {

constexpr double kAccuracySlack = 0.03;   // krill >= PyTorch - 3 points (validation and all rows)
constexpr double kAboveMajority = 0.25;   // and this far above always predicting the majority class

struct Recipe {
  std::string dataset;
  int rows = 1000;
  int data_seed = 0;
  bool standardize = true;
  std::vector<int> hidden = {16, 16};
  int batch_size = 16;
  int epochs = 40;
  double lr = 0.01;
  double test_size = 0.3;
};

std::string join(const std::vector<std::string>& v, const std::string& sep = ",") {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

// One CSV record of `values` (RFC 4180 quoting), as `krill predict --row` takes it.
std::string csv_record(const std::vector<std::string>& values) {
  std::vector<std::string> fields;
  for (const auto& v : values) {
    if (v.find_first_of(",\"\r\n") == std::string::npos) {
      fields.push_back(v);
      continue;
    }
    std::string q = "\"";
    for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    fields.push_back(q + "\"");
  }
  return join(fields);
}

json last_json_line(const std::string& out, const std::string& what) {
  std::string last;
  for (const auto& line : split_lines(out))
    if (!line.empty() && line[0] == '{') last = line;
  if (last.empty()) throw std::runtime_error(what + " printed no JSON:\n" + out);
  return json::parse(last);
}

// The last row of metrics.csv: {val_accuracy, val_total}.
std::pair<double, long long> final_metrics(const std::string& path) {
  const auto lines = split_lines(read_text(path));
  if (lines.size() < 2) throw std::runtime_error(path + ": no epochs");
  krill::data::CsvTable t = krill::data::parse_csv(read_text(path), path);
  const std::size_t last = t.rows() - 1;
  return {t.number(last, t.column_index("val_accuracy")),
          static_cast<long long>(t.number(last, t.column_index("val_total")))};
}

void check_dataset(const Recipe& r) {
  const std::uint64_t seed = run_seed() % 100000;
  const std::string dir = make_temp_dir("generality-" + r.dataset);
  const std::string tag = r.dataset + " (seed " + std::to_string(seed) + ")";

  // ---- the table and PyTorch's run ----
  json spec = {{"dataset", r.dataset}, {"rows", r.rows},         {"data_seed", r.data_seed},
               {"seed", seed},         {"test_size", r.test_size}, {"standardize", r.standardize},
               {"hidden", r.hidden},   {"batch_size", r.batch_size}, {"epochs", r.epochs}, {"lr", r.lr}};
  const json torch = last_json_line(run_oracle("generality_oracle.py", {"run", dir, spec.dump()}), "generality_oracle.py");
  const std::string csv = torch["csv"], complete = torch["complete_csv"];
  const auto features = torch["features"].get<std::vector<std::string>>();
  const auto categorical = torch["categorical"].get<std::vector<std::string>>();
  const auto classes = torch["classes"].get<std::vector<std::string>>();
  const double torch_acc = torch["final_val_accuracy"];
  const long long n_val = torch["n_val"], n_train = torch["n_train"];

  // ---- krill train, same recipe ----
  std::vector<std::string> hidden;
  for (int h : r.hidden) hidden.push_back(std::to_string(h));
  const std::string model = dir + "/model";
  std::vector<std::string> args = {"train", csv, "--label", torch["label"], "--features", join(features),
                                   "--categorical", join(categorical), "--dropna", "--test-size",
                                   std::to_string(r.test_size), "--seed", std::to_string(seed), "--epochs",
                                   std::to_string(r.epochs), "--hidden", join(hidden), "--batch-size",
                                   std::to_string(r.batch_size), "--optimizer", "adam", "--lr", std::to_string(r.lr),
                                   "--shuffle", "--out", model};
  if (r.standardize) args.push_back("--standardize");
  CliResult k = run_krill(args);
  ASSERT_EQ(k.rc, 0) << k.command << "\n" << k.err << k.out;
  EXPECT_EQ(k.err, "") << tag << ": unexpected warnings";

  // The same rows kept and split as pandas/sklearn.
  char data_line[512];
  std::snprintf(data_line, sizeof data_line, "%lld rows, %lld dropped (missing values); training %lld, validation %lld rows",
                static_cast<long long>(torch["rows_read"]),
                static_cast<long long>(torch["rows_read"].get<long long>() - torch["rows_kept"].get<long long>()),
                n_train, n_val);
  EXPECT_NE(k.out.find(data_line), std::string::npos) << tag << ": expected '" << data_line << "' in:\n" << k.out;

  // The same classes and category maps (sorted order) in the model directory.
  const json cfg = json::parse(read_text(model + "/config.json"));
  const json& prep = cfg["preparation"];
  EXPECT_EQ(prep["classes"].get<std::vector<std::string>>(), classes) << tag;
  std::vector<std::string> names;
  for (const auto& f : prep["features"]) {
    names.push_back(f["name"]);
    const bool is_cat = f["categorical"].get<bool>();
    EXPECT_EQ(is_cat, torch["categories"].contains(f["name"].get<std::string>())) << tag << " " << f["name"];
    if (is_cat)
      EXPECT_EQ(f["categories"], torch["categories"][f["name"].get<std::string>()]) << tag << " " << f["name"];
  }
  EXPECT_EQ(names, features) << tag;

  // Accuracy: comparable to PyTorch's, well above the majority class.
  const auto [krill_acc, val_total] = final_metrics(model + "/metrics.csv");
  EXPECT_EQ(val_total, n_val) << tag;
  const double majority = torch["majority_val_accuracy"];
  EXPECT_GE(krill_acc, torch_acc - kAccuracySlack) << tag << ": krill " << krill_acc << ", PyTorch " << torch_acc;
  EXPECT_GE(krill_acc, majority + kAboveMajority) << tag << ": krill " << krill_acc << ", majority class " << majority;

  // ---- krill predict --input on the raw complete rows: text, json, --output ----
  const auto labels = torch["complete_labels"].get<std::vector<std::string>>();
  const std::string pred_csv = dir + "/predictions.csv";
  CliResult p = run_krill({"predict", model, "--input", complete, "--output", pred_csv});
  ASSERT_EQ(p.rc, 0) << p.command << "\n" << p.err;
  krill::data::CsvTable pt = krill::data::read_csv(pred_csv);  // must parse: class names with commas quoted
  std::vector<std::string> header = {"row", "class", "class_id"};
  for (const auto& c : classes) header.push_back("p_" + c);
  EXPECT_EQ(pt.columns(), header) << tag << ": " << pred_csv << " header";
  ASSERT_EQ(pt.rows(), labels.size()) << tag;
  std::vector<std::string> predicted;
  std::size_t right = 0;
  for (std::size_t i = 0; i < pt.rows(); ++i) {
    predicted.emplace_back(pt.field(i, 1));
    const auto id = static_cast<std::size_t>(pt.number(i, 2));
    ASSERT_LT(id, classes.size()) << tag << " row " << i + 1;
    EXPECT_EQ(predicted.back(), classes[id]) << tag << " row " << i + 1;
    double sum = 0, best = -1;
    std::size_t arg = 0;
    for (std::size_t c = 0; c < classes.size(); ++c) {
      const double pc = pt.number(i, static_cast<int>(3 + c));
      sum += pc;
      if (pc > best) best = pc, arg = c;
    }
    EXPECT_NEAR(sum, 1.0, 1e-4) << tag << " row " << i + 1;
    EXPECT_EQ(arg, id) << tag << " row " << i + 1;
    right += predicted.back() == labels[i];
  }
  const double all_acc = static_cast<double>(right) / static_cast<double>(labels.size());
  const double torch_all_acc = torch["complete_accuracy"];
  EXPECT_GE(all_acc, torch_all_acc - kAccuracySlack) << tag << ": accuracy of krill predict on all complete rows "
                                                     << all_acc << ", PyTorch's model " << torch_all_acc;

  CliResult text = run_krill({"predict", model, "--input", complete});
  ASSERT_EQ(text.rc, 0) << text.command << "\n" << text.err;
  std::size_t n_text = 0;
  for (const auto& line : split_lines(text.out)) {
    const auto at = line.find("Predicted class: ");
    if (at == std::string::npos) continue;
    ASSERT_LT(n_text, predicted.size()) << tag;
    EXPECT_EQ(line.compare(at + 17, predicted[n_text].size() + 5, predicted[n_text] + " (id "), 0)
        << tag << " text row " << n_text + 1 << ": " << line;
    ++n_text;
  }
  EXPECT_EQ(n_text, predicted.size()) << tag;

  CliResult js = run_krill({"predict", model, "--input", complete, "--format", "json"});
  ASSERT_EQ(js.rc, 0) << js.command << "\n" << js.err;
  const auto js_lines = split_lines(js.out);
  ASSERT_EQ(js_lines.size(), predicted.size()) << tag;
  for (std::size_t i = 0; i < js_lines.size(); ++i) {
    const json j = json::parse(js_lines[i]);
    EXPECT_EQ(j["class"], predicted[i]) << tag << " json row " << i + 1;
    EXPECT_EQ(j["probabilities"].size(), classes.size()) << tag << " json row " << i + 1;
  }

  // --row with the first complete row's raw values (CSV-quoted categories) = its --input prediction.
  const auto first = torch["first_complete_row"].get<std::vector<std::string>>();
  CliResult row = run_krill({"predict", model, "--row", csv_record(first), "--format", "json"});
  ASSERT_EQ(row.rc, 0) << row.command << "\n" << row.err;
  EXPECT_EQ(json::parse(row.out)["class"], predicted[0]) << tag << ": --row " << csv_record(first);

  // The raw table itself has rows with missing features: a one-line error naming line and column.
  CliResult raw = run_krill({"predict", model, "--input", csv});
  EXPECT_TRUE(raw.rc == 1 || raw.rc == 2) << raw.command << " -> " << raw.rc << "\n" << raw.err;
  EXPECT_EQ(split_lines(raw.err).size(), 1u) << raw.err;
  EXPECT_NE(raw.err.find(" line "), std::string::npos) << raw.err;
  EXPECT_NE(raw.err.find("missing"), std::string::npos) << raw.err;

  std::printf("[%s] %s: %lld rows kept of %lld, %zu classes; final validation accuracy krill %.4f, PyTorch %.4f "
              "(majority class %.4f); krill predict on all %zu complete rows %.4f, PyTorch's model %.4f\n",
              tag.c_str(), torch["newline"].get<std::string>().c_str(), torch["rows_kept"].get<long long>(),
              torch["rows_read"].get<long long>(), classes.size(), krill_acc, torch_acc, majority, labels.size(), all_acc,
              torch_all_acc);
  ::testing::Test::RecordProperty(r.dataset + "_krill_val_accuracy", std::to_string(krill_acc));
  ::testing::Test::RecordProperty(r.dataset + "_pytorch_val_accuracy", std::to_string(torch_acc));
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);  // kept for inspection when something failed
}

}  // namespace

// 4 plans; Region and Channel categories with commas and quotes; NA / NaN / empty in Age, Income
// and Channel; multi-line quoted notes; an id column; '$' and '/' in header names.
TEST(Generality, CustomersStandardized) {
  Recipe r;
  r.dataset = "customers";
  r.rows = 1200;
  r.data_seed = 11;
  check_dataset(r);
}

// 3 states from a non-linear rule; CRLF line endings; a header with '°' and '%'; features of very
// different scales (vibration ~0.004, pressure ~100).
TEST(Generality, SensorsCrlfStandardized) {
  Recipe r;
  r.dataset = "sensors";
  r.rows = 1000;
  r.data_seed = 12;
  r.hidden = {32};
  r.epochs = 50;
  check_dataset(r);
}

// 4 species named with spaces and a comma; integer-looking category codes (sorted as text);
// features of order 1, trained without --standardize.
TEST(Generality, AnimalsUnscaled) {
  Recipe r;
  r.dataset = "animals";
  r.rows = 800;
  r.data_seed = 13;
  r.standardize = false;
  r.hidden = {16, 16};
  r.batch_size = 20;
  r.epochs = 40;
  check_dataset(r);
}
