// Optimizer API: parameter groups and learning rates, zero_grad, state_dict round trips and
// validation, parameters without gradients, option validation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "krill/krill.hpp"
#include "krill/optim/adam.hpp"
#include "krill/optim/adamw.hpp"
#include "krill/optim/sgd.hpp"

using namespace krill;
using namespace krill::optim;

namespace {

// Deterministic values without the core's RNG: a 64-bit LCG mapped to [-1, 1).
struct Lcg {
  std::uint64_t s;
  explicit Lcg(std::uint64_t seed) : s(seed * 6364136223846793005ULL + 1442695040888963407ULL) {}
  float next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<float>(static_cast<double>(s >> 40) / static_cast<double>(1ULL << 24) * 2.0 - 1.0);
  }
};

Tensor make_param(const Shape& shape, std::uint64_t seed) {
  Tensor t = empty(shape);
  Lcg r(seed);
  float* d = t.data_ptr<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i) d[i] = r.next();
  t.requires_grad_();
  return t;
}

std::vector<float> values(const Tensor& t) {
  const float* d = t.data_ptr<float>();
  return {d, d + t.numel()};
}

// Sets p.grad to deterministic values for (seed, step), reusing the existing grad tensor.
void set_grad(Tensor& p, std::uint64_t seed, int step) {
  Tensor g = p.grad();
  if (!g.defined()) {
    g = empty(p.shape());
    p.set_grad(g);
  }
  Lcg r(seed * 1000003ULL + static_cast<std::uint64_t>(step));
  float* d = g.data_ptr<float>();
  const float scale = (step % 7 == 3) ? 0.01f : 1.0f;
  for (std::int64_t i = 0; i < g.numel(); ++i) d[i] = r.next() * scale;
}

std::vector<Tensor> make_params(std::uint64_t seed) {
  return {make_param({4, 3}, seed + 1), make_param({3}, seed + 2), make_param({37}, seed + 3),
          make_param({1}, seed + 4)};
}

std::vector<Tensor> clone_params(const std::vector<Tensor>& ps) {
  std::vector<Tensor> out;
  for (const auto& p : ps) {
    Tensor t = empty(p.shape());
    std::memcpy(t.data_ptr<float>(), p.data_ptr<float>(), p.nbytes());
    t.requires_grad_();
    out.push_back(t);
  }
  return out;
}

void run_steps(Optimizer& opt, std::vector<Tensor>& ps, int from, int to) {
  for (int step = from; step < to; ++step) {
    for (std::size_t i = 0; i < ps.size(); ++i) set_grad(ps[i], i, step);
    opt.step();
  }
}

void expect_same_params(const std::vector<Tensor>& a, const std::vector<Tensor>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto va = values(a[i]), vb = values(b[i]);
    ASSERT_EQ(va.size(), vb.size());
    EXPECT_EQ(std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)), 0) << what << ": parameter " << i << " differs";
  }
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no error>";
}

using Factory = std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>;

struct Named {
  const char* name;
  Factory make;
};

