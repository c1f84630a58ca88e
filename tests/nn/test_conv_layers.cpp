// CNN layers (Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, BatchNorm2d) against PyTorch
// 1.13 (tests/oracle/conv_oracle.py): print(model) text, state-dict names, shapes and dtypes,
// default initialisation bit for bit under manual_seed, and BatchNorm2d's train/eval behaviour
// (running stats, num_batches_tracked, momentum None).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "krill/krill.hpp"
#include "krill/nn/conv.hpp"
#include "support/oracle.hpp"

using namespace krill;

namespace {

std::shared_ptr<nn::Sequential> reference_model() {
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 6, 5).padding(2)));
  m->push_back(std::make_shared<nn::ReLU>());
  m->push_back(std::make_shared<nn::MaxPool2d>(2));
  m->push_back(std::make_shared<nn::Conv2d>(
      nn::Conv2dOptions(6, 16, {3, 5}).stride({2, 1}).dilation(2).groups(2).bias(false)));
  m->push_back(std::make_shared<nn::BatchNorm2d>(16));
  m->push_back(std::make_shared<nn::AvgPool2d>(nn::AvgPool2dOptions(2).stride(1).padding(1)));
  m->push_back(std::make_shared<nn::MaxPool2d>(
      nn::MaxPool2dOptions({3, 2}).stride({2, 1}).padding(1).dilation(2).ceil_mode(true)));
  m->push_back(std::make_shared<nn::AvgPool2d>(nn::AvgPool2dOptions({2, 3}).ceil_mode(true).count_include_pad(false)));
  m->push_back(std::make_shared<nn::AdaptiveAvgPool2d>(nn::IntOrPair(1, 1)));
  m->push_back(std::make_shared<nn::AdaptiveAvgPool2d>(3));
  m->push_back(std::make_shared<nn::BatchNorm2d>(8, 1e-3, 0.2, false, false));
  m->push_back(std::make_shared<nn::Flatten>());
  return m;
}

std::string dtype_str(DType d) { return std::string(dtype_name(d)); }

}  // namespace

TEST(ConvLayers, PrintAndStateDictMatchPyTorch) {
  const std::string expected = test::run_oracle("conv_oracle.py", {"repr"});
  auto m = reference_model();
  std::ostringstream got;
  got << m->repr() << "\n";
  for (const auto& [name, t] : m->state_dict()) {
    std::string shape = "[";
    for (int d = 0; d < t.ndim(); ++d) shape += (d ? ", " : "") + std::to_string(t.shape()[d]);
    got << name << " " << shape << "] " << dtype_str(t.dtype()) << "\n";
  }
  EXPECT_EQ(got.str(), expected);
}

TEST(ConvLayers, DefaultInitMatchesTorchManualSeed) {
  for (std::uint64_t seed : {std::uint64_t{0}, test::run_seed()}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const std::string out = test::run_oracle("conv_oracle.py", {"init", "--seed", std::to_string(seed)});
    std::map<std::string, std::vector<double>> ref;
    std::map<std::string, std::string> ref_shape;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      const auto a = line.find(' '), b = line.find(']');
      ASSERT_NE(a, std::string::npos);
      const std::string name = line.substr(0, a);
      ref_shape[name] = line.substr(a + 1, b - a);
      std::istringstream vs(line.substr(b + 1));
      double v;
      while (vs >> v) ref[name].push_back(v);
    }
    manual_seed(seed);
    std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>> layers = {
        {"conv_a", std::make_shared<nn::Conv2d>(3, 8, 3)},
        {"conv_b", std::make_shared<nn::Conv2d>(
                       nn::Conv2dOptions(4, 6, {3, 5}).stride(2).padding({1, 2}).dilation({2, 1}).groups(2).bias(false))},
        {"conv_c", std::make_shared<nn::Conv2d>(1, 6, 5)},
        {"bn", std::make_shared<nn::BatchNorm2d>(6)},
        {"conv_d", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(6, 6, 3).groups(6))},
    };
    std::size_t seen = 0;
    for (const auto& [lname, layer] : layers) {
      for (const auto& [pname, t] : layer->state_dict()) {
        const std::string name = lname + "." + pname;
        ASSERT_TRUE(ref.count(name)) << name << " is not in PyTorch's state dict";
        ++seen;
        std::string shape = "[";
        for (int d = 0; d < t.ndim(); ++d) shape += (d ? ", " : "") + std::to_string(t.shape()[d]);
        EXPECT_EQ(shape + "]", ref_shape[name]) << name;
        const auto got = t.to(DType::Float64).contiguous().to_vector<double>();
        ASSERT_EQ(got.size(), ref[name].size()) << name;
        for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], ref[name][i]) << name << "[" << i << "]";
      }
    }
    EXPECT_EQ(seen, ref.size());
  }
}

