// Optimizer base: parameter groups, zero_grad, learning-rate access for schedulers, and a
// state dict made only of tensors (so distributed training can broadcast it tensor by tensor
// and io can store it as safetensors).
//
// The update rules of the concrete optimizers (SGD, Adam, AdamW) are PyTorch 1.13's
// single-tensor ("foreach=False") paths reproduced operation by operation in float32, with the
// same roundings and the same fused multiply-adds as ATen's CPU kernels, so a krill run and a
// PyTorch run from the same weights and gradients stay bit-identical step after step.
//
// step() allocates only on the first step of a parameter (its state tensors); in steady state it
// is one fused loop over each parameter's float32 data (OpenMP-parallel for large parameters).
// Parameters must be contiguous float32 CPU leaf tensors; a parameter whose .grad is undefined
// is skipped, like PyTorch.
//
// State dict layout (PyTorch's optimizer state_dict flattened to names, parameters numbered over
// all groups in order, like PyTorch's):
//   state.<i>.<buffer>          per-parameter state, only for parameters that have state:
//                               SGD:  momentum_buffer (float32, param's shape)
//                               Adam/AdamW: step (float32 0-d, like PyTorch 1.13), exp_avg,
//                               exp_avg_sq, max_exp_avg_sq (amsgrad only)
//   param_groups.<g>.params     int64 [n]: the indices of the group's parameters
//   param_groups.<g>.<option>   float64 0-d hyper-parameters (lr, momentum, eps, ...); flags
//                               (nesterov, amsgrad, maximize) are 0.0 / 1.0; Adam's betas is
//                               float64 [2]
// state_dict() returns copies (a snapshot); load_state_dict() copies in, validating everything
// (group count, parameters per group, buffer shapes and dtypes, unknown keys) before changing
// anything, and replaces each group's hyper-parameters with the saved ones, like PyTorch.
//
// Distributed start: every rank calls init_state() (creates the state a first step would create)
// so all ranks have the same state_dict layout (same keys, shapes, dtypes, order); rank 0's
// state_dict() tensors are broadcast in that order and each rank calls load_state_dict() with
// what it received.
//
// Hyper-parameters may be changed between steps through options(g) / set_lr(); step()
// re-validates them (without allocating) and throws ValueError naming the option.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "krill/tensor/state_dict.hpp"
#include "krill/tensor/tensor.hpp"

namespace krill::optim {

// A group of parameters sharing hyper-parameters. When handed to an optimizer, an unset
// `options` means the optimizer's defaults:
//   Adam opt({{body_params}, {head_params, AdamOptions(1e-4)}}, AdamOptions(1e-3));
// (Brace lists of bare tensors without options, {{{a}}, {{b}}}, are ambiguous with the
// vector<Tensor> constructor: spell the type, std::vector<ParamGroup<AdamOptions>>{...}.)
template <typename Options>
struct ParamGroup {
  std::vector<Tensor> params;
  std::optional<Options> options;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  virtual void step() = 0;

  // Zeroes every parameter's .grad in place (PyTorch 1.13's default: no allocation, the
  // gradient tensors stay), or drops them with set_to_none.
  void zero_grad(bool set_to_none = false);

  // ---- parameter groups ----
  std::size_t num_param_groups() const { return groups_.size(); }
  const std::vector<Tensor>& params(std::size_t group) const;
  // All parameters, group after group (the numbering of the state dict).
  std::vector<Tensor> parameters() const;
  std::size_t num_params() const { return num_params_; }

  // ---- learning rate (for schedulers) ----
  virtual double lr(std::size_t group = 0) const = 0;
  // Sets the learning rate of every group.
  void set_lr(double lr);
  // Sets the learning rate of one group.
  virtual void set_lr(std::size_t group, double lr) = 0;

  // ---- state ----
  // A snapshot of the optimizer (see the layout above).
  virtual StateDict state_dict() const;
  // Restores a snapshot taken from an optimizer of the same kind over the same parameter layout.
  // Throws ValueError (layout, unknown or missing keys), ShapeError or DTypeError naming the key;
  // on error nothing is changed.
  virtual void load_state_dict(const StateDict& state);
  // Creates now, for every parameter that has none, the state its first step() would create
  // (Adam/AdamW: step 0 and zero moments, exactly what the first step starts from; SGD with
  // momentum: a zero buffer, see sgd.hpp), so that every rank's state_dict() has the same keys.
  virtual void init_state();

  // "SGD", "Adam", "AdamW".
  virtual std::string_view name() const = 0;

  // ---- for implementers of optimizers ----

  // Index over all groups of parameter `j` of group `group`.
  std::size_t param_index(std::size_t group, std::size_t j) const { return offsets_[group] + j; }
  // The gradient of parameter `j` of `group` (which is `param`) as step() can use it: null
  // when the parameter has no gradient (skip it); throws DTypeError / ShapeError / ValueError
  // when it is not a contiguous float32 CPU tensor of the parameter's shape.
  const float* grad_data(const Tensor& param, std::size_t group, std::size_t j) const;
  // Throws IndexError when `group` is not a group index.
  void check_group(std::size_t group) const;

