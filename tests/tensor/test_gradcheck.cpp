// Finite-difference gradient checks for every differentiable op.
//
// For an op f and a fixed random weight R (|R| in [0.5, 1.5), random signs), the analytical
// gradient of L = sum(f(x) * R) from krill's autograd is compared with central differences
// (L(x + eps e_j) - L(x - eps e_j)) / 2eps for every element j of every input that requires grad.
// Ops with Float64 kernels (elementwise, reductions, joining, indexing, views, mse_loss, dropout)
// are checked in double precision with eps = 1e-6 and |numerical - analytical| <= 1e-7 + 1e-6
// |numerical|; the float32-only ops (matmul, mm, linear, softmax, log_softmax, nll_loss,
// cross_entropy) in float32 with eps = 1e-2 (matrix products and nll are linear in each argument,
// so the difference quotient is exact up to rounding) or 5e-3 (softmax family), L accumulated in
// double, and |numerical - analytical| <= 2e-3 + 1e-2 |numerical|. Inputs stay away from kinks
// (relu/abs at 0, clamp bounds, max/min ties) by much more than eps. Broadcasting, negative dims,
// keepdim, non-contiguous inputs and mixed dtypes are covered, and so is gradient accumulation
// across backward calls. A self-test checks that the checker flags a wrong gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "krill/krill.hpp"
#include "support/oracle.hpp"

using namespace krill;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

int g_cases = 0;                // gradcheck calls in the current test
std::int64_t g_elements = 0;    // input elements compared in the current test

class Gradcheck : public ::testing::Test {
 protected:
  void SetUp() override { g_cases = 0, g_elements = 0; }
  void TearDown() override {
    if (g_cases)
      std::cout << "[gradcheck] " << g_cases << " cases, " << g_elements << " gradient elements compared\n";
  }
};

struct Tol {
  double eps, atol, rtol;
};
constexpr Tol kF64{1e-6, 1e-7, 1e-6};
constexpr Tol kF32Linear{1e-2, 2e-3, 1e-2};
constexpr Tol kF32Smooth{5e-3, 2e-3, 1e-2};

Generator& gen() {
  static Generator g(test::run_seed());
  return g;
}

// ---- inputs ----
Tensor normal(const Shape& s, DType dt = DType::Float64, double scale = 1.0) {
  Tensor t = randn(s, TensorOptions(dt), &gen());
  if (scale != 1.0) t = mul(t, scale);
  return t.detach().set_requires_grad(true);
}
// |x| in [lo, hi) with a random sign
Tensor away(const Shape& s, double lo = 0.2, double hi = 2.0, DType dt = DType::Float64) {
  Tensor mag = add(mul(rand(s, TensorOptions(dt), &gen()), hi - lo), lo);
  Tensor sign = sub(mul(gt(rand(s, TensorOptions(dt), &gen()), full(s, 0.5, TensorOptions(dt))).to(dt), 2.0), 1.0);
  return mul(mag, sign).detach().set_requires_grad(true);
}
Tensor positive(const Shape& s, double lo = 0.5, double hi = 2.0, DType dt = DType::Float64) {
  return add(mul(rand(s, TensorOptions(dt), &gen()), hi - lo), lo).detach().set_requires_grad(true);
}
// Distinct values (spaced by >= 0.05) in random order: no ties for max/min.
Tensor distinct(const Shape& s, DType dt = DType::Float64) {
  const std::int64_t n = s.numel();
  Tensor perm = randperm(n, &gen()).to(dt);
  Tensor jitter = mul(rand({n}, TensorOptions(dt), &gen()), 0.02);
  return add(mul(add(perm, jitter), 0.05), -0.025 * static_cast<double>(n)).reshape(s).detach().set_requires_grad(true);
}
Tensor no_grad(Tensor t) { return t.detach(); }

// ---- the checker ----

