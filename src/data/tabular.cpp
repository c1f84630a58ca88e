// Tabular preparation (krill/data/tabular.hpp): fitting a FeaturePipeline on a CSV table, then the
// training/validation tensors and the split, bit-equal to pandas + scikit-learn step by step (float32 casts,
// scaling in double, StandardScaler's formulas, numpy's legacy permutation: tests/oracle/tabular_oracle.py).
#include "krill/data/tabular.hpp"
#include "krill/util/text.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <unordered_set>

#include "tabular_internal.hpp"

namespace krill::data {

using namespace detail;

namespace {

using text::shell_arg;
using text::show_value;
using text::trim;

// Integer labels up to this many classes are used as class ids; larger integers are names.
constexpr std::int64_t kMaxIntegerClasses = 65536;

// Keeps a value out of floating-point contraction (GCC fuses a * b + c into an FMA even in ISO
// mode with -march=native; numpy never does).
double no_fma(double x) {
  volatile double v = x;
  return v;
}

// ---- spec and columns ----

void check_spec(const TabularSpec& spec) {
  if (spec.label.empty()) throw ValueError("tabular preparation: no label column given (use --label NAME)");
  if (spec.oversample < 1)
    throw ValueError("--oversample must be an integer >= 1 (1 = no oversampling), got " + std::to_string(spec.oversample));
  for (const auto& [name, factor] : spec.scale)
    if (!std::isfinite(factor) || factor == 0.0)
      throw ValueError("--scale " + shell_arg(name) + "=" + fmt(factor) +
                       ": the factor must be a finite non-zero number (0.1 divides by 10)");
}

void check_test_size(double test_size) {
  if (!(test_size > 0.0 && test_size < 1.0))
    throw ValueError("--test-size must be a fraction strictly between 0 and 1 (0.3 = 30% for validation), got " +
                     fmt(test_size));
}

struct Columns {
  int label = -1;
  std::vector<int> feats;
  bool label_as_names = false;  // the label is listed in `categorical`
  std::vector<FeatureTransform> transforms;
};

Columns resolve(const CsvTable& t, const TabularSpec& spec) {
  Columns c;
  c.label = find_col(t, spec.label, "label");
  const std::string& src = t.source();
  if (spec.features.empty()) {
    for (std::size_t i = 0; i < t.cols(); ++i)
      if (static_cast<int>(i) != c.label) c.feats.push_back(static_cast<int>(i));
  } else {
    for (const auto& name : spec.features) {
      int col = find_col(t, name, "feature");
      if (col == c.label)
        throw ValueError(src + ": column '" + name +
                         "' is the label; it cannot also be a feature (remove it from --features)");
      if (std::find(c.feats.begin(), c.feats.end(), col) != c.feats.end())
        throw ValueError(src + ": feature column '" + name + "' is listed twice in --features");
      c.feats.push_back(col);
    }
  }
  if (c.feats.empty())
    throw ValueError(src + ": no feature columns: the file has only the label column '" + spec.label + "'");
  std::vector<std::string> names;
  for (int col : c.feats) names.push_back(t.columns()[static_cast<std::size_t>(col)]);
  auto feature_pos = [&](int col) {
    auto it = std::find(c.feats.begin(), c.feats.end(), col);
    return it == c.feats.end() ? -1 : static_cast<int>(it - c.feats.begin());
  };

  c.transforms.resize(c.feats.size());
  for (std::size_t j = 0; j < c.feats.size(); ++j) c.transforms[j].name = names[j];
  for (const auto& name : spec.categorical) {
    int col = find_col(t, name, "categorical");
    if (col == c.label) {
      c.label_as_names = true;
      continue;
    }
    int pos = feature_pos(col);
    if (pos < 0)
      throw ValueError(src + ": --categorical column '" + name + "' is not one of the features (" + join(names) +
                       "); add it to --features or drop it from --categorical");
    c.transforms[static_cast<std::size_t>(pos)].categorical = true;
  }
  for (const auto& [name, factor] : spec.scale) {
    int col = find_col(t, name, "scale");
    if (col == c.label) throw ValueError(src + ": --scale names the label column '" + name + "'; only features can be scaled");
    int pos = feature_pos(col);
    if (pos < 0)
      throw ValueError(src + ": --scale column '" + name + "' is not one of the features (" + join(names) +
                       "); add it to --features or drop it from --scale");
    c.transforms[static_cast<std::size_t>(pos)].scale = factor;
  }
  return c;
}

// Rows without missing values in `used` (or an error naming the first missing value).
std::vector<std::size_t> kept_rows(const CsvTable& t, const std::vector<int>& used, bool dropna, std::size_t& dropped) {
  std::vector<std::size_t> rows;
  rows.reserve(t.rows());
  dropped = 0;
  for (std::size_t r = 0; r < t.rows(); ++r) {
    bool missing = false;
    for (int c : used)
      if (t.is_missing(r, c)) {
        if (!dropna)
          throw FormatError(t.where(r, c) + ": missing value " + show_value(t.field(r, c)) +
                            " (use --dropna to drop rows with missing values in the columns used)");
        missing = true;
        break;
      }
    if (missing) ++dropped;
    else rows.push_back(r);
  }
  if (rows.empty()) {
    std::vector<std::string> names;
    for (int c : used) names.push_back(t.columns()[static_cast<std::size_t>(c)]);
    throw FormatError(t.source() + ": all " + std::to_string(t.rows()) +
                      " rows have a missing value in the columns used (" + join(names) + "); nothing is left");
  }
  return rows;
}

std::vector<std::string> distinct_sorted(const CsvTable& t, const std::vector<std::size_t>& rows, int col) {
  std::unordered_set<std::string_view> seen;
  for (std::size_t r : rows) seen.insert(trim(t.field(r, col)));
  std::vector<std::string> out(seen.begin(), seen.end());
  std::sort(out.begin(), out.end());  // byte order (= code-point order for UTF-8)
  return out;
}

// ---- labels ----

struct LabelFit {
  bool integer = false;
  std::vector<std::string> classes;
};

LabelFit fit_labels(const CsvTable& t, const std::vector<std::size_t>& rows, int col, bool as_names) {
  LabelFit f;
  std::size_t distinct = 0;
  std::string only;
  if (!as_names) {
    std::int64_t max_id = -1;
    bool all_ids = true;
    std::vector<bool> seen;
    for (std::size_t r : rows) {
      auto id = parse_class_id(t.field(r, col));
      if (!id || *id >= kMaxIntegerClasses) {
        all_ids = false;
        break;
      }
      if (static_cast<std::size_t>(*id) >= seen.size()) seen.resize(static_cast<std::size_t>(*id) + 1, false);
      if (!seen[static_cast<std::size_t>(*id)]) {
        seen[static_cast<std::size_t>(*id)] = true;
        ++distinct;
        only = std::to_string(*id);
      }
      max_id = std::max(max_id, *id);
    }
    if (all_ids) {
      f.integer = true;
      for (std::int64_t k = 0; k <= max_id; ++k) f.classes.push_back(std::to_string(k));
    }
  }
  if (!f.integer) {
    f.classes = distinct_sorted(t, rows, col);
    distinct = f.classes.size();
    if (distinct) only = f.classes[0];
  }
  if (distinct < 2)
    throw FormatError(t.source() + ": the label column '" + t.column_name(col) + "' has a single class (" +
                      show_value(only) + ") in the " + std::to_string(rows.size()) +
                      " rows used; classification needs at least 2 classes");
  return f;
}

// Class ids of `rows`; `present` (training classes) set => unseen classes are an error.
std::vector<std::int64_t> encode_labels(const CsvTable& t, const std::vector<std::size_t>& rows, int col,
                                        const FeaturePipeline& p, const std::vector<bool>* present) {
  std::vector<std::int64_t> y(rows.size());
  CatMap names;
  if (!p.integer_labels)
    for (std::size_t i = 0; i < p.classes.size(); ++i) names.emplace(p.classes[i], static_cast<std::int64_t>(i));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::size_t r = rows[i];
    std::string_view v = trim(t.field(r, col));
    std::int64_t id = -1;
    if (p.integer_labels) {
      auto k = parse_class_id(v);
      if (k && *k < p.num_classes()) id = *k;
    } else {
      auto it = names.find(v);
      if (it != names.end()) id = it->second;
    }
    if (id < 0 || (present && !(*present)[static_cast<std::size_t>(id)]))
      throw FormatError(t.where(r, col) + ": class " + show_value(v) +
                        " does not occur in the training data (training classes: " + join(p.classes) +
                        "); every validation class must have training rows");
    y[i] = id;
  }
  return y;
}

// ---- standardisation, leaks, tensors ----

// StandardScaler().fit(X) for float32 X [n, f] (scikit-learn 1.2, _incremental_mean_and_var on
// the first batch): float64 sums in row order, mean = sum / n, the corrected two-pass variance
// (sum((x - mean)^2) - sum(x - mean)^2 / n) / n, std = sqrt(var), or 1 for a near-constant
// column (var <= n * eps * var + (n * mean * eps)^2).
void fit_standardize(const float* x, std::size_t n, std::vector<FeatureTransform>& tfs) {
  const std::size_t f = tfs.size();
  const double dn = static_cast<double>(n);
  const double eps = std::numeric_limits<double>::epsilon();
  std::vector<double> tmp(n);
  for (std::size_t j = 0; j < f; ++j) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += static_cast<double>(x[i * f + j]);
    const double mean = sum / dn;
    double correction = 0;
    for (std::size_t i = 0; i < n; ++i) {
      tmp[i] = static_cast<double>(x[i * f + j]) - mean;
      correction += tmp[i];
    }
    for (std::size_t i = 0; i < n; ++i) tmp[i] = no_fma(tmp[i] * tmp[i]);
    double sq = 0;
    for (std::size_t i = 0; i < n; ++i) sq += tmp[i];
    const double unnormalized = sq - no_fma(correction * correction) / dn;
    const double var = unnormalized / dn;
    const double q = no_fma(dn * mean * eps);
    const double upper = no_fma(dn * eps * var) + no_fma(q * q);
    FeatureTransform& tf = tfs[j];
    tf.standardized = true;
    tf.mean = mean;
    tf.std = var <= upper ? 1.0 : std::sqrt(var);
  }
}

