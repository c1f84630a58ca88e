// training::fit's schedule, early stopping, NaN stop and metrics: the warm-up + polynomial
// learning rate against torch.optim.lr_scheduler (tests/oracle/train_schedule_oracle.py), early
// stopping and NaN stops with scripted validation losses and poisoned steps, top-5 accuracy on a
// hand-made batch, the print_freq callback, and that the defaults leave fit() exactly the plain
// train_epoch/evaluate loop the tabular lab relies on.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "krill/krill.hpp"
#include "krill/nn/models/mlp.hpp"
#include "krill/train/lr_schedule.hpp"
#include "krill/train/trainer.hpp"
#include "support/expect.hpp"
#include "support/oracle.hpp"

namespace {

using namespace krill;
using krill::test::contains;
using krill::test::error_of;

// ---- helpers ----

StateDict clone_state(const nn::Module& m) {
  StateDict out;
  for (const auto& [name, t] : m.state_dict()) out.insert(name, t.clone());
  return out;
}

// Bit-for-bit equality of two state dicts (same keys, same float32 values).
bool same_state(const StateDict& a, const StateDict& b) {
  if (a.keys() != b.keys()) return false;
  for (const auto& [name, t] : a) {
    Tensor x = t.contiguous(), y = b.at(name).contiguous();
    if (x.numel() != y.numel()) return false;
    const float* p = x.data_ptr<float>();
    const float* q = y.data_ptr<float>();
    for (std::int64_t i = 0; i < x.numel(); ++i)
      if (!(p[i] == q[i])) return false;
  }
  return true;
}

bool all_finite(const nn::Module& m) {
  for (const auto& [name, t] : m.state_dict()) {
    Tensor x = t.contiguous();
    const float* p = x.data_ptr<float>();
    for (std::int64_t i = 0; i < x.numel(); ++i)
      if (!std::isfinite(p[i])) return false;
  }
  return true;
}

// Random features [rows, features] and labels in [0, classes).
data::TensorDataset random_data(std::int64_t rows, std::int64_t features, std::int64_t classes, std::uint64_t seed) {
  Generator g(seed);
  return data::TensorDataset(randn(Shape{rows, features}, {}, &g), randint(0, classes, Shape{rows}, DType::Int64, &g));
}

// A linear classifier whose training forward is real (so training changes its weights) and
// whose evaluation forward returns logits scripted to give each evaluate() a chosen loss, so the
// validation-loss sequence of a fit() is known. Training forward call number `poison_call`
// (1-based, over the whole run) returns NaN logits.
class Scripted : public nn::Module {
 public:
  Scripted(std::int64_t in, std::vector<double> val_losses, std::uint64_t seed = 3)
      : Module("Scripted"), val_losses_(std::move(val_losses)) {
    Generator g(seed);
    fc = register_module("fc", std::make_shared<nn::Linear>(in, 2, true, &g));
  }
  Tensor forward(const Tensor& x) override {
    if (is_training()) {
      ++train_calls;
      Tensor out = fc->forward(x);
      if (train_calls == poison_call) out = mul(out, std::numeric_limits<double>::quiet_NaN());
      return out;
    }
    // Logits [a, 0] with target 0 give the loss log(1 + e^-a): a = -log(e^L - 1).
    const double loss = val_losses_.at(eval_calls++);
    const float a = static_cast<float>(-std::log(std::expm1(loss)));
    std::vector<float> v;
    for (std::int64_t i = 0; i < x.shape()[0]; ++i) {
      v.push_back(a);
      v.push_back(0.f);
    }
    return tensor(v, Shape{x.shape()[0], 2});
  }

  std::shared_ptr<nn::Linear> fc;
  int train_calls = 0, eval_calls = 0;
  int poison_call = -1;