std::vector<Named> all_optimizers() {
  return {
      {"sgd_momentum", [](std::vector<Tensor> p) { return std::make_unique<SGD>(p, SGDOptions(0.05).momentum(0.9)); }},
      {"sgd_nesterov_dampening_free",
       [](std::vector<Tensor> p) {
         return std::make_unique<SGD>(p, SGDOptions(0.05).momentum(0.8).nesterov(true).weight_decay(1e-3));
       }},
      {"sgd_dampening",
       [](std::vector<Tensor> p) { return std::make_unique<SGD>(p, SGDOptions(0.05).momentum(0.9).dampening(0.2)); }},
      {"adam", [](std::vector<Tensor> p) { return std::make_unique<Adam>(p, AdamOptions(1e-2)); }},
      {"adam_amsgrad_wd",
       [](std::vector<Tensor> p) {
         return std::make_unique<Adam>(p, AdamOptions(1e-2).amsgrad(true).weight_decay(0.1).betas({0.8, 0.99}));
       }},
      {"adamw", [](std::vector<Tensor> p) { return std::make_unique<AdamW>(p, AdamWOptions(1e-2)); }},
      {"adamw_amsgrad",
       [](std::vector<Tensor> p) { return std::make_unique<AdamW>(p, AdamWOptions(1e-2).amsgrad(true).eps(1e-6)); }},
  };
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST(OptimApi, ParamGroupsWithDifferentLearningRates) {
  Tensor a = make_param({5}, 1), b = make_param({3}, 2);
  const auto a0 = values(a), b0 = values(b);
  SGD opt({{{a}}, {{b}, SGDOptions(0.01)}}, SGDOptions(0.1));
  ASSERT_EQ(opt.num_param_groups(), 2u);
  EXPECT_EQ(opt.lr(0), 0.1);
  EXPECT_EQ(opt.lr(1), 0.01);
  EXPECT_EQ(opt.num_params(), 2u);
  EXPECT_EQ(opt.parameters().size(), 2u);

  a.set_grad(ones({5}));
  b.set_grad(ones({3}));
  opt.step();
  // param.add_(grad, alpha=-lr) == fma(grad, float(-lr), param)
  for (int i = 0; i < 5; ++i) EXPECT_EQ(values(a)[i], std::fma(1.0f, static_cast<float>(-0.1), a0[i]));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(values(b)[i], std::fma(1.0f, static_cast<float>(-0.01), b0[i]));

  // set_lr for schedulers: all groups, or one.
  opt.set_lr(0.5);
  EXPECT_EQ(opt.lr(0), 0.5);
  EXPECT_EQ(opt.lr(1), 0.5);
  opt.set_lr(1, 0.25);
  EXPECT_EQ(opt.lr(0), 0.5);
  EXPECT_EQ(opt.lr(1), 0.25);
  const auto a1 = values(a), b1 = values(b);
  opt.step();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(values(a)[i], std::fma(1.0f, -0.5f, a1[i]));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(values(b)[i], std::fma(1.0f, -0.25f, b1[i]));
  EXPECT_THROW(opt.lr(2), IndexError);
  EXPECT_THROW(opt.set_lr(0, -1.0), ValueError);

  // add_param_group after construction; unset options = defaults.
  Tensor c = make_param({2}, 3);
  opt.add_param_group({{c}});
  EXPECT_EQ(opt.num_param_groups(), 3u);
  EXPECT_EQ(opt.lr(2), 0.1);
  opt.options(2).momentum(0.9);
  EXPECT_EQ(opt.options(2).momentum(), 0.9);
}

TEST(OptimApi, AdamGroupsAndOptionsAccess) {
  auto ps = make_params(7);
  Adam opt({{{ps[0], ps[1]}}, {{ps[2], ps[3]}, AdamOptions(1e-4).betas({0.5, 0.9})}}, AdamOptions(1e-3));
  EXPECT_EQ(opt.lr(0), 1e-3);
  EXPECT_EQ(opt.lr(1), 1e-4);
  EXPECT_EQ(opt.options(1).betas().first, 0.5);
  EXPECT_EQ(opt.defaults().lr(), 1e-3);
  EXPECT_EQ(opt.param_index(1, 1), 3u);
  EXPECT_EQ(opt.name(), "Adam");
  AdamW w(make_params(8));
  EXPECT_EQ(w.options().weight_decay(), 1e-2);  // PyTorch's AdamW default
  EXPECT_EQ(AdamOptions().weight_decay(), 0.0);
  EXPECT_EQ(AdamOptions().lr(), 1e-3);
  EXPECT_EQ(AdamOptions().eps(), 1e-8);
  EXPECT_EQ(AdamOptions().betas().second, 0.999);
}

TEST(OptimApi, ZeroGradKeepsTensorsAndZeroesThemInPlace) {
  auto ps = make_params(3);
  Adam opt(ps);
  std::vector<const void*> ptrs;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    set_grad(ps[i], i, 0);
    ptrs.push_back(ps[i].grad().raw_data());
  }
  opt.zero_grad();
  for (std::size_t i = 0; i < ps.size(); ++i) {
    Tensor g = ps[i].grad();
    ASSERT_TRUE(g.defined());
    EXPECT_EQ(g.raw_data(), ptrs[i]) << "zero_grad() must keep the gradient tensor (PyTorch 1.13 default)";
    for (float v : values(g)) EXPECT_EQ(v, 0.0f);
  }
  opt.zero_grad(/*set_to_none=*/true);
  for (auto& p : ps) EXPECT_FALSE(p.grad().defined());
  opt.zero_grad();  // nothing to do, no error
}