TEST(ConvLayers, Conv2dForwardShapesAndGradients) {
  manual_seed(3);
  nn::Conv2d conv(nn::Conv2dOptions(4, 8, 3).stride(2).padding(1).groups(2));
  Tensor x = randn({2, 4, 9, 7});
  Tensor y = conv(x);
  EXPECT_EQ(y.shape(), Shape({2, 8, 5, 4}));
  sum(y).backward();
  EXPECT_EQ(conv.weight.grad().shape(), conv.weight.shape());
  EXPECT_EQ(conv.bias.grad().shape(), Shape({8}));
  // d sum / d bias = number of output positions per channel
  for (float v : conv.bias.grad().to_vector<float>()) EXPECT_FLOAT_EQ(v, 2 * 5 * 4);
}

TEST(ConvLayers, BatchNorm2dTrainEvalAndRunningStats) {
  manual_seed(4);
  nn::BatchNorm2d bn(3);
  Tensor x = add(mul(randn({4, 3, 5, 5}), 2.0), 1.0);
  // training: batch statistics, running stats updated with the unbiased variance
  Tensor y = bn(x);
  EXPECT_EQ(bn.num_batches_tracked.item<std::int64_t>(), 1);
  Tensor m = mean(x, {0, 2, 3});
  Tensor d = sub(x, m.reshape({1, 3, 1, 1}));
  Tensor var_b = mean(mul(d, d), {0, 2, 3});
  Tensor var_u = mul(var_b, 100.0 / 99.0);
  EXPECT_TRUE(allclose(bn.running_mean, mul(m, 0.1), 1e-5, 1e-6));
  EXPECT_TRUE(allclose(bn.running_var, add(mul(var_u, 0.1), 0.9), 1e-5, 1e-6));
  Tensor ref = div(d, sqrt(add(var_b.reshape({1, 3, 1, 1}), 1e-5)));
  EXPECT_TRUE(allclose(y, ref, 1e-4, 1e-5));
  // eval: running stats, nothing updated
  bn.eval();
  Tensor rm = bn.running_mean.clone(), rv = bn.running_var.clone();
  Tensor ye = bn(x);
  EXPECT_EQ(bn.num_batches_tracked.item<std::int64_t>(), 1);
  EXPECT_TRUE(equal(bn.running_mean, rm));
  EXPECT_TRUE(equal(bn.running_var, rv));
  Tensor ref_e = div(sub(x, rm.reshape({1, 3, 1, 1})), sqrt(add(rv.reshape({1, 3, 1, 1}), 1e-5)));
  EXPECT_TRUE(allclose(ye, ref_e, 1e-4, 1e-5));
  bn.train();
  bn(x);
  EXPECT_EQ(bn.num_batches_tracked.item<std::int64_t>(), 2);
  // gradients reach weight and bias
  bn.zero_grad();
  sum(mul(bn(x), x)).backward();
  EXPECT_TRUE(bn.weight.grad().defined());
  EXPECT_TRUE(bn.bias.grad().defined());

  // momentum None: cumulative average of the batch statistics
  nn::BatchNorm2d cum(3, 1e-5, std::nullopt);
  Tensor x2 = randn({4, 3, 5, 5});
  cum(x);
  cum(x2);
  Tensor m2 = mean(x2, {0, 2, 3});
  EXPECT_TRUE(allclose(cum.running_mean, div(add(m, m2), 2.0), 1e-5, 1e-6));
  EXPECT_EQ(cum.extra_repr(), "3, eps=1e-05, momentum=None, affine=True, track_running_stats=True");

  // without running stats: batch statistics in eval mode too, no buffers
  nn::BatchNorm2d nostats(3, 1e-5, 0.1, true, false);
  EXPECT_TRUE(nostats.buffers().empty());
  nostats.eval();
  EXPECT_TRUE(allclose(nostats(x), ref, 1e-4, 1e-5));

  EXPECT_THROW(bn(randn({4, 3, 5})), ValueError);
  EXPECT_THROW(bn(randn({4, 2, 5, 5})), ValueError);
}

TEST(ConvLayers, StateDictRoundTrip) {
  manual_seed(5);
  nn::Sequential a{std::make_shared<nn::Conv2d>(3, 4, 3), std::make_shared<nn::BatchNorm2d>(4)};
  manual_seed(6);
  nn::Sequential b{std::make_shared<nn::Conv2d>(3, 4, 3), std::make_shared<nn::BatchNorm2d>(4)};
  a.forward(randn({2, 3, 6, 6}));  // moves a's running stats
  b.load_state_dict(a.state_dict());
  for (const auto& [name, t] : a.state_dict()) EXPECT_TRUE(equal(t, b.state_dict().at(name))) << name;
  std::vector<std::string> names;
  for (const auto& [name, t] : a.state_dict()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                             "1.running_var", "1.num_batches_tracked"}));
}
