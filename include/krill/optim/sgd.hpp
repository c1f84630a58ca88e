// Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay:
// torch.optim.SGD (PyTorch 1.13, single-tensor path), bit for bit in float32.
//
//   d_p = grad                         (-grad with maximize)
//   d_p = d_p + weight_decay * param   if weight_decay != 0
//   if momentum != 0:
//     buf = d_p                        on the parameter's first step
//     buf = momentum * buf + (1 - dampening) * d_p   afterwards
//     d_p = d_p + momentum * buf if nesterov else buf
//   param = param - lr * d_p
//
// init_state() creates zero momentum buffers (as after a step with a zero gradient). With
// dampening == 0 the next step is then exactly PyTorch's first step (buf = d_p); with dampening
// != 0 that step's buffer is (1 - dampening) * d_p instead.
#pragma once
#include <vector>

#include "krill/optim/optimizer.hpp"

namespace krill::optim {

struct SGDOptions {
  // lr has no default in PyTorch either.
  explicit SGDOptions(double lr) : lr_(lr) {}

  SGDOptions& lr(double v) { lr_ = v; return *this; }
  SGDOptions& momentum(double v) { momentum_ = v; return *this; }
  SGDOptions& dampening(double v) { dampening_ = v; return *this; }
  SGDOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  SGDOptions& nesterov(bool v) { nesterov_ = v; return *this; }
  SGDOptions& maximize(bool v) { maximize_ = v; return *this; }

  double lr() const { return lr_; }
  double momentum() const { return momentum_; }
  double dampening() const { return dampening_; }
  double weight_decay() const { return weight_decay_; }
  bool nesterov() const { return nesterov_; }
  bool maximize() const { return maximize_; }

  // Throws ValueError naming the offending option (PyTorch's checks: lr, momentum and
  // weight_decay >= 0; nesterov needs momentum > 0 and dampening == 0).
  void validate() const;

 private:
  double lr_;
  double momentum_ = 0;
  double dampening_ = 0;
  double weight_decay_ = 0;
  bool nesterov_ = false;
  bool maximize_ = false;
};

class SGD : public OptimizerWithOptions<SGDOptions> {
 public:
  SGD(std::vector<Tensor> params, SGDOptions defaults);
  SGD(std::vector<ParamGroup<SGDOptions>> groups, SGDOptions defaults);



  void step() override;
  std::string_view name() const override { return "SGD"; }

  // The momentum buffer of a parameter (undefined before its first step, or without momentum).
  const Tensor& momentum_buffer(std::size_t group, std::size_t j) const;

 protected:
  void save_param_states(StateDict& sd) const override;
  void save_group_options(std::size_t group, StateDict& sd, const std::string& prefix) const override;
  void load_state_impl(StateReader& reader) override;
  void init_param_state(std::size_t group, std::size_t j) override;
  void params_added() override;

 private:
  std::vector<Tensor> momentum_;      // per parameter (index over all groups)
};

}  // namespace krill::optim