// Validation rows equal (feature values and label) to some training row.
std::size_t count_leaks(const float* tx, const std::int64_t* ty, std::size_t nt, const float* vx, const std::int64_t* vy,
                        std::size_t nv, std::size_t f) {
  // Row handles: i >= 0 a training row, i < 0 validation row -1 - i.
  auto row = [&](std::int64_t i) { return i >= 0 ? tx + static_cast<std::size_t>(i) * f : vx + static_cast<std::size_t>(-1 - i) * f; };
  auto label = [&](std::int64_t i) { return i >= 0 ? ty[i] : vy[-1 - i]; };
  auto hash = [&](std::int64_t i) {
    std::uint64_t h = 1469598103934665603ULL ^ static_cast<std::uint64_t>(label(i));
    const float* p = row(i);
    for (std::size_t j = 0; j < f; ++j) {
      float v = p[j] == 0.0f ? 0.0f : p[j];  // -0 == +0
      std::uint32_t b;
      std::memcpy(&b, &v, 4);
      h = (h ^ b) * 1099511628211ULL;
      h ^= h >> 29;
    }
    return static_cast<std::size_t>(h);
  };
  auto equal = [&](std::int64_t a, std::int64_t b) {
    if (label(a) != label(b)) return false;
    const float* p = row(a);
    const float* q = row(b);
    for (std::size_t j = 0; j < f; ++j)
      if (!(p[j] == q[j])) return false;
    return true;
  };
  std::unordered_set<std::int64_t, decltype(hash), decltype(equal)> seen(nt * 2 + 1, hash, equal);
  for (std::size_t i = 0; i < nt; ++i) seen.insert(static_cast<std::int64_t>(i));
  std::size_t leaks = 0;
  for (std::size_t i = 0; i < nv; ++i)
    if (seen.count(-1 - static_cast<std::int64_t>(i))) ++leaks;
  return leaks;
}

