// Helpers for the penguin-lab command-line tests (issue 3): the lab's `krill train` command on
// the raw data, metrics.csv, the PyTorch oracle run (tests/oracle/train_run.py), model
// directories and a plain double-precision forward pass of an MLP state dict.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cli/cli_helpers.hpp"
#include "krill/io/safetensors.hpp"
#include "support/oracle.hpp"

namespace krill::test::lab {

using namespace krill::test::cli;

inline std::string data_path(const std::string& name) { return krill::test::source_dir() + "/data/" + name; }

// The lab's preparation: `krill train data/penguins.csv <kLabPrep> --out DIR`.
inline const std::vector<std::string>& lab_prep() {
  static const std::vector<std::string> prep = {"--label", "Species", "--categorical", "Island", "--scale",
                                                "FlipperLength=0.1,BodyMass=0.01", "--oversample", "4",
                                                "--test-size", "0.3", "--seed", "0"};
  return prep;
}

inline std::vector<std::string> cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::size_t b = 0;
  for (;;) {
    std::size_t e = s.find(sep, b);
    parts.push_back(s.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) return parts;
    b = e + 1;
  }
}

struct Curve {
  std::vector<int> epoch;
  std::vector<double> train_loss, val_loss, val_accuracy;
  std::vector<long long> val_correct, val_total;  // krill only
};

// metrics.csv of a model directory (epoch,train_loss,val_loss,val_accuracy,val_correct,val_total,...).
inline Curve read_metrics(const std::string& path) {
  const auto lines = split_lines(read_text(path));
  Curve c;
  EXPECT_FALSE(lines.empty()) << path;
  if (lines.empty()) return c;
  EXPECT_EQ(lines[0].rfind("epoch,train_loss,val_loss,val_accuracy,val_correct,val_total", 0), 0u) << lines[0];
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto f = split(lines[i], ',');
    EXPECT_GE(f.size(), 6u) << path << " line " << i + 1;
    if (f.size() < 6) continue;
    c.epoch.push_back(std::stoi(f[0]));
    c.train_loss.push_back(std::stod(f[1]));
    c.val_loss.push_back(std::stod(f[2]));
    c.val_accuracy.push_back(std::stod(f[3]));
    c.val_correct.push_back(std::stoll(f[4]));
    c.val_total.push_back(std::stoll(f[5]));
  }
  return c;
}

struct TorchRun {
  Curve curve;
  std::vector<std::pair<std::string, std::vector<double>>> weights;  // state-dict order
};

// tests/oracle/train_run.py with these arguments (pre-split numeric CSVs).
inline TorchRun run_torch(const std::vector<std::string>& args) {
  const std::string out = krill::test::run_oracle("train_run.py", args);
  std::string last;
  for (const auto& line : split_lines(out))
    if (!line.empty() && line[0] == '{') last = line;
  if (last.empty()) throw std::runtime_error("train_run.py printed no JSON:\n" + out);
  const nlohmann::ordered_json j = nlohmann::ordered_json::parse(last);
  TorchRun r;
  for (const auto& row : j["curve"]) {
    r.curve.epoch.push_back(row[0].get<int>());
    r.curve.train_loss.push_back(row[1].get<double>());
    r.curve.val_loss.push_back(row[2].get<double>());
    r.curve.val_accuracy.push_back(row[3].get<double>());
  }
  for (const auto& [name, values] : j["weights"].items()) r.weights.emplace_back(name, values.get<std::vector<double>>());
  return r;
}

// Weights by name, flattened, as doubles.
using Weights = std::map<std::string, std::vector<double>>;

inline Weights weights_of(const krill::StateDict& sd) {
  Weights w;
  for (const auto& [name, t] : sd) {
    krill::Tensor c = t.to(krill::DType::Float64).contiguous();
    const double* p = c.data_ptr<double>();
    w[name] = std::vector<double>(p, p + c.numel());
  }
  return w;
}

inline Weights weights_of(const TorchRun& r) {
  Weights w;
  for (const auto& [name, v] : r.weights) w[name] = v;
  return w;
}

// Class probabilities of an MLP (fc1..fcN, ReLU between, log_softmax) computed in double with
// plain loops, independent of krill's kernels.
inline std::vector<double> mlp_probabilities(const Weights& w, std::vector<double> x) {
  for (int layer = 1;; ++layer) {
    const auto wi = w.find("fc" + std::to_string(layer) + ".weight");
    const auto bi = w.find("fc" + std::to_string(layer) + ".bias");
    if (wi == w.end() || bi == w.end()) throw std::runtime_error("no layer fc" + std::to_string(layer));
    const std::vector<double>& W = wi->second;
    const std::vector<double>& b = bi->second;
    const std::size_t out = b.size(), in = x.size();
    if (W.size() != out * in) throw std::runtime_error("fc" + std::to_string(layer) + ": shape mismatch");
    std::vector<double> y(out);
    for (std::size_t o = 0; o < out; ++o) {
      double s = b[o];
      for (std::size_t i = 0; i < in; ++i) s += W[o * in + i] * x[i];
      y[o] = s;
    }
    const bool last = w.find("fc" + std::to_string(layer + 1) + ".weight") == w.end();
    if (last) {
      const double m = *std::max_element(y.begin(), y.end());
      double z = 0;
      for (double v : y) z += std::exp(v - m);
      for (double& v : y) v = std::exp(v - m) / z;
      return y;
    }
    for (double& v : y) v = std::max(v, 0.0);
    x = std::move(y);
  }
}

// The JSON object printed by `krill predict --format json` for one row.
struct JsonPrediction {
  std::string cls;
  long long id = -1;
  std::vector<double> probabilities;
};

inline JsonPrediction parse_prediction(const std::string& line) {
  const nlohmann::json j = nlohmann::json::parse(line);
  JsonPrediction p;
  EXPECT_TRUE(j.is_object()) << line;
  EXPECT_EQ(j.size(), 3u) << "expected exactly class, class_id, probabilities: " << line;
  p.cls = j.at("class").get<std::string>();
  p.id = j.at("class_id").get<long long>();
  p.probabilities = j.at("probabilities").get<std::vector<double>>();
  return p;
}

}  // namespace krill::test::lab
