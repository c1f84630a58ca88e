// Tabular preparation: from a raw CSV table to float32 features and int64 class ids, the way
// the penguin lab prepares penguins.csv — drop incomplete rows, encode categorical columns,
// scale, standardise, oversample, split — with every fitted detail kept in a FeaturePipeline
// so a saved model can prepare new raw rows exactly as in training.
//
//   TabularSpec spec;
//   spec.label = "Species";
//   spec.categorical = {"Island"};
//   spec.scale = {{"FlipperLength", 0.1}, {"BodyMass", 0.01}};
//   spec.oversample = 4;
//   PreparedData d = prepare(read_csv("penguins.csv"), spec);
//   // d.train_x [957, 5], d.val_x [411, 5], d.pipeline.classes ...
//
// Numbers are those of pandas + scikit-learn doing the same recipe (tests/oracle/tabular_oracle.py
// checks them bit for bit):
//  - a numeric value is parsed as a double, cast to float32, then (when scaled) taken back to
//    double, multiplied by the factor (divided by d when the factor is exactly 1.0 / d for an
//    integer d, as pandas' `col.astype("float32").astype("float64") / 10`) and cast to float32
//    again: the lab's FlipperLength/10 and BodyMass/100 exactly;
//  - a categorical value (trimmed of spaces/tabs) becomes the index of its category; categories
//    are the distinct values in byte order (Biscoe=0, Dream=1, Torgersen=2);
//  - standardisation is scikit-learn's StandardScaler fitted on the float32 training split (mean
//    and population variance accumulated in double, near-constant columns keep std = 1) and
//    applied as float32(float32(x - mean) / std), to every feature column (categorical ones
//    too, like StandardScaler on the whole matrix);
//  - the split is train_test_split(test_size, random_state=seed), see train_test_split_indices.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "krill/data/csv.hpp"
#include "krill/tensor/tensor.hpp"

namespace krill::data {

struct TabularSpec {
  std::string label;                        // required
  std::vector<std::string> features;        // empty = every column but the label, in file order
  // Encoded as indexes of their sorted distinct values. Each must be a feature, or the label:
  // listing the label makes its values class names even when they look like integers.
  std::vector<std::string> categorical;
  std::map<std::string, double> scale;      // feature column -> factor (value * factor), finite, non-zero
  bool standardize = false;                 // (x - mean) / std, fitted on the training split only
  bool dropna = true;                       // drop rows with a missing value in a used column
  // The whole table (after dropna) repeated this many times, in order, before the split (the
  // lab's two unions = 4). With prepare_presplit only the training table is repeated.
  int oversample = 1;
  double test_size = 0.3;                   // fraction for validation, in (0, 1); prepare() only
  std::uint64_t seed = 0;                   // split seed (numpy takes 32 bits: the low 32 are used)
};

// How one feature column is turned into a number. Applied in this order: category index or
// number (as float32), then * scale (in double, back to float32), then (x - mean) / std.
struct FeatureTransform {
  std::string name;
  bool categorical = false;
  std::vector<std::string> categories;      // sorted; index = encoded value
  double scale = 1.0;
  bool standardized = false;
  double mean = 0.0, std = 1.0;
};

// Everything needed to prepare new raw rows like the training data, and to name predictions.
struct FeaturePipeline {
  std::vector<FeatureTransform> features;
  std::string label;
  std::vector<std::string> classes;         // class names; class id = index
  bool integer_labels = false;              // labels were integer class ids (names are "0", "1", ...)

  std::int64_t num_features() const { return static_cast<std::int64_t>(features.size()); }
  std::int64_t num_classes() const { return static_cast<std::int64_t>(classes.size()); }
  std::vector<std::string> feature_names() const;

  // One raw row given as the feature columns' text values, in `features` order (what
  // `krill predict --row "Dream,50.4,15.3,200,5000"` passes). Errors (ValueError) name the
  // column and value: wrong count, unknown category (listing the known ones), text in a numeric
  // column, missing ("", NA, NaN, ...), infinite.
  std::vector<float> transform_row(const std::vector<std::string>& raw_values) const;
  // All rows of a table that has (at least) the feature columns, found by name in any order;
  // label and other columns ignored. Errors (FormatError) name the file, line and column: rows
  // with missing values (there is nothing to predict from), unknown categories, non-numbers.
  Tensor transform_table(const CsvTable& table) const;
  // Class id of a raw label value (throws ValueError naming the value when it is not a class).
  std::int64_t class_id(std::string_view raw_label) const;

  // JSON (the "preparation" object of a model directory's config.json):
  //   {"format": "krill.tabular", "version": 1, "label": "Species", "integer_labels": true,
  //    "classes": ["0", "1", "2"],
  //    "features": [{"name": "Island", "categorical": true, "categories": ["Biscoe", ...],
  //                  "scale": 1.0, "standardized": false}, ...,
  //                 {"name": "BodyMass", "categorical": false, "scale": 0.01,
  //                  "standardized": true, "mean": 42.1, "std": 8.0}]}
  // Doubles are written in shortest round-trip form, so from_json(to_json()) is exact.
  std::string to_json() const;
  // Parses and validates (FormatError naming `source_name` and the field for invalid JSON,
  // missing fields, wrong types, unsorted/duplicate categories, non-positive std, ...).
  static FeaturePipeline from_json(const std::string& json, const std::string& source_name);
};

struct PreparedData {
  Tensor train_x, val_x;                    // float32 [n, features]
  Tensor train_y, val_y;                    // int64 [n]
  FeaturePipeline pipeline;
  std::size_t rows_read = 0;                // data rows in the file (both files for presplit)
  std::size_t rows_dropped = 0;             // dropped for missing values
  std::size_t rows_after_oversampling = 0;  // prepare: the rows that were split; presplit: training rows
  // Validation rows whose features and label equal some training row's (leakage, e.g. from
  // oversampling before the split).
  std::size_t leaked_validation_rows = 0;
};

// Prepares `table` per `spec`: categories and classes are fitted on all rows kept (before the
// split). Labels: when every label value is an integer >= 0 (and < 65536) the values are class
// ids used as is (classes "0".."max"); otherwise the distinct values in byte order are the
// classes. Errors (ValueError for the spec, FormatError for the data) name the file, the
// column or line and what to do: unknown label/feature/categorical/scale columns (listing the
// columns, with the closest name), the label listed as a feature, text in a numeric column
// (suggesting --categorical), missing values with dropna off (suggesting --dropna), infinite
// values, fewer than 2 classes, a validation class with no training rows (suggesting another
// --test-size or --seed), fewer than 2 rows on either side of the split, test_size outside
// (0, 1), oversample < 1.
PreparedData prepare(const CsvTable& table, const TabularSpec& spec);

// Prepares pre-split data: the pipeline is fitted on `train` (categories, standardisation,
// classes), then applied to `validation` (whose columns are found by name). A validation
// category or class that the training table lacks is an error naming the line.
PreparedData prepare_presplit(const CsvTable& train, const CsvTable& validation, const TabularSpec& spec);

// The split of scikit-learn's train_test_split(test_size, random_state=seed, shuffle=True):
// numpy's RandomState(seed).permutation(n) (MT19937 seeded like init_genrand(seed & 0xffffffff),
// numpy's legacy Fisher-Yates with masked rejection sampling); the first ceil(test_size * n)
// indices are the test (validation) rows, the rest the training rows. Returns {train, test}.
// ValueError when test_size is outside (0, 1) or either side would be empty.
std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> train_test_split_indices(std::int64_t n,
                                                                                         double test_size,
                                                                                         std::uint64_t seed);

}  // namespace krill::data
