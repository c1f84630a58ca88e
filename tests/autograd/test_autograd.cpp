// Autograd engine behaviour: which tensors can require grad, backward's errors, gradient
// accumulation and retain_graph, grad mode, detach, zero_grad, hooks (tensor hooks and
// post-accumulate-grad hooks, their values, counts and order), retain_grad, in-place checks,
// graphs where a tensor is used more than once, and grad_fn names. Expected values are worked
// out by hand in the comments.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "support/expect.hpp"
#include "krill/krill.hpp"
#include "krill/autograd/node.hpp"

using namespace krill;

namespace {

std::vector<float> fvec(const Tensor& t) { return t.to_vector<float>(); }

using krill::test::contains;
using krill::test::error_of;

Tensor leaf(std::initializer_list<float> v) { return tensor(v).requires_grad_(); }

}  // namespace

// ---------------------------------------------------------------- requires_grad and leaves

TEST(Autograd, RequiresGradOnlyForFloatingDTypes) {
  Tensor f = zeros({2});
  f.requires_grad_();
  EXPECT_TRUE(f.requires_grad());
  Tensor d = zeros({2}, DType::Float64);
  d.requires_grad_();
  EXPECT_TRUE(d.requires_grad());

  Tensor i = zeros({2}, kInt64);
  std::string msg = error_of<AutogradError>([&] { i.requires_grad_(); });
  EXPECT_TRUE(contains(msg, "floating")) << msg;
  EXPECT_TRUE(contains(msg, "int64")) << msg;
  EXPECT_FALSE(i.requires_grad());
  Tensor b = zeros({2}, kBool);
  EXPECT_THROW(b.requires_grad_(), AutogradError);
  i.requires_grad_(false);  // turning it off is always fine
  EXPECT_FALSE(i.requires_grad());
}

TEST(Autograd, LeavesAndResults) {
  Tensor x = leaf({1, 2});
  Tensor c = tensor({3.f, 4.f});
  EXPECT_TRUE(x.is_leaf());
  EXPECT_EQ(x.grad_fn(), nullptr);

  Tensor y = x * c;
  EXPECT_FALSE(y.is_leaf());
  EXPECT_TRUE(y.requires_grad());
  ASSERT_NE(y.grad_fn(), nullptr);

  Tensor z = c * c;  // nothing requires grad: nothing recorded
  EXPECT_TRUE(z.is_leaf());
  EXPECT_FALSE(z.requires_grad());
  EXPECT_EQ(z.grad_fn(), nullptr);

  // only inputs that require grad get an edge
  EXPECT_TRUE(y.grad_fn()->needs_grad(0));
  EXPECT_FALSE(y.grad_fn()->needs_grad(1));

  std::string msg = error_of<AutogradError>([&] { y.requires_grad_(false); });
  EXPECT_TRUE(contains(msg, "detach")) << msg;
}

// ---------------------------------------------------------------- backward errors

TEST(Autograd, BackwardErrors) {
  Tensor x = leaf({1, 2, 3});
  Tensor y = x * 2.0;
  std::string msg = error_of<AutogradError>([&] { y.backward(); });
  EXPECT_TRUE(contains(msg, "one-element")) << msg;
  EXPECT_TRUE(contains(msg, "[3]")) << msg;

  Tensor plain = tensor({1.f});
  msg = error_of<AutogradError>([&] { plain.backward(); });
  EXPECT_TRUE(contains(msg, "does not require grad")) << msg;

  Tensor nograd;
  {
    NoGradGuard g;
    nograd = (x * 2.0).sum();
  }
  msg = error_of<AutogradError>([&] { nograd.backward(); });
  EXPECT_TRUE(contains(msg, "NoGradGuard")) << msg;  // names the likely cause

  msg = error_of<AutogradError>([&] { y.backward(ones({2})); });
  EXPECT_TRUE(contains(msg, "[2]")) << msg;
  EXPECT_THROW(Tensor().backward(), AutogradError);
  EXPECT_FALSE(x.grad().defined()) << "failed backward calls must not touch .grad";
}

