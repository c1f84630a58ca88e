// The helpers declared in tabular_internal.hpp, shared by tabular preparation and FeaturePipeline:
// parsing numbers and class ids, encoding feature values (the float32 casts and scaling that keep
// prepared tensors bit-equal to pandas + scikit-learn), finding columns, message text.
#include "tabular_internal.hpp"

#include <charconv>
#include <cmath>
#include <cstring>

#include "krill/util/text.hpp"

namespace krill::data::detail {

using text::show_value;
using text::trim;

std::string join(const std::vector<std::string>& items, std::size_t max_items) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < max_items; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > max_items) out += ", ... (" + std::to_string(items.size() - max_items) + " more)";
  return out;
}

std::string fmt(double x) {
  char b[64];
  auto r = std::to_chars(b, b + sizeof b, x);
  return std::string(b, r.ptr);
}

std::optional<double> parse_double(std::string_view v) {
  const char* b = v.data();
  const char* e = b + v.size();
  if (b < e && *b == '+' && e - b > 1 && b[1] != '-' && b[1] != '+') ++b;
  double x = 0;
  auto [ptr, ec] = std::from_chars(b, e, x, std::chars_format::general);
  if (ec != std::errc() || ptr != e || b == e) return std::nullopt;
  return x;
}

std::optional<std::int64_t> parse_class_id(std::string_view v) {
  v = trim(v);
  const char* b = v.data();
  const char* e = b + v.size();
  if (b < e && *b == '+') ++b;
  std::int64_t k = 0;
  auto [ptr, ec] = std::from_chars(b, e, k);
  if (ec == std::errc() && ptr == e && b != e) {
    if (k < 0) return std::nullopt;
    return k;
  }
  std::optional<double> x = parse_double(v);
  if (x && std::isfinite(*x) && *x >= 0 && *x == std::floor(*x) && *x < 9007199254740992.0)
    return static_cast<std::int64_t>(*x);
  return std::nullopt;
}

// ---- encoding ----

Scaler make_scaler(double factor) {
  Scaler s;
  s.factor = factor;
  if (factor != 1.0 && std::isfinite(factor) && factor != 0.0) {
    double r = std::nearbyint(1.0 / factor);
    if (r != 0.0 && std::fabs(r) < 9007199254740992.0 && 1.0 / r == factor) s.divisor = r;
  }
  return s;
}

Encoder::Encoder(const FeatureTransform& t) : tf(&t), scaler(make_scaler(t.scale)) {
  if (t.categorical)
    for (std::size_t i = 0; i < t.categories.size(); ++i) categories.emplace(t.categories[i], static_cast<std::int64_t>(i));
}

Enc Encoder::encode(std::string_view raw, float& out) const {
  std::string_view v = trim(raw);
  double x;
  if (tf->categorical) {
    auto it = categories.find(v);
    if (it == categories.end()) return Enc::UnknownCategory;
    x = static_cast<double>(it->second);
  } else {
    std::optional<double> p = parse_double(v);
    if (!p) return Enc::NotNumber;
    if (!std::isfinite(*p)) return Enc::NotFinite;
    x = *p;
  }
  out = encode_number(x, scaler);
  if (!std::isfinite(out)) return Enc::Overflow;
  return Enc::Ok;
}

std::string Encoder::overflow_note() const {
  return tf->scale != 1.0 ? " after scaling by " + fmt(tf->scale) : std::string();
}
std::string Encoder::known_categories() const { return join(tf->categories); }

std::vector<Encoder> make_encoders(const std::vector<FeatureTransform>& tfs) {
  std::vector<Encoder> enc;
  enc.reserve(tfs.size());
  for (const auto& tf : tfs) enc.emplace_back(tf);
  return enc;
}

void encode_rows(const CsvTable& t, const std::vector<std::size_t>& rows, const std::vector<int>& cols,
                 const std::vector<Encoder>& enc, float* out, bool training) {
  const std::size_t f = cols.size();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::size_t r = rows[i];
    for (std::size_t j = 0; j < f; ++j) {
      const int c = cols[j];
      const std::string_view raw = t.field(r, c);
      float v = 0;
      switch (enc[j].encode(raw, v)) {
        case Enc::Ok: break;
        case Enc::NotNumber:
        case Enc::NotFinite:
          if (training) (void)t.number(r, c);  // throws its explanation (line, column, --categorical)
          throw FormatError(t.where(r, c) + ": " + show_value(trim(raw)) + " is not a finite number (the model reads '" +
                            enc[j].tf->name + "' as a number)");
        case Enc::UnknownCategory:
          throw FormatError(t.where(r, c) + ": category " + show_value(trim(raw)) +
                            " does not occur in the training data (known: " + enc[j].known_categories() + ")");
        case Enc::Overflow:
          throw FormatError(t.where(r, c) + ": " + show_value(trim(raw)) + " is too large for a float32 feature" +
                            enc[j].overflow_note());
      }
      out[i * f + j] = v;
    }
  }
}

void apply_standardize(float* x, std::size_t n, const std::vector<FeatureTransform>& tfs) {
  const std::size_t f = tfs.size();
  for (std::size_t j = 0; j < f; ++j) {
    const FeatureTransform& tf = tfs[j];
    if (!tf.standardized) continue;
    for (std::size_t i = 0; i < n; ++i) x[i * f + j] = standardize_value(x[i * f + j], tf.mean, tf.std);
  }
}

Tensor float_tensor(std::vector<float>& v, std::int64_t rows, std::int64_t cols) {
  Tensor t = empty(Shape{rows, cols}, TensorOptions(kFloat32));
  if (!v.empty()) std::memcpy(t.data_ptr<float>(), v.data(), v.size() * sizeof(float));
  return t;
}

// ---- columns ----

int find_col(const CsvTable& t, const std::string& name, const std::string& role) {
  if (auto i = t.find_column(name)) return *i;
  try {
    (void)t.column_index(name);
  } catch (const ValueError& e) {
    std::string m = e.what();
    auto p = m.find("no column '");
    if (p != std::string::npos) m.replace(p, 9, "no " + role + " column");
    throw ValueError(m);
  }
  throw ValueError(t.source() + ": no " + role + " column '" + name + "'");
}

std::vector<int> columns_by_name(const CsvTable& t, const std::vector<FeatureTransform>& tfs) {
  std::vector<int> cols;
  for (const auto& tf : tfs) cols.push_back(find_col(t, tf.name, "feature"));
  return cols;
}

}  // namespace krill::data::detail