double weighted_sum(const Tensor& y, const Tensor& r) {
  auto a = y.detach().to(DType::Float64).contiguous().to_vector<double>();
  auto b = r.to(DType::Float64).contiguous().to_vector<double>();
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

void set_element(Tensor& t, std::int64_t j, double v) {
  if (t.dtype() == DType::Float64) t.data_ptr<double>()[j] = v;
  else t.data_ptr<float>()[j] = static_cast<float>(v);
}
double get_element(const Tensor& t, std::int64_t j) {
  return t.dtype() == DType::Float64 ? t.data_ptr<double>()[j] : t.data_ptr<float>()[j];
}

// Checks fn's gradients at `inputs` (those with requires_grad set); `what` names the case.
// Mismatches are test failures, or only counted into *mismatches when it is given (the
// checker's self-test).
void gradcheck(const std::string& what, const Fn& fn, std::vector<Tensor> inputs, Tol tol,
               int* mismatches = nullptr) {
  SCOPED_TRACE(what);
  ++g_cases;
  for (auto& t : inputs) {
    if (t.requires_grad()) {
      t = t.detach().contiguous().clone().set_requires_grad(true);
    }
  }
  Tensor y;
  try {
    y = fn(inputs);
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": forward threw: " << e.what();
    return;
  }
  ASSERT_TRUE(y.requires_grad()) << what << ": output does not require grad";
  // |R| in [0.5, 1.5): no output's gradient is scaled down to where a wrong value would pass
  Tensor r = away(y.shape(), 0.5, 1.5, y.dtype()).detach();
  try {
    y.backward(r);
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": backward threw: " << e.what();
    return;
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    Tensor g = inputs[i].grad();
    if (!g.defined()) g = zeros_like(inputs[i]);
    ASSERT_TRUE(g.shape() == inputs[i].shape()) << what << ": gradient of input " << i << " has shape "
                                                << g.shape().str() << " for an input of shape "
                                                << inputs[i].shape().str();
    Tensor gc = g.to(DType::Float64).contiguous();
    std::vector<Tensor> probe(inputs.size());
    for (std::size_t k = 0; k < inputs.size(); ++k) probe[k] = inputs[k].detach();
    Tensor x = inputs[i].detach().clone();
    probe[i] = x;
    int failures = 0;
    for (std::int64_t j = 0; j < x.numel(); ++j) {
      const double x0 = get_element(x, j);
      double lp, lm;
      {
        NoGradGuard ng;
        set_element(x, j, x0 + tol.eps);
        lp = weighted_sum(fn(probe), r);
        set_element(x, j, x0 - tol.eps);
        lm = weighted_sum(fn(probe), r);
        set_element(x, j, x0);
      }
      // the step actually taken (x0 +- eps rounded to the input's precision)
      double step;
      {
        Tensor tmp = x.clone();
        set_element(tmp, j, x0 + tol.eps);
        const double hi = get_element(tmp, j);
        set_element(tmp, j, x0 - tol.eps);
        step = hi - get_element(tmp, j);
      }
      const double num = (lp - lm) / step;
      ++g_elements;
      const double ana = gc.data_ptr<double>()[j];
      const double err = std::abs(num - ana);
      if (err <= tol.atol + tol.rtol * std::abs(num)) continue;
      if (mismatches) {
        ++*mismatches;
        continue;
      }
      if (failures++ < 3)
        ADD_FAILURE() << what << ": input " << i << " " << inputs[i].shape().str() << " element " << j
                      << ": numerical " << num << ", analytical " << ana;
    }
    if (!mismatches) EXPECT_EQ(failures, 0) << what << ": input " << i << " has " << failures << " mismatching elements";
  }
}

std::string sh(const Shape& s) { return s.str(); }

}  // namespace

// ---------------------------------------------------------------------------------------------

// The checker itself: a function whose autograd gradient is deliberately wrong (x * detach(x)
// has gradient x in the graph, 2x numerically) must be caught.
TEST_F(Gradcheck, CheckerCatchesWrongGradients) {
  int bad = 0;
  gradcheck("x * detach(x)", [](const auto& v) { return mul(v[0], v[0].detach()); }, {normal({4})}, kF64, &bad);
  EXPECT_EQ(bad, 4) << "the checker must flag every element of a wrong float64 gradient";
  bad = 0;
  gradcheck("float32 x * detach(x)", [](const auto& v) { return mul(v[0], v[0].detach()); },
            {away({4}, 0.5, 2.0, DType::Float32)}, kF32Linear, &bad);
  EXPECT_EQ(bad, 4) << "the checker must flag every element of a wrong float32 gradient";
}

