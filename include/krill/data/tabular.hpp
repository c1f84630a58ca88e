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
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "krill/data/csv.hpp"
#include "krill/tensor/tensor.hpp"

namespace krill::data {

struct TabularSpec {
  std::string label;                        // required
  std::vector<std::string> features;        // empty = every column but the label, in file order
  std::vector<std::string> categorical;     // encoded as indexes of their sorted distinct values
  std::map<std::string, double> scale;      // column -> factor (value * factor)
  bool standardize = false;                 // (x - mean) / std, fitted on the training split only
  bool dropna = true;                       // drop rows with a missing value in a used column
  int oversample = 1;                       // the whole table repeated this many times, before the split
  double test_size = 0.3;                   // fraction for validation, in (0, 1)
  std::uint64_t seed = 0;                   // split seed
};

// How one feature column is turned into a number. Applied in this order: category index or
// number, then * scale, then (x - mean) / std.
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

  // One raw row given as the feature columns' text values, in `features` order (what
  // `krill predict --row "Dream,50.4,15.3,200,5000"` passes). Errors name the column and value:
  // wrong count, unknown category (listing the known ones), text in a numeric column, missing.
  std::vector<float> transform_row(const std::vector<std::string>& raw_values) const;
  // All rows of a table that has (at least) the feature columns; label ignored if present.
  // Rows with missing values are an error naming the line (there is nothing to predict from).
  Tensor transform_table(const CsvTable& table) const;
  // Class id of a raw label value (throws naming the value when it is not a known class).
  std::int64_t class_id(std::string_view raw_label) const;

  // JSON (the "preparation" object of a model directory's config.json); see tabular.cpp.
  std::string to_json() const;
  static FeaturePipeline from_json(const std::string& json, const std::string& source_name);
};

struct PreparedData {
  Tensor train_x, val_x;                    // float32 [n, features]
  Tensor train_y, val_y;                    // int64 [n]
  FeaturePipeline pipeline;
  std::size_t rows_read = 0;                // data rows in the file
  std::size_t rows_dropped = 0;             // dropped for missing values
  std::size_t rows_after_oversampling = 0;
  // Validation rows whose features and label equal some training row's (leakage, e.g. from
  // oversampling before the split).
  std::size_t leaked_validation_rows = 0;
};

// Prepares `table` per `spec`. Errors (ValueError / FormatError) name the file, the column or
// line and what to do: unknown label/feature/categorical/scale columns, text in a numeric
// column (suggesting --categorical), missing values with dropna off, infinite values, fewer
// than 2 classes, a validation class unseen in training, too few rows for the split, test_size
// outside (0, 1), oversample < 1.
PreparedData prepare(const CsvTable& table, const TabularSpec& spec);

// Prepares pre-split data: the pipeline is fitted on `train` (categories, standardisation,
// classes), then applied to `validation`.
PreparedData prepare_presplit(const CsvTable& train, const CsvTable& validation, const TabularSpec& spec);

// The split of scikit-learn's train_test_split(test_size, random_state=seed, shuffle=True):
// numpy's RandomState(seed).permutation(n); the first ceil(test_size * n) indices are the test
// (validation) rows, the next n - that many the training rows. Returns {train, test} indices.
std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> train_test_split_indices(std::int64_t n,
                                                                                         double test_size,
                                                                                         std::uint64_t seed);

}  // namespace krill::data