 private:
  std::vector<double> val_losses_;
};

// Training rows (20, 4 batches of 5) and validation rows (labels 0: the scripted logits' target).
struct ScriptedSetup {
  data::DataLoader train{random_data(20, 3, 2, 11), data::DataLoaderOptions(5)};
  data::DataLoader val{data::TensorDataset(randn(Shape{6, 3}), zeros(Shape{6}, DType::Int64)), data::DataLoaderOptions(6)};
};

// Returns the model itself: its input is the logits.
class Identity : public nn::Module {
 public:
  Identity() : Module("Identity") {}
  Tensor forward(const Tensor& x) override { return x; }
};

// ---- the schedule against PyTorch ----

struct OracleCase {
  double base = 0;
  int epochs = 0, iters = 0, warmup = 0;
  double power = 0;
  std::vector<double> lrs;
};

const std::vector<OracleCase>& oracle_cases() {
  static const std::vector<OracleCase> cases = [] {
    std::vector<OracleCase> out;
    std::istringstream is(krill::test::run_oracle("train_schedule_oracle.py", {}));
    for (std::string line; std::getline(is, line);) {
      std::istringstream ls(line);
      std::string tag;
      ls >> tag;
      if (tag != "case") continue;
      OracleCase c;
      ls >> c.base >> c.epochs >> c.iters >> c.warmup >> c.power;
      for (double v; ls >> v;) c.lrs.push_back(v);
      out.push_back(c);
    }
    return out;
  }();
  return cases;
}

TEST(LrSchedule, MatchesPyTorchLinearWarmupThenPolynomialLR) {
  const auto& cases = oracle_cases();
  ASSERT_EQ(cases.size(), 8u);
  for (const auto& c : cases) {
    SCOPED_TRACE("base " + std::to_string(c.base) + ", " + std::to_string(c.epochs) + " epochs x " +
                 std::to_string(c.iters) + ", warm-up " + std::to_string(c.warmup) + ", power " + std::to_string(c.power));
    ASSERT_EQ(c.lrs.size(), static_cast<std::size_t>(c.epochs * c.iters));
    Tensor p = zeros(Shape{3});
    p.set_requires_grad(true);
    optim::SGD opt(std::vector<Tensor>{p}, optim::SGDOptions(c.base));
    const auto schedule = training::LrSchedule::warmup_poly(c.warmup, c.power);
    training::LrScheduler sched(opt, schedule, c.iters, c.epochs);
    EXPECT_EQ(sched.total_steps(), c.epochs * c.iters);
    for (int e = 0; e < c.epochs; ++e) {
      for (int i = 0; i < c.iters; ++i) {
        const std::size_t s = static_cast<std::size_t>(e * c.iters + i);
        const double lr = sched.apply(e, i);
        EXPECT_NEAR(lr, c.lrs[s], 1e-12 * c.lrs[s]) << "step " << s;
        EXPECT_DOUBLE_EQ(opt.lr(0), lr);
        EXPECT_DOUBLE_EQ(schedule.factor_at(e, i, c.iters, c.epochs) * c.base, lr);
      }
    }
  }
}

TEST(LrSchedule, GroupsKeepTheirRatiosAndConstantTouchesNothing) {
  Tensor a = zeros(Shape{2}), b = zeros(Shape{2});
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  optim::SGD opt(std::vector<optim::ParamGroup<optim::SGDOptions>>{{{a}, std::nullopt}, {{b}, optim::SGDOptions(0.01)}},
                 optim::SGDOptions(0.1));
  training::LrScheduler sched(opt, training::LrSchedule::warmup_poly(1, 1.0), 4, 3);  // W = 4, T = 12
  sched.apply(1);
  EXPECT_DOUBLE_EQ(opt.lr(0), 0.1 * 2 / 4);
  EXPECT_DOUBLE_EQ(opt.lr(1), 0.01 * 2 / 4);
  sched.apply(6);
  EXPECT_DOUBLE_EQ(opt.lr(0), 0.1 * (1 - 2.0 / 8));
  EXPECT_DOUBLE_EQ(opt.lr(1), 0.01 * (1 - 2.0 / 8));

  opt.set_lr(0, 0.3);
  training::LrScheduler constant(opt, training::LrSchedule(), 4, 3);
  EXPECT_DOUBLE_EQ(constant.apply(11), 0.3);
  EXPECT_DOUBLE_EQ(opt.lr(0), 0.3);
  EXPECT_DOUBLE_EQ(opt.lr(1), 0.01 * (1 - 2.0 / 8));
  EXPECT_EQ(training::LrSchedule().describe(), "constant");
  EXPECT_EQ(training::LrSchedule::warmup_poly(1).describe(), "linear warm-up over 1 epoch, then polynomial decay (power 1)");
  EXPECT_EQ(training::LrSchedule::warmup_poly(0, 2).describe(), "polynomial decay (power 2)");
}

TEST(LrSchedule, RejectsBadValues) {
  EXPECT_TRUE(contains(error_of<ValueError>([] { training::LrSchedule::warmup_poly(-1); }), "--warmup-epochs"));
  EXPECT_TRUE(contains(error_of<ValueError>([] { training::LrSchedule::warmup_poly(0, -1.0); }), "power"));
  EXPECT_TRUE(contains(error_of<ValueError>([] { training::LrSchedule::warmup_poly(1).factor(10, 2, 10); }), "step 10"));
}

// fit() sets the scheduled lr before each step: what on_iteration reports (print_freq 1) is the
// oracle's sequence, and EpochResult::lr is the epoch's last step's.
TEST(FitSchedule, FitStepsWithTheScheduledLr) {
  const OracleCase* c = nullptr;
  for (const auto& oc : oracle_cases())
    if (oc.base == 0.001 && oc.epochs == 5 && oc.iters == 7 && oc.warmup == 1) c = &oc;
  ASSERT_NE(c, nullptr);
  nn::MLP model(4, {8}, 3, nullptr);
  optim::SGD opt(model.parameters(), optim::SGDOptions(c->base).momentum(0.9).weight_decay(1e-4));
  data::DataLoader train(random_data(7 * 6, 4, 3, 5), data::DataLoaderOptions(6));
  training::FitOptions o;
  o.epochs = c->epochs;
  o.schedule = training::LrSchedule::warmup_poly(c->warmup);
  o.print_freq = 1;
  std::vector<double> lrs;
  o.on_iteration = [&](const training::IterationInfo& info) { lrs.push_back(info.lr); };
  auto history = training::fit(model, opt, train, nullptr, o);
  ASSERT_EQ(lrs.size(), c->lrs.size());
  for (std::size_t s = 0; s < lrs.size(); ++s) EXPECT_NEAR(lrs[s], c->lrs[s], 1e-12 * c->lrs[s]) << "step " << s;
  ASSERT_EQ(history.size(), 5u);
  for (const auto& r : history) EXPECT_DOUBLE_EQ(r.lr, lrs[static_cast<std::size_t>(r.epoch * 7 - 1)]);
}

// ---- the defaults are the plain loop (the tabular lab's numerics) ----

TEST(FitDefaults, SameAsThePlainTrainEpochEvaluateLoop) {
  auto run = [](bool with_fit, std::vector<double>& losses) {
    Generator init(42), shuffle(7);
    nn::MLP model(5, {10, 10}, 3, &init);
    optim::Adam opt(model.parameters(), optim::AdamOptions(0.01));
    data::DataLoader train(random_data(57, 5, 3, 1), data::DataLoaderOptions(20).shuffle(true), &shuffle);
    data::DataLoader val(random_data(23, 5, 3, 2), data::DataLoaderOptions(20));
    if (with_fit) {
      training::FitOptions o;
      o.epochs = 6;
      for (const auto& r : training::fit(model, opt, train, &val, o)) {
        losses.push_back(r.train_loss);
        losses.push_back(r.validation.loss);
        losses.push_back(static_cast<double>(r.validation.correct));
        EXPECT_DOUBLE_EQ(r.lr, 0.01);
        EXPECT_FALSE(r.stopped_early);
        EXPECT_GT(r.samples_per_second, 0);
        EXPECT_LE(r.train_seconds, r.seconds);
      }
    } else {
      for (int e = 0; e < 6; ++e) {
        losses.push_back(training::train_epoch(model, opt, train));
        auto v = training::evaluate(model, val);
        losses.push_back(v.loss);
        losses.push_back(static_cast<double>(v.correct));
      }
    }
    EXPECT_DOUBLE_EQ(opt.lr(0), 0.01);
    return clone_state(model);
  };
  std::vector<double> a, b;
  StateDict wa = run(true, a), wb = run(false, b);
  EXPECT_EQ(a, b);  // bit-equal
  EXPECT_TRUE(same_state(wa, wb));
}

// ---- early stopping ----

TEST(FitEarlyStopping, StopsAfterPatienceEpochsAndKeepsTheBestWeights) {
  ScriptedSetup d;
  // 0.8 again at epoch 4 is not an improvement (strictly lower only).
  Scripted model(3, {1.0, 0.8, 0.9, 0.8, 0.85, 0.1, 0.1, 0.1, 0.1, 0.1});
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.1).momentum(0.9));
  std::vector<StateDict> saved;
  training::FitOptions o;
  o.epochs = 10;
  o.patience = 3;
  o.on_epoch_end = [&](const training::EpochResult&) {
    saved.push_back(clone_state(model));
    return true;
  };
  auto h = training::fit(model, opt, d.train, &d.val, o);
  ASSERT_EQ(h.size(), 5u);  // epoch 2 is best, epochs 3, 4, 5 do not improve
  const std::vector<bool> improved = {true, true, false, false, false};
  const std::vector<int> bad = {0, 0, 1, 2, 3};
  for (std::size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].improved, improved[i]) << "epoch " << i + 1;
    EXPECT_EQ(h[i].epochs_without_improvement, bad[i]) << "epoch " << i + 1;
    EXPECT_EQ(h[i].best_epoch, i == 0 ? 1 : 2);
    EXPECT_EQ(h[i].stopped_early, i == 4);
  }
  EXPECT_NEAR(h.back().best_loss, 0.8, 1e-6);
  EXPECT_EQ(model.train_calls, 5 * 4);
  ASSERT_EQ(saved.size(), 5u);
  EXPECT_TRUE(same_state(clone_state(model), saved[1]));   // epoch 2's weights
  EXPECT_FALSE(same_state(clone_state(model), saved[4]));  // not the last epoch's
}

