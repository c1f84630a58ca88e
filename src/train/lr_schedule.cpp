#include "krill/train/lr_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "krill/util/error.hpp"

namespace krill::training {

LrSchedule LrSchedule::warmup_poly(int warmup_epochs, double power) {
  if (warmup_epochs < 0)
    throw ValueError("learning-rate schedule: the warm-up is " + std::to_string(warmup_epochs) +
                     " epochs; it must be >= 0 (--warmup-epochs)");
  if (!std::isfinite(power) || power < 0)
    throw ValueError("learning-rate schedule: the polynomial decay's power is " + std::to_string(power) +
                     "; it must be finite and >= 0");
  LrSchedule s;
  s.constant_ = false;
  s.warmup_epochs_ = warmup_epochs;
  s.power_ = power;
  return s;
}

double LrSchedule::factor(std::int64_t step, std::int64_t warmup_steps, std::int64_t total_steps) const {
  if (step < 0 || step >= total_steps)
    throw ValueError("learning-rate schedule: step " + std::to_string(step) + " is outside the run's " +
                     std::to_string(total_steps) + " steps");
  if (constant_) return 1.0;
  const std::int64_t w = std::clamp<std::int64_t>(warmup_steps, 0, total_steps);
  if (step < w) return static_cast<double>(step + 1) / static_cast<double>(w);
  const double progress = static_cast<double>(step - w) / static_cast<double>(total_steps - w);
  return std::pow(1.0 - progress, power_);
}

double LrSchedule::factor_at(int epoch, std::int64_t iteration, std::int64_t iters_per_epoch, int epochs) const {
  return factor(epoch * iters_per_epoch + iteration, warmup_epochs_ * iters_per_epoch, epochs * iters_per_epoch);
}

std::string LrSchedule::describe() const {
  if (constant_) return "constant";
  std::ostringstream os;
  if (warmup_epochs_ > 0)
    os << "linear warm-up over " << warmup_epochs_ << (warmup_epochs_ == 1 ? " epoch" : " epochs") << ", then ";
  os << "polynomial decay (power " << power_ << ")";
  return os.str();
}

LrScheduler::LrScheduler(optim::Optimizer& optimizer, LrSchedule schedule, std::int64_t iters_per_epoch, int epochs)
    : optimizer_(optimizer),
      schedule_(schedule),
      iters_per_epoch_(iters_per_epoch),
      total_steps_(iters_per_epoch * epochs),
      warmup_steps_(std::min<std::int64_t>(static_cast<std::int64_t>(schedule.warmup_epochs()) * iters_per_epoch,
                                           iters_per_epoch * epochs)) {
  if (iters_per_epoch < 0 || epochs < 0)
    throw ValueError("learning-rate schedule: " + std::to_string(epochs) + " epochs of " +
                     std::to_string(iters_per_epoch) + " iterations is not a run");
  base_.reserve(optimizer.num_param_groups());
  for (std::size_t g = 0; g < optimizer.num_param_groups(); ++g) base_.push_back(optimizer.lr(g));
}

double LrScheduler::apply(std::int64_t step) {
  if (schedule_.is_constant()) return optimizer_.lr(0);
  const double f = schedule_.factor(step, warmup_steps_, total_steps_);
  for (std::size_t g = 0; g < base_.size(); ++g) optimizer_.set_lr(g, base_[g] * f);
  return base_.empty() ? 0.0 : base_[0] * f;
}

}  // namespace krill::training