  // Reads a state dict, remembering which keys were used so leftovers can be reported.
  class StateReader {
   public:
    StateReader(const StateDict& sd, std::string_view optimizer);
    bool has(const std::string& key) const;
    // The value of a one-element tensor of any numeric dtype.
    double scalar(const std::string& key);
    bool flag(const std::string& key);
    // The `n` values of a 1-D tensor of any numeric dtype.
    std::vector<double> vector(const std::string& key, std::int64_t n);
    // A float32 tensor of exactly `shape` (throws DTypeError / ShapeError naming the key).
    Tensor buffer(const std::string& key, const Shape& shape);
    // Throws ValueError listing the keys that were never read.
    void finish() const;
    [[noreturn]] void fail(const std::string& msg) const;

   private:
    const Tensor& get(const std::string& key);
    const StateDict& sd_;
    std::string opt_;
    std::vector<bool> used_;
    std::vector<std::pair<std::string, std::size_t>> index_;  // sorted key -> position
  };

  // State-dict helpers.
  static Tensor scalar_f64(double v);
  static Tensor vector_f64(const std::vector<double>& v);
  static Tensor scalar_f32(float v);
  // A contiguous tensor of `shape` filled with zeros (float32).
  static Tensor zeros_f32(const Shape& shape);
  // A deep copy (contiguous, same dtype) that shares nothing with `t`.
  static Tensor copy_of(const Tensor& t);
  // "param_groups.<g>." and "state.<i>."
  static std::string group_prefix(std::size_t g);
  static std::string state_prefix(std::size_t i);

 protected:
  Optimizer() = default;

  // Validates and appends a group of parameters (contiguous float32 CPU leaves, none already
  // in this optimizer); returns the group's index.
  std::size_t add_group_params(std::vector<Tensor> params);

  // Per-optimizer parts of the state dict: "state.<i>.*" of every parameter that has state,
  // and one group's hyper-parameters under `prefix` ("param_groups.<g>.").
  virtual void save_param_states(StateDict& sd) const = 0;
  virtual void save_group_options(std::size_t group, StateDict& sd, const std::string& prefix) const = 0;
  // Reads everything but "param_groups.<g>.params" (checked before); must validate all of it
  // before changing anything, calling reader.finish() just before committing.
  virtual void load_state_impl(StateReader& reader) = 0;
  // Creates a parameter's state if it has none (init_state()).
  virtual void init_param_state(std::size_t group, std::size_t j) = 0;

 private:
  std::vector<std::vector<Tensor>> groups_;
  std::vector<std::size_t> offsets_;
  std::size_t num_params_ = 0;
};

namespace detail {
// Runs fn(begin, end) over [0, n), split across OpenMP threads when n is large (the split is
// on 16-element boundaries; every element is computed the same way whichever thread runs it).
void parallel_for(std::int64_t n, void (*fn)(void* ctx, std::int64_t begin, std::int64_t end), void* ctx);

template <typename F>
void parallel_for(std::int64_t n, F& f) {
  parallel_for(n, [](void* ctx, std::int64_t b, std::int64_t e) { (*static_cast<F*>(ctx))(b, e); }, &f);
}
}  // namespace detail

// The hyper-parameter bookkeeping every concrete optimizer shares: default options, one Options
// per group, learning-rate access. `Options` has lr(), lr(double) and validate().
template <typename Options>
class OptimizerWithOptions : public Optimizer {
 public:
  // Adds a group; unset options mean the defaults.
  void add_param_group(ParamGroup<Options> group) {
    Options opts = group.options.value_or(defaults_);
    opts.validate();
    add_group_params(std::move(group.params));
    options_.push_back(opts);
    params_added();
  }

  const Options& defaults() const { return defaults_; }
  // The hyper-parameters of one group (changes apply from the next step).
  Options& options(std::size_t group = 0) {
    check_group(group);
    return options_[group];
  }
  const Options& options(std::size_t group = 0) const {
    check_group(group);
    return options_[group];
  }

  double lr(std::size_t group = 0) const override { return options(group).lr(); }
  using Optimizer::set_lr;
  void set_lr(std::size_t group, double lr) override {
    check_group(group);
    if (!(lr >= 0.0))
      throw ValueError(std::string(name()) + ": invalid learning rate (lr): " + std::to_string(lr) + "; it must be >= 0");
    options_[group].lr(lr);
  }

 protected:
  explicit OptimizerWithOptions(Options defaults) : defaults_(defaults) { defaults_.validate(); }
  // For the derived constructors (add_param_group calls the virtual params_added(), so groups
  // are added once the derived object exists).
  void add_initial_params(std::vector<Tensor> params) {
    if (params.empty()) throw ValueError(std::string(name()) + ": got an empty parameter list");
    add_param_group({std::move(params), std::nullopt});
  }
  void add_initial_groups(std::vector<ParamGroup<Options>> groups) {
    for (auto& g : groups) add_param_group(std::move(g));
  }
  // Called after a group was added: size the per-parameter state to num_params().
  virtual void params_added() = 0;

  std::vector<Options> options_;  // per group

 private:
  Options defaults_;
};

}  // namespace krill::optim
