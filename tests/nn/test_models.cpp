// The image models (lenet, resnet18/34/50, densenet121) against the PyTorch CIFAR-10 tutorial
// net and torchvision 0.14 (tests/oracle/models_oracle.py):
//   - print(model) text and state-dict names, shapes, dtypes and order;
//   - initialisation under manual_seed, draw for draw (fingerprints of every tensor: first and
//     last 8 values, sum, sum of squares), also with 1 input channel;
//   - on the same weights (exported by the oracle): ResNet-18 eval and train forward, loss,
//     gradients of a few parameters and the BatchNorm running stats after the train step;
//     DenseNet-121 eval (and train) forward at 32 px; LeNet forward and every gradient;
//   - the registry: names, errors (unknown name, too-small images), ModelSpec JSON.
//
// Tolerances are normwise: max|krill - torch| / max|torch| over a tensor; outputs 1e-4, gradients
// 1e-3 (float32 convolutions summed in different orders through ~20 layers).
//
// DISABLED_Timing (run with --gtest_also_run_disabled_tests) prints forward+backward medians.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "krill/io/safetensors.hpp"
#include "krill/krill.hpp"
#include "krill/nn/conv.hpp"
#include "krill/nn/models/densenet.hpp"
#include "krill/nn/models/lenet.hpp"
#include "krill/nn/models/registry.hpp"
#include "krill/nn/models/resnet.hpp"
#include "support/oracle.hpp"

using namespace krill;
using json = nlohmann::json;