Tensor long_tensor(const std::vector<std::int64_t>& v) {
  Tensor t = empty(Shape{static_cast<std::int64_t>(v.size())}, TensorOptions(kInt64));
  if (!v.empty()) std::memcpy(t.data_ptr<std::int64_t>(), v.data(), v.size() * sizeof(std::int64_t));
  return t;
}

// numpy's legacy random_interval: a value in [0, max] by masked rejection sampling.
std::uint64_t random_interval(std::mt19937& g, std::uint64_t max) {
  if (max == 0) return 0;
  std::uint64_t mask = max;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  std::uint64_t v;
  if (max <= 0xffffffffULL) {
    do v = static_cast<std::uint64_t>(g()) & mask;
    while (v > max);
  } else {
    do {
      // mt19937_next64: the first 32-bit draw is the high half.
      std::uint64_t hi = g();
      std::uint64_t lo = g();
      v = ((hi << 32) | lo) & mask;
    } while (v > max);
  }
  return v;
}

// Fills the pipeline's features/classes, then everything after fitting is shared by prepare and
// prepare_presplit: standardisation, leak count, tensors.
void finish(PreparedData& d, std::vector<float>& train_x, std::vector<std::int64_t>& train_y, std::vector<float>& val_x,
            std::vector<std::int64_t>& val_y, bool standardize) {
  auto& tfs = d.pipeline.features;
  const std::size_t f = tfs.size();
  const std::size_t nt = train_y.size(), nv = val_y.size();
  if (standardize) {
    fit_standardize(train_x.data(), nt, tfs);
    apply_standardize(train_x.data(), nt, tfs);
    apply_standardize(val_x.data(), nv, tfs);
  }
  d.leaked_validation_rows = count_leaks(train_x.data(), train_y.data(), nt, val_x.data(), val_y.data(), nv, f);
  d.train_x = float_tensor(train_x, static_cast<std::int64_t>(nt), static_cast<std::int64_t>(f));
  d.val_x = float_tensor(val_x, static_cast<std::int64_t>(nv), static_cast<std::int64_t>(f));
  d.train_y = long_tensor(train_y);
  d.val_y = long_tensor(val_y);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Split

std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> train_test_split_indices(std::int64_t n,
                                                                                         double test_size,
                                                                                         std::uint64_t seed) {
  check_test_size(test_size);
  if (n < 0) throw ValueError("train_test_split_indices: the number of rows must be >= 0, got " + std::to_string(n));
  const auto n_test = static_cast<std::int64_t>(std::ceil(test_size * static_cast<double>(n)));
  const std::int64_t n_train = n - n_test;
  if (n_test <= 0 || n_train <= 0)
    throw ValueError("cannot split " + std::to_string(n) + " rows with test size " + fmt(test_size) + ": the " +
                     (n_train <= 0 ? "training" : "validation") + " set would be empty");
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), std::int64_t{0});
  std::mt19937 gen(static_cast<std::uint32_t>(seed & 0xffffffffULL));
  for (std::int64_t i = n - 1; i >= 1; --i) {
    const auto j = static_cast<std::int64_t>(random_interval(gen, static_cast<std::uint64_t>(i)));
    std::swap(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(j)]);
  }
  std::vector<std::int64_t> test(perm.begin(), perm.begin() + n_test);
  std::vector<std::int64_t> train(perm.begin() + n_test, perm.end());
  return {std::move(train), std::move(test)};
}