TEST(FitEarlyStopping, RunningToTheEndOrStoppedByTheCallbackAlsoKeepsTheBest) {
  for (bool callback_stops : {false, true}) {
    SCOPED_TRACE(callback_stops ? "on_epoch_end stops at epoch 4" : "runs 4 epochs");
    ScriptedSetup d;
    Scripted model(3, {1.0, 0.5, 0.7, 0.6, 0.55, 0.1});
    optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));
    std::vector<StateDict> saved;
    training::FitOptions o;
    o.epochs = callback_stops ? 6 : 4;
    o.patience = 5;
    o.on_epoch_end = [&](const training::EpochResult& r) {
      saved.push_back(clone_state(model));
      return r.epoch < 4;
    };
    auto h = training::fit(model, opt, d.train, &d.val, o);
    ASSERT_EQ(h.size(), 4u);
    EXPECT_FALSE(h.back().stopped_early);
    EXPECT_EQ(h.back().best_epoch, 2);
    EXPECT_TRUE(same_state(clone_state(model), saved[1]));
  }
}

TEST(FitEarlyStopping, PatienceOffNeverStops) {
  ScriptedSetup d;
  Scripted model(3, {1.0, 2.0, 3.0, 4.0, 5.0});
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));
  StateDict last;
  training::FitOptions o;
  o.epochs = 5;
  o.on_epoch_end = [&](const training::EpochResult&) {
    last = clone_state(model);
    return true;
  };
  auto h = training::fit(model, opt, d.train, &d.val, o);
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h.back().best_epoch, 1);  // still reported
  EXPECT_EQ(h.back().epochs_without_improvement, 4);
  EXPECT_TRUE(same_state(clone_state(model), last));  // the last epoch's weights
}