TEST_F(Gradcheck, BinaryBroadcasting) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {3, 1}}, {{}, {2, 3}}, {{5}, {}},
      {{2, 1, 3}, {4, 1}}};
  for (const auto& [sa, sb] : shapes) {
    const std::string s = sh(sa) + " op " + sh(sb);
    gradcheck("add " + s, [](const auto& v) { return add(v[0], v[1]); }, {normal(sa), normal(sb)}, kF64);
    gradcheck("add alpha " + s, [](const auto& v) { return add(v[0], v[1], -1.7); }, {normal(sa), normal(sb)}, kF64);
    gradcheck("sub " + s, [](const auto& v) { return sub(v[0], v[1]); }, {normal(sa), normal(sb)}, kF64);
    gradcheck("sub alpha " + s, [](const auto& v) { return sub(v[0], v[1], 0.3); }, {normal(sa), normal(sb)}, kF64);
    gradcheck("mul " + s, [](const auto& v) { return mul(v[0], v[1]); }, {normal(sa), normal(sb)}, kF64);
    gradcheck("div " + s, [](const auto& v) { return div(v[0], v[1]); }, {normal(sa), away(sb, 0.5)}, kF64);
    gradcheck("pow " + s, [](const auto& v) { return pow(v[0], v[1]); }, {positive(sa), normal(sb)}, kF64);
    // maximum/minimum: a on the grid k + 0.25, b on k + 0.75 (k integer, plus noise < 0.05), so the
    // operands differ by at least 0.4 everywhere, whatever broadcasts against what
    auto grid = [](const Shape& shape, double off) {
      Tensor k = randint(-3, 3, shape, TensorOptions(DType::Int64), &gen()).to(DType::Float64);
      return add(add(k, off), mul(rand(shape, TensorOptions(DType::Float64), &gen()), 0.05))
          .detach()
          .set_requires_grad(true);
    };
    gradcheck("maximum " + s, [](const auto& v) { return maximum(v[0], v[1]); }, {grid(sa, 0.25), grid(sb, 0.75)},
              kF64);
    gradcheck("minimum " + s, [](const auto& v) { return minimum(v[0], v[1]); }, {grid(sa, 0.25), grid(sb, 0.75)},
              kF64);
    // one operand without grad
    gradcheck("mul (b constant) " + s, [](const auto& v) { return mul(v[0], v[1]); }, {normal(sa), no_grad(normal(sb))},
              kF64);
    gradcheck("div (a constant) " + s, [](const auto& v) { return div(v[0], v[1]); },
              {no_grad(normal(sa)), away(sb, 0.5)}, kF64);
  }
  // operators
  gradcheck("operators", [](const auto& v) { return (v[0] + v[1]) * v[0] - v[1] / (v[0] * v[0] + 1.0); },
            {normal({3, 4}), normal({4})}, kF64);
  // non-contiguous operand
  gradcheck("mul transposed", [](const auto& v) { return mul(v[0].t(), v[1]); }, {normal({4, 3}), normal({3, 4})},
            kF64);
}

TEST_F(Gradcheck, ScalarForms) {
  for (const Shape& s : {Shape{}, Shape{5}, Shape{2, 3}}) {
    gradcheck("add s", [](const auto& v) { return add(v[0], 2.5); }, {normal(s)}, kF64);
    gradcheck("sub s", [](const auto& v) { return sub(v[0], -1.5); }, {normal(s)}, kF64);
    gradcheck("rsub s", [](const auto& v) { return rsub(v[0], 0.7); }, {normal(s)}, kF64);
    gradcheck("mul s", [](const auto& v) { return mul(v[0], -3.0); }, {normal(s)}, kF64);
    gradcheck("div s", [](const auto& v) { return div(v[0], 0.4); }, {normal(s)}, kF64);
    gradcheck("rdiv s", [](const auto& v) { return rdiv(v[0], 2.0); }, {away(s, 0.5)}, kF64);
    for (double e : {2.0, 3.0, 1.0, 0.0, -1.0})
      gradcheck("pow s " + std::to_string(e), [e](const auto& v) { return pow(v[0], e); }, {away(s, 0.3)}, kF64);
    for (double e : {0.5, -1.5, 2.7})
      gradcheck("pow s " + std::to_string(e), [e](const auto& v) { return pow(v[0], e); }, {positive(s)}, kF64);
    gradcheck("operators s", [](const auto& v) { return 1.5 - (2.0 / v[0]) * 3.0 + v[0] / 4.0 - 1.0; },
              {away(s, 0.5)}, kF64);
  }
}