TEST(Autograd, BackwardWithExplicitGradient) {
  Tensor x = leaf({1, 2, 3});
  Tensor y = x * x;  // dy/dx = 2x
  y.backward(tensor({1.f, 10.f, 100.f}));
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{2, 40, 600}));

  // a one-element non-scalar root gets an implicit ones gradient
  Tensor w = leaf({3});
  (w * w).reshape({1, 1}).backward();
  EXPECT_EQ(fvec(w.grad()), (std::vector<float>{6}));

  // backward on a leaf accumulates the seed into its own .grad
  Tensor l = leaf({5, 6});
  l.backward(tensor({0.5f, 0.25f}));
  EXPECT_EQ(fvec(l.grad()), (std::vector<float>{0.5f, 0.25f}));
}

// ---------------------------------------------------------------- accumulation and retain_graph

TEST(Autograd, AccumulatesAcrossBackwardCallsWithRetainGraph) {
  Tensor x = leaf({1, -2, 3});
  Tensor y = (x * x).sum();  // dy/dx = 2x
  y.backward(Tensor(), /*retain_graph=*/true);
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{2, -4, 6}));
  Tensor first_grad = x.grad();
  y.backward();
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{4, -8, 12}));
  EXPECT_EQ(x.grad().impl(), first_grad.impl()) << "accumulation is in place into the existing .grad";

  // a new graph over the same leaf accumulates too
  (x * 3.0).sum().backward();
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{7, -5, 15}));
  EXPECT_FALSE(x.grad().requires_grad());
  EXPECT_EQ(x.grad().grad_fn(), nullptr);
}

TEST(Autograd, SecondBackwardWithoutRetainGraphFails) {
  Tensor x = leaf({1, 2});
  Tensor y = (x * x).sum();
  y.backward();
  std::string msg = error_of<AutogradError>([&] { y.backward(); });
  EXPECT_TRUE(contains(msg, "retain_graph")) << msg;
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{2, 4})) << "the failed call must not accumulate";

  // through a shared intermediate whose node was freed by the first backward
  Tensor z = x * x;
  z.sum().backward();
  msg = error_of<AutogradError>([&] { (z * 2.0).sum().backward(); });
  EXPECT_TRUE(contains(msg, "retain_graph")) << msg;
  EXPECT_TRUE(contains(msg, "MulBackward0")) << msg;

  // with retain_graph the shared intermediate can be reused
  Tensor a = leaf({3});
  Tensor b = a * a;  // 9, db/da = 6
  b.sum().backward(Tensor(), true);
  (b * 2.0).sum().backward();
  EXPECT_EQ(fvec(a.grad()), (std::vector<float>{6 + 12}));
}

// ---------------------------------------------------------------- grad mode

TEST(Autograd, NoGradGuardDisablesRecording) {
  Tensor x = leaf({1, 2});
  EXPECT_TRUE(autograd::is_grad_enabled());
  {
    NoGradGuard g;
    EXPECT_FALSE(autograd::is_grad_enabled());
    Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    {
      NoGradGuard nested;
      EXPECT_FALSE(autograd::is_grad_enabled());
    }
    EXPECT_FALSE(autograd::is_grad_enabled()) << "a nested guard restores the outer state, not 'enabled'";
    {
      GradModeGuard on(true);
      EXPECT_TRUE(autograd::is_grad_enabled());
      EXPECT_NE((x * 2.0).grad_fn(), nullptr);
    }
    EXPECT_FALSE(autograd::is_grad_enabled());
    // grad mode is per thread
    bool other_thread_enabled = false;
    std::thread t([&] { other_thread_enabled = autograd::is_grad_enabled(); });
    t.join();
    EXPECT_TRUE(other_thread_enabled);
  }
  EXPECT_TRUE(autograd::is_grad_enabled());
  EXPECT_NE((x * 2.0).grad_fn(), nullptr);
}

TEST(Autograd, DetachSharesStorageWithoutHistory) {
  Tensor x = leaf({1, 2, 3});
  Tensor y = x * 2.0;
  Tensor d = y.detach();
  EXPECT_EQ(d.grad_fn(), nullptr);
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_EQ(d.impl()->storage.get(), y.impl()->storage.get());
  EXPECT_EQ(d.shape(), y.shape());
  d.data_ptr<float>()[0] = 42.f;  // same memory
  EXPECT_EQ(y[0].item<float>(), 42.f);
  // a graph through the detached tensor does not reach x
  Tensor w = leaf({1, 1, 1});
  (d * w).sum().backward();
  EXPECT_FALSE(x.grad().defined());
  EXPECT_EQ(fvec(w.grad()), (std::vector<float>{42, 4, 6}));

  // detach_ in place
  Tensor z = x * 3.0;
  z.detach_();
  EXPECT_EQ(z.grad_fn(), nullptr);
  EXPECT_FALSE(z.requires_grad());
}