TEST(FitEarlyStopping, RejectsBadOptions) {
  ScriptedSetup d;
  Scripted model(3, {});
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));
  training::FitOptions o;
  o.patience = 3;
  EXPECT_TRUE(contains(error_of<ValueError>([&] { training::fit(model, opt, d.train, nullptr, o); }),
                       "no validation set"));
  o.patience = -1;
  EXPECT_TRUE(contains(error_of<ValueError>([&] { training::fit(model, opt, d.train, &d.val, o); }), "patience is -1"));
  o.patience = 0;
  o.print_freq = -2;
  EXPECT_TRUE(contains(error_of<ValueError>([&] { training::fit(model, opt, d.train, &d.val, o); }), "print_freq"));
  EXPECT_EQ(model.train_calls, 0);
}

// ---- NaN / inf stop ----

TEST(FitDivergence, NanLossStopsWithTheLastEpochsWeights) {
  ScriptedSetup d;
  Scripted model(3, {1.0, 0.9, 0.8, 0.7, 0.6});
  model.poison_call = 2 * 4 + 2;  // epoch 3, iteration 2
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));
  std::vector<StateDict> saved;
  training::FitOptions o;
  o.epochs = 5;
  o.on_epoch_end = [&](const training::EpochResult&) {
    saved.push_back(clone_state(model));
    return true;
  };
  try {
    training::fit(model, opt, d.train, &d.val, o);
    FAIL() << "did not throw";
  } catch (const training::TrainingDivergedError& e) {
    EXPECT_EQ(std::string(e.what()),
              "the training loss became NaN at epoch 3, iteration 2 (lr 0.1): lower the learning rate (--lr) or add "
              "warm-up (--warmup-epochs)");
    EXPECT_EQ(e.epoch, 3);
    EXPECT_EQ(e.iteration, 2);
    EXPECT_DOUBLE_EQ(e.lr, 0.1);
    ASSERT_EQ(e.history.size(), 2u);
    EXPECT_EQ(e.history[1].epoch, 2);
    EXPECT_EQ(e.restored_epoch, 2);
  }
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_TRUE(same_state(clone_state(model), saved[1]));
}

