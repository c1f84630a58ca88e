// Helpers shared by tabular preparation (tabular.cpp) and FeaturePipeline (feature_pipeline.cpp):
// number and class-id parsing, feature encoding (scaling, categories, standardisation), column
// lookup, message text (internal; defined in tabular_internal.cpp unless inline here).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "krill/data/tabular.hpp"

namespace krill::data::detail {

// "a, b, c", at most `max_items` items then "... (N more)".
std::string join(const std::vector<std::string>& items, std::size_t max_items = 30);

// Shortest text that reads back as the same double.
std::string fmt(double x);

// A trimmed decimal number the way CsvTable::number reads it (a leading '+' allowed); nullopt
// when the text is not a number. inf / nan parse (callers refuse them).
std::optional<double> parse_double(std::string_view v);

// A class id: an integer >= 0 ("2", "+2", "2.0"); nullopt otherwise.
std::optional<std::int64_t> parse_class_id(std::string_view v);

// ---- scaling: value * factor, or value / d when factor is exactly 1.0 / d for an integer d
// (pandas' `col / 10`). For float32 inputs and |d| < 2^28 the two agree after the float32 cast
// (the quotient is never within a double rounding of a float32 rounding boundary), so this only
// matters in corner cases; it makes "0.1" mean "/ 10" exactly.
struct Scaler {
  double factor = 1.0;
  double divisor = 0.0;  // non-zero: divide by it instead of multiplying by factor
};

Scaler make_scaler(double factor);

// float32(value) -> (scaled in double) -> float32. May return ±inf (callers check).
inline float encode_number(double x, const Scaler& s) {
  float v = static_cast<float>(x);
  if (s.factor != 1.0) {
    double d = static_cast<double>(v);
    v = static_cast<float>(s.divisor != 0.0 ? d / s.divisor : d * s.factor);
  }
  return v;
}

// StandardScaler.transform on float32 data: X -= mean_ (float64), X /= scale_ (float64), each
// result stored as float32.
inline float standardize_value(float v, double mean, double std) {
  float c = static_cast<float>(static_cast<double>(v) - mean);
  return static_cast<float>(static_cast<double>(c) / std);
}

// Hash map from category text to index with string_view lookups.
struct SvHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using CatMap = std::unordered_map<std::string, std::int64_t, SvHash, std::equal_to<>>;

enum class Enc { Ok, NotNumber, NotFinite, UnknownCategory, Overflow };

// Encodes one feature value (before standardisation).
struct Encoder {
  const FeatureTransform* tf = nullptr;
  Scaler scaler;
  CatMap categories;

  explicit Encoder(const FeatureTransform& t);

  Enc encode(std::string_view raw, float& out) const;

  std::string overflow_note() const;
  std::string known_categories() const;
};

std::vector<Encoder> make_encoders(const std::vector<FeatureTransform>& tfs);

// Encodes `rows` of `t` (columns `cols`) into out [rows.size(), cols.size()], before
// standardisation. `training`: errors are about preparing training data (suggest --categorical).
void encode_rows(const CsvTable& t, const std::vector<std::size_t>& rows, const std::vector<int>& cols,
                 const std::vector<Encoder>& enc, float* out, bool training);

// Standardises the fitted (`standardized`) columns of x [n, tfs.size()] in place.
void apply_standardize(float* x, std::size_t n, const std::vector<FeatureTransform>& tfs);

// Index of column `name`, with CsvTable::column_index's message (columns listed, closest name)
// saying which role the name was given for: "no label column 'Specis'; columns are: ...".
int find_col(const CsvTable& t, const std::string& name, const std::string& role);

// Table columns of the pipeline's features, found by name in another table.
std::vector<int> columns_by_name(const CsvTable& t, const std::vector<FeatureTransform>& tfs);

// A float32 tensor [rows, cols] holding a copy of `v`.
Tensor float_tensor(std::vector<float>& v, std::int64_t rows, std::int64_t cols);

}  // namespace krill::data::detail
