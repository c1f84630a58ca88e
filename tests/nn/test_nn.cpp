// nn::Module and layers: registration, names and order of parameters/buffers/children (as
// PyTorch's state_dict keys), state_dict round trips and load errors, train/eval, printing
// (against print(model) from PyTorch via tests/oracle/nn_oracle.py), Linear forward on 1-D,
// 2-D and 3-D inputs, and initialisation (bit-exact against torch.manual_seed, bounds, fans).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "support/expect.hpp"
#include "krill/krill.hpp"
#include "support/oracle.hpp"

using namespace krill;
namespace F = krill::nn::functional;

namespace {

std::vector<float> fvec(const Tensor& t) { return t.to_vector<float>(); }

using krill::test::contains;
using krill::test::error_of;

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& v) {
  std::vector<std::string> out;
  for (const auto& p : v) out.push_back(p.first);
  return out;
}

// The penguin MLP of the lab, written the way a user writes a custom module.
class PenguinNet : public nn::Module {
 public:
  PenguinNet() : nn::Module("PenguinNet") {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(5, 10));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(10, 10));
    fc3 = register_module("fc3", std::make_shared<nn::Linear>(10, 3));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = F::relu(fc1->forward(x));
    h = F::relu(fc2->forward(h));
    return F::log_softmax(fc3->forward(h), 1);
  }
  std::shared_ptr<nn::Linear> fc1, fc2, fc3;
};

using ModuleList = std::initializer_list<std::shared_ptr<nn::Module>>;

class Encoder : public nn::Module {
 public:
  Encoder() : nn::Module("Encoder") {
    layers = register_module("layers", std::make_shared<nn::Sequential>(ModuleList{
                                            std::make_shared<nn::Linear>(4, 8), std::make_shared<nn::Tanh>(),
                                            std::make_shared<nn::Linear>(8, 8, false), std::make_shared<nn::Sigmoid>()}));
    head = register_module("head", std::make_shared<nn::Sequential>(ModuleList{
                                        std::make_shared<nn::Flatten>(), std::make_shared<nn::Dropout>(0.25),
                                        std::make_shared<nn::Linear>(8, 2), std::make_shared<nn::Softmax>(-1)}));
    norm = register_module("norm", std::make_shared<nn::Linear>(2, 2));
  }
  Tensor forward(const Tensor& x) override { return norm->forward(head->forward(layers->forward(x))); }
  std::shared_ptr<nn::Sequential> layers, head;
  std::shared_ptr<nn::Linear> norm;
};

// A module with its own parameter, a buffer and a child, to check PyTorch's state_dict order.
class WithBuffer : public nn::Module {
 public:
  WithBuffer() : nn::Module("WithBuffer") {
    scale = register_parameter("scale", ones({3}));
    running = register_buffer("running_mean", zeros({3}));
    inner = register_module("inner", std::make_shared<nn::Linear>(3, 2));
    frozen = register_parameter("frozen", full({1}, 2.0), /*requires_grad=*/false);
  }
  Tensor scale, running, frozen;
  std::shared_ptr<nn::Linear> inner;
};

std::shared_ptr<nn::Sequential> lab_sequential() {
  return std::make_shared<nn::Sequential>(ModuleList{
      std::make_shared<nn::Linear>(5, 10), std::make_shared<nn::ReLU>(), std::make_shared<nn::Dropout>(0.2),
      std::make_shared<nn::Linear>(10, 3), std::make_shared<nn::LogSoftmax>(1)});
}

}  // namespace

// ---------------------------------------------------------------- registration and names