TEST_F(Gradcheck, Unary) {
  for (const Shape& s : {Shape{}, Shape{7}, Shape{3, 4}, Shape{2, 3, 2}}) {
    const std::string n = " " + sh(s);
    gradcheck("relu" + n, [](const auto& v) { return relu(v[0]); }, {away(s, 0.1)}, kF64);
    gradcheck("sigmoid" + n, [](const auto& v) { return sigmoid(v[0]); }, {normal(s, DType::Float64, 2.0)}, kF64);
    gradcheck("tanh" + n, [](const auto& v) { return tanh(v[0]); }, {normal(s, DType::Float64, 1.5)}, kF64);
    gradcheck("exp" + n, [](const auto& v) { return exp(v[0]); }, {normal(s)}, kF64);
    gradcheck("log" + n, [](const auto& v) { return log(v[0]); }, {positive(s, 0.2, 3.0)}, kF64);
    gradcheck("sqrt" + n, [](const auto& v) { return sqrt(v[0]); }, {positive(s, 0.2, 3.0)}, kF64);
    gradcheck("neg" + n, [](const auto& v) { return neg(v[0]); }, {normal(s)}, kF64);
    gradcheck("abs" + n, [](const auto& v) { return abs(v[0]); }, {away(s, 0.1)}, kF64);
    // clamp: values in {-1.5, -0.5, 0.5, 1.5} + small noise, bounds at -1 and 1: both sides and the
    // inside are exercised, never within eps of a bound
    gradcheck("clamp" + n,
              [](const auto& v) { return clamp(v[0], -1.0, 1.0); },
              {add(sub(mul(randint(0, 4, s, TensorOptions(DType::Int64), &gen()).to(DType::Float64), 1.0), 1.5),
                   mul(rand(s, TensorOptions(DType::Float64), &gen()), 0.3))
                   .detach()
                   .set_requires_grad(true)},
              kF64);
  }
  gradcheck("chain", [](const auto& v) { return tanh(sigmoid(exp(v[0])) * log(abs(v[0]) + 1.0)); },
            {away({4, 3}, 0.1)}, kF64);
  gradcheck("unary on a view", [](const auto& v) { return exp(v[0].transpose(0, 1)); }, {normal({3, 4})}, kF64);
  gradcheck("float32 <-> float64 cast", [](const auto& v) { return v[0].to(DType::Float32).to(DType::Float64) * 2.0; },
            {normal({3})}, Tol{1e-3, 1e-4, 1e-4});
}

TEST_F(Gradcheck, Matmul) {
  const DType f = DType::Float32;
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{5}, {5}},       {{3, 5}, {5}},          {{5}, {5, 4}},         {{3, 5}, {5, 4}},
      {{2, 3, 5}, {5, 4}}, {{2, 3, 5}, {5}},    {{5}, {2, 5, 4}},      {{3, 5}, {2, 5, 4}},
      {{2, 3, 5}, {2, 5, 4}}, {{2, 1, 3, 5}, {3, 5, 4}}, {{1, 2, 3, 5}, {3, 1, 5, 2}}};
  for (const auto& [sa, sb] : shapes)
    gradcheck("matmul " + sh(sa) + " @ " + sh(sb), [](const auto& v) { return matmul(v[0], v[1]); },
              {normal(sa, f), normal(sb, f)}, kF32Linear);
  gradcheck("matmul transposed operands", [](const auto& v) { return matmul(v[0].t(), v[1].t()); },
            {normal({5, 3}, f), normal({4, 5}, f)}, kF32Linear);
  gradcheck("mm", [](const auto& v) { return mm(v[0], v[1]); }, {normal({4, 6}, f), normal({6, 3}, f)}, kF32Linear);
  gradcheck("mm (b constant)", [](const auto& v) { return mm(v[0], v[1]); },
            {normal({4, 6}, f), no_grad(normal({6, 3}, f))}, kF32Linear);
  for (const Shape& xs : {Shape{5}, Shape{3, 5}, Shape{2, 3, 5}}) {
    gradcheck("linear bias " + sh(xs), [](const auto& v) { return linear(v[0], v[1], v[2]); },
              {normal(xs, f), normal({4, 5}, f), normal({4}, f)}, kF32Linear);
    gradcheck("linear no bias " + sh(xs), [](const auto& v) { return linear(v[0], v[1]); },
              {normal(xs, f), normal({4, 5}, f)}, kF32Linear);
  }
  gradcheck("linear transposed weight", [](const auto& v) { return linear(v[0], v[1].t(), v[2]); },
            {normal({3, 5}, f), normal({5, 4}, f), normal({4}, f)}, kF32Linear);
  gradcheck("linear (x constant)", [](const auto& v) { return linear(v[0], v[1], v[2]); },
            {no_grad(normal({3, 5}, f)), normal({4, 5}, f), normal({4}, f)}, kF32Linear);
}