TEST(OptimApi, StepBumpsTheParameterVersion) {
  auto ps = make_params(4);
  SGD opt(ps, SGDOptions(0.1));
  set_grad(ps[0], 0, 0);
  const auto v0 = ps[0].impl()->storage->version;
  const auto v1 = ps[1].impl()->storage->version;
  opt.step();
  EXPECT_GT(ps[0].impl()->storage->version, v0);
  EXPECT_EQ(ps[1].impl()->storage->version, v1) << "a parameter without gradient is not written";
}

TEST(OptimApi, ParametersWithoutGradientAreSkipped) {
  for (const auto& o : all_optimizers()) {
    SCOPED_TRACE(o.name);
    auto ps = make_params(11);
    const auto before = values(ps[1]);
    auto opt = o.make(ps);
    for (int step = 0; step < 3; ++step) {
      for (std::size_t i = 0; i < ps.size(); ++i)
        if (i != 1) set_grad(ps[i], i, step);
      opt->step();
    }
    EXPECT_EQ(values(ps[1]), before);
    const StateDict sd = opt->state_dict();
    for (const auto& key : sd.keys()) EXPECT_NE(key.rfind("state.1.", 0), 0u) << "state created for a skipped parameter: " << key;
    EXPECT_TRUE(sd.contains("state.0.exp_avg") || sd.contains("state.0.momentum_buffer"));

    // The skipped parameter starts its own state later (Adam: its own step count).
    set_grad(ps[1], 1, 0);
    opt->step();
    const StateDict sd2 = opt->state_dict();
    if (sd2.contains("state.1.step")) {
      EXPECT_EQ(*sd2.at("state.1.step").data_ptr<float>(), 1.0f);
      EXPECT_EQ(*sd2.at("state.0.step").data_ptr<float>(), 4.0f);
    }
  }
}

TEST(OptimApi, StateDictRoundTripContinuesExactly) {
  for (const auto& o : all_optimizers()) {
    SCOPED_TRACE(o.name);
    // 100 steps straight.
    auto straight = make_params(21);
    auto opt_a = o.make(straight);
    run_steps(*opt_a, straight, 0, 100);

    // 50 steps, snapshot, a fresh optimizer over copies of the parameters, 50 more steps.
    auto first = make_params(21);
    auto opt_b = o.make(first);
    run_steps(*opt_b, first, 0, 50);
    const StateDict saved = opt_b->state_dict();
    auto resumed = clone_params(first);
    run_steps(*opt_b, first, 50, 60);  // the snapshot must not see later steps
    auto opt_c = o.make(resumed);
    opt_c->load_state_dict(saved);
    run_steps(*opt_c, resumed, 50, 100);
    expect_same_params(resumed, straight, o.name);

    // The snapshot is a copy: the optimizer does not share memory with it.
    const StateDict again = opt_c->state_dict();
    for (const auto& [key, t] : again)
      if (saved.contains(key) && t.numel() > 1) EXPECT_NE(t.raw_data(), saved.at(key).raw_data()) << key;
  }
}