// ---------------------------------------------------------------------------------------------
// prepare

PreparedData prepare(const CsvTable& table, const TabularSpec& spec) {
  check_spec(spec);
  check_test_size(spec.test_size);
  Columns cols = resolve(table, spec);
  table.require_rows();
  const std::string& src = table.source();

  PreparedData d;
  d.rows_read = table.rows();
  std::vector<int> used = cols.feats;
  used.push_back(cols.label);
  const std::vector<std::size_t> rows = kept_rows(table, used, spec.dropna, d.rows_dropped);

  // Fit categories and classes on all rows kept (before the split, as the lab does).
  FeaturePipeline& p = d.pipeline;
  p.label = table.column_name(cols.label);
  p.features = std::move(cols.transforms);
  for (std::size_t j = 0; j < p.features.size(); ++j)
    if (p.features[j].categorical) p.features[j].categories = distinct_sorted(table, rows, cols.feats[j]);
  LabelFit lf = fit_labels(table, rows, cols.label, cols.label_as_names);
  p.integer_labels = lf.integer;
  p.classes = std::move(lf.classes);

  const std::size_t n = rows.size();
  const std::size_t f = p.features.size();
  std::vector<float> x(n * f);
  encode_rows(table, rows, cols.feats, make_encoders(p.features), x.data(), true);
  const std::vector<std::int64_t> y = encode_labels(table, rows, cols.label, p, nullptr);

  // Oversample (the table repeated k times), then split like train_test_split.
  const auto k = static_cast<std::size_t>(spec.oversample);
  if (n > (std::size_t{1} << 40) / k)
    throw ValueError(src + ": --oversample " + std::to_string(k) + " of " + std::to_string(n) + " rows is too many rows");
  const std::size_t total = n * k;
  d.rows_after_oversampling = total;
  const auto n_test = static_cast<std::size_t>(std::ceil(spec.test_size * static_cast<double>(total)));
  const std::size_t n_train = total - std::min(total, n_test);
  if (n_test < 2 || n_train < 2) {
    std::string how = std::to_string(total) + " rows";
    if (d.rows_dropped || k > 1) {
      how += " (" + std::to_string(d.rows_read) + " read";
      if (d.rows_dropped) how += ", " + std::to_string(d.rows_dropped) + " dropped for missing values";
      if (k > 1) how += ", oversampled x" + std::to_string(k);
      how += ")";
    }
    throw ValueError(src + ": too few rows to split: " + how + " with --test-size " + fmt(spec.test_size) + " give " +
                     std::to_string(n_train) + " training and " + std::to_string(std::min(total, n_test)) +
                     " validation rows; each side needs at least 2 (use more data or another --test-size)");
  }
  auto [train_idx, test_idx] = train_test_split_indices(static_cast<std::int64_t>(total), spec.test_size, spec.seed);

  auto gather = [&](const std::vector<std::int64_t>& idx, std::vector<float>& gx, std::vector<std::int64_t>& gy) {
    gx.resize(idx.size() * f);
    gy.resize(idx.size());
    for (std::size_t i = 0; i < idx.size(); ++i) {
      const std::size_t r = static_cast<std::size_t>(idx[i]) % n;
      std::copy_n(x.data() + r * f, f, gx.data() + i * f);
      gy[i] = y[r];
    }
  };
  std::vector<float> train_x, val_x;
  std::vector<std::int64_t> train_y, val_y;
  gather(train_idx, train_x, train_y);
  gather(test_idx, val_x, val_y);

  // Every validation class needs training rows (a rare class can land entirely in validation).
  std::vector<std::size_t> train_count(p.classes.size(), 0), val_count(p.classes.size(), 0);
  for (auto c : train_y) ++train_count[static_cast<std::size_t>(c)];
  for (auto c : val_y) ++val_count[static_cast<std::size_t>(c)];
  for (std::size_t c = 0; c < p.classes.size(); ++c)
    if (val_count[c] > 0 && train_count[c] == 0)
      throw ValueError(src + ": class " + show_value(p.classes[c]) + " of '" + p.label + "' has no rows in the training split: all " +
                       std::to_string(val_count[c]) + " of its rows went to validation with --test-size " +
                       fmt(spec.test_size) + " --seed " + std::to_string(spec.seed) +
                       "; use another --seed or a smaller --test-size, or add rows of that class");

  finish(d, train_x, train_y, val_x, val_y, spec.standardize);
  return d;
}

