// FeaturePipeline (krill/data/tabular.hpp): applying a fitted preparation to new raw rows at predict
// time (transform_row, transform_table, class_id), and its JSON; kept apart from tabular.cpp so
// nlohmann-json is compiled here only. The encoding itself is shared with preparation (tabular_internal.hpp).
#include "krill/data/tabular.hpp"
#include "krill/util/text.hpp"

#include <cmath>
#include <numeric>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "tabular_internal.hpp"

namespace krill::data {

using namespace detail;

namespace {

using text::show_value;
using text::trim;

// What transform_row treats as missing (CsvOptions' default list).
const std::vector<std::string> kMissingValues = CsvOptions{}.missing_values;

bool is_missing_text(std::string_view v) {
  v = trim(v);
  for (const auto& m : kMissingValues)
    if (v == m) return true;
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// FeaturePipeline

std::vector<std::string> FeaturePipeline::feature_names() const {
  std::vector<std::string> out;
  for (const auto& tf : features) out.push_back(tf.name);
  return out;
}

std::vector<float> FeaturePipeline::transform_row(const std::vector<std::string>& raw_values) const {
  if (raw_values.size() != features.size())
    throw ValueError("expected " + std::to_string(features.size()) + " values (" + join(feature_names()) + "), got " +
                     std::to_string(raw_values.size()));
  std::vector<float> out(features.size());
  for (std::size_t j = 0; j < features.size(); ++j) {
    const FeatureTransform& tf = features[j];
    const std::string_view raw = raw_values[j];
    const std::string v = show_value(trim(raw));
    if (is_missing_text(raw))
      throw ValueError("the value of '" + tf.name + "' is missing (" + v + "); every feature is needed to predict");
    Encoder enc(tf);
    float x = 0;
    switch (enc.encode(raw, x)) {
      case Enc::Ok: break;
      case Enc::NotNumber: throw ValueError(v + " for '" + tf.name + "' is not a number");
      case Enc::NotFinite: throw ValueError(v + " for '" + tf.name + "' is not a finite number");
      case Enc::UnknownCategory:
        throw ValueError(v + " for '" + tf.name + "' is not a known category (known: " + enc.known_categories() + ")");
      case Enc::Overflow: throw ValueError(v + " for '" + tf.name + "' is too large for float32" + enc.overflow_note());
    }
    out[j] = tf.standardized ? standardize_value(x, tf.mean, tf.std) : x;
  }
  return out;
}

Tensor FeaturePipeline::transform_table(const CsvTable& table) const {
  const std::vector<int> cols = columns_by_name(table, features);
  table.require_rows();
  const std::size_t n = table.rows(), f = features.size();
  for (std::size_t r = 0; r < n; ++r)
    for (int c : cols)
      if (table.is_missing(r, c))
        throw FormatError(table.where(r, c) + ": missing value " + show_value(table.field(r, c)) +
                          "; every feature is needed to predict (fill it in or remove the row)");
  std::vector<std::size_t> rows(n);
  std::iota(rows.begin(), rows.end(), std::size_t{0});
  std::vector<float> x(n * f);
  encode_rows(table, rows, cols, make_encoders(features), x.data(), false);
  apply_standardize(x.data(), n, features);
  return float_tensor(x, static_cast<std::int64_t>(n), static_cast<std::int64_t>(f));
}

std::int64_t FeaturePipeline::class_id(std::string_view raw_label) const {
  std::string_view v = trim(raw_label);
  if (integer_labels) {
    auto k = parse_class_id(v);
    if (k && *k < num_classes()) return *k;
  } else {
    for (std::size_t i = 0; i < classes.size(); ++i)
      if (classes[i] == v) return static_cast<std::int64_t>(i);
  }
  throw ValueError("label " + show_value(v) + " is not a class of '" + label + "' (classes: " + join(classes) + ")");
}

// ---- JSON ----

std::string FeaturePipeline::to_json() const {
  using nlohmann::ordered_json;
  ordered_json j;
  j["format"] = "krill.tabular";
  j["version"] = 1;
  j["label"] = label;
  j["integer_labels"] = integer_labels;
  j["classes"] = classes;
  ordered_json feats = ordered_json::array();
  for (const auto& tf : features) {
    ordered_json o;
    o["name"] = tf.name;
    o["categorical"] = tf.categorical;
    if (tf.categorical) o["categories"] = tf.categories;
    o["scale"] = tf.scale;
    o["standardized"] = tf.standardized;
    if (tf.standardized) {
      o["mean"] = tf.mean;
      o["std"] = tf.std;
    }
    feats.push_back(std::move(o));
  }
  j["features"] = std::move(feats);
  return j.dump(2);
}

FeaturePipeline FeaturePipeline::from_json(const std::string& json, const std::string& source_name) {
  using Json = nlohmann::json;
  Json j;
  try {
    j = Json::parse(json);
  } catch (const Json::exception& e) {
    throw FormatError(source_name + ": the data preparation is not valid JSON (" + std::string(e.what()) + ")");
  }
  auto fail = [&](const std::string& path, const std::string& what) -> void {
    throw FormatError(source_name + ": data preparation: " + path + " " + what);
  };
  if (!j.is_object()) fail("(the whole value)", "must be a JSON object");
  auto field = [&](const Json& o, const std::string& path, const char* key, const char* type) -> const Json& {
    auto it = o.find(key);
    const std::string p = path.empty() ? key : path + "." + key;
    if (it == o.end()) fail("'" + p + "'", std::string("is missing (expected ") + type + ")");
    const Json& v = *it;
    bool ok = std::string_view(type) == "a string"    ? v.is_string()
              : std::string_view(type) == "a boolean" ? v.is_boolean()
              : std::string_view(type) == "a number"  ? v.is_number()
              : std::string_view(type) == "an integer" ? v.is_number_integer()
              : std::string_view(type) == "an array"  ? v.is_array()
                                                      : v.is_object();
    if (!ok) fail("'" + p + "'", std::string("must be ") + type + ", not " + v.type_name());
    return v;
  };
  auto strings = [&](const Json& o, const std::string& path, const char* key) {
    const Json& a = field(o, path, key, "an array");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!a[i].is_string())
        fail("'" + (path.empty() ? std::string(key) : path + "." + key) + "[" + std::to_string(i) + "]'",
             std::string("must be a string, not ") + a[i].type_name());
      out.push_back(a[i].get<std::string>());
    }
    return out;
  };