TEST(OptimApi, StateDictLayoutFollowsPyTorch) {
  auto ps = make_params(5);
  Adam opt({{{ps[0], ps[1]}}, {{ps[2], ps[3]}, AdamOptions(1e-4).amsgrad(true)}});
  run_steps(opt, ps, 0, 2);
  const StateDict sd = opt.state_dict();
  for (const char* key : {"state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq", "state.3.max_exp_avg_sq",
                          "param_groups.0.lr", "param_groups.0.betas", "param_groups.0.eps",
                          "param_groups.0.weight_decay", "param_groups.0.amsgrad", "param_groups.0.maximize",
                          "param_groups.0.params", "param_groups.1.params"})
    EXPECT_TRUE(sd.contains(key)) << key;
  EXPECT_FALSE(sd.contains("state.0.max_exp_avg_sq"));
  EXPECT_EQ(sd.at("state.0.step").dtype(), DType::Float32);
  EXPECT_EQ(sd.at("state.0.step").dim(), 0);
  EXPECT_EQ(*sd.at("state.0.step").data_ptr<float>(), 2.0f);
  EXPECT_EQ(sd.at("state.1.exp_avg").shape(), ps[1].shape());
  EXPECT_EQ(sd.at("param_groups.1.params").dtype(), DType::Int64);
  const std::int64_t* idx = sd.at("param_groups.1.params").data_ptr<std::int64_t>();
  EXPECT_EQ(idx[0], 2);
  EXPECT_EQ(idx[1], 3);
  EXPECT_EQ(*sd.at("param_groups.1.lr").data_ptr<double>(), 1e-4);
  EXPECT_EQ(sd.at("param_groups.1.betas").data_ptr<double>()[1], 0.999);
  EXPECT_EQ(*sd.at("param_groups.1.amsgrad").data_ptr<double>(), 1.0);

  // load_state_dict replaces the hyper-parameters with the saved ones (PyTorch does too).
  auto other = clone_params(ps);
  Adam fresh({{{other[0], other[1]}, AdamOptions(0.5)}, {{other[2], other[3]}}});
  fresh.load_state_dict(sd);
  EXPECT_EQ(fresh.lr(0), 1e-3);
  EXPECT_EQ(fresh.lr(1), 1e-4);
  EXPECT_TRUE(fresh.options(1).amsgrad());

  SGD sgd(ps, SGDOptions(0.1).momentum(0.9).nesterov(true));
  run_steps(sgd, ps, 0, 1);
  const StateDict s2 = sgd.state_dict();
  for (const char* key : {"state.0.momentum_buffer", "param_groups.0.lr", "param_groups.0.momentum",
                          "param_groups.0.dampening", "param_groups.0.weight_decay", "param_groups.0.nesterov",
                          "param_groups.0.maximize", "param_groups.0.params"})
    EXPECT_TRUE(s2.contains(key)) << key;
}