TEST(NnModule, NamedParametersOrderAndNames) {
  PenguinNet net;
  EXPECT_EQ(names_of(net.named_parameters()),
            (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"}));
  EXPECT_EQ(net.parameters().size(), 6u);
  EXPECT_TRUE(net.parameters(/*recurse=*/false).empty());
  EXPECT_EQ(net.num_parameters(), 5 * 10 + 10 + 10 * 10 + 10 + 10 * 3 + 3);
  // the tensors are the layers' own (same TensorImpl), leaves that require grad
  auto params = net.named_parameters();
  EXPECT_EQ(params[0].second.impl(), net.fc1->weight.impl());
  EXPECT_EQ(params[0].second.shape(), Shape({10, 5}));
  EXPECT_EQ(params[5].second.shape(), Shape({3}));
  for (const auto& [name, p] : params) {
    EXPECT_TRUE(p.requires_grad()) << name;
    EXPECT_TRUE(p.is_leaf()) << name;
  }
  auto children = net.named_children();
  ASSERT_EQ(children.size(), 3u);
  EXPECT_EQ(children[1].first, "fc2");
  EXPECT_EQ(children[1].second.get(), net.fc2.get());
  EXPECT_EQ(net.children().size(), 3u);
}

TEST(NnModule, NestedSequentialNames) {
  auto seq = lab_sequential();
  EXPECT_EQ(names_of(seq->named_parameters()), (std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias"}));
  EXPECT_EQ(seq->size(), 5u);
  EXPECT_EQ((*seq)[3]->type_name(), "Linear");
  EXPECT_EQ((*seq)[4]->type_name(), "LogSoftmax");

  Encoder enc;
  EXPECT_EQ(names_of(enc.named_parameters()),
            (std::vector<std::string>{"layers.0.weight", "layers.0.bias", "layers.2.weight", "head.2.weight",
                                      "head.2.bias", "norm.weight", "norm.bias"}));
  std::vector<std::string> mods;
  for (const auto& [name, m] : enc.named_modules()) mods.push_back(name + ":" + m->type_name());
  EXPECT_EQ(mods, (std::vector<std::string>{":Encoder", "layers:Sequential", "layers.0:Linear", "layers.1:Tanh",
                                            "layers.2:Linear", "layers.3:Sigmoid", "head:Sequential", "head.0:Flatten",
                                            "head.1:Dropout", "head.2:Linear", "head.3:Softmax", "norm:Linear"}));

  // push_back with explicit names
  nn::Sequential named;
  named.push_back("encoder", std::make_shared<nn::Linear>(2, 3)).push_back("act", std::make_shared<nn::ReLU>());
  named.push_back(std::make_shared<nn::Linear>(3, 1));  // positional name = index
  EXPECT_EQ(names_of(named.named_parameters()),
            (std::vector<std::string>{"encoder.weight", "encoder.bias", "2.weight", "2.bias"}));
}

TEST(NnModule, BuffersAndStateDictOrder) {
  WithBuffer m;
  EXPECT_EQ(names_of(m.named_parameters()),
            (std::vector<std::string>{"scale", "frozen", "inner.weight", "inner.bias"}));
  EXPECT_FALSE(m.frozen.requires_grad());
  EXPECT_TRUE(m.scale.requires_grad());
  EXPECT_EQ(names_of(m.named_buffers()), (std::vector<std::string>{"running_mean"}));
  EXPECT_EQ(m.buffers().size(), 1u);
  EXPECT_FALSE(m.running.requires_grad());
  // PyTorch: own parameters, own buffers, then children
  StateDict sd = m.state_dict();
  EXPECT_EQ(sd.keys(), (std::vector<std::string>{"scale", "frozen", "running_mean", "inner.weight", "inner.bias"}));
  // state_dict entries share storage with the module's tensors
  EXPECT_EQ(sd.at("running_mean").impl()->storage.get(), m.running.impl()->storage.get());
  EXPECT_EQ(sd.at("inner.weight").impl()->storage.get(), m.inner->weight.impl()->storage.get());
  EXPECT_EQ(sd.find("nope"), nullptr);
  std::string msg = error_of<ValueError>([&] { sd.at("nope"); });
  EXPECT_TRUE(contains(msg, "nope")) << msg;
}

TEST(NnModule, RegistrationErrors) {
  nn::Module m("Custom");
  m.register_parameter("w", zeros({2}));
  std::string msg = error_of<ValueError>([&] { m.register_parameter("w", zeros({2})); });
  EXPECT_TRUE(contains(msg, "'w'")) << msg;
  EXPECT_THROW(m.register_buffer("w", zeros({2})), ValueError);
  EXPECT_THROW(m.register_module("w", std::make_shared<nn::ReLU>()), ValueError);
  EXPECT_THROW(m.register_parameter("a.b", zeros({2})), ValueError);
  EXPECT_THROW(m.register_parameter("", zeros({2})), ValueError);
  EXPECT_THROW(m.register_module("child", std::shared_ptr<nn::Module>()), ValueError);
  EXPECT_THROW(m.register_parameter("ints", zeros({2}, kInt64)), AutogradError);  // can't require grad
  m.register_parameter("ints_frozen", zeros({2}, kInt64), false);
  // a module without a single-input forward says so
  msg = error_of<Error>([&] { m.forward(zeros({1})); });
  EXPECT_TRUE(contains(msg, "Custom")) << msg;
  EXPECT_THROW(nn::Linear(0, 3), ValueError);
}

// ---------------------------------------------------------------- state_dict round trip and errors

TEST(NnStateDict, RoundTrip) {
  manual_seed(1);
  PenguinNet a;
  manual_seed(2);
  PenguinNet b;
  ASSERT_FALSE(equal(a.fc1->weight, b.fc1->weight));
  b.load_state_dict(a.state_dict());
  for (const auto& [name, t] : a.state_dict()) {
    const Tensor mine = *b.state_dict().find(name);
    EXPECT_TRUE(equal(mine, t)) << name;
    EXPECT_NE(mine.impl()->storage.get(), t.impl()->storage.get()) << name << ": values are copied, not shared";
  }
  // loading copies in place: the module's handles (and an optimizer's) stay valid
  EXPECT_TRUE(equal(b.fc3->bias, a.fc3->bias));
  EXPECT_TRUE(b.fc3->bias.requires_grad());
  EXPECT_TRUE(b.fc3->bias.is_leaf());
  // and the models compute the same thing
  Tensor x = randn({4, 5});
  EXPECT_TRUE(equal(a.forward(x), b.forward(x)));

  // a hand-built StateDict (e.g. from safetensors) with float64 values converts
  StateDict sd;
  for (const auto& [name, t] : a.state_dict()) sd.insert(name, full(t.shape(), 0.5, DType::Float64));
  b.load_state_dict(sd);
  EXPECT_EQ(fvec(b.fc2->bias), std::vector<float>(10, 0.5f));
  // insert replaces
  sd.insert("fc1.bias", zeros({10}));
  EXPECT_EQ(sd.size(), 6u);
}

TEST(NnStateDict, LoadErrorsListTheKeys) {
  PenguinNet net;
  const StateDict good = net.state_dict();
  const std::vector<float> before = fvec(net.fc1->weight);

  // missing
  StateDict missing;
  for (const auto& [k, v] : good)
    if (k != "fc3.bias" && k != "fc2.weight") missing.insert(k, v.clone());
  std::string msg = error_of<ValueError>([&] { net.load_state_dict(missing); });
  EXPECT_TRUE(contains(msg, "missing")) << msg;
  EXPECT_TRUE(contains(msg, "fc3.bias")) << msg;
  EXPECT_TRUE(contains(msg, "fc2.weight")) << msg;

  // unexpected
  StateDict extra;
  for (const auto& [k, v] : good) extra.insert(k, v.clone());
  extra.insert("fc4.weight", zeros({1}));
  extra.insert("fc1.running_mean", zeros({1}));
  msg = error_of<ValueError>([&] { net.load_state_dict(extra); });
  EXPECT_TRUE(contains(msg, "unexpected")) << msg;
  EXPECT_TRUE(contains(msg, "fc4.weight")) << msg;
  EXPECT_TRUE(contains(msg, "fc1.running_mean")) << msg;

  // shape mismatch names the key and both shapes
  StateDict shape;
  for (const auto& [k, v] : good) shape.insert(k, k == "fc1.weight" ? zeros({10, 4}) : v.clone());
  msg = error_of<ValueError>([&] { net.load_state_dict(shape); });
  EXPECT_TRUE(contains(msg, "fc1.weight")) << msg;
  EXPECT_TRUE(contains(msg, "[10, 4]")) << msg;
  EXPECT_TRUE(contains(msg, "[10, 5]")) << msg;

  // dtype that cannot hold the values
  StateDict ints;
  for (const auto& [k, v] : good) ints.insert(k, k == "fc2.bias" ? zeros({10}, kInt64) : v.clone());
  msg = error_of<ValueError>([&] { net.load_state_dict(ints); });
  EXPECT_TRUE(contains(msg, "fc2.bias")) << msg;
  EXPECT_TRUE(contains(msg, "int64")) << msg;

  // a failed load changes nothing
  EXPECT_EQ(fvec(net.fc1->weight), before);

  // strict=false ignores missing and unexpected keys, loads the rest; shape errors still throw
  StateDict partial;
  partial.insert("fc1.bias", full({10}, 3.0));
  partial.insert("something.else", zeros({2}));
  net.load_state_dict(partial, /*strict=*/false);
  EXPECT_EQ(fvec(net.fc1->bias), std::vector<float>(10, 3.f));
  EXPECT_EQ(fvec(net.fc1->weight), before);
  StateDict bad_shape;
  bad_shape.insert("fc1.bias", zeros({3}));
  EXPECT_THROW(net.load_state_dict(bad_shape, false), ValueError);
}

// ---------------------------------------------------------------- train / eval, zero_grad

TEST(NnModule, TrainEvalPropagateAndDropoutFollows) {
  Encoder enc;
  EXPECT_TRUE(enc.is_training());
  enc.eval();
  for (const auto& [name, m] : enc.named_modules()) EXPECT_FALSE(m->is_training()) << name;
  enc.train();
  for (const auto& [name, m] : enc.named_modules()) EXPECT_TRUE(m->is_training()) << name;
  enc.head->train(false);  // a subtree only
  EXPECT_TRUE(enc.is_training());
  EXPECT_FALSE(enc.head->is_training());
  EXPECT_FALSE((*enc.head)[1]->is_training());
  EXPECT_TRUE(enc.layers->is_training());

  manual_seed(4);
  nn::Dropout drop(0.2);
  Tensor x = ones({4000});
  Tensor y = drop(x);
  int zeros_n = 0;
  for (float v : fvec(y)) {
    if (v == 0.f) ++zeros_n;
    else EXPECT_EQ(v, 1.25f) << "survivors are scaled by 1/(1-p)";
  }
  EXPECT_GT(zeros_n, 800 - 120);  // 4000 * 0.2 +- ~4.7 sigma
  EXPECT_LT(zeros_n, 800 + 120);
  Tensor y2 = drop(x);
  EXPECT_FALSE(equal(y, y2)) << "a new mask every call";

  drop.eval();
  Tensor z = drop(x);
  EXPECT_TRUE(equal(z, x)) << "Dropout is the identity in eval mode";

  nn::Dropout all(1.0);
  EXPECT_EQ(fvec(all(tensor({1.f, 2.f}))), (std::vector<float>{0, 0}));
  EXPECT_THROW(nn::Dropout(1.5), ValueError);
  EXPECT_THROW(nn::Dropout(-0.1), ValueError);

  // gradients flow only through kept elements
  nn::Dropout half(0.5);
  Tensor w = ones({64}).requires_grad_();
  Tensor out = half(w);
  out.sum().backward();
  EXPECT_TRUE(equal(w.grad(), out.detach())) << "d(out)/dw is the scaled mask";
}

TEST(NnModule, ZeroGrad) {
  manual_seed(5);
  PenguinNet net;
  net.forward(randn({3, 5})).sum().backward();
  std::vector<TensorImpl*> grads;
  for (const auto& p : net.parameters()) {
    ASSERT_TRUE(p.grad().defined());
    grads.push_back(p.grad().impl());
  }
  net.zero_grad();
  auto ps = net.parameters();
  for (std::size_t i = 0; i < ps.size(); ++i) {
    EXPECT_EQ(ps[i].grad().impl(), grads[i]) << "zeroed in place";
    for (float v : fvec(ps[i].grad())) EXPECT_EQ(v, 0.f);
  }
  net.zero_grad(/*set_to_none=*/true);
  for (const auto& p : net.parameters()) EXPECT_FALSE(p.grad().defined());
}

// ---------------------------------------------------------------- printing like print(model)

TEST(NnPrint, MatchesPyTorch) {
  const std::string out = krill::test::run_oracle("nn_oracle.py", {"models"});
  std::map<std::string, std::string> expected;
  {
    std::istringstream in(out);
    std::string line, name, body;
    while (std::getline(in, line)) {
      if (line.rfind("@@model ", 0) == 0 || line == "@@end") {
        if (!name.empty()) {
          body.pop_back();
          expected[name] = body;
        }
        name = line == "@@end" ? "" : line.substr(8);
        body.clear();
      } else {
        body += line + "\n";
      }
    }
  }
  std::map<std::string, std::shared_ptr<nn::Module>> models = {
      {"seq", lab_sequential()},
      {"penguin", std::make_shared<PenguinNet>()},
      {"encoder", std::make_shared<Encoder>()},
      {"linear_nobias", std::make_shared<nn::Linear>(3, 1, false)},
      {"dropout", std::make_shared<nn::Dropout>()},
      {"nested", std::make_shared<nn::Sequential>(ModuleList{
                     std::make_shared<nn::Sequential>(
                         ModuleList{std::make_shared<nn::Linear>(2, 2), std::make_shared<nn::ReLU>()}),
                     std::make_shared<nn::Dropout>(0.1)})},
      {"empty_seq", std::make_shared<nn::Sequential>()},
      {"dropout_one", std::make_shared<nn::Dropout>(1.0)},
      {"dropout_tiny", std::make_shared<nn::Dropout>(1e-5)},
      {"dropout_small", std::make_shared<nn::Dropout>(0.0001)},
      {"dropout_digits", std::make_shared<nn::Dropout>(0.123456789)},
  };
  ASSERT_EQ(expected.size(), models.size()) << out;
  for (const auto& [name, m] : models) {
    ASSERT_TRUE(expected.count(name)) << name;
    EXPECT_EQ(m->repr(), expected[name]) << "model " << name;
    std::ostringstream os;
    os << *m;
    EXPECT_EQ(os.str(), expected[name]) << "operator<< for " << name;
  }
}

TEST(NnPrint, MultiLineExtraRepr) {
  // PyTorch puts a multi-line extra_repr on its own indented lines
  struct Multi : nn::Module {
    Multi() : nn::Module("Multi") {}
    std::string extra_repr() const override { return "a=1\nb=2"; }
  };
  EXPECT_EQ(Multi().repr(), "Multi(\n  a=1\n  b=2\n)");
  struct WithChild : nn::Module {
    WithChild() : nn::Module("WithChild") { register_module("act", std::make_shared<nn::ReLU>()); }
    std::string extra_repr() const override { return "k=3"; }
  };
  EXPECT_EQ(WithChild().repr(), "WithChild(\n  k=3\n  (act): ReLU()\n)");
}

// ---------------------------------------------------------------- Linear forward

namespace {

// y[..., o] = sum_i x[..., i] * W[o, i] + b[o], in double
std::vector<float> linear_reference(const Tensor& x, const Tensor& w, const Tensor& b) {
  const auto xv = x.to_vector<double>();
  const auto wv = w.to_vector<double>();
  const std::vector<double> bv = b.defined() ? b.to_vector<double>() : std::vector<double>();
  const std::int64_t in = w.size(1), out = w.size(0), rows = x.numel() / in;
  std::vector<float> y;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t o = 0; o < out; ++o) {
      double acc = bv.empty() ? 0.0 : bv[static_cast<std::size_t>(o)];
      for (std::int64_t i = 0; i < in; ++i)
        acc += xv[static_cast<std::size_t>(r * in + i)] * wv[static_cast<std::size_t>(o * in + i)];
      y.push_back(static_cast<float>(acc));
    }
  return y;
}

void expect_near_vec(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

}  // namespace

TEST(NnLinear, ForwardOn1D2D3DInputs) {
  manual_seed(6);
  nn::Linear lin(4, 3);
  EXPECT_EQ(lin.weight.shape(), Shape({3, 4}));
  EXPECT_EQ(lin.bias.shape(), Shape({3}));

  Tensor x1 = randn({4});
  Tensor y1 = lin(x1);
  EXPECT_EQ(y1.shape(), Shape({3}));
  expect_near_vec(fvec(y1), linear_reference(x1, lin.weight, lin.bias), 1e-5f);

  Tensor x2 = randn({5, 4});
  Tensor y2 = lin(x2);
  EXPECT_EQ(y2.shape(), Shape({5, 3}));
  expect_near_vec(fvec(y2), linear_reference(x2, lin.weight, lin.bias), 1e-5f);

  Tensor x3 = randn({2, 3, 4});
  Tensor y3 = lin(x3);
  EXPECT_EQ(y3.shape(), Shape({2, 3, 3}));
  expect_near_vec(fvec(y3), linear_reference(x3, lin.weight, lin.bias), 1e-5f);

  // a non-contiguous input gives the same result as its contiguous copy
  Tensor xt = randn({4, 5}).t();
  expect_near_vec(fvec(lin(xt)), linear_reference(xt.contiguous(), lin.weight, lin.bias), 1e-5f);

  nn::Linear nobias(4, 2, false);
  EXPECT_FALSE(nobias.bias.defined());
  EXPECT_EQ(names_of(nobias.named_parameters()), (std::vector<std::string>{"weight"}));
  expect_near_vec(fvec(nobias(x2)), linear_reference(x2, nobias.weight, Tensor()), 1e-5f);

  EXPECT_THROW(lin(randn({5, 3})), ShapeError);

  // gradients: dL/dW = g^T x, dL/db = sum g for L = sum(y)
  Tensor y = lin(x2);
  y.sum().backward();
  EXPECT_EQ(lin.bias.grad().shape(), Shape({3}));
  expect_near_vec(fvec(lin.bias.grad()), std::vector<float>(3, 5.f), 1e-6f);
  const auto xs = x2.sum(0);
  for (std::int64_t o = 0; o < 3; ++o)
    expect_near_vec(fvec(lin.weight.grad()[o]), fvec(xs), 1e-5f);
}

// ---------------------------------------------------------------- initialisation

namespace {

std::map<std::string, std::vector<double>> parse_tensors(const std::string& out) {
  std::map<std::string, std::vector<double>> res;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string name, dtype;
    std::size_t n;
    if (!(ls >> name >> dtype >> n)) continue;
    std::vector<double> v;
    double d;
    while (ls >> d) v.push_back(d);
    EXPECT_EQ(v.size(), n) << name;
    res[name] = v;
  }
  return res;
}

void expect_same_values(const std::map<std::string, std::vector<double>>& ref, const std::string& name,
                        const Tensor& t, double tol = 0) {
  auto it = ref.find(name);
  ASSERT_NE(it, ref.end()) << name;
  const auto got = t.to_vector<double>();
  ASSERT_EQ(got.size(), it->second.size()) << name;
  int bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool ok = tol == 0 ? got[i] == it->second[i] : std::abs(got[i] - it->second[i]) <= tol;
    if (!ok && ++bad <= 3) ADD_FAILURE() << name << "[" << i << "]: krill " << got[i] << ", torch " << it->second[i];
  }
  EXPECT_EQ(bad, 0) << name;
}

void check_init_against_torch(std::uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  const auto ref = parse_tensors(krill::test::run_oracle("nn_oracle.py", {"init", std::to_string(seed)}));

  manual_seed(seed);
  nn::Linear l1(5, 10), l2(10, 3);
  expect_same_values(ref, "l1.weight", l1.weight);
  expect_same_values(ref, "l1.bias", l1.bias);
  expect_same_values(ref, "l2.weight", l2.weight);
  expect_same_values(ref, "l2.bias", l2.bias);
  nn::Linear l3(4, 2, false);
  expect_same_values(ref, "l3.weight", l3.weight);
  PenguinNet net;
  for (const auto& [name, p] : net.named_parameters()) expect_same_values(ref, "net." + name, p);
  Tensor w = empty({6, 4});
  nn::init::kaiming_uniform_(w);
  expect_same_values(ref, "kaiming_uniform", w);
  w = empty({3, 5});
  nn::init::xavier_uniform_(w, 2.0);
  expect_same_values(ref, "xavier_uniform", w);
  w = empty({3, 5});
  nn::init::kaiming_uniform_(w, 0.0, "fan_out", "relu");
  expect_same_values(ref, "kaiming_uniform_relu_out", w);
  w = empty({2, 3, 2});
  nn::init::uniform_(w, -0.5, 0.25);
  expect_same_values(ref, "uniform", w);
  w = empty({3, 4});
  nn::init::xavier_normal_(w);
  expect_same_values(ref, "xavier_normal", w, 1e-6);
  w = empty({3, 4});
  nn::init::kaiming_normal_(w, 0.0, "fan_out", "relu");
  expect_same_values(ref, "kaiming_normal", w, 1e-6);
  expect_same_values(ref, "after", rand({3}));  // the generator advanced exactly as torch's did
}

}  // namespace

TEST(NnInit, LinearAndInitFunctionsMatchTorchManualSeed) {
  check_init_against_torch(0);
  check_init_against_torch(krill::test::run_seed());
}

TEST(NnInit, LinearSeedZeroKnownValues) {
  // torch.manual_seed(0); nn.Linear(5, 10): weight[0, :2] and bias[0], printed by PyTorch 1.13
  // as tensor([[-0.0033,  0.2399, ...  and 0.2860.
  manual_seed(0);
  nn::Linear l(5, 10);
  EXPECT_EQ(l.weight[0][0].item<float>(), -0.003348207799717784f);
  EXPECT_EQ(l.weight[0][1].item<float>(), 0.23990486562252045f);
  EXPECT_EQ(l.bias[0].item<float>(), 0.2860202491283417f);
  EXPECT_EQ(l.weight.slice(0, 0, 1).slice(1, 0, 2).str(), "tensor([[-0.0033,  0.2399]], grad_fn=<SliceBackward0>)");
}

TEST(NnInit, FansGainsAndBounds) {
  using nn::init::calculate_fan_in_and_fan_out;
  EXPECT_EQ(calculate_fan_in_and_fan_out(empty({3, 5})), (std::pair<std::int64_t, std::int64_t>{5, 3}));
  EXPECT_EQ(calculate_fan_in_and_fan_out(empty({8, 4, 3, 3})), (std::pair<std::int64_t, std::int64_t>{36, 72}));
  EXPECT_EQ(calculate_fan_in_and_fan_out(empty({2, 6, 5})), (std::pair<std::int64_t, std::int64_t>{30, 10}));
  std::string msg = error_of<ValueError>([] { calculate_fan_in_and_fan_out(empty({5})); });
  EXPECT_TRUE(contains(msg, "fewer than 2 dimensions")) << msg;

  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("relu"), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("tanh"), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("linear"), 1.0);
  EXPECT_DOUBLE_EQ(nn::init::calculate_gain("leaky_relu", std::sqrt(5.0)), std::sqrt(2.0 / 6.0));
  EXPECT_THROW(nn::init::calculate_gain("swish"), ValueError);

  manual_seed(7);
  // kaiming_uniform_ (a=0, leaky_relu, fan_in): bound = sqrt(3) * sqrt(2) / sqrt(fan_in)
  Tensor k = empty({200, 50});
  nn::init::kaiming_uniform_(k);
  const double kb = std::sqrt(6.0 / 50.0);
  double kmax = 0;
  for (float v : fvec(k)) {
    EXPECT_LE(std::abs(v), kb);
    kmax = std::max(kmax, static_cast<double>(std::abs(v)));
  }
  EXPECT_GT(kmax, 0.99 * kb) << "the values fill the range";

  // xavier_uniform_: bound = gain * sqrt(6 / (fan_in + fan_out))
  Tensor x = empty({100, 300});
  nn::init::xavier_uniform_(x, 0.5);
  const double xb = 0.5 * std::sqrt(6.0 / 400.0);
  double xmax = 0, mean = 0;
  for (float v : fvec(x)) {
    EXPECT_LE(std::abs(v), xb);
    xmax = std::max(xmax, static_cast<double>(std::abs(v)));
    mean += v;
  }
  EXPECT_GT(xmax, 0.99 * xb);
  EXPECT_LT(std::abs(mean / 30000.0), 0.01 * xb * 10);

  // nn::Linear: weight and bias within 1/sqrt(in_features)
  nn::Linear lin(16, 64);
  for (float v : fvec(lin.weight)) EXPECT_LE(std::abs(v), 0.25f);
  for (float v : fvec(lin.bias)) EXPECT_LE(std::abs(v), 0.25f);

  // kaiming_normal_ with fan_out: std = sqrt(2) / sqrt(fan_out)
  Tensor kn = empty({400, 100});
  nn::init::kaiming_normal_(kn, 0.0, "fan_out", "relu");
  double sq = 0;
  for (float v : fvec(kn)) sq += static_cast<double>(v) * v;
  EXPECT_NEAR(std::sqrt(sq / 40000.0), std::sqrt(2.0 / 400.0), 0.02 * std::sqrt(2.0 / 400.0));
  EXPECT_THROW(nn::init::kaiming_uniform_(kn, 0.0, "fan_middle"), ValueError);

  // init functions work on parameters that require grad (they run under no_grad)
  nn::init::zeros_(lin.bias);
  EXPECT_EQ(fvec(lin.bias), std::vector<float>(64, 0.f));
  nn::init::constant_(lin.weight, 0.5);
  EXPECT_EQ(lin.weight[3][2].item<float>(), 0.5f);
  nn::init::ones_(lin.bias);
  EXPECT_EQ(lin.bias[63].item<float>(), 1.f);
  EXPECT_TRUE(lin.weight.requires_grad());

  // reset_parameters re-draws with the same rule (the generator decides the values)
  manual_seed(8);
  lin.reset_parameters();
  const auto w1 = fvec(lin.weight);
  manual_seed(8);
  nn::Linear again(16, 64);
  EXPECT_EQ(fvec(again.weight), w1);
  Generator g(8);
  nn::Linear with_gen(16, 64, true, &g);
  EXPECT_EQ(fvec(with_gen.weight), w1) << "an explicit generator seeded alike gives the same values";
}
