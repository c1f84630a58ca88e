// Adam (with optional L2 weight decay and AMSGrad): torch.optim.Adam (PyTorch 1.13,
// single-tensor path), bit for bit in float32.
//
//   step += 1
//   g = grad (-grad with maximize);  g = g + weight_decay * param   if weight_decay != 0
//   exp_avg    = beta1 * exp_avg    + (1 - beta1) * g
//   exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g * g
//   max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq)                (amsgrad)
//   denom = sqrt(exp_avg_sq (or max_exp_avg_sq)) / sqrt(1 - beta2^step) + eps
//   param = param - lr / (1 - beta1^step) * exp_avg / denom
#pragma once
#include <utility>
#include <vector>

#include "krill/optim/optimizer.hpp"

namespace krill::optim {

struct AdamOptions {
  explicit AdamOptions(double lr = 1e-3) : lr_(lr) {}

  AdamOptions& lr(double v) { lr_ = v; return *this; }
  AdamOptions& betas(std::pair<double, double> v) { betas_ = v; return *this; }
  AdamOptions& eps(double v) { eps_ = v; return *this; }
  AdamOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  AdamOptions& amsgrad(bool v) { amsgrad_ = v; return *this; }
  AdamOptions& maximize(bool v) { maximize_ = v; return *this; }

  double lr() const { return lr_; }
  std::pair<double, double> betas() const { return betas_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool amsgrad() const { return amsgrad_; }
  bool maximize() const { return maximize_; }

  // Throws ValueError naming the offending option (PyTorch's checks: lr, eps, weight_decay
  // >= 0; each beta in [0, 1)).
  void validate() const;

 private:
  double lr_;
  std::pair<double, double> betas_{0.9, 0.999};
  double eps_ = 1e-8;
  double weight_decay_ = 0;
  bool amsgrad_ = false;
  bool maximize_ = false;
};

namespace detail {
// Per-parameter state of Adam and AdamW.
struct AdamParamState {
  // Kept as float32, as PyTorch 1.13 keeps `step` in a float32 tensor.
  float step = 0;
  Tensor exp_avg, exp_avg_sq, max_exp_avg_sq;
  bool initialized() const { return exp_avg.defined(); }
};
}  // namespace detail

class Adam : public OptimizerWithOptions<AdamOptions> {
 public:
  Adam(std::vector<Tensor> params, AdamOptions defaults = AdamOptions());
  Adam(std::vector<ParamGroup<AdamOptions>> groups, AdamOptions defaults = AdamOptions());



  void step() override;
  std::string_view name() const override { return "Adam"; }

  // The state of a parameter (not initialized before its first step).
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