TEST(OptimApi, LoadStateDictValidates) {
  auto ps = make_params(9);
  Adam opt({{{ps[0], ps[1]}}, {{ps[2], ps[3]}}});
  run_steps(opt, ps, 0, 3);
  const StateDict good = opt.state_dict();

  auto copy_except = [&](const std::string& skip) {
    StateDict sd;
    for (const auto& [k, t] : good)
      if (k != skip) sd.insert(k, t);
    return sd;
  };

  // Different group layout.
  {
    auto qs = clone_params(ps);
    Adam one(qs);
    std::string msg = error_of([&] { one.load_state_dict(good); });
    EXPECT_NE(msg.find("2 parameter groups"), std::string::npos) << msg;
  }
  {
    auto qs = clone_params(ps);
    Adam uneven({{{qs[0]}}, {{qs[1], qs[2], qs[3]}}});
    std::string msg = error_of([&] { uneven.load_state_dict(good); });
    EXPECT_NE(msg.find("group 0"), std::string::npos) << msg;
  }
  // Wrong buffer shape.
  {
    auto qs = clone_params(ps);
    Adam other({{{qs[0], qs[1]}}, {{qs[2], qs[3]}}});
    StateDict bad = copy_except("");
    bad.insert("state.1.exp_avg", zeros({7}));
    EXPECT_THROW(other.load_state_dict(bad), ShapeError);
    bad.insert("state.1.exp_avg", zeros({3}, DType::Int64));
    EXPECT_THROW(other.load_state_dict(bad), DTypeError);
  }
  // Missing and unknown keys.
  {
    auto qs = clone_params(ps);
    Adam other({{{qs[0], qs[1]}}, {{qs[2], qs[3]}}});
    std::string msg = error_of([&] { other.load_state_dict(copy_except("state.2.exp_avg_sq")); });
    EXPECT_NE(msg.find("state.2.exp_avg_sq"), std::string::npos) << msg;
    msg = error_of([&] { other.load_state_dict(copy_except("param_groups.1.eps")); });
    EXPECT_NE(msg.find("param_groups.1.eps"), std::string::npos) << msg;
    StateDict extra = copy_except("");
    extra.insert("state.0.momentum_buffer", zeros({4, 3}));
    msg = error_of([&] { other.load_state_dict(extra); });
    EXPECT_NE(msg.find("state.0.momentum_buffer"), std::string::npos) << msg;
    StateDict bad_opt = copy_except("");
    bad_opt.insert("param_groups.0.lr", full({}, -1.0, DType::Float64));
    msg = error_of([&] { other.load_state_dict(bad_opt); });
    EXPECT_NE(msg.find("lr"), std::string::npos) << msg;
  }
  // An SGD state into Adam.
  {
    auto qs = clone_params(ps);
    SGD sgd({{{qs[0], qs[1]}}, {{qs[2], qs[3]}}}, SGDOptions(0.1).momentum(0.9));
    run_steps(sgd, qs, 0, 1);
    auto rs = clone_params(ps);
    Adam other({{{rs[0], rs[1]}}, {{rs[2], rs[3]}}});
    EXPECT_THROW(other.load_state_dict(sgd.state_dict()), ValueError);
  }
  // A failed load changes nothing: the optimizer continues exactly as before.
  {
    auto a = clone_params(ps);
    auto b = clone_params(ps);
    Adam oa({{{a[0], a[1]}}, {{a[2], a[3]}}});
    Adam ob({{{b[0], b[1]}}, {{b[2], b[3]}}});
    oa.load_state_dict(good);
    ob.load_state_dict(good);
    StateDict bad = copy_except("state.3.exp_avg");
    EXPECT_THROW(ob.load_state_dict(bad), ValueError);
    run_steps(oa, a, 3, 6);
    run_steps(ob, b, 3, 6);
    expect_same_params(a, b, "after a failed load");
  }
}

TEST(OptimApi, InitStateMatchesLazyState) {
  // Adam/AdamW: init_state() creates step 0 and zero moments, which is what the first step
  // creates; SGD with dampening 0: a zero buffer gives the same first step as PyTorch's copy.
  for (const auto& o : all_optimizers()) {
    if (std::string(o.name) == "sgd_dampening") continue;
    SCOPED_TRACE(o.name);
    auto a = make_params(31), b = make_params(31);
    auto oa = o.make(a), ob = o.make(b);
    ob->init_state();
    const StateDict sd0 = ob->state_dict();
    EXPECT_TRUE(sd0.contains("state.3.exp_avg") || sd0.contains("state.3.momentum_buffer"));
    run_steps(*oa, a, 0, 20);
    run_steps(*ob, b, 0, 20);
    expect_same_params(a, b, o.name);
  }
}