TEST(FitDivergence, UnderEarlyStoppingTheBestWeightsAreKept) {
  ScriptedSetup d;
  Scripted model(3, {1.0, 0.5, 0.7, 0.6, 0.4});
  model.poison_call = 3 * 4 + 1;  // epoch 4, iteration 1
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));
  std::vector<StateDict> saved;
  training::FitOptions o;
  o.epochs = 5;
  o.patience = 3;
  o.schedule = training::LrSchedule::warmup_poly(0);
  o.on_epoch_end = [&](const training::EpochResult&) {
    saved.push_back(clone_state(model));
    return true;
  };
  const std::string msg = error_of<training::TrainingDivergedError>([&] {
    try {
      training::fit(model, opt, d.train, &d.val, o);
    } catch (const training::TrainingDivergedError& e) {
      EXPECT_EQ(e.restored_epoch, 2);
      EXPECT_EQ(e.history.size(), 3u);
      throw;
    }
  });
  // Step 12 of 20 in the polynomial decay: lr = 0.1 * (1 - 12/20).
  EXPECT_TRUE(contains(msg, "the training loss became NaN at epoch 4, iteration 1 (lr 0.04)")) << msg;
  EXPECT_TRUE(same_state(clone_state(model), saved[1]));
}

TEST(FitDivergence, NanValidationLossAfterAnEpoch) {
  ScriptedSetup d;
  Scripted model(3, {1.0, 0.9, std::numeric_limits<double>::quiet_NaN(), 0.5});
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));
  std::vector<StateDict> saved;
  training::FitOptions o;
  o.epochs = 4;
  o.on_epoch_end = [&](const training::EpochResult&) {
    saved.push_back(clone_state(model));
    return true;
  };
  const std::string msg = error_of<training::TrainingDivergedError>([&] {
    try {
      training::fit(model, opt, d.train, &d.val, o);
    } catch (const training::TrainingDivergedError& e) {
      EXPECT_EQ(e.restored_epoch, 2);
      EXPECT_EQ(e.history.size(), 2u);
      EXPECT_EQ(e.iteration, 0);
      throw;
    }
  });
  EXPECT_TRUE(contains(msg, "the validation loss became NaN after epoch 3 (lr 0.1): lower the learning rate (--lr)")) << msg;
  EXPECT_TRUE(same_state(clone_state(model), saved[1]));
}

// A real divergence: SGD with a huge lr on the penguin-sized MLP. It fails in the first epoch, so
// the model gets its initial weights back.
TEST(FitDivergence, HugeLearningRateRestoresTheInitialWeights) {
  Generator init(0);
  nn::MLP model(5, {10, 10}, 3, &init);
  const StateDict initial = clone_state(model);
  optim::SGD opt(model.parameters(), optim::SGDOptions(1e30));
  data::DataLoader train(random_data(100, 5, 3, 4), data::DataLoaderOptions(10));
  data::DataLoader val(random_data(30, 5, 3, 5), data::DataLoaderOptions(10));
  training::FitOptions o;
  o.epochs = 3;
  const std::string msg = error_of<training::TrainingDivergedError>([&] {
    try {
      training::fit(model, opt, train, &val, o);
    } catch (const training::TrainingDivergedError& e) {
      EXPECT_EQ(e.restored_epoch, 0);
      EXPECT_TRUE(e.history.empty());
      EXPECT_EQ(e.epoch, 1);
      throw;
    }
  });
  EXPECT_TRUE(contains(msg, "the training loss became ")) << msg;
  EXPECT_TRUE(contains(msg, "(lr 1e+30): lower the learning rate (--lr)")) << msg;
  EXPECT_TRUE(all_finite(model));
  EXPECT_TRUE(same_state(clone_state(model), initial));
}

