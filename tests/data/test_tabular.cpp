// Tabular preparation against pandas + scikit-learn (tests/oracle/tabular_oracle.py): the penguin
// lab's prepared tensors bit for bit, train_test_split, StandardScaler, string labels, several
// categorical columns, dropna on the used columns only, pre-split data, leakage; the pipeline's
// transform_row / transform_table / class_id / JSON; and every error message.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "krill/data/csv.hpp"
#include "krill/data/tabular.hpp"
#include "support/oracle.hpp"

using krill::FormatError;
using krill::Tensor;
using krill::ValueError;
using krill::data::CsvTable;
using krill::data::FeaturePipeline;
using krill::data::parse_csv;
using krill::data::prepare;
using krill::data::prepare_presplit;
using krill::data::PreparedData;
using krill::data::read_csv;
using krill::data::TabularSpec;
using krill::data::train_test_split_indices;
using json = nlohmann::json;

namespace {

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

std::string penguins_csv() { return krill::test::source_dir() + "/data/penguins.csv"; }

TabularSpec lab_spec() {
  TabularSpec spec;
  spec.label = "Species";
  spec.categorical = {"Island"};
  spec.scale = {{"FlipperLength", 0.1}, {"BodyMass", 0.01}};
  spec.oversample = 4;
  spec.test_size = 0.3;
  spec.seed = 0;
  return spec;
}

template <typename T>
std::vector<T> read_bin(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

json read_json(const std::string& path) {
  std::ifstream f(path);
  return json::parse(f);
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary);
  f << content;
}

std::uint32_t bits(float v) {
  std::uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

// Float32 tensor equals the oracle's array bit for bit.
void expect_bits_equal(const Tensor& t, const std::vector<float>& expected, const std::string& what) {
  std::vector<float> got = t.to_vector<float>();
  ASSERT_EQ(got.size(), expected.size()) << what;
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (bits(got[i]) != bits(expected[i])) {
      if (mismatches++ < 5)
        ADD_FAILURE() << what << "[" << i << "]: krill " << got[i] << " (0x" << std::hex << bits(got[i]) << ") vs pandas "
                      << expected[i] << " (0x" << bits(expected[i]) << std::dec << ")";
    }
  EXPECT_EQ(mismatches, 0u) << what;
}

void expect_labels_equal(const Tensor& t, const std::vector<std::int64_t>& expected, const std::string& what) {
  EXPECT_EQ(t.to_vector<std::int64_t>(), expected) << what;
}

// Runs the oracle's general mode on `spec` and compares everything with `d`.
json check_general(const PreparedData& d, const json& spec, const std::string& tag) {
  std::string dir = krill::test::make_temp_dir(tag);
  krill::test::run_oracle("tabular_oracle.py", {"general", dir, spec.dump()});
  json meta = read_json(dir + "/meta.json");
  EXPECT_EQ(d.train_x.size(0), meta["n_train"].get<std::int64_t>());
  EXPECT_EQ(d.val_x.size(0), meta["n_val"].get<std::int64_t>());
  expect_bits_equal(d.train_x, read_bin<float>(dir + "/train_x.f32"), tag + " train_x");
  expect_bits_equal(d.val_x, read_bin<float>(dir + "/val_x.f32"), tag + " val_x");
  expect_labels_equal(d.train_y, read_bin<std::int64_t>(dir + "/train_y.i64"), tag + " train_y");
  expect_labels_equal(d.val_y, read_bin<std::int64_t>(dir + "/val_y.i64"), tag + " val_y");
  EXPECT_EQ(d.pipeline.classes, meta["classes"].get<std::vector<std::string>>());
  EXPECT_EQ(d.pipeline.integer_labels, meta["integer_labels"].get<bool>());
  for (const auto& tf : d.pipeline.features)
    if (tf.categorical) EXPECT_EQ(tf.categories, meta["categories"][tf.name].get<std::vector<std::string>>()) << tf.name;
  EXPECT_EQ(d.leaked_validation_rows, meta["leaked"].get<std::size_t>());
  if (meta.contains("mean")) {
    for (std::size_t j = 0; j < d.pipeline.features.size(); ++j) {
      EXPECT_EQ(d.pipeline.features[j].mean, meta["mean"][j].get<double>()) << "mean " << j;
      EXPECT_EQ(d.pipeline.features[j].std, meta["std"][j].get<double>()) << "std " << j;
    }
  }
  std::filesystem::remove_all(dir);
  return meta;
}

// A synthetic table: string labels, two categorical columns, decimals, missing values in used
// and unused columns, a quoted text column with commas and quotes (not used).
std::string synthetic_csv(unsigned seed, int rows) {
  std::mt19937 g(seed);
  const char* colors[] = {"red", "green", "blue", "Amber"};
  const char* sizes[] = {"S", "M", "L", "XL", "XXS"};
  const char* kinds[] = {"cat", "ant", "bee", "dog"};
  std::ostringstream s;
  s << "color,weight,notes,size,height (cm),kind\n";
  for (int i = 0; i < rows; ++i) {
    char w[32], h[32];
    std::snprintf(w, sizeof w, "%.2f", std::uniform_real_distribution<double>(0.5, 90.0)(g));
    std::snprintf(h, sizeof h, "%.3f", std::uniform_real_distribution<double>(100.0, 2500.0)(g));
    bool miss_w = g() % 13 == 0, miss_notes = g() % 4 == 0, miss_size = g() % 29 == 0;
    s << colors[g() % 4] << "," << (miss_w ? (g() % 2 ? "NA" : "") : w) << ","
      << (miss_notes ? "" : "\"note " + std::to_string(i) + ", with \"\"quotes\"\"\"") << ","
      << (miss_size ? "NA" : sizes[g() % 5]) << "," << h << "," << kinds[g() % 4] << "\n";
  }
  return s.str();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The lab, against pandas

TEST(Tabular, LabMatchesPandasBitForBit) {
  std::string dir = krill::test::make_temp_dir("tabular-lab");
  krill::test::run_oracle("tabular_oracle.py", {"lab", penguins_csv(), dir});
  json meta = read_json(dir + "/meta.json");

  PreparedData d = prepare(read_csv(penguins_csv()), lab_spec());
  EXPECT_EQ(d.train_x.shape(), (krill::Shape{957, 5}));
  EXPECT_EQ(d.val_x.shape(), (krill::Shape{411, 5}));
  EXPECT_EQ(d.train_y.shape(), (krill::Shape{957}));
  EXPECT_EQ(d.val_y.shape(), (krill::Shape{411}));
  EXPECT_EQ(d.train_x.dtype(), krill::DType::Float32);
  EXPECT_EQ(d.train_y.dtype(), krill::DType::Int64);
  expect_bits_equal(d.train_x, read_bin<float>(dir + "/train_x.f32"), "train_x");
  expect_bits_equal(d.val_x, read_bin<float>(dir + "/val_x.f32"), "val_x");
  expect_labels_equal(d.train_y, read_bin<std::int64_t>(dir + "/train_y.i64"), "train_y");
  expect_labels_equal(d.val_y, read_bin<std::int64_t>(dir + "/val_y.i64"), "val_y");

  EXPECT_EQ(d.rows_read, 344u);
  EXPECT_EQ(d.rows_dropped, 2u);
  EXPECT_EQ(d.rows_after_oversampling, 1368u);
  // Oversampling before the split leaks: most validation rows are copies of training rows.
  EXPECT_GT(d.leaked_validation_rows, 0u);
  EXPECT_EQ(d.leaked_validation_rows, meta["leaked"].get<std::size_t>());

  const FeaturePipeline& p = d.pipeline;
  EXPECT_EQ(p.label, "Species");
  EXPECT_TRUE(p.integer_labels);
  EXPECT_EQ(p.classes, (std::vector<std::string>{"0", "1", "2"}));
  ASSERT_EQ(p.num_features(), 5);
  EXPECT_EQ(p.feature_names(),
            (std::vector<std::string>{"Island", "CulmenLength", "CulmenDepth", "FlipperLength", "BodyMass"}));
  EXPECT_TRUE(p.features[0].categorical);
  EXPECT_EQ(p.features[0].categories, (std::vector<std::string>{"Biscoe", "Dream", "Torgersen"}));
  EXPECT_EQ(p.features[3].scale, 0.1);
  EXPECT_EQ(p.features[4].scale, 0.01);
  for (const auto& tf : p.features) EXPECT_FALSE(tf.standardized);

  // The bundled pre-split files were written by the same recipe (as %.9g text).
  auto tr = read_csv(krill::test::source_dir() + "/data/penguins_train.csv");
  ASSERT_EQ(tr.rows(), 957u);
  auto x = d.train_x.to_vector<float>();
  for (std::size_t r = 0; r < tr.rows(); ++r)
    for (int c = 0; c < 5; ++c) ASSERT_EQ(x[r * 5 + c], static_cast<float>(tr.number(r, c))) << "row " << r;
  std::filesystem::remove_all(dir);
}

TEST(Tabular, LabStandardizedMatchesStandardScaler) {
  std::string dir = krill::test::make_temp_dir("tabular-lab-std");
  krill::test::run_oracle("tabular_oracle.py", {"lab", penguins_csv(), dir});
  json meta = read_json(dir + "/meta.json");
  TabularSpec spec = lab_spec();
  spec.standardize = true;
  PreparedData d = prepare(read_csv(penguins_csv()), spec);
  for (std::size_t j = 0; j < 5; ++j) {
    const auto& tf = d.pipeline.features[j];
    EXPECT_TRUE(tf.standardized);
    // Same float64 mean_ and scale_ (population std) as scikit-learn, bit for bit.
    EXPECT_EQ(tf.mean, meta["mean"][j].get<double>()) << tf.name;
    EXPECT_EQ(tf.std, meta["std"][j].get<double>()) << tf.name;
  }
  expect_bits_equal(d.train_x, read_bin<float>(dir + "/std_train_x.f32"), "standardized train_x");
  expect_bits_equal(d.val_x, read_bin<float>(dir + "/std_val_x.f32"), "standardized val_x");
  EXPECT_EQ(d.leaked_validation_rows, meta["std_leaked"].get<std::size_t>());
  std::filesystem::remove_all(dir);
}

TEST(Tabular, SplitMatchesSklearn) {
  const std::vector<std::tuple<std::int64_t, double, std::uint64_t>> cases = {
      {1368, 0.3, 0},  {342, 0.3, 0},   {10, 0.3, 0},        {2, 0.5, 0},      {7, 0.5, 123},
      {100, 0.25, 42}, {1000, 0.1, 1},  {5, 0.7, 4294967295}, {65537, 0.2, 7}, {300000, 0.33, 2024},
      {3, 0.34, 99},   {1024, 0.5, 31}, {129, 0.01, 5},      {100, 0.07, 0}};
  json arr = json::array();
  for (auto& [n, t, s] : cases) arr.push_back({n, t, s});
  std::string dir = krill::test::make_temp_dir("tabular-split");
  krill::test::run_oracle("tabular_oracle.py", {"split", dir, arr.dump()});
  for (std::size_t k = 0; k < cases.size(); ++k) {
    auto [n, t, s] = cases[k];
    auto [train, test] = train_test_split_indices(n, t, s);
    EXPECT_EQ(train, read_bin<std::int64_t>(dir + "/split" + std::to_string(k) + "_train.i64")) << "n=" << n << " seed=" << s;
    EXPECT_EQ(test, read_bin<std::int64_t>(dir + "/split" + std::to_string(k) + "_test.i64")) << "n=" << n << " seed=" << s;
  }
  // ceil(0.07 * 100) is 8 in floating point (0.07 * 100 = 7.000000000000001), as in
  // scikit-learn (case {100, 0.07, 0} above).
  EXPECT_EQ(train_test_split_indices(100, 0.07, 0).second.size(), 8u);
  // Seeds above 32 bits use their low 32 bits (numpy would refuse them).
  EXPECT_EQ(train_test_split_indices(50, 0.3, (std::uint64_t{1} << 32) + 5), train_test_split_indices(50, 0.3, 5));
  std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
// Float behaviour of scaling

TEST(Tabular, ScalingCastsToFloat32FirstLikePandas) {
  // pandas: float32(float64(float32(x)) / 10). Multiplying by 0.1 instead of dividing by 10
  // differs in float64 for 90 of the 342 FlipperLength values, but never after the float32 cast.
  auto t = read_csv(penguins_csv());
  int flipper = t.column_index("FlipperLength"), mass = t.column_index("BodyMass");
  int double_differs = 0;
  for (std::size_t r = 0; r < t.rows(); ++r) {
    for (auto [c, d] : {std::pair{flipper, 10.0}, std::pair{mass, 100.0}}) {
      if (t.is_missing(r, c)) continue;
      double x = static_cast<double>(static_cast<float>(t.number(r, c)));
      if (x * (1.0 / d) != x / d) ++double_differs;
      EXPECT_EQ(bits(static_cast<float>(x * (1.0 / d))), bits(static_cast<float>(x / d))) << t.where(r, c);
    }
  }
  EXPECT_GT(double_differs, 0);

  // Casting to float32 first matters for decimals: 181.3 * 0.1 in double then float32 is not
  // pandas' value; krill gives pandas' value.
  TabularSpec spec;
  spec.label = "y";
  spec.scale = {{"x", 0.1}};
  spec.oversample = 1;
  std::string csv = "x,y\n";
  int found = 0;
  std::vector<double> values;
  for (int i = 0; i < 4000; ++i) {
    double v = 1000.0 + i * 0.1;
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", v);
    double parsed = std::strtod(b, nullptr);
    float pandas = static_cast<float>(static_cast<double>(static_cast<float>(parsed)) / 10);
    float naive = static_cast<float>(parsed * 0.1);
    if (bits(pandas) != bits(naive) && found < 50) {
      ++found;
      csv += std::string(b) + "," + std::to_string(found % 2) + "\n";
      values.push_back(parsed);
    }
  }
  ASSERT_GT(found, 10);
  PreparedData d = prepare(parse_csv(csv, "decimals.csv"), spec);
  auto p = d.pipeline;
  for (double v : values) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", v);
    float got = p.transform_row({b})[0];
    EXPECT_EQ(bits(got), bits(static_cast<float>(static_cast<double>(static_cast<float>(v)) / 10))) << b;
    EXPECT_NE(bits(got), bits(static_cast<float>(v * 0.1))) << b;
  }
}

// ---------------------------------------------------------------------------------------------
// The pipeline on new rows

TEST(Tabular, TransformRowLabPenguin) {
  PreparedData d = prepare(read_csv(penguins_csv()), lab_spec());
  std::vector<float> x = d.pipeline.transform_row({"Dream", "50.4", "15.3", "200", "5000"});
  EXPECT_EQ(x, (std::vector<float>{1.0f, 50.4f, 15.3f, 20.0f, 50.0f}));
  // Spaces around values are ignored.
  EXPECT_EQ(d.pipeline.transform_row({" Dream", " 50.4 ", "15.3", "+200", "5e3"}), x);
  EXPECT_EQ(d.pipeline.class_id("2"), 2);
  EXPECT_EQ(d.pipeline.class_id(" 1 "), 1);
  expect_error<ValueError>([&] { d.pipeline.class_id("3"); }, {"label '3' is not a class of 'Species'", "0, 1, 2"});
  expect_error<ValueError>([&] { d.pipeline.class_id("Adelie"); }, {"'Adelie'"});
}

TEST(Tabular, TransformTableMatchesPrepare) {
  // penguins.csv without its incomplete rows: transform_table's rows are prepare's rows, which
  // the split put in this order.
  std::ifstream f(penguins_csv());
  std::string line, text;
  while (std::getline(f, line))
    if (line.find(",,") == std::string::npos) text += line + "\n";
  CsvTable complete = parse_csv(text, "complete.csv");
  ASSERT_EQ(complete.rows(), 342u);
  for (bool standardize : {false, true}) {
    TabularSpec spec = lab_spec();
    spec.oversample = 1;
    spec.standardize = standardize;
    PreparedData d = prepare(read_csv(penguins_csv()), spec);
    Tensor all = d.pipeline.transform_table(complete);
    ASSERT_EQ(all.shape(), (krill::Shape{342, 5}));
    auto [train, test] = train_test_split_indices(342, 0.3, 0);
    auto a = all.to_vector<float>(), tx = d.train_x.to_vector<float>(), vx = d.val_x.to_vector<float>();
    for (std::size_t i = 0; i < train.size(); ++i)
      for (int j = 0; j < 5; ++j) ASSERT_EQ(bits(tx[i * 5 + j]), bits(a[train[i] * 5 + j])) << i;
    for (std::size_t i = 0; i < test.size(); ++i)
      for (int j = 0; j < 5; ++j) ASSERT_EQ(bits(vx[i * 5 + j]), bits(a[test[i] * 5 + j])) << i;
    // transform_row agrees with transform_table.
    for (std::size_t r = 0; r < 342; r += 37) {
      std::vector<std::string> raw;
      for (const auto& name : d.pipeline.feature_names()) raw.emplace_back(complete.field(r, complete.column_index(name)));
      auto row = d.pipeline.transform_row(raw);
      for (int j = 0; j < 5; ++j) EXPECT_EQ(bits(row[j]), bits(a[r * 5 + j]));
    }
    // Column order of the table does not matter, extra columns are ignored.
    CsvTable shuffled = parse_csv("Extra,BodyMass,Species,FlipperLength,CulmenDepth,CulmenLength,Island\n"
                                  "x,5000,9,200,15.3,50.4,Dream\n",
                                  "new.csv");
    EXPECT_EQ(d.pipeline.transform_table(shuffled).to_vector<float>(),
              d.pipeline.transform_row({"Dream", "50.4", "15.3", "200", "5000"}));
  }
}

// ---------------------------------------------------------------------------------------------
// Other tables, against pandas

TEST(Tabular, StringLabelsSeveralCategoricalsDropnaUsedColumnsOnly) {
  std::string dir = krill::test::make_temp_dir("tabular-synth");
  std::string csv = dir + "/synthetic.csv";
  write_file(csv, synthetic_csv(11, 500));
  CsvTable table = read_csv(csv);
  for (bool standardize : {false, true}) {
    TabularSpec spec;
    spec.label = "kind";
    spec.features = {"color", "weight", "size", "height (cm)"};
    spec.categorical = {"size", "color"};
    spec.scale = {{"weight", 2.5}, {"height (cm)", 0.01}, {"size", 0.5}};
    spec.oversample = 2;
    spec.test_size = 0.25;
    spec.seed = 7;
    spec.standardize = standardize;
    PreparedData d = prepare(table, spec);
    json oracle_spec = {{"csv", csv},
                        {"label", "kind"},
                        {"features", spec.features},
                        {"categorical", spec.categorical},
                        {"scale", {{"weight", 2.5}, {"size", 0.5}}},
                        {"divide", {{"height (cm)", 100}}},
                        {"oversample", 2},
                        {"test_size", 0.25},
                        {"seed", 7},
                        {"standardize", standardize}};
    json meta = check_general(d, oracle_spec, standardize ? "tabular-synth-std" : "tabular-synth-plain");
    EXPECT_FALSE(d.pipeline.integer_labels);
    EXPECT_EQ(d.pipeline.classes, (std::vector<std::string>{"ant", "bee", "cat", "dog"}));
    EXPECT_EQ(d.pipeline.features[0].categories, (std::vector<std::string>{"Amber", "blue", "green", "red"}));
    EXPECT_EQ(d.pipeline.features[2].categories, (std::vector<std::string>{"L", "M", "S", "XL", "XXS"}));
    // Only rows missing weight or size are dropped; missing notes (unused) keep their rows.
    std::size_t expect_dropped = 0;
    int w = table.column_index("weight"), s = table.column_index("size");
    for (std::size_t r = 0; r < table.rows(); ++r) expect_dropped += table.is_missing(r, w) || table.is_missing(r, s);
    EXPECT_EQ(d.rows_dropped, expect_dropped);
    EXPECT_GT(expect_dropped, 0u);
    EXPECT_EQ(d.rows_read - d.rows_dropped, meta["rows_kept"].get<std::size_t>());
    EXPECT_EQ(d.rows_after_oversampling, 2 * (d.rows_read - d.rows_dropped));
    EXPECT_EQ(d.pipeline.class_id("dog"), 3);
  }
  // With the notes column used, its missing values drop rows too.
  TabularSpec spec;
  spec.label = "kind";
  spec.categorical = {"color", "size", "notes"};
  PreparedData all = prepare(table, spec);
  EXPECT_GT(all.rows_dropped, 100u);
  EXPECT_EQ(all.pipeline.num_features(), 5);
  std::filesystem::remove_all(dir);
}

TEST(Tabular, DefaultFeaturesAndNoOversamplingAgainstPandas) {
  TabularSpec spec;
  spec.label = "Species";
  spec.categorical = {"Island"};
  spec.seed = 3;
  spec.test_size = 0.2;
  spec.standardize = true;
  PreparedData d = prepare(read_csv(penguins_csv()), spec);
  json meta = check_general(d,
                            {{"csv", penguins_csv()},
                             {"label", "Species"},
                             {"categorical", {"Island"}},
                             {"seed", 3},
                             {"test_size", 0.2},
                             {"standardize", true}},
                            "tabular-default-o");
  EXPECT_EQ(d.leaked_validation_rows, 0u);  // no duplicate penguins without oversampling
}

TEST(Tabular, ConstantAndIntegerColumnsAgainstPandas) {
  // A constant column keeps std = 1 (StandardScaler's near-constant rule), an integer column
  // (int64 in pandas), a negative scale.
  std::string dir = krill::test::make_temp_dir("tabular-const");
  std::mt19937 g(3);
  std::string text = "c,k,x,label\n";
  for (int i = 0; i < 230; ++i)
    text += "3.7," + std::to_string(static_cast<int>(g() % 1000) - 500) + "," + std::to_string((g() % 100000) / 997.0) +
            "," + std::to_string(g() % 3) + "\n";
  write_file(dir + "/const.csv", text);
  TabularSpec spec;
  spec.label = "label";
  spec.scale = {{"k", -0.25}, {"x", 0.001}};
  spec.standardize = true;
  spec.seed = 12345;
  spec.test_size = 0.4;
  spec.oversample = 2;
  PreparedData d = prepare(read_csv(dir + "/const.csv"), spec);
  EXPECT_EQ(d.pipeline.features[0].std, 1.0);
  EXPECT_EQ(d.pipeline.features[0].mean, static_cast<double>(3.7f));
  check_general(d,
                {{"csv", dir + "/const.csv"},
                 {"label", "label"},
                 {"scale", {{"k", -0.25}}},
                 {"divide", {{"x", 1000}}},
                 {"standardize", true},
                 {"seed", 12345},
                 {"test_size", 0.4},
                 {"oversample", 2}},
                "tabular-const-o");
  std::filesystem::remove_all(dir);
}

TEST(Tabular, PresplitFitsOnTrainingOnly) {
  std::string dir = krill::test::make_temp_dir("tabular-presplit");
  std::string all = synthetic_csv(5, 400);
  // First 300 rows train, the rest validation.
  std::istringstream in(all);
  std::string header, line, train_text, val_text;
  std::getline(in, header);
  train_text = header + "\n";
  int i = 0;
  while (std::getline(in, line)) (i++ < 300 ? train_text : val_text) += line + "\n";
  write_file(dir + "/train.csv", train_text);
  write_file(dir + "/val.csv", header + "\n" + val_text);
  TabularSpec spec;
  spec.label = "kind";
  spec.features = {"color", "weight", "size", "height (cm)"};
  spec.categorical = {"color", "size"};
  spec.scale = {{"height (cm)", 0.001}};
  spec.standardize = true;
  spec.oversample = 3;
  PreparedData d = prepare_presplit(read_csv(dir + "/train.csv"), read_csv(dir + "/val.csv"), spec);
  check_general(d,
                {{"csv", dir + "/train.csv"},
                 {"val_csv", dir + "/val.csv"},
                 {"label", "kind"},
                 {"features", spec.features},
                 {"categorical", spec.categorical},
                 {"divide", {{"height (cm)", 1000}}},
                 {"oversample", 3},
                 {"standardize", true}},
                "tabular-presplit-o");
  EXPECT_EQ(d.rows_read, 400u);
  EXPECT_EQ(d.rows_after_oversampling, static_cast<std::size_t>(d.train_x.size(0)));
  EXPECT_EQ(d.train_x.size(0) % 3, 0);

  // A validation category or class that training lacks is an error naming the line.
  write_file(dir + "/val2.csv", header + "\nred,1.5,,S,200.5,cat\npurple,2.5,,M,300.5,cat\n");
  expect_error<FormatError>(
      [&] { prepare_presplit(read_csv(dir + "/train.csv"), read_csv(dir + "/val2.csv"), spec); },
      {"val2.csv line 3, column 'color'", "category 'purple' does not occur in the training data",
       "Amber, blue, green, red"});
  write_file(dir + "/val3.csv", header + "\nred,1.5,,S,200.5,cat\nred,2.5,,M,300.5,zebra\n");
  expect_error<FormatError>(
      [&] { prepare_presplit(read_csv(dir + "/train.csv"), read_csv(dir + "/val3.csv"), spec); },
      {"val3.csv line 3, column 'kind'", "class 'zebra' does not occur in the training data", "ant, bee, cat, dog"});
  write_file(dir + "/val4.csv", "color,weight,size,kind\nred,1.5,S,cat\n");
  expect_error<ValueError>([&] { prepare_presplit(read_csv(dir + "/train.csv"), read_csv(dir + "/val4.csv"), spec); },
                           {"val4.csv: no feature column 'height (cm)'"});
  std::filesystem::remove_all(dir);
}

TEST(Tabular, IntegerAndStringLabels) {
  TabularSpec spec;
  spec.label = "y";
  spec.test_size = 0.5;
  // Integer labels are class ids, gaps included.
  auto t = parse_csv("x,y\n1,0\n2,2\n3,5\n4,0\n5,2\n6,5\n7,0\n8,2\n9,5\n10,0\n11,2\n12,5\n", "ids.csv");
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    spec.seed = seed;
    try {
      PreparedData d = prepare(t, spec);
      EXPECT_TRUE(d.pipeline.integer_labels);
      EXPECT_EQ(d.pipeline.classes, (std::vector<std::string>{"0", "1", "2", "3", "4", "5"}));
      auto y = d.train_y.to_vector<std::int64_t>();
      auto x = d.train_x.to_vector<float>();
      const std::int64_t ids[] = {0, 2, 5};  // x = 1, 2, 3, 4, ... has label 0, 2, 5, 0, ...
      for (std::size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], ids[(static_cast<int>(x[i]) - 1) % 3]);
      break;
    } catch (const ValueError&) {
      // a class landed in validation only with this seed; try the next
    }
  }
  // Listing the label as categorical makes its values names.
  spec.seed = 1;
  spec.categorical = {"y"};
  auto t2 = parse_csv("x,y\n1,10\n2,9\n3,10\n4,9\n5,10\n6,9\n7,10\n8,9\n", "names.csv");
  PreparedData d2 = prepare(t2, spec);
  EXPECT_FALSE(d2.pipeline.integer_labels);
  EXPECT_EQ(d2.pipeline.classes, (std::vector<std::string>{"10", "9"}));
  // Negative integers are names, in byte order.
  spec.categorical.clear();
  auto t3 = parse_csv("x,y\n1,-1\n2,1\n3,-1\n4,1\n5,-1\n6,1\n7,-1\n8,1\n", "signs.csv");
  PreparedData d3 = prepare(t3, spec);
  EXPECT_FALSE(d3.pipeline.integer_labels);
  EXPECT_EQ(d3.pipeline.classes, (std::vector<std::string>{"-1", "1"}));
  EXPECT_EQ(d3.pipeline.class_id("1"), 1);
  // "2.0" is an integer label.
  auto t4 = parse_csv("x,y\n1,0.0\n2,1.0\n3,0\n4,1\n5,0\n6,1\n", "floats.csv");
  EXPECT_TRUE(prepare(t4, spec).pipeline.integer_labels);
}

// ---------------------------------------------------------------------------------------------
// JSON

TEST(Tabular, JsonRoundTrip) {
  for (bool standardize : {false, true}) {
    TabularSpec spec = lab_spec();
    spec.standardize = standardize;
    FeaturePipeline p = prepare(read_csv(penguins_csv()), spec).pipeline;
    std::string text = p.to_json();
    json j = json::parse(text);
    EXPECT_EQ(j["format"], "krill.tabular");
    EXPECT_EQ(j["version"], 1);
    EXPECT_EQ(j["features"][0]["categories"], json({"Biscoe", "Dream", "Torgersen"}));
    FeaturePipeline q = FeaturePipeline::from_json(text, "model/config.json");
    EXPECT_EQ(q.label, p.label);
    EXPECT_EQ(q.classes, p.classes);
    EXPECT_EQ(q.integer_labels, p.integer_labels);
    ASSERT_EQ(q.features.size(), p.features.size());
    for (std::size_t i = 0; i < p.features.size(); ++i) {
      EXPECT_EQ(q.features[i].name, p.features[i].name);
      EXPECT_EQ(q.features[i].categorical, p.features[i].categorical);
      EXPECT_EQ(q.features[i].categories, p.features[i].categories);
      EXPECT_EQ(q.features[i].scale, p.features[i].scale);
      EXPECT_EQ(q.features[i].standardized, p.features[i].standardized);
      EXPECT_EQ(q.features[i].mean, p.features[i].mean);  // exact: shortest round-trip doubles
      EXPECT_EQ(q.features[i].std, p.features[i].std);
    }
    EXPECT_EQ(q.transform_row({"Dream", "50.4", "15.3", "200", "5000"}),
              p.transform_row({"Dream", "50.4", "15.3", "200", "5000"}));
    EXPECT_EQ(q.to_json(), text);
  }
}

TEST(Tabular, JsonErrors) {
  FeaturePipeline p = prepare(read_csv(penguins_csv()), lab_spec()).pipeline;
  const json good = json::parse(p.to_json());
  auto bad = [&](const std::function<void(json&)>& edit, const std::vector<std::string>& parts) {
    json j = good;
    edit(j);
    expect_error<FormatError>([&] { FeaturePipeline::from_json(j.dump(), "m/config.json"); }, parts);
  };
  expect_error<FormatError>([&] { FeaturePipeline::from_json("{\"label\": ", "m/config.json"); },
                            {"m/config.json", "not valid JSON"});
  expect_error<FormatError>([&] { FeaturePipeline::from_json("[1, 2]", "m/config.json"); }, {"must be a JSON object"});
  bad([](json& j) { j.erase("label"); }, {"m/config.json", "'label' is missing"});
  bad([](json& j) { j.erase("format"); }, {"'format' is missing"});
  bad([](json& j) { j["format"] = "other"; }, {"'format' is 'other'"});
  bad([](json& j) { j["version"] = 2; }, {"'version' is 2", "newer krill"});
  bad([](json& j) { j["classes"] = "0,1,2"; }, {"'classes' must be an array, not string"});
  bad([](json& j) { j["classes"] = {"0", 1}; }, {"'classes[1]' must be a string, not number"});
  bad([](json& j) { j["classes"] = {"0"}; }, {"at least 2 classes"});
  bad([](json& j) { j["classes"] = {"0", "2"}; }, {"must be \"0\", \"1\""});
  bad([](json& j) { j["classes"] = {"a", "a"}; j["integer_labels"] = false; }, {"lists 'a' twice"});
  bad([](json& j) { j["integer_labels"] = "yes"; }, {"'integer_labels' must be a boolean, not string"});
  bad([](json& j) { j["features"] = json::array(); }, {"'features' is empty"});
  bad([](json& j) { j["features"][1] = 3; }, {"'features[1]' must be an object"});
  bad([](json& j) { j["features"][1].erase("scale"); }, {"'features[1].scale' is missing (expected a number)"});
  bad([](json& j) { j["features"][1]["scale"] = "big"; }, {"'features[1].scale' must be a number, not string"});
  bad([](json& j) { j["features"][1]["scale"] = 0; }, {"'features[1].scale' must be a finite non-zero number"});
  bad([](json& j) { j["features"][2]["name"] = "Island"; }, {"'features[2].name'", "names two features"});
  bad([](json& j) { j["features"][0]["categories"] = {"Dream", "Biscoe"}; }, {"must be sorted and distinct"});
  bad([](json& j) { j["features"][0].erase("categories"); }, {"'features[0].categories' is missing"});
  bad([](json& j) { j["features"][3]["standardized"] = true; }, {"'features[3].mean' is missing"});
  bad([](json& j) { j["features"][3]["standardized"] = true; j["features"][3]["mean"] = 1; j["features"][3]["std"] = 0; },
      {"'features[3].std' must be a finite positive number"});
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST(Tabular, ColumnErrors) {
  CsvTable t = read_csv(penguins_csv());
  auto with = [&](const std::function<void(TabularSpec&)>& edit) {
    TabularSpec s = lab_spec();
    edit(s);
    return [s, &t] { prepare(t, s); };
  };
  expect_error<ValueError>(with([](TabularSpec& s) { s.label = "Specis"; }),
                           {"penguins.csv: no label column 'Specis'", "columns are: Island,", "did you mean 'Species'?"});
  expect_error<ValueError>(with([](TabularSpec& s) { s.label = ""; }), {"no label column given", "--label"});
  expect_error<ValueError>(with([](TabularSpec& s) { s.features = {"Island", "CulmenLen"}; }),
                           {"no feature column 'CulmenLen'", "did you mean 'CulmenLength'?"});
  expect_error<ValueError>(with([](TabularSpec& s) { s.categorical = {"island"}; }),
                           {"no categorical column 'island'", "did you mean 'Island'?"});
  expect_error<ValueError>(with([](TabularSpec& s) { s.scale["Flipper Length"] = 0.1; }),
                           {"no scale column 'Flipper Length'", "did you mean 'FlipperLength'?"});
  expect_error<ValueError>(with([](TabularSpec& s) { s.features = {"Island", "Species"}; }),
                           {"column 'Species' is the label", "remove it from --features"});
  expect_error<ValueError>(with([](TabularSpec& s) { s.features = {"Island", "Island"}; }), {"listed twice"});
  expect_error<ValueError>(with([](TabularSpec& s) { s.features = {"CulmenLength", "FlipperLength", "BodyMass"}; }),
                           {"--categorical column 'Island' is not one of the features",
                            "CulmenLength, FlipperLength, BodyMass"});
  expect_error<ValueError>(with([](TabularSpec& s) {
                             s.features = {"Island", "CulmenLength"};
                           }),
                           {"--scale column 'BodyMass' is not one of the features"});
  expect_error<ValueError>(with([](TabularSpec& s) { s.scale["Species"] = 2; }), {"--scale names the label column"});
  expect_error<ValueError>(with([](TabularSpec& s) { s.scale["BodyMass"] = 0; }), {"--scale BodyMass=0", "non-zero"});
  expect_error<ValueError>(with([](TabularSpec& s) { s.scale["BodyMass"] = INFINITY; }), {"--scale BodyMass=inf"});
  expect_error<ValueError>([] { prepare(parse_csv("y\n1\n0\n", "only.csv"), [] { TabularSpec s; s.label = "y"; return s; }()); },
                           {"only.csv: no feature columns", "only the label column 'y'"});
}

TEST(Tabular, DataErrors) {
  CsvTable t = read_csv(penguins_csv());
  auto with = [&](const std::function<void(TabularSpec&)>& edit) {
    TabularSpec s = lab_spec();
    edit(s);
    return [s, &t] { prepare(t, s); };
  };
  // Text in a numeric column: line, column, --categorical.
  expect_error<FormatError>(with([](TabularSpec& s) { s.categorical.clear(); }),
                            {"penguins.csv line 2, column 'Island'", "'Torgersen' is not a number", "--categorical Island"});
  // Missing values with dropna off: line, column, --dropna.
  expect_error<FormatError>(with([](TabularSpec& s) { s.dropna = false; }),
                            {"penguins.csv line 5, column 'CulmenLength'", "missing value", "--dropna"});
  // ... but only in used columns.
  EXPECT_NO_THROW(prepare(t, [] {
    TabularSpec s = lab_spec();
    s.dropna = false;
    s.features = {"Island"};
    s.scale.clear();
    return s;
  }()));
  TabularSpec simple;
  simple.label = "y";
  simple.test_size = 0.5;
  expect_error<FormatError>([&] { prepare(parse_csv("x,y\n1,0\ninf,1\n3,0\n4,1\n", "inf.csv"), simple); },
                            {"inf.csv line 3, column 'x'", "infinite"});
  expect_error<FormatError>([&] { prepare(parse_csv("x,y\n1,0\n-Infinity,1\n3,0\n4,1\n", "inf.csv"), simple); },
                            {"inf.csv line 3, column 'x'", "infinite"});
  expect_error<FormatError>([&] { prepare(parse_csv("x,y\n1,0\n1e39,1\n3,0\n4,1\n", "big.csv"), simple); },
                            {"big.csv line 3, column 'x'", "'1e39' is too large for a float32 feature"});
  simple.scale = {{"x", 1e30}};
  expect_error<FormatError>([&] { prepare(parse_csv("x,y\n1,0\n1e10,1\n3,0\n4,1\n", "big.csv"), simple); },
                            {"big.csv line 3, column 'x'", "too large for a float32 feature after scaling by 1e+30"});
  simple.scale.clear();
  expect_error<FormatError>([&] { prepare(parse_csv("x,y\n1,3\n2,3\n3,3\n4,3\n", "one.csv"), simple); },
                            {"one.csv: the label column 'y' has a single class ('3')", "at least 2 classes"});
  expect_error<FormatError>([&] { prepare(parse_csv("x,y\n1,a\n2,a\n", "one.csv"), simple); }, {"single class ('a')"});
  expect_error<FormatError>([&] { prepare(parse_csv("x,y\n", "empty.csv"), simple); }, {"empty.csv: has a header but no data rows"});
  expect_error<FormatError>([&] { prepare(parse_csv("x,y\nNA,1\n,0\n", "na.csv"), simple); },
                            {"na.csv: all 2 rows have a missing value in the columns used (x, y)"});
}

TEST(Tabular, SplitErrors) {
  TabularSpec s;
  s.label = "y";
  auto small = parse_csv("x,y\n1,0\n2,1\n3,0\n4,1\n5,0\n", "small.csv");
  EXPECT_NO_THROW(prepare(small, s));  // 3 + 2
  s.test_size = 0.1;
  expect_error<ValueError>([&] { prepare(small, s); },
                           {"small.csv: too few rows to split: 5 rows with --test-size 0.1 give 4 training and 1 validation rows",
                            "each side needs at least 2", "another --test-size"});
  s.test_size = 0.7;
  expect_error<ValueError>([&] { prepare(small, s); }, {"give 1 training and 4 validation rows"});
  s.test_size = 0.1;
  s.oversample = 3;
  EXPECT_NO_THROW(prepare(small, s));
  s.oversample = 1;
  for (double bad : {1.5, 0.0, 1.0, -0.1, static_cast<double>(NAN)}) {
    s.test_size = bad;
    expect_error<ValueError>([&] { prepare(small, s); }, {"--test-size must be a fraction strictly between 0 and 1"});
  }
  s.test_size = 0.3;
  s.oversample = 0;
  expect_error<ValueError>([&] { prepare(small, s); }, {"--oversample must be an integer >= 1", "got 0"});
  s.oversample = -2;
  expect_error<ValueError>([&] { prepare(small, s); }, {"got -2"});
  expect_error<ValueError>([] { train_test_split_indices(1, 0.3, 0); }, {"cannot split 1 rows", "training set would be empty"});
  expect_error<ValueError>([] { train_test_split_indices(5, 0.9, 0); }, {"training set would be empty"});  // as sklearn
  expect_error<ValueError>([] { train_test_split_indices(10, 1.5, 0); }, {"--test-size"});

  // A rare class that lands entirely in validation: named, with what to do.
  std::string text = "x,y\n";
  for (int i = 0; i < 20; ++i) text += std::to_string(i) + "," + (i % 2 ? "a" : "b") + "\n";
  text += "99,rare\n";
  auto rare = parse_csv(text, "rare.csv");
  s.oversample = 1;
  int failed = 0, passed = 0;
  for (std::uint64_t seed = 0; seed < 30; ++seed) {
    s.seed = seed;
    try {
      prepare(rare, s);
      ++passed;
    } catch (const ValueError& e) {
      ++failed;
      std::string m = e.what();
      EXPECT_NE(m.find("rare.csv: class 'rare' of 'y' has no rows in the training split"), std::string::npos) << m;
      EXPECT_NE(m.find("--seed " + std::to_string(seed)), std::string::npos) << m;
      EXPECT_NE(m.find("use another --seed or a smaller --test-size"), std::string::npos) << m;
    }
  }
  EXPECT_GT(failed, 0);
  EXPECT_GT(passed, 0);
}

TEST(Tabular, PipelineInputErrors) {
  FeaturePipeline p = prepare(read_csv(penguins_csv()), lab_spec()).pipeline;
  expect_error<ValueError>([&] { p.transform_row({"Dream", "50.4", "15.3", "200"}); },
                           {"expected 5 values (Island, CulmenLength, CulmenDepth, FlipperLength, BodyMass), got 4"});
  expect_error<ValueError>([&] { p.transform_row({"Atlantis", "50.4", "15.3", "200", "5000"}); },
                           {"'Atlantis' for 'Island' is not a known category (known: Biscoe, Dream, Torgersen)"});
  expect_error<ValueError>([&] { p.transform_row({"Dream", "fifty", "15.3", "200", "5000"}); },
                           {"'fifty' for 'CulmenLength' is not a number"});
  expect_error<ValueError>([&] { p.transform_row({"Dream", "50.4", "NA", "200", "5000"}); },
                           {"the value of 'CulmenDepth' is missing ('NA')"});
  expect_error<ValueError>([&] { p.transform_row({"Dream", "50.4", "15.3", "inf", "5000"}); },
                           {"'inf' for 'FlipperLength' is not a finite number"});
  expect_error<ValueError>([&] { p.transform_row({"Dream", "50.4", "15.3", "200", "1e300"}); },
                           {"'1e300' for 'BodyMass' is too large for float32 after scaling by 0.01"});
  expect_error<FormatError>(
      [&] { p.transform_table(parse_csv("Island,CulmenLength,CulmenDepth,FlipperLength,BodyMass\nDream,1,2,3,4\nDream,1,,3,4\n", "new.csv")); },
      {"new.csv line 3, column 'CulmenDepth'", "missing value", "every feature is needed"});
  expect_error<FormatError>(
      [&] { p.transform_table(parse_csv("Island,CulmenLength,CulmenDepth,FlipperLength,BodyMass\nMars,1,2,3,4\n", "new.csv")); },
      {"new.csv line 2, column 'Island'", "category 'Mars' does not occur in the training data"});
  expect_error<FormatError>(
      [&] { p.transform_table(parse_csv("Island,CulmenLength,CulmenDepth,FlipperLength,BodyMass\nDream,1,x,3,4\n", "new.csv")); },
      {"new.csv line 2, column 'CulmenDepth'", "'x' is not a finite number"});
  expect_error<ValueError>([&] { p.transform_table(parse_csv("Island,CulmenLength\nDream,1\n", "new.csv")); },
                           {"new.csv: no feature column 'CulmenDepth'"});
  expect_error<FormatError>(
      [&] { p.transform_table(parse_csv("Island,CulmenLength,CulmenDepth,FlipperLength,BodyMass\n", "new.csv")); },
      {"new.csv: has a header but no data rows"});
}