TEST(Autograd, GradientsAreNotRecorded) {
  Tensor x = leaf({2});
  Tensor y = x * x * x;  // dy/dx = 3x^2 = 12
  y.sum().backward();
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{12}));
  EXPECT_FALSE(x.grad().requires_grad());
  EXPECT_TRUE(autograd::is_grad_enabled()) << "backward restores grad mode";
}

// ---------------------------------------------------------------- zero_grad

TEST(Autograd, ZeroGradInPlaceVersusSetToNone) {
  Tensor x = leaf({1, 2});
  (x * x).sum().backward();
  Tensor g = x.grad();
  TensorImpl* gi = g.impl();
  x.zero_grad();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().impl(), gi) << "zero_grad() keeps the same gradient tensor";
  EXPECT_EQ(fvec(g), (std::vector<float>{0, 0})) << "and zeroes it in place (visible through old handles)";
  (x * 5.0).sum().backward();
  EXPECT_EQ(x.grad().impl(), gi);
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{5, 5}));

  x.zero_grad(/*set_to_none=*/true);
  EXPECT_FALSE(x.grad().defined());
  EXPECT_EQ(fvec(g), (std::vector<float>{5, 5})) << "set_to_none drops the reference, it does not write";
  (x * 7.0).sum().backward();
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{7, 7}));
  EXPECT_NE(x.grad().impl(), gi);

  Tensor fresh = leaf({1});
  fresh.zero_grad();  // no grad yet: nothing happens
  EXPECT_FALSE(fresh.grad().defined());

  // set_grad checks the shape
  EXPECT_THROW(x.set_grad(zeros({3})), ShapeError);
  x.set_grad(full({2}, 1.0));
  (x * 1.0).sum().backward();
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{2, 2}));
}

// ---------------------------------------------------------------- hooks

TEST(AutogradHooks, PostAccumulateGradHookSeesAccumulatedGrad) {
  Tensor x = leaf({1, 2});
  std::vector<std::vector<float>> seen;
  x.register_post_accumulate_grad_hook([&](Tensor& t) {
    EXPECT_EQ(t.impl(), x.impl()) << "the hook receives the leaf itself";
    seen.push_back(fvec(t.grad()));
  });
  Tensor y = (x * x).sum();  // grad 2x = [2, 4]
  y.backward(Tensor(), true);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], (std::vector<float>{2, 4}));
  y.backward();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1], (std::vector<float>{4, 8})) << "the hook sees the accumulated .grad";
}

TEST(AutogradHooks, PostAccumulateGradHookFiresOncePerBackwardWhenALeafIsUsedTwice) {
  // x feeds two branches; PyTorch sums both contributions before accumulating, so the hook
  // fires once per backward with the full gradient (what a gradient allreduce needs).
  Tensor x = leaf({1, 2});
  std::vector<std::vector<float>> seen;
  x.register_post_accumulate_grad_hook([&](Tensor& t) { seen.push_back(fvec(t.grad())); });
  Tensor y = (x * 3.0 + x * x).sum();  // d/dx = 3 + 2x = [5, 7]
  y.backward();
  ASSERT_EQ(seen.size(), 1u) << "hook fired " << seen.size() << " times in one backward";
  EXPECT_EQ(seen[0], (std::vector<float>{5, 7}));
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{5, 7}));

  // the same leaf used by the same node twice (x * x) and through a view
  Tensor w = leaf({3});
  int calls = 0;
  w.register_post_accumulate_grad_hook([&](Tensor& t) {
    ++calls;
    EXPECT_EQ(t.grad().item<float>(), 6.f + 1.f);
  });
  (w * w + w.reshape({1})).sum().backward();  // 2w + 1 = 7
  EXPECT_EQ(calls, 1);
}