TEST_F(Gradcheck, Reductions) {
  const Shape s{3, 4, 2};
  gradcheck("sum all", [](const auto& v) { return sum(v[0]); }, {normal(s)}, kF64);
  gradcheck("mean all", [](const auto& v) { return mean(v[0]); }, {normal(s)}, kF64);
  gradcheck("sum 0-d", [](const auto& v) { return sum(v[0]); }, {normal({})}, kF64);
  for (bool keep : {false, true}) {
    const std::string k = keep ? " keepdim" : "";
    for (std::int64_t d : {0, 1, 2, -1, -3}) {
      gradcheck("sum dim " + std::to_string(d) + k, [d, keep](const auto& v) { return sum(v[0], {d}, keep); },
                {normal(s)}, kF64);
      gradcheck("mean dim " + std::to_string(d) + k, [d, keep](const auto& v) { return mean(v[0], {d}, keep); },
                {normal(s)}, kF64);
      gradcheck("max dim " + std::to_string(d) + k, [d, keep](const auto& v) { return max(v[0], d, keep).first; },
                {distinct(s)}, kF64);
      gradcheck("min dim " + std::to_string(d) + k, [d, keep](const auto& v) { return min(v[0], d, keep).first; },
                {distinct(s)}, kF64);
    }
    gradcheck("sum dims {0,2}" + k, [keep](const auto& v) { return sum(v[0], {0, 2}, keep); }, {normal(s)}, kF64);
    gradcheck("mean dims {-1,0}" + k, [keep](const auto& v) { return mean(v[0], {-1, 0}, keep); }, {normal(s)},
              kF64);
    gradcheck("sum dims all" + k, [keep](const auto& v) { return sum(v[0], {0, 1, 2}, keep); }, {normal(s)}, kF64);
  }
  gradcheck("max all", [](const auto& v) { return max(v[0]); }, {distinct(s)}, kF64);
  gradcheck("min all", [](const auto& v) { return min(v[0]); }, {distinct(s)}, kF64);
  gradcheck("sum of a transposed view", [](const auto& v) { return sum(v[0].transpose(0, 2), {1}); }, {normal(s)},
            kF64);
  gradcheck("mean float32", [](const auto& v) { return mean(v[0], {1}); }, {normal({3, 4}, DType::Float32)},
            kF32Linear);
}

TEST_F(Gradcheck, Softmax) {
  const DType f = DType::Float32;
  for (std::int64_t d : {0, 1, -1, 2}) {
    gradcheck("softmax dim " + std::to_string(d), [d](const auto& v) { return softmax(v[0], d); },
              {normal({3, 4, 5}, f)}, kF32Smooth);
    gradcheck("log_softmax dim " + std::to_string(d), [d](const auto& v) { return log_softmax(v[0], d); },
              {normal({3, 4, 5}, f)}, kF32Smooth);
  }
  gradcheck("softmax 1-D", [](const auto& v) { return softmax(v[0], 0); }, {normal({6}, f)}, kF32Smooth);
  gradcheck("log_softmax transposed", [](const auto& v) { return log_softmax(v[0].t(), 1); }, {normal({5, 3}, f)},
            kF32Smooth);
}

TEST_F(Gradcheck, Losses) {
  const DType f = DType::Float32;
  Tensor target = tensor(std::vector<std::int64_t>{2, 0, 3, 3, 1, 0}, {6});
  Tensor target_ign = tensor(std::vector<std::int64_t>{2, -100, 3, 3, -100, 0}, {6});
  Tensor target_ign1 = tensor(std::vector<std::int64_t>{2, 1, 3, 3, 1, 0}, {6});
  for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    const std::string r = red == Reduction::Mean ? "mean" : red == Reduction::Sum ? "sum" : "none";
    gradcheck("nll_loss " + r, [&, red](const auto& v) { return nll_loss(v[0], target, red); },
              {normal({6, 4}, f)}, kF32Linear);
    gradcheck("nll_loss ignore -100 " + r, [&, red](const auto& v) { return nll_loss(v[0], target_ign, red); },
              {normal({6, 4}, f)}, kF32Linear);
    gradcheck("nll_loss ignore 1 " + r, [&, red](const auto& v) { return nll_loss(v[0], target_ign1, red, 1); },
              {normal({6, 4}, f)}, kF32Linear);
    gradcheck("cross_entropy " + r, [&, red](const auto& v) { return cross_entropy(v[0], target, red); },
              {normal({6, 4}, f)}, kF32Smooth);
    gradcheck("cross_entropy ignore " + r,
              [&, red](const auto& v) { return cross_entropy(v[0], target_ign, red); }, {normal({6, 4}, f)},
              kF32Smooth);
    gradcheck("mse_loss " + r, [red](const auto& v) { return mse_loss(v[0], v[1], red); },
              {normal({3, 4}), normal({3, 4})}, kF64);
  }
  Tensor t0 = tensor(std::vector<std::int64_t>{2}, {1}).reshape(Shape{});
  gradcheck("nll_loss 1-D", [&](const auto& v) { return nll_loss(v[0], t0); }, {normal({5}, f)}, kF32Linear);
  gradcheck("cross_entropy 1-D", [&](const auto& v) { return cross_entropy(v[0], t0); }, {normal({5}, f)},
            kF32Smooth);
  gradcheck("cross_entropy transposed logits", [&](const auto& v) { return cross_entropy(v[0].t(), target); },
            {normal({4, 6}, f)}, kF32Smooth);
}