namespace {

json oracle_json(const std::vector<std::string>& args) {
  const std::string out = test::run_oracle("models_oracle.py", args);
  const auto pos = out.find("@@JSON@@\n");
  if (pos == std::string::npos) throw std::runtime_error("models_oracle.py printed no JSON:\n" + out);
  return json::parse(out.substr(pos + 9));
}

const json& structure() {
  static const json j = oracle_json({"structure"});
  return j;
}

// Builds the krill model for an oracle key.
std::shared_ptr<nn::Module> build(const std::string& key) {
  if (key == "lenet") return nn::make_model("lenet", 3, 32, 32, 10);
  if (key == "lenet_1x28") return nn::make_model("lenet", 1, 28, 28, 10);
  if (key == "resnet18_c1") return nn::make_model("resnet18", 1, 32, 32, 10);
  if (key == "densenet121_c1") return nn::make_model("densenet121", 1, 32, 32, 10);
  return nn::make_model(key, 3, 32, 32, 10);
}

std::vector<std::int64_t> dims(const Tensor& t) {
  std::vector<std::int64_t> d;
  for (int i = 0; i < t.ndim(); ++i) d.push_back(t.shape()[i]);
  return d;
}

// max|a - b| / max|b| (normwise relative error), in float64.
double norm_rel_error(const Tensor& actual, const Tensor& expected) {
  if (!(actual.shape() == expected.shape()))
    throw std::runtime_error("shapes differ: " + actual.shape().str() + " vs " + expected.shape().str());
  const Tensor a = actual.detach().to(DType::Float64).contiguous();
  const Tensor b = expected.detach().to(DType::Float64).contiguous();
  const double* pa = a.data_ptr<double>();
  const double* pb = b.data_ptr<double>();
  double diff = 0, scale = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double d = std::abs(pa[i] - pb[i]);
    if (!(d <= diff)) diff = d;  // NaN propagates
    scale = std::max(scale, std::abs(pb[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

// Weights ("w.<name>") from an oracle file, without the prefix.
StateDict weights_of(const StateDict& file) {
  StateDict w;
  for (const auto& [name, t] : file)
    if (name.rfind("w.", 0) == 0) w.insert(name.substr(2), t);
  return w;
}

std::map<std::string, Tensor> params_of(nn::Module& m) {
  std::map<std::string, Tensor> p;
  for (auto& [name, t] : m.named_parameters()) p[name] = t;
  return p;
}

// krill's `actual` against the oracle's float32 result `key`: within `tol` (normwise), or, where
// the oracle also has the float64 result "exact.<key>", no further from it than 3x PyTorch's own
// float32 result is. Train-mode results are not always well-conditioned: for about one seed in
// three an activation lands within rounding of a ReLU kink, float32 and float64 (and krill and
// PyTorch) take different sides, and BatchNorm's batch coupling spreads that one element into
// whole gradients: PyTorch float32 is then itself up to ~20% from float64 for the parameters
// before it (measured; outputs stay within ~1e-6). Then only accuracy can be compared.
void expect_close(const StateDict& f, const std::string& key, const Tensor& actual, double tol) {
  const double e = norm_rel_error(actual, f.at(key));
  if (e <= tol) return;
  const Tensor* exact = f.find("exact." + key);
  if (!exact) {
    ADD_FAILURE() << key << ": error " << e << " against PyTorch, tolerance " << tol;
    return;
  }
  const double ek = norm_rel_error(actual, *exact), et = norm_rel_error(f.at(key), *exact);
  std::cout << "  " << key << ": " << e << " from PyTorch float32; against float64 krill " << ek << ", PyTorch " << et
            << "\n";
  EXPECT_LE(ek, std::max(tol, 3 * et)) << key << ": krill is less accurate than PyTorch float32";
}

StateDict forward_files(const std::string& name) {
  static const std::string dir = [] {
    const std::string d = test::make_temp_dir("models_oracle");
    test::run_oracle("models_oracle.py", {"forward", "--seed", std::to_string(test::run_seed()), "--out", d});
    return d;
  }();
  return io::load_safetensors(dir + "/" + name + ".safetensors");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Structure: print(model) and the state dict

class ModelStructure : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelStructure, PrintAndStateDictMatchTorchvision) {
  const std::string key = GetParam();
  const json& ref = structure().at(key);
  auto m = build(key);
  EXPECT_EQ(m->repr(), ref.at("repr").get<std::string>());
  const StateDict sd = m->state_dict();
  const json& entries = ref.at("state");
  ASSERT_EQ(sd.size(), entries.size());
  std::size_t i = 0;
  for (const auto& [name, t] : sd) {
    const json& e = entries.at(i++);
    ASSERT_EQ(name, e.at(0).get<std::string>()) << "entry " << i - 1;
    EXPECT_EQ(dims(t), e.at(1).get<std::vector<std::int64_t>>()) << name;
    EXPECT_EQ(std::string(dtype_name(t.dtype())), e.at(2).get<std::string>()) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ModelStructure,
                         ::testing::Values("lenet", "lenet_1x28", "resnet18", "resnet34", "resnet50", "densenet121"),
                         [](const auto& info) { return info.param; });

// ---------------------------------------------------------------------------------------------
// Initialisation under manual_seed

TEST(ModelInit, MatchesTorchvisionDrawForDraw) {
  const std::uint64_t seed = test::run_seed();
  const json ref = oracle_json({"init", "--seed", std::to_string(seed)});
  for (const auto& [key, tensors] : ref.items()) {
    SCOPED_TRACE(key + " seed " + std::to_string(seed));
    manual_seed(seed);
    auto m = build(key);
    const StateDict sd = m->state_dict();
    ASSERT_EQ(sd.size(), tensors.size());
    for (const auto& [name, t] : sd) {
      ASSERT_TRUE(tensors.contains(name)) << name;
      const json& e = tensors.at(name);
      ASSERT_EQ(dims(t), e.at("shape").get<std::vector<std::int64_t>>()) << name;
      const Tensor flat = t.to(DType::Float64).contiguous();
      const double* p = flat.data_ptr<double>();
      const std::int64_t n = flat.numel();
      const auto head = e.at("head").get<std::vector<double>>();
      const auto tail = e.at("tail").get<std::vector<double>>();
      for (std::size_t k = 0; k < head.size(); ++k)
        ASSERT_NEAR(p[k], head[k], 1e-6 * std::max(1.0, std::abs(head[k]))) << name << " [" << k << "]";
      for (std::size_t k = 0; k < tail.size(); ++k) {
        const std::int64_t idx = n - static_cast<std::int64_t>(tail.size()) + static_cast<std::int64_t>(k);
        ASSERT_NEAR(p[idx], tail[k], 1e-6 * std::max(1.0, std::abs(tail[k]))) << name << " [" << idx << "]";
      }
      double s = 0, sq = 0;
      for (std::int64_t k = 0; k < n; ++k) {
        s += p[k];
        sq += p[k] * p[k];
      }
      const double ref_sq = e.at("sumsq").get<double>();
      EXPECT_NEAR(s, e.at("sum").get<double>(), 1e-5 * std::max(1.0, std::sqrt(ref_sq))) << name;
      EXPECT_NEAR(sq, ref_sq, 1e-5 * std::max(1.0, ref_sq)) << name;
    }
  }
}

// Statistics of torchvision's scheme, independent of the oracle: kaiming_normal_ std.
TEST(ModelInit, ConvWeightsHaveKaimingStd) {
  manual_seed(11);
  auto r = nn::resnet50(3, 10);
  // layer3.0.conv2: 256 x 256 x 3 x 3, fan_out = 256 * 9 -> std sqrt(2 / 2304)
  const Tensor w = r->state_dict().at("layer3.0.conv2.weight");
  ASSERT_EQ(dims(w), (std::vector<std::int64_t>{256, 256, 3, 3}));
  const Tensor d = w.to(DType::Float64).contiguous();
  double sq = 0;
  for (std::int64_t i = 0; i < d.numel(); ++i) sq += d.data_ptr<double>()[i] * d.data_ptr<double>()[i];
  EXPECT_NEAR(std::sqrt(sq / static_cast<double>(d.numel())), std::sqrt(2.0 / 2304.0), 0.01 * std::sqrt(2.0 / 2304.0));
  auto dn = nn::densenet121(3, 10);
  for (const auto& [name, t] : dn->classifier->named_parameters())
    if (name == "bias") EXPECT_EQ(max(abs(t)).item<float>(), 0.0f);
}

// ---------------------------------------------------------------------------------------------
// Forward and backward on torchvision's weights

TEST(ModelForward, ResNet18MatchesTorchvision) {
  const StateDict f = forward_files("resnet18");
  auto m = nn::resnet18(3, 10);
  m->load_state_dict(weights_of(f));
  const Tensor x = f.at("x"), y = f.at("y");

  m->eval();
  {
    NoGradGuard ng;
    const Tensor out = m->forward(x);
    std::cout << "resnet18 eval output error " << norm_rel_error(out, f.at("eval_out")) << "\n";
    expect_close(f, "eval_out", out, 1e-4);
  }
  m->train();
  const Tensor out = m->forward(x);
  std::cout << "resnet18 train output error " << norm_rel_error(out, f.at("train_out")) << "\n";
  expect_close(f, "train_out", out, 1e-4);
  const Tensor loss = cross_entropy(out, y);
  expect_close(f, "loss", loss.reshape({1}), 1e-5);
  loss.backward();
  auto params = params_of(*m);
  const StateDict sd = m->state_dict();
  int grads = 0, stats = 0;
  for (const auto& [name, t] : f) {
    if (name.rfind("grad.", 0) == 0) {
      const std::string p = name.substr(5);
      ASSERT_TRUE(params.count(p)) << p;
      ASSERT_TRUE(params[p].grad().defined()) << p;
      std::cout << "  " << name << " error " << norm_rel_error(params[p].grad(), t) << "\n";
      expect_close(f, name, params[p].grad(), 1e-3);
      ++grads;
    } else if (name.rfind("after.", 0) == 0) {
      expect_close(f, name, sd.at(name.substr(6)), 1e-4);
      ++stats;
    }
  }
  EXPECT_EQ(grads, 9);
  EXPECT_EQ(stats, 40);  // running_mean and running_var of 20 BatchNorm2d
  EXPECT_EQ(sd.at("bn1.num_batches_tracked").item<std::int64_t>(), 1);
}

TEST(ModelForward, DenseNet121MatchesTorchvision) {
  const StateDict f = forward_files("densenet121");
  auto m = nn::densenet121(3, 10);
  m->load_state_dict(weights_of(f));
  const Tensor x = f.at("x");
  NoGradGuard ng;
  m->eval();
  const Tensor out = m->forward(x);
  std::cout << "densenet121 eval output error " << norm_rel_error(out, f.at("eval_out")) << "\n";
  expect_close(f, "eval_out", out, 1e-4);
  // Train mode at 32 px: the last block runs at 1x1, so each channel's batch statistics are over
  // 8 values (with 2, PyTorch float32 was up to 50% from float64): the float64 fallback applies.
  m->train();
  const Tensor tout = m->forward(x);
  std::cout << "densenet121 train output error " << norm_rel_error(tout, f.at("train_out")) << "\n";
  expect_close(f, "train_out", tout, 1e-4);
  const StateDict sd = m->state_dict();
  for (const auto& [name, t] : f)
    if (name.rfind("after.", 0) == 0) expect_close(f, name, sd.at(name.substr(6)), 1e-4);
}

class LeNetForward : public ::testing::TestWithParam<std::string> {};

TEST_P(LeNetForward, ForwardAndGradientsMatchTutorialNet) {
  const std::string key = GetParam();
  const StateDict f = forward_files(key);
  const Tensor x = f.at("x"), y = f.at("y");
  auto m = nn::make_model("lenet", x.shape()[1], x.shape()[2], x.shape()[3], 10);
  m->load_state_dict(weights_of(f));
  {
    NoGradGuard ng;
    EXPECT_LE(norm_rel_error(m->forward(x), f.at("eval_out")), 1e-5);
  }
  const Tensor out = m->forward(x);
  EXPECT_LE(norm_rel_error(out, f.at("train_out")), 1e-5);
  const Tensor loss = cross_entropy(out, y);
  EXPECT_LE(norm_rel_error(loss.reshape({1}), f.at("loss")), 1e-5);
  loss.backward();
  auto params = params_of(*m);
  ASSERT_EQ(params.size(), 10u);
  for (auto& [name, p] : params) {
    const double ge = norm_rel_error(p.grad(), f.at("grad." + name));
    EXPECT_LE(ge, 1e-4) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, LeNetForward, ::testing::Values("lenet", "lenet_1x28"),
                         [](const auto& info) { return info.param; });

// ---------------------------------------------------------------------------------------------
// Registry and errors

TEST(ModelRegistry, NamesAndUnknownName) {
  EXPECT_EQ(nn::model_names(), (std::vector<std::string>{"lenet", "resnet18", "resnet34", "resnet50", "densenet121"}));
  EXPECT_TRUE(nn::is_model_name("resnet50"));
  EXPECT_FALSE(nn::is_model_name("vgg16"));
  try {
    nn::make_model("resnet101", 3, 224, 224, 10);
    FAIL() << "no error for an unknown model";
  } catch (const ValueError& e) {
    EXPECT_EQ(std::string(e.what()), "unknown model 'resnet101'; known models: lenet, resnet18, resnet34, resnet50, densenet121");
  }
}

TEST(ModelRegistry, TooSmallImagesNameTheMinimum) {
  EXPECT_EQ(nn::min_image_size("lenet"), 12);
  EXPECT_EQ(nn::min_image_size("densenet121"), 29);
  EXPECT_EQ(nn::min_image_size("resnet18"), 1);
  try {
    nn::make_model("lenet", 1, 11, 28, 10);
    FAIL() << "no error for an 11-pixel lenet";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("11x28"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("at least 12x12"), std::string::npos) << e.what();
  }
  EXPECT_THROW(nn::LeNet(1, 28, 11, 10), ValueError);
  try {
    nn::make_model("densenet121", 3, 28, 28, 10);
    FAIL() << "no error for a 28-pixel densenet121";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("at least 29x29"), std::string::npos) << e.what();
  }
  EXPECT_THROW(nn::make_model("resnet18", 0, 32, 32, 10), ValueError);
  EXPECT_THROW(nn::make_model("resnet18", 3, 32, 32, 0), ValueError);

  // The minimum sizes really are the smallest that run.
  NoGradGuard ng;
  auto lenet = nn::make_model("lenet", 1, 12, 12, 10);
  EXPECT_EQ(dims(lenet->forward(zeros({2, 1, 12, 12}))), (std::vector<std::int64_t>{2, 10}));
  auto dn = nn::make_model("densenet121", 1, 29, 29, 3);
  dn->eval();
  EXPECT_EQ(dims(dn->forward(zeros({1, 1, 29, 29}))), (std::vector<std::int64_t>{1, 3}));
  EXPECT_ANY_THROW(dn->forward(zeros({1, 1, 28, 28})));
}

TEST(ModelRegistry, ModelSpecJson) {
  const nn::ModelSpec spec{"resnet18", 1, 28, 28, 10};
  const std::string text = spec.to_json();
  EXPECT_EQ(text, R"({"type":"resnet18","in_channels":1,"height":28,"width":28,"num_classes":10})");
  EXPECT_EQ(nn::ModelSpec::from_json(text), spec);
  EXPECT_EQ(nn::ModelSpec::from_json(R"({"num_classes":3,"width":32,"height":32,"in_channels":3,"type":"lenet","x":1})"),
            (nn::ModelSpec{"lenet", 3, 32, 32, 3}));
  auto err = [](const std::string& t) {
    try {
      nn::ModelSpec::from_json(t);
    } catch (const ValueError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(err("[1]").find("expected a JSON object"), std::string::npos);
  EXPECT_NE(err("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(err(R"({"type":"lenet","in_channels":3,"height":32,"width":32})").find("\"num_classes\" must be an integer (missing)"),
            std::string::npos);
  EXPECT_NE(err(R"({"type":"lenet","in_channels":"3","height":32,"width":32,"num_classes":2})").find("got \"3\""),
            std::string::npos);
  EXPECT_NE(err(R"({"type":"vgg","in_channels":3,"height":32,"width":32,"num_classes":2})").find("unknown model 'vgg'"),
            std::string::npos);
  EXPECT_NE(err(R"({"type":"lenet","in_channels":3,"height":8,"width":32,"num_classes":2})").find("at least 12x12"),
            std::string::npos);
  auto m = nn::make_model(spec);
  EXPECT_EQ(m->type_name(), "ResNet");
  EXPECT_EQ(std::static_pointer_cast<nn::ResNet>(m)->in_channels(), 1);
  EXPECT_EQ(std::static_pointer_cast<nn::ResNet>(m)->num_classes(), 10);
}
