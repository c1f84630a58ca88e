// krill inspect and krill predict: read a model directory and show or use it.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <new>
#include <sstream>
#include <stdexcept>

#include "commands.hpp"
#include "krill/data/csv.hpp"
#include "krill/io/model_dir.hpp"
#include "krill/train/image_model_dir.hpp"
#include "krill/train/model_dir.hpp"

namespace krill::cli {
namespace {

// Splits "a,b,c" with CSV quoting rules (so a category may contain a comma when quoted).
std::vector<std::string> split_values(const std::string& text, const char* flag) {
  data::CsvOptions o;
  o.has_header = false;
  o.missing_values = {};
  data::CsvTable t = data::parse_csv(text, flag, o);
  if (t.rows() != 1) throw ValueError(std::string(flag) + ": give one row of comma-separated values, got '" + text + "'");
  std::vector<std::string> out;
  for (std::size_t c = 0; c < t.cols(); ++c) out.emplace_back(t.field(0, static_cast<int>(c)));
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

void print_prediction_text(const training::SavedModel& m, const float* probs, std::int64_t id, const std::string& prefix) {
  const auto& classes = m.pipeline.classes;
  std::printf("%sPredicted class: %s (id %lld, probability %.4f)\n", prefix.c_str(), classes[id].c_str(),
              static_cast<long long>(id), probs[id]);
  std::printf("%sProbabilities:", prefix.c_str());
  for (std::size_t c = 0; c < classes.size(); ++c) std::printf(" %s=%.6g", classes[c].c_str(), probs[c]);
  std::printf("\n");
}

// A CSV field, quoted (RFC 4180) when it holds a delimiter, a quote or a line break.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

nlohmann::json prediction_json(const training::SavedModel& m, const float* probs, std::int64_t id) {
  nlohmann::json j;
  j["class"] = m.pipeline.classes[id];
  j["class_id"] = id;
  std::vector<double> p(probs, probs + m.pipeline.num_classes());
  j["probabilities"] = p;
  return j;
}

// load_model_dir, with a config.json whose sizes are absurd (a corrupt or edited file: a
// network too large to build) reported as such, naming the file, instead of "out of memory".
training::SavedModel load_model(const std::string& dir) {
  try {
    return training::load_model_dir(dir);
  } catch (const std::bad_alloc&) {
    throw training::InvalidModelDirectoryError(
        dir + " is not a valid krill model directory: the network that config.json describes (\"architecture\": "
              "in_features, hidden, num_classes) is too large to build in memory; is config.json corrupt?");
  } catch (const std::length_error&) {
    throw training::InvalidModelDirectoryError(
        dir + " is not a valid krill model directory: the network that config.json describes (\"architecture\": "
              "in_features, hidden, num_classes) is too large to build; is config.json corrupt?");
  }
}

// An image classifier's directory; anything else (an MLP's, or a broken one) goes the MLP's way,
// which reports what is wrong with it.
bool is_image_model_dir(const std::string& dir) {
  try {
    return training::model_dir_kind(dir) == "image";
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

int run_inspect(const InspectArgs& a) {
  if (is_image_model_dir(a.model_dir)) return run_inspect_image(a);
  training::SavedModel m = load_model(a.model_dir);
  const auto& arch = m.architecture;
  std::printf("Model directory: %s\n", a.model_dir.c_str());
  std::printf("Architecture: MLP %lld", static_cast<long long>(arch.in_features));
  for (auto h : arch.hidden) std::printf("-%lld", static_cast<long long>(h));
  std::printf("-%lld (ReLU between layers, log_softmax output), %lld parameters\n",
              static_cast<long long>(arch.num_classes), static_cast<long long>(m.model->num_parameters()));
  std::cout << *m.model << "\n";
  std::printf("Label: %s; classes: ", m.pipeline.label.c_str());
  for (std::size_t c = 0; c < m.pipeline.classes.size(); ++c)
    std::printf("%s%s=%zu", c ? ", " : "", m.pipeline.classes[c].c_str(), c);
  std::printf("\nFeatures (in order):\n");
  for (const auto& f : m.pipeline.features) {
    std::printf("  %s", f.name.c_str());
    if (f.categorical) {
      std::printf(": categorical {");
      for (std::size_t i = 0; i < f.categories.size(); ++i) std::printf("%s%s=%zu", i ? ", " : "", f.categories[i].c_str(), i);
      std::printf("}");
    } else {
      std::printf(": numeric");
    }
    if (f.scale != 1.0) std::printf(", x %g", f.scale);
    if (f.standardized) std::printf(", standardised (mean %g, std %g)", f.mean, f.std);
    std::printf("\n");
  }
  std::printf("\nWeights and biases:\n");
  for (const auto& [name, t] : m.model->state_dict()) {
    std::cout << name << " " << t.shape().str() << "\n";
    if (a.full) {
      // every value, one row per line
      Tensor c = t.contiguous();
      const float* p = c.data_ptr<float>();
      const std::int64_t cols = t.ndim() == 2 ? t.size(1) : t.numel();
      for (std::int64_t i = 0; i < t.numel(); ++i) std::printf("%s%.9g%s", i % cols ? " " : "  ", p[i], (i + 1) % cols ? "" : "\n");  // 9 digits: exact floats
    } else {
      std::cout << t << "\n";
    }
  }
  return 0;
}

int run_predict(const PredictArgs& a) {
  if (!a.images.empty() || is_image_model_dir(a.model_dir)) return run_predict_images(a);
  const int given = !a.features.empty() + !a.row.empty() + !a.input.empty();
  if (given != 1)
    throw ValueError(given == 0 ? "give what to predict: --features \"1,50.4,15.3,20,50\" (encoded), --row "
                                  "\"Dream,50.4,15.3,200,5000\" (raw values) or --input new.csv"
                                : "give only one of --features, --row and --input");
  if (!a.output.empty() && a.input.empty()) throw ValueError("--output goes with --input (a whole file to predict)");
  if (!a.input.empty() && std::filesystem::is_directory(a.input))
    throw ValueError("--input " + a.input + " is a directory: " + a.model_dir +
                     " predicts from CSV data, give a CSV file (directories of images are for image models)");
  if (a.format != "text" && a.format != "json") throw ValueError("--format must be text or json, got '" + a.format + "'");
  if (!a.output.empty()) {  // never write the predictions over the input or into the model
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::equivalent(a.output, a.input, ec))
      throw ValueError("--output " + a.output + " is the --input file; write the predictions to another file");
    if (fs::is_directory(a.output, ec)) throw ValueError("--output " + a.output + " is a directory; give a file name");
    const fs::path out = fs::weakly_canonical(fs::absolute(a.output, ec), ec);
    const fs::path model = fs::weakly_canonical(fs::absolute(a.model_dir, ec), ec);
    const auto [mi, oi] = std::mismatch(model.begin(), model.end(), out.begin(), out.end());
    if (!model.empty() && mi == model.end())
      throw ValueError("--output " + a.output + " is inside the model directory " + a.model_dir +
                       "; write the predictions elsewhere");
  }
  training::SavedModel m = load_model(a.model_dir);
  const auto names = m.pipeline.feature_names();
  const std::int64_t nf = m.pipeline.num_features();

  Tensor x;
  data::CsvTable table;
  if (!a.features.empty()) {
    std::vector<std::string> vals = split_values(a.features, "--features");
    if (static_cast<std::int64_t>(vals.size()) != nf)
      throw ValueError("--features: the model takes " + std::to_string(nf) + " encoded values (" + join(names) + "), got " +
                       std::to_string(vals.size()));
    x = empty({1, nf});
    float* p = x.data_ptr<float>();
    for (std::int64_t i = 0; i < nf; ++i) {
      std::string v = vals[static_cast<std::size_t>(i)];
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(0, 1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
      double d = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
      if (v.empty() || ec != std::errc() || end != v.data() + v.size() || !std::isfinite(d))
        throw ValueError("--features: value " + std::to_string(i + 1) + " ('" + names[static_cast<std::size_t>(i)] +
                         "') is '" + vals[static_cast<std::size_t>(i)] +
                         "', not a finite number (--features takes encoded numbers; use --row for raw values such as "
                         "category names)");
      p[i] = static_cast<float>(d);
    }
  } else if (!a.row.empty()) {
    std::vector<std::string> vals = split_values(a.row, "--row");
    std::vector<float> f;
    try {
      f = m.pipeline.transform_row(vals);
    } catch (const ValueError& e) {
      throw ValueError(std::string("--row: ") + e.what());
    }
    x = tensor(f, {1, nf});
  } else {
    table = data::read_csv(a.input);
    table.require_rows();
    x = m.pipeline.transform_table(table);
  }

  training::Predictions pred = training::predict(*m.model, x);
  const std::int64_t n = x.size(0), nc = m.pipeline.num_classes();
  const float* probs = pred.probabilities.data_ptr<float>();
  const std::int64_t* ids = pred.class_ids.data_ptr<std::int64_t>();

  if (!a.output.empty()) {
    // CSV with the input's row number, the class, its id and one probability column per class
    std::ostringstream os;
    os << "row,class,class_id";
    for (const auto& c : m.pipeline.classes) os << "," << csv_field("p_" + c);
    os << "\n";
    char buf[64];
    for (std::int64_t i = 0; i < n; ++i) {
      os << (i + 1) << "," << csv_field(m.pipeline.classes[static_cast<std::size_t>(ids[i])]) << "," << ids[i];
      for (std::int64_t c = 0; c < nc; ++c) {
        std::snprintf(buf, sizeof buf, ",%.9g", probs[i * nc + c]);
        os << buf;
      }
      os << "\n";
    }
    // Written beside the target and renamed over it: an existing file is replaced only by a
    // complete one, and a failure leaves nothing behind.
    const std::string tmp = a.output + ".tmp";
    auto fail = [&](const std::string& what) {
      const int err = errno;
      std::remove(tmp.c_str());
      throw IOError("--output " + a.output + ": " + what + ": " + std::strerror(err));
    };
    {
      std::ofstream f(tmp, std::ios::binary);
      if (!f) fail("cannot write");
      f << os.str();
      f.flush();
      if (!f) fail("write failed");
    }
    if (std::rename(tmp.c_str(), a.output.c_str()) != 0) fail("cannot move the file into place");
  }

  if (a.format == "json") {
    if (a.input.empty()) {
      std::cout << prediction_json(m, probs, ids[0]).dump() << "\n";
    } else {
      for (std::int64_t i = 0; i < n; ++i) std::cout << prediction_json(m, probs + i * nc, ids[i]).dump() << "\n";
    }
  } else if (a.input.empty()) {
    print_prediction_text(m, probs, ids[0], "");
  } else if (a.output.empty()) {
    for (std::int64_t i = 0; i < n; ++i) {
      std::printf("row %lld (line %lld): ", static_cast<long long>(i + 1),
                  static_cast<long long>(table.line(static_cast<std::size_t>(i))));
      print_prediction_text(m, probs + i * nc, ids[i], "");
    }
  } else {
    std::printf("Predicted %lld rows of %s; written to %s\n", static_cast<long long>(n), a.input.c_str(), a.output.c_str());
  }
  return 0;
}

}  // namespace krill::cli