TEST_F(Gradcheck, Joining) {
  for (std::int64_t d : {0, 1, -1}) {
    gradcheck("cat dim " + std::to_string(d),
              [d](const auto& v) { return cat({v[0], v[1], v[2]}, d); },
              {normal(d == 0 ? Shape{1, 3} : Shape{2, 1}), normal(d == 0 ? Shape{2, 3} : Shape{2, 3}),
               no_grad(normal(d == 0 ? Shape{3, 3} : Shape{2, 2}))},
              kF64);
  }
  for (std::int64_t d : {0, 1, 2, -1})
    gradcheck("stack dim " + std::to_string(d), [d](const auto& v) { return stack({v[0], v[1]}, d); },
              {normal({2, 3}), normal({2, 3})}, kF64);
  gradcheck("cat the same tensor twice", [](const auto& v) { return cat({v[0], v[0].t()}, 0); }, {normal({3, 3})},
            kF64);
}

TEST_F(Gradcheck, Indexing) {
  Tensor idx = tensor(std::vector<std::int64_t>{2, 0, 2, 1}, {4});  // repeats: accumulation
  gradcheck("index_select dim 0", [&](const auto& v) { return index_select(v[0], 0, idx); }, {normal({3, 4})}, kF64);
  gradcheck("index_select dim -1", [&](const auto& v) { return index_select(v[0], -1, idx); }, {normal({2, 3})},
            kF64);
  Tensor scalar_idx = tensor(std::vector<std::int64_t>{1}, {1}).reshape(Shape{});
  gradcheck("index_select 0-d index", [&](const auto& v) { return index_select(v[0], 1, scalar_idx); },
            {normal({2, 3})}, kF64);
  Tensor gidx = tensor(std::vector<std::int64_t>{0, 2, 2, 1, 0, 0}, {2, 3});
  gradcheck("gather dim 1", [&](const auto& v) { return gather(v[0], 1, gidx); }, {normal({2, 4})}, kF64);
  Tensor gidx0 = tensor(std::vector<std::int64_t>{1, 0, 1, 1, 1, 0}, {3, 2});
  gradcheck("gather dim 0", [&](const auto& v) { return gather(v[0], 0, gidx0); }, {normal({2, 3})}, kF64);
  Tensor cond = gt(rand({3, 4}, {}, &gen()), full({3, 4}, 0.5));
  gradcheck("where", [&](const auto& v) { return where(cond, v[0], v[1]); }, {normal({3, 4}), normal({3, 4})}, kF64);
  gradcheck("where broadcast", [&](const auto& v) { return where(cond, v[0], v[1]); }, {normal({4}), normal({3, 1})},
            kF64);
  Tensor cond_row = gt(rand({4}, {}, &gen()), full({4}, 0.5));
  gradcheck("where broadcast cond", [&](const auto& v) { return where(cond_row, v[0], v[1]); },
            {normal({3, 4}), normal({})}, kF64);
}

