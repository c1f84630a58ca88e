// AdamW (decoupled weight decay): torch.optim.AdamW (PyTorch 1.13, single-tensor path), bit for
// bit in float32. Adam without the L2 term, after a decay of the parameter itself:
//
//   param = param * (1 - lr * weight_decay)
//   step += 1;  exp_avg, exp_avg_sq, (max_exp_avg_sq), denom as in Adam (from the raw gradient)
//   param = param - lr / (1 - beta1^step) * exp_avg / denom
#pragma once
#include <utility>
#include <vector>

#include "krill/optim/adam.hpp"
#include "krill/optim/optimizer.hpp"

namespace krill::optim {

// Adam's options with PyTorch's AdamW default weight_decay = 1e-2.
struct AdamWOptions {
  explicit AdamWOptions(double lr = 1e-3) : lr_(lr) {}

  AdamWOptions& lr(double v) { lr_ = v; return *this; }
  AdamWOptions& betas(std::pair<double, double> v) { betas_ = v; return *this; }
  AdamWOptions& eps(double v) { eps_ = v; return *this; }
  AdamWOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  AdamWOptions& amsgrad(bool v) { amsgrad_ = v; return *this; }
  AdamWOptions& maximize(bool v) { maximize_ = v; return *this; }

  double lr() const { return lr_; }
  std::pair<double, double> betas() const { return betas_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool amsgrad() const { return amsgrad_; }
  bool maximize() const { return maximize_; }

  // Same checks as AdamOptions::validate().
  void validate() const;

 private:
  double lr_;
  std::pair<double, double> betas_{0.9, 0.999};
  double eps_ = 1e-8;
  double weight_decay_ = 1e-2;
  bool amsgrad_ = false;
  bool maximize_ = false;
};

class AdamW : public OptimizerWithOptions<AdamWOptions> {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions defaults = AdamWOptions());
  AdamW(std::vector<ParamGroup<AdamWOptions>> groups, AdamWOptions defaults = AdamWOptions());



  void step() override;
  std::string_view name() const override { return "AdamW"; }

  const detail::AdamParamState& param_state(std::size_t group, std::size_t j) const;

 protected:
  void save_param_states(StateDict& sd) const override;
  void save_group_options(std::size_t group, StateDict& sd, const std::string& prefix) const override;
  void load_state_impl(StateReader& reader) override;
  void init_param_state(std::size_t group, std::size_t j) override;
  void params_added() override;

 private:
  std::vector<detail::AdamParamState> state_;
};

}  // namespace krill::optim