TEST(AutogradHooks, PostAccumulateGradHookOrderFollowsTheBackwardPass) {
  manual_seed(3);
  nn::Linear l1(4, 3), l2(3, 2);
  std::vector<std::string> order;
  auto watch = [&](Tensor& p, const std::string& name) {
    p.register_post_accumulate_grad_hook([&order, name](Tensor& t) {
      EXPECT_TRUE(t.grad().defined()) << name;
      order.push_back(name);
    });
  };
  watch(l1.weight, "l1.weight");
  watch(l1.bias, "l1.bias");
  watch(l2.weight, "l2.weight");
  watch(l2.bias, "l2.bias");
  Tensor x = randn({5, 4});
  l2.forward(relu(l1.forward(x))).sum().backward();
  ASSERT_EQ(order.size(), 4u);
  auto pos = [&](const std::string& n) { return std::find(order.begin(), order.end(), n) - order.begin(); };
  // the layer nearer the output gets its gradients first
  EXPECT_LT(std::max(pos("l2.weight"), pos("l2.bias")), std::min(pos("l1.weight"), pos("l1.bias")))
      << order[0] << " " << order[1] << " " << order[2] << " " << order[3];

  EXPECT_THROW((x * 2.0).register_post_accumulate_grad_hook([](Tensor&) {}), AutogradError);
  Tensor no_grad = zeros({2});
  EXPECT_THROW(no_grad.register_post_accumulate_grad_hook([](Tensor&) {}), AutogradError);
}

TEST(AutogradHooks, RegisterHookCanReplaceTheGradient) {
  Tensor x = leaf({1, 2});
  std::vector<float> hook_saw;
  x.register_hook([&](const Tensor& g) -> std::optional<Tensor> {
    hook_saw = fvec(g);
    return g * 10.0;
  });
  (x * x).sum().backward();  // 2x = [2, 4], replaced by [20, 40]
  EXPECT_EQ(hook_saw, (std::vector<float>{2, 4}));
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{20, 40}));

  // a hook that returns nothing leaves the gradient alone; hooks run in registration order
  Tensor w = leaf({1});
  std::vector<int> calls;
  w.register_hook([&](const Tensor&) -> std::optional<Tensor> {
    calls.push_back(1);
    return std::nullopt;
  });
  w.register_hook([&](const Tensor& g) -> std::optional<Tensor> {
    calls.push_back(2);
    return g + 1.0;
  });
  (w * 3.0).sum().backward();
  EXPECT_EQ(calls, (std::vector<int>{1, 2}));
  EXPECT_EQ(w.grad().item<float>(), 4.f);

  // the hook sees the total gradient of a leaf used twice, once
  Tensor u = leaf({2});
  int n = 0;
  u.register_hook([&](const Tensor& g) -> std::optional<Tensor> {
    ++n;
    EXPECT_EQ(g.item<float>(), 4.f + 5.f);  // 2u + 5
    return std::nullopt;
  });
  (u * u + u * 5.0).sum().backward();
  EXPECT_EQ(n, 1);

  Tensor plain = zeros({1});
  EXPECT_THROW(plain.register_hook([](const Tensor&) { return std::optional<Tensor>(); }), AutogradError);
}

TEST(AutogradHooks, RetainGradOnNonLeaf) {
  Tensor x = leaf({1, 2});
  Tensor y = x * 3.0;  // [3, 6]
  y.retain_grad();
  Tensor h = x * 2.0;  // not retained
  Tensor z = (y * y + h).sum();  // dz/dy = 2y = [6, 12]
  z.backward();
  ASSERT_TRUE(y.grad().defined());
  EXPECT_EQ(fvec(y.grad()), (std::vector<float>{6, 12}));
  EXPECT_FALSE(h.grad().defined()) << "non-leaf gradients are not kept unless asked";
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{3 * 6 + 2, 3 * 12 + 2}));
  // retain_grad on a leaf is a no-op (leaves keep their grad anyway)
  x.retain_grad();
  EXPECT_TRUE(x.is_leaf());
}

// ---------------------------------------------------------------- in-place checks