TEST_F(Gradcheck, Views) {
  const Shape s{2, 3, 4};
  auto chk = [&](const std::string& name, std::function<Tensor(const Tensor&)> f) {
    // the view, then a non-linear op and a reduction so the gradient is not trivial
    gradcheck(name, [f](const auto& v) { return sum(mul(f(v[0]), f(v[0])), {0}); }, {normal(s)}, kF64);
    gradcheck(name + " (direct)", [f](const auto& v) { return f(v[0]); }, {normal(s)}, kF64);
  };
  chk("reshape", [](const Tensor& x) { return x.reshape({4, -1}); });
  chk("view", [](const Tensor& x) { return x.view({6, 4}); });
  chk("reshape of transposed", [](const Tensor& x) { return x.transpose(0, 2).reshape({-1}); });
  chk("transpose", [](const Tensor& x) { return x.transpose(0, -1); });
  chk("permute", [](const Tensor& x) { return x.permute({2, 0, 1}); });
  chk("slice step 2", [](const Tensor& x) { return x.slice(2, 1, std::nullopt, 2); });
  chk("slice negative", [](const Tensor& x) { return x.slice(-2, -2, std::nullopt, 1); });
  chk("slice step 3", [](const Tensor& x) { return x.slice(2, 0, 4, 3); });
  chk("narrow", [](const Tensor& x) { return x.narrow(1, 1, 2); });
  chk("select", [](const Tensor& x) { return x.select(1, -1); });
  chk("index []", [](const Tensor& x) { return x[1]; });
  chk("expand", [](const Tensor& x) { return x.select(2, 0).unsqueeze(0).expand({3, 2, 3}); });
  chk("expand -1", [](const Tensor& x) { return x.slice(1, 0, 1).expand({-1, 5, -1}); });
  chk("unsqueeze", [](const Tensor& x) { return x.unsqueeze(-1); });
  chk("squeeze dim", [](const Tensor& x) { return x.slice(1, 0, 1).squeeze(1); });
  chk("squeeze all", [](const Tensor& x) { return x.narrow(0, 1, 1).squeeze(); });
  chk("flatten", [](const Tensor& x) { return x.flatten(1, 2); });
  chk("flatten all", [](const Tensor& x) { return x.flatten(); });
  chk("contiguous", [](const Tensor& x) { return x.transpose(1, 2).contiguous(); });
  chk("clone", [](const Tensor& x) { return x.clone(); });
  chk("t", [](const Tensor& x) { return x.select(0, 0).t(); });
  chk("view chain", [](const Tensor& x) { return x.permute({1, 0, 2}).slice(2, 0, 4, 2).reshape({3, 4}).t(); });
  // a leaf used through two overlapping views: gradients add up
  gradcheck("overlapping views", [](const auto& v) { return add(v[0].narrow(1, 0, 2), v[0].narrow(1, 1, 2)); },
            {normal(s)}, kF64);
}

TEST_F(Gradcheck, DropoutWithFixedMask) {
  // The same generator state each call gives the same mask, so dropout is a fixed linear map.
  const std::uint64_t seed = test::run_seed() + 5;
  gradcheck("dropout train p=0.4",
            [seed](const auto& v) {
              Generator g(seed);
              return dropout(v[0], 0.4, true, &g);
            },
            {normal({5, 6})}, kF64);
  gradcheck("dropout eval", [](const auto& v) { return mul(dropout(v[0], 0.4, false), 1.0); }, {normal({5, 6})},
            kF64);
}

// ---- mixed dtypes ----

// An op that promotes float32 with float64 computes its gradients in float64; each input gets its
// gradient in its own dtype (as in PyTorch), also through ops whose backward only takes float32.
TEST_F(Gradcheck, MixedDtypeGradients) {
  Tensor x = normal({3, 4}, DType::Float32);
  Tensor w = normal({4});  // float64
  Tensor wt = normal({5, 4}, DType::Float32), b = normal({5}, DType::Float32);
  Tensor t = tensor(std::vector<std::int64_t>{1, 0, 4}, {3});
  Tensor y = mul(softmax(x, 1), w);                                // float64
  Tensor z = mul(cross_entropy(linear(x, wt, b), t), w.sum());     // float64 scalar
  ASSERT_EQ(y.dtype(), DType::Float64);
  ASSERT_NO_THROW(add(y.sum(), z).backward());
  ASSERT_TRUE(x.grad().defined() && w.grad().defined() && wt.grad().defined() && b.grad().defined());
  EXPECT_EQ(x.grad().dtype(), DType::Float32);
  EXPECT_EQ(wt.grad().dtype(), DType::Float32);
  EXPECT_EQ(b.grad().dtype(), DType::Float32);
  EXPECT_EQ(w.grad().dtype(), DType::Float64);
  // the same computation with w rounded to float32 gives the same gradients to float precision
  Tensor x2 = x.detach().clone().set_requires_grad(true);
  Tensor wt2 = wt.detach().clone().set_requires_grad(true);
  Tensor w32 = w.detach().to(DType::Float32);
  add(mul(softmax(x2, 1), w32).sum(), mul(cross_entropy(linear(x2, wt2, b.detach()), t), w32.sum())).backward();
  EXPECT_TRUE(allclose(x.grad(), x2.grad(), 1e-5, 1e-6));
  EXPECT_TRUE(allclose(wt.grad(), wt2.grad(), 1e-5, 1e-6));
  gradcheck("float32 * float64", [](const auto& v) { return mul(v[0].to(DType::Float64), v[1]); },
            {normal({3}), normal({3})}, kF64);
}

