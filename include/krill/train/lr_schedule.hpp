// Learning-rate schedules for training::fit, computed per optimizer step.
//
// Two kinds:
//   constant        the learning rate is never touched (the tabular default: the lab's runs
//                   keep the optimizer's lr from the first step to the last);
//   warm-up + poly  the "Train PyTorch Model" module's schedule: a linear warm-up over the
//                   first `warmup_epochs` epochs, then polynomial decay to the end of training.
//
// With step s = epoch * iters_per_epoch + i (0-based over the whole run), T = epochs *
// iters_per_epoch steps and W = min(warmup_epochs * iters_per_epoch, T) warm-up steps, step s
// uses
//   s <  W:  lr = base * (s + 1) / W                          (from base/W up to base)
//   s >= W:  lr = base * (1 - (s - W) / (T - W)) ^ power      (from base down to base/(T-W)^power)
// which is PyTorch's LinearLR(start_factor=1/W, total_iters=W-1) followed by
// PolynomialLR(total_iters=T-W, power) in a SequentialLR(milestones=[W]), stepped once per
// iteration (tests/oracle/train_schedule_oracle.py checks both against each other). The last
// step's lr is small but not zero, so no step is wasted. power 1 (the default) is the usual
// "poly" decay of segmentation/classification recipes and of the managed module: linear decay,
// which needs no extra hyper-parameter and, unlike a step schedule, nothing tied to the epoch
// count.
//
// "base" is each parameter group's learning rate when the scheduler is created (in distributed
// runs the CLI has already multiplied it by the world size), so groups keep their ratios.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "krill/optim/optimizer.hpp"

namespace krill::training {

class LrSchedule {
 public:
  // Constant: the learning rate is never touched.
  LrSchedule() = default;
  static LrSchedule constant() { return LrSchedule(); }
  // Linear warm-up over `warmup_epochs` (>= 0) epochs, then polynomial decay with `power`
  // (finite, >= 0; 1 = linear) to the end of training. Throws ValueError otherwise.
  static LrSchedule warmup_poly(int warmup_epochs, double power = 1.0);

  bool is_constant() const { return constant_; }
  int warmup_epochs() const { return warmup_epochs_; }
  double power() const { return power_; }

  // The multiplier of the base learning rate for step `step` (0-based) of a run of
  // `total_steps` steps whose first `warmup_steps` warm up (clamped to total_steps). 1 for the
  // constant schedule. Throws ValueError for a step outside [0, total_steps).
  double factor(std::int64_t step, std::int64_t warmup_steps, std::int64_t total_steps) const;
  // The same in epochs: iteration `iteration` (0-based) of epoch `epoch` (0-based) in a run of
  // `epochs` epochs of `iters_per_epoch` steps.
  double factor_at(int epoch, std::int64_t iteration, std::int64_t iters_per_epoch, int epochs) const;

  // "constant" or "linear warm-up over 1 epoch, then polynomial decay (power 1)".
  std::string describe() const;

 private:
  bool constant_ = true;
  int warmup_epochs_ = 0;
  double power_ = 1.0;
};

// A schedule bound to an optimizer and a run's length: remembers every group's base learning
// rate (the optimizer's lr now) and sets each group's lr before a step.
class LrScheduler {
 public:
  LrScheduler(optim::Optimizer& optimizer, LrSchedule schedule, std::int64_t iters_per_epoch, int epochs);

  // Sets every group's lr to base * factor for global step `step` (0-based: epoch *
  // iters_per_epoch + iteration) and returns group 0's. The constant schedule changes nothing
  // and returns group 0's current lr.
  double apply(std::int64_t step);
  double apply(int epoch, std::int64_t iteration) { return apply(epoch * iters_per_epoch_ + iteration); }

  const LrSchedule& schedule() const { return schedule_; }
  double base_lr(std::size_t group = 0) const { return base_.at(group); }
  std::int64_t total_steps() const { return total_steps_; }
  std::int64_t warmup_steps() const { return warmup_steps_; }

 private:
  optim::Optimizer& optimizer_;
  LrSchedule schedule_;
  std::vector<double> base_;
  std::int64_t iters_per_epoch_;
  std::int64_t total_steps_;
  std::int64_t warmup_steps_;
};

}  // namespace krill::training