TEST(AutogradInplace, ModifiedSavedTensorIsDetected) {
  Tensor x = leaf({1, 2});
  Tensor c = tensor({3.f, 4.f});  // does not require grad: in-place is allowed
  Tensor y = (x * c).sum();       // MulBackward0 saves c for dx
  c.add_(1.0);
  std::string msg = error_of<AutogradError>([&] { y.backward(); });
  EXPECT_TRUE(contains(msg, "modified by an in-place operation")) << msg;
  EXPECT_TRUE(contains(msg, "MulBackward0")) << msg;

  // through a view of the saved tensor (shared storage version)
  Tensor base = tensor({1.f, 2.f, 3.f});
  Tensor y2 = (x * base.slice(0, 0, 2)).sum();
  base.select(0, 2).fill_(0.0);
  EXPECT_THROW(y2.backward(), AutogradError);

  // writing the output of exp (saved by ExpBackward0) through a detached alias
  Tensor e = x.exp();
  Tensor loss = e.sum();
  e.detach().mul_(2.0);
  EXPECT_THROW(loss.backward(), AutogradError);

  // unmodified: fine
  Tensor ok = (x * tensor({3.f, 4.f})).sum();
  ok.backward();
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{3, 4}));
}

TEST(AutogradInplace, InPlaceOnLeafRequiringGradNeedsNoGrad) {
  Tensor w = leaf({1, 2});
  std::string msg = error_of<AutogradError>([&] { w.add_(1.0); });
  EXPECT_TRUE(contains(msg, "leaf")) << msg;
  EXPECT_TRUE(contains(msg, "NoGradGuard")) << msg;
  EXPECT_THROW(w.mul_(2.0), AutogradError);
  EXPECT_THROW(w.fill_(0.0), AutogradError);
  EXPECT_THROW(w.copy_(zeros({2})), AutogradError);
  EXPECT_THROW(w.sub_(ones({2})), AutogradError);
  EXPECT_EQ(fvec(w), (std::vector<float>{1, 2})) << "refused ops must not write";
  {
    NoGradGuard g;
    w.sub_(tensor({0.5f, 0.5f}), 2.0);  // an optimizer step
  }
  EXPECT_EQ(fvec(w), (std::vector<float>{0, 1}));
  EXPECT_TRUE(w.requires_grad());
  EXPECT_TRUE(w.is_leaf());

  // in-place on a non-leaf in the graph is refused too
  Tensor y = w * w;
  msg = error_of<AutogradError>([&] { y.add_(1.0); });
  EXPECT_TRUE(contains(msg, "MulBackward0")) << msg;
}

// ---------------------------------------------------------------- graph shapes

TEST(AutogradGraph, DiamondAccumulates) {
  // x -> a = x + 1, b = x * 2 -> c = a * b -> sum
  // c = (x + 1) * 2x = 2x^2 + 2x, dc/dx = 4x + 2
  Tensor x = leaf({1, 2, -3});
  Tensor a = x + 1.0;
  Tensor b = x * 2.0;
  Tensor c = (a * b).sum();
  c.backward();
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{6, 10, -10}));

  // a deeper diamond: d = a*a; e = a + d; f = (e * b).sum()
  // with a = x+1, b = 2x: f = (a + a^2) * 2x; df/dx = (1 + 2a) * 2x + (a + a^2) * 2
  Tensor x2 = leaf({1, 2});
  Tensor a2 = x2 + 1.0, b2 = x2 * 2.0;
  Tensor f = ((a2 + a2 * a2) * b2).sum();
  f.backward();
  // x=1: a=2: (5)*2 + 6*2 = 22; x=2: a=3: (7)*4 + 12*2 = 52
  EXPECT_EQ(fvec(x2.grad()), (std::vector<float>{22, 52}));

  // broadcasting inputs: y = x[3] + m[2,3] -> grad of x sums over rows
  Tensor xb = leaf({1, 2, 3});
  Tensor m = ones({2, 3}).requires_grad_();
  ((xb + m) * (xb + m)).sum().backward();
  // d/dxb = sum_rows 2(xb + 1) = 4(xb + 1)
  EXPECT_EQ(fvec(xb.grad()), (std::vector<float>{8, 12, 16}));
  EXPECT_EQ(m.grad().shape(), Shape({2, 3}));
  EXPECT_EQ(fvec(m.grad()), (std::vector<float>{4, 6, 8, 4, 6, 8}));
}

TEST(AutogradGraph, UnusedBranchesAndPartialRequiresGrad) {
  Tensor x = leaf({1, 2});
  Tensor w = leaf({5, 5});
  Tensor y = (x * 2.0).sum();  // w not involved
  y.backward();
  EXPECT_FALSE(w.grad().defined());
  EXPECT_EQ(fvec(x.grad()), (std::vector<float>{2, 2}));

  // a graph with a max picks one branch: gradient only to the selected element
  Tensor v = leaf({1, 7, 3});
  v.max().backward();
  EXPECT_EQ(fvec(v.grad()), (std::vector<float>{0, 1, 0}));
}