// ---- gradient accumulation ----

TEST_F(Gradcheck, AccumulatesAcrossBackwardCalls) {
  // Two separate graphs from the same leaves: .grad holds the sum.
  Tensor a = normal({3, 4}), b = normal({4});
  Tensor r1 = randn({3, 4}, TensorOptions(DType::Float64), &gen());
  Tensor r2 = randn({3, 4}, TensorOptions(DType::Float64), &gen());
  auto f = [&]() { return mul(tanh(a), b); };
  f().backward(r1);
  Tensor ga1 = a.grad().clone(), gb1 = b.grad().clone();
  f().backward(r2);
  Tensor ga2 = a.grad().clone(), gb2 = b.grad().clone();
  a.zero_grad(true);
  b.zero_grad(true);
  f().backward(r2);
  EXPECT_TRUE(allclose(ga2, add(ga1, a.grad()), 1e-12, 1e-12)) << "a.grad must accumulate over backward calls";
  EXPECT_TRUE(allclose(gb2, add(gb1, b.grad()), 1e-12, 1e-12)) << "b.grad must accumulate over backward calls";

  // The same graph twice with retain_graph: twice the gradient.
  a.zero_grad(true);
  Tensor y = sum(exp(a));
  y.backward(Tensor(), /*retain_graph=*/true);
  Tensor once = a.grad().clone();
  y.backward();
  EXPECT_TRUE(allclose(a.grad(), mul(once, 2.0), 1e-12, 1e-12)) << "retain_graph: second backward adds again";

  // zero_grad() keeps the buffer and zeroes it; the next backward starts from zero.
  a.zero_grad();
  ASSERT_TRUE(a.grad().defined());
  EXPECT_TRUE(allclose(a.grad(), zeros_like(a.grad()), 0, 0));
  sum(exp(a)).backward();
  EXPECT_TRUE(allclose(a.grad(), once, 1e-12, 1e-12));

  // A leaf used several times in one graph: contributions add (d/dx of x*x + x = 2x + 1).
  Tensor x = normal({5});
  sum(add(mul(x, x), x)).backward();
  EXPECT_TRUE(allclose(x.grad(), add(mul(x.detach(), 2.0), 1.0), 1e-12, 1e-12));

  // Accumulating a gradient into .grad must not write into tensors the graph still uses or the user
  // holds: take a gradient, keep a copy, backpropagate again and check the copy did not change.
  Tensor w = normal({4});
  Tensor seed_grad = randn({4}, TensorOptions(DType::Float64), &gen());
  mul(w, 1.0).backward(seed_grad);
  Tensor first = w.grad();  // shares .grad
  Tensor first_copy = first.clone();
  Tensor seed_copy = seed_grad.clone();
  mul(w, 1.0).backward(seed_grad);
  EXPECT_TRUE(equal(seed_grad, seed_copy)) << "backward must not modify the seed gradient";
  EXPECT_TRUE(allclose(w.grad(), mul(first_copy, 2.0), 1e-12, 1e-12));

  // Identity-like backward (add passes the incoming gradient through): the user's seed must not be
  // adopted as .grad and then modified by the next accumulation.
  Tensor p = normal({3}), q = normal({3});
  Tensor s1 = randn({3}, TensorOptions(DType::Float64), &gen());
  Tensor s1_copy = s1.clone();
  add(p, q).backward(s1);
  add(p, q).backward(s1);
  EXPECT_TRUE(equal(s1, s1_copy)) << "the seed gradient changed after two backward calls";
  EXPECT_TRUE(allclose(p.grad(), mul(s1_copy, 2.0), 1e-12, 1e-12));
  EXPECT_TRUE(allclose(q.grad(), mul(s1_copy, 2.0), 1e-12, 1e-12));

  // Gradients through float32-only ops accumulate too.
  Tensor m = normal({3, 4}, DType::Float32), n = normal({4, 2}, DType::Float32);
  sum(matmul(m, n)).backward();
  Tensor gm = m.grad().clone();
  sum(matmul(m, n)).backward();
  EXPECT_TRUE(allclose(m.grad(), mul(gm, 2.0), 1e-6, 1e-6));
}