TEST(OptimApi, OptionValidation) {
  auto ps = make_params(1);
  auto expect_error = [&](auto make, const std::string& option) {
    std::string msg = error_of(make);
    EXPECT_NE(msg.find(option), std::string::npos) << "message should name '" << option << "': " << msg;
    EXPECT_THROW(make(), ValueError);
  };
  expect_error([&] { SGD(ps, SGDOptions(-0.1)); }, "lr");
  expect_error([&] { SGD(ps, SGDOptions(NAN)); }, "lr");
  expect_error([&] { SGD(ps, SGDOptions(0.1).momentum(-0.5)); }, "momentum");
  expect_error([&] { SGD(ps, SGDOptions(0.1).weight_decay(-1e-4)); }, "weight_decay");
  expect_error([&] { SGD(ps, SGDOptions(0.1).nesterov(true)); }, "nesterov");
  expect_error([&] { SGD(ps, SGDOptions(0.1).nesterov(true).momentum(0.9).dampening(0.1)); }, "dampening");
  expect_error([&] { SGD({{{ps[0]}, SGDOptions(-1.0)}}, SGDOptions(0.1)); }, "lr");
  expect_error([&] { Adam(ps, AdamOptions(-1e-3)); }, "lr");
  expect_error([&] { Adam(ps, AdamOptions().eps(-1e-8)); }, "eps");
  expect_error([&] { Adam(ps, AdamOptions().betas({1.0, 0.999})); }, "betas");
  expect_error([&] { Adam(ps, AdamOptions().betas({0.9, -0.1})); }, "betas");
  expect_error([&] { Adam(ps, AdamOptions().weight_decay(-0.1)); }, "weight_decay");
  expect_error([&] { AdamW(ps, AdamWOptions().betas({0.9, 1.0})); }, "betas");
  expect_error([&] { AdamW(ps, AdamWOptions(-2.0)); }, "lr");
  expect_error([&] { AdamW(ps, AdamWOptions().weight_decay(-1.0)); }, "weight_decay");
  EXPECT_NO_THROW(SGD(ps, SGDOptions(0.0)));
  EXPECT_NO_THROW(Adam(ps, AdamOptions().betas({0.0, 0.0})));

  // Options changed after construction are checked by step().
  SGD sgd(ps, SGDOptions(0.1));
  sgd.options().nesterov(true);
  EXPECT_THROW(sgd.step(), ValueError);
}

TEST(OptimApi, ParameterValidation) {
  auto ps = make_params(2);
  EXPECT_THROW(SGD(std::vector<Tensor>{}, SGDOptions(0.1)), ValueError);
  EXPECT_THROW(Adam(std::vector<Tensor>{ps[0], ps[1], ps[0]}), ValueError);  // duplicate
  EXPECT_THROW(Adam(std::vector<ParamGroup<AdamOptions>>{{{ps[0]}}, {{ps[0]}}}), ValueError);  // in two groups
  EXPECT_THROW(Adam({zeros({3}, DType::Int64)}), DTypeError);
  EXPECT_THROW(Adam({Tensor()}), ValueError);
  Tensor m = make_param({4, 5}, 9);
  Tensor mt = m.detach().t();
  EXPECT_THROW(Adam({mt}), ValueError);  // not contiguous
  std::string msg = error_of([&] { Adam({ps[0] * ps[0]}); });
  EXPECT_NE(msg.find("leaf"), std::string::npos) << msg;

  // Gradients are checked at step().
  Adam opt(ps);
  // (The core may already refuse a gradient of the wrong shape in set_grad.)
  if (error_of([&] { ps[0].set_grad(zeros({2, 2})); }) == "<no error>") {
    msg = error_of([&] { opt.step(); });
    EXPECT_NE(msg.find("shape"), std::string::npos) << msg;
  }
}

TEST(OptimApi, LargeParametersUseTheParallelPathWithIdenticalResults) {
  // 200k elements runs multi-threaded; the same values in small parameters run serially.
  const std::int64_t n = 200000;
  Tensor big = make_param({n}, 77);
  std::vector<Tensor> small;
  const float* bd = big.data_ptr<float>();
  for (std::int64_t off = 0; off < n; off += 1000) {
    Tensor t = empty({1000});
    std::memcpy(t.data_ptr<float>(), bd + off, 1000 * sizeof(float));
    small.push_back(t.requires_grad_());
  }
  AdamW ob({big}, AdamWOptions(1e-2).amsgrad(true));
  AdamW os(small, AdamWOptions(1e-2).amsgrad(true));
  for (int step = 0; step < 5; ++step) {
    set_grad(big, 5, step);
    const float* g = big.grad().data_ptr<float>();
    for (std::size_t k = 0; k < small.size(); ++k) {
      Tensor sg = empty({1000});
      std::memcpy(sg.data_ptr<float>(), g + k * 1000, 1000 * sizeof(float));
      small[k].set_grad(sg);
    }
    ob.step();
    os.step();
  }
  for (std::size_t k = 0; k < small.size(); ++k)
    ASSERT_EQ(std::memcmp(small[k].data_ptr<float>(), big.data_ptr<float>() + k * 1000, 1000 * sizeof(float)), 0)
        << "chunk " << k;
}