TEST(AutogradGraph, SavedTensorsFreedAfterBackward) {
  Tensor x = leaf({1, 2});
  Tensor y = x.exp();
  Tensor z = (y * x).sum();
  autograd::Node* n = y.grad_fn();
  ASSERT_NE(n, nullptr);
  z.backward();
  EXPECT_TRUE(n->released) << "backward without retain_graph frees what the nodes saved";
  EXPECT_FALSE(n->saved[0].defined());

  Tensor y2 = x.exp();
  Tensor z2 = (y2 * x).sum();
  z2.backward(Tensor(), true);
  EXPECT_FALSE(y2.grad_fn()->released);
}

TEST(AutogradGraph, GradFnNames) {
  Tensor x = zeros({2, 3}).requires_grad_();
  Tensor y = ones({2, 3}).requires_grad_();
  auto name = [](const Tensor& t) { return std::string(t.grad_fn() ? t.grad_fn()->name : "<none>"); };
  // the names PyTorch 1.13 gives the same expressions (type(t.grad_fn).__name__)
  EXPECT_EQ(name(x + y), "AddBackward0");
  EXPECT_EQ(name(x - y), "SubBackward0");
  EXPECT_EQ(name(x * y), "MulBackward0");
  EXPECT_EQ(name(x / y), "DivBackward0");
  EXPECT_EQ(name(-x), "NegBackward0");
  EXPECT_EQ(name(x.exp()), "ExpBackward0");
  EXPECT_EQ(name(x.relu()), "ReluBackward0");
  EXPECT_EQ(name(x.tanh()), "TanhBackward0");
  EXPECT_EQ(name(x.sigmoid()), "SigmoidBackward0");
  EXPECT_EQ(name(x.pow(2.0)), "PowBackward0");
  // tensor-scalar ops carry libtorch's C++ overload names (Python wraps the scalar in a tensor
  // and reports AddBackward0 / MulBackward0 instead)
  EXPECT_EQ(name(x + 1.0), "AddBackward1");
  EXPECT_EQ(name(x * 2.0), "MulBackward1");
  EXPECT_EQ(name(1.0 - x), "RsubBackward1");
  EXPECT_EQ(name(x.sum(0)), "SumBackward1");
  EXPECT_EQ(name(x.mean(1)), "MeanBackward1");
  EXPECT_EQ(name(x.log_softmax(1)), "LogSoftmaxBackward0");
  EXPECT_EQ(name(x.softmax(1)), "SoftmaxBackward0");
  EXPECT_EQ(name(x.matmul(y.t())), "MmBackward0");
  EXPECT_EQ(name(linear(x, y, zeros({2}).requires_grad_())), "AddmmBackward0");
  EXPECT_EQ(name(x.view({6})), "ViewBackward0");
  EXPECT_EQ(name(x.transpose(0, 1)), "TransposeBackward0");
  EXPECT_EQ(name(x.permute({1, 0})), "PermuteBackward0");
  EXPECT_EQ(name(x.select(0, 1)), "SelectBackward0");
  EXPECT_EQ(name(x.slice(1, 1, 3)), "SliceBackward0");
  EXPECT_EQ(name(x.slice(0, 0, 1).expand({4, 3})), "ExpandBackward0");
  EXPECT_EQ(name(x.clone()), "CloneBackward0");
  EXPECT_EQ(name(x.to(DType::Float64)), "ToCopyBackward0");
  EXPECT_EQ(name(cat({x, y}, 0)), "CatBackward0");
  EXPECT_EQ(name(clamp(x, 0.0, 1.0)), "ClampBackward1");
  EXPECT_EQ(name(x.sum()), "SumBackward0");
  EXPECT_EQ(name(x.mean()), "MeanBackward0");
  EXPECT_EQ(name(x.max()), "MaxBackward1");
  EXPECT_EQ(name(nll_loss(x.log_softmax(1), tensor({0, 2}))), "NllLossBackward0");
  EXPECT_EQ(name(Tensor(zeros({2}))), "<none>");
}