PreparedData prepare_presplit(const CsvTable& train, const CsvTable& validation, const TabularSpec& spec) {
  check_spec(spec);
  Columns cols = resolve(train, spec);
  train.require_rows();
  validation.require_rows();

  PreparedData d;
  d.rows_read = train.rows() + validation.rows();
  std::vector<int> used = cols.feats;
  used.push_back(cols.label);
  std::size_t dropped_train = 0, dropped_val = 0;
  const std::vector<std::size_t> rows = kept_rows(train, used, spec.dropna, dropped_train);

  FeaturePipeline& p = d.pipeline;
  p.label = train.column_name(cols.label);
  p.features = std::move(cols.transforms);
  for (std::size_t j = 0; j < p.features.size(); ++j)
    if (p.features[j].categorical) p.features[j].categories = distinct_sorted(train, rows, cols.feats[j]);
  LabelFit lf = fit_labels(train, rows, cols.label, cols.label_as_names);
  p.integer_labels = lf.integer;
  p.classes = std::move(lf.classes);

  // Validation columns by name.
  std::vector<int> vcols = columns_by_name(validation, p.features);
  const int vlabel = find_col(validation, p.label, "label");
  std::vector<int> vused = vcols;
  vused.push_back(vlabel);
  const std::vector<std::size_t> vrows = kept_rows(validation, vused, spec.dropna, dropped_val);
  d.rows_dropped = dropped_train + dropped_val;

  const std::size_t n = rows.size();
  const std::size_t f = p.features.size();
  const auto enc = make_encoders(p.features);
  std::vector<float> x(n * f);
  encode_rows(train, rows, cols.feats, enc, x.data(), true);
  const std::vector<std::int64_t> y = encode_labels(train, rows, cols.label, p, nullptr);

  std::vector<bool> present(p.classes.size(), false);
  for (auto c : y) present[static_cast<std::size_t>(c)] = true;
  std::vector<float> val_x(vrows.size() * f);
  encode_rows(validation, vrows, vcols, enc, val_x.data(), true);
  std::vector<std::int64_t> val_y = encode_labels(validation, vrows, vlabel, p, &present);

  // Oversampling repeats the training table only.
  const auto k = static_cast<std::size_t>(spec.oversample);
  if (n > (std::size_t{1} << 40) / k)
    throw ValueError(train.source() + ": --oversample " + std::to_string(k) + " of " + std::to_string(n) +
                     " rows is too many rows");
  std::vector<float> train_x;
  std::vector<std::int64_t> train_y;
  train_x.reserve(n * k * f);
  train_y.reserve(n * k);
  for (std::size_t rep = 0; rep < k; ++rep) {
    train_x.insert(train_x.end(), x.begin(), x.end());
    train_y.insert(train_y.end(), y.begin(), y.end());
  }
  d.rows_after_oversampling = n * k;
  finish(d, train_x, train_y, val_x, val_y, spec.standardize);
  return d;
}

}  // namespace krill::data