  const std::string format = field(j, "", "format", "a string").get<std::string>();
  if (format != "krill.tabular") fail("'format'", "is '" + format + "', expected 'krill.tabular'");
  const Json& version = field(j, "", "version", "an integer");
  if (version.get<std::int64_t>() != 1)
    fail("'version'", "is " + version.dump() + "; this krill reads version 1 (was the model written by a newer krill?)");

  FeaturePipeline p;
  p.label = field(j, "", "label", "a string").get<std::string>();
  if (p.label.empty()) fail("'label'", "is empty");
  p.integer_labels = field(j, "", "integer_labels", "a boolean").get<bool>();
  p.classes = strings(j, "", "classes");
  if (p.classes.size() < 2) fail("'classes'", "must list at least 2 classes, has " + std::to_string(p.classes.size()));
  {
    std::unordered_set<std::string> seen;
    for (std::size_t i = 0; i < p.classes.size(); ++i) {
      if (!seen.insert(p.classes[i]).second) fail("'classes'", "lists '" + p.classes[i] + "' twice");
      if (p.integer_labels && p.classes[i] != std::to_string(i))
        fail("'classes'", "must be \"0\", \"1\", ... when 'integer_labels' is true (item " + std::to_string(i) + " is '" +
                              p.classes[i] + "')");
    }
  }
  const Json& feats = field(j, "", "features", "an array");
  if (feats.empty()) fail("'features'", "is empty");
  std::unordered_set<std::string> names;
  for (std::size_t i = 0; i < feats.size(); ++i) {
    const std::string path = "features[" + std::to_string(i) + "]";
    const Json& o = feats[i];
    if (!o.is_object()) fail("'" + path + "'", std::string("must be an object, not ") + o.type_name());
    FeatureTransform tf;
    tf.name = field(o, path, "name", "a string").get<std::string>();
    if (tf.name.empty()) fail("'" + path + ".name'", "is empty");
    if (!names.insert(tf.name).second) fail("'" + path + ".name'", "'" + tf.name + "' names two features");
    tf.categorical = field(o, path, "categorical", "a boolean").get<bool>();
    if (tf.categorical) {
      tf.categories = strings(o, path, "categories");
      if (tf.categories.empty()) fail("'" + path + ".categories'", "is empty");
      for (std::size_t c = 1; c < tf.categories.size(); ++c)
        if (!(tf.categories[c - 1] < tf.categories[c]))
          fail("'" + path + ".categories'", "must be sorted and distinct ('" + tf.categories[c - 1] + "' then '" +
                                                 tf.categories[c] + "')");
    }
    tf.scale = field(o, path, "scale", "a number").get<double>();
    if (!std::isfinite(tf.scale) || tf.scale == 0.0) fail("'" + path + ".scale'", "must be a finite non-zero number");
    tf.standardized = field(o, path, "standardized", "a boolean").get<bool>();
    if (tf.standardized) {
      tf.mean = field(o, path, "mean", "a number").get<double>();
      tf.std = field(o, path, "std", "a number").get<double>();
      if (!std::isfinite(tf.mean)) fail("'" + path + ".mean'", "must be a finite number");
      if (!std::isfinite(tf.std) || !(tf.std > 0)) fail("'" + path + ".std'", "must be a finite positive number");
    }
    p.features.push_back(std::move(tf));
  }
  return p;
}

}  // namespace krill::data