// Distributed runs: agree_finite makes the decision collective; a rank whose own loss is finite
// stops at the same iteration and says the NaN was elsewhere.
TEST(FitDivergence, AgreeFiniteHook) {
  ScriptedSetup d;
  Scripted model(3, {1.0, 0.9});
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));
  int calls = 0;
  training::FitOptions o;
  o.epochs = 2;
  o.agree_finite = [&](bool finite) {
    EXPECT_TRUE(finite);
    return ++calls != 7;  // another rank's loss is NaN at epoch 2, iteration 3
  };
  const std::string msg = error_of<training::TrainingDivergedError>([&] { training::fit(model, opt, d.train, &d.val, o); });
  EXPECT_EQ(calls, 7);
  EXPECT_TRUE(contains(msg, "the training loss became NaN or infinite on another rank at epoch 2, iteration 3")) << msg;
}

// ---- metrics ----

TEST(Evaluate, TopFiveOnAHandMadeBatch) {
  Identity model;
  // 7 classes; the target's rank in its row: 1st, 3rd, 6th, 5th, all tied.
  const std::vector<float> logits = {
      9, 1, 2, 3, 4, 5, 6,  // target 0: top-1
      1, 2, 3, 4, 5, 6, 7,  // target 4 (5): 2 greater -> top-5
      7, 6, 5, 4, 3, 2, 1,  // target 5 (2): 5 greater -> miss
      1, 2, 3, 4, 5, 6, 7,  // target 2 (3): 4 greater -> top-5
      0, 0, 0, 0, 0, 0, 0,  // target 4: argmax is 0 (top-1 miss), nothing greater (top-5 hit)
  };
  data::DataLoader loader(data::TensorDataset(tensor(logits, Shape{5, 7}), tensor(std::vector<std::int64_t>{0, 4, 5, 2, 4})),
                          data::DataLoaderOptions(2));  // batches of 2, 2, 1
  auto r = training::evaluate(model, loader);
  EXPECT_EQ(r.total, 5);
  EXPECT_EQ(r.correct, 1);
  EXPECT_EQ(r.correct_top5, 4);
  EXPECT_EQ(r.top_k, 5);
  EXPECT_DOUBLE_EQ(r.top5_accuracy(), 0.8);

  // Fewer than 5 classes: k = classes, every row is a hit.
  data::DataLoader three(data::TensorDataset(tensor({0.1f, 0.5f, 0.2f, 3.f, 2.f, 1.f}, Shape{2, 3}),
                                             tensor(std::vector<std::int64_t>{0, 2})),
                         data::DataLoaderOptions(2));
  auto t = training::evaluate(model, three);
  EXPECT_EQ(t.top_k, 3);
  EXPECT_EQ(t.correct, 0);
  EXPECT_EQ(t.correct_top5, 2);
}

TEST(FitMetrics, PrintFreqCallback) {
  for (int freq : {5, 1, 13}) {
    SCOPED_TRACE("print_freq " + std::to_string(freq));
    nn::MLP model(4, {8}, 3, nullptr);
    optim::SGD opt(model.parameters(), optim::SGDOptions(0.05));
    data::DataLoader train(random_data(23, 4, 3, 8), data::DataLoaderOptions(2));  // 12 iterations
    training::FitOptions o;
    o.epochs = 3;
    o.print_freq = freq;
    std::vector<training::IterationInfo> seen;
    std::vector<double> batch_sums(4, 0.0);
    o.on_iteration = [&](const training::IterationInfo& i) { seen.push_back(i); };
    auto h = training::fit(model, opt, train, nullptr, o);
    ASSERT_EQ(seen.size(), static_cast<std::size_t>(3 * (12 / freq)));
    for (std::size_t k = 0; k < seen.size(); ++k) {
      const auto& i = seen[k];
      EXPECT_EQ(i.epoch, static_cast<int>(k / (12 / freq)) + 1);
      EXPECT_EQ(i.iteration, static_cast<std::int64_t>((k % (12 / freq)) + 1) * freq);
      EXPECT_EQ(i.iterations, 12);
      EXPECT_DOUBLE_EQ(i.lr, 0.05);
      EXPECT_GT(i.samples_per_second, 0);
      EXPECT_TRUE(std::isfinite(i.loss));
      if (freq == 1) {
        EXPECT_EQ(i.loss, i.batch_loss);
        batch_sums[static_cast<std::size_t>(i.epoch)] += i.batch_loss;
      }
    }
    if (freq == 1)
      for (const auto& r : h) EXPECT_DOUBLE_EQ(r.train_loss, batch_sums[static_cast<std::size_t>(r.epoch)] / 12);
  }
}

}  // namespace
