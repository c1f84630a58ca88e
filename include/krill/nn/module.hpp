// nn::Module: named parameters, buffers and child modules, like torch.nn.Module. Names
// compose with dots (fc1.weight), so state_dict() keys are PyTorch's.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "krill/tensor/state_dict.hpp"
#include "krill/tensor/tensor.hpp"

namespace krill::nn {

class Module : public std::enable_shared_from_this<Module> {
 public:
  explicit Module(std::string type_name = "Module") : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The single-input forward used by Sequential and by operator(). Modules with other
  // signatures define their own forward and leave this one throwing.
  virtual Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input) { return forward(input); }

  // ---- registration (call from constructors) ----
  Tensor& register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
  Tensor& register_buffer(const std::string& name, Tensor tensor);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // ---- traversal ----
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  std::vector<std::shared_ptr<Module>> children() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules(const std::string& prefix = "") ;
  // Number of parameter elements.
  std::int64_t num_parameters() const;

  // ---- mode ----
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // ---- gradients ----
  void zero_grad(bool set_to_none = false);

  // ---- state ----
  // Parameters then buffers, depth-first in registration order (PyTorch's order), detached
  // (sharing storage, without requires_grad) like PyTorch's state_dict().
  StateDict state_dict() const;
  // Copies values in; `strict` requires exactly the same keys. Shape or dtype mismatches and
  // missing/unexpected keys throw ValueError listing them.
  void load_state_dict(const StateDict& state, bool strict = true);

  // ---- printing like print(model) ----
  const std::string& type_name() const { return type_name_; }
  // One-line description of this module's own configuration ("in_features=5, out_features=10, bias=True").
  virtual std::string extra_repr() const { return ""; }
  std::string repr() const;

  // Direct access to this module's own slots (for optimizers and tools).
  std::vector<std::pair<std::string, Tensor>>& own_parameters() { return params_; }

 protected:
  void add_child(const std::string& name, std::shared_ptr<Module> module);

 private:
  void collect_params(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out, bool recurse) const;
  void collect_buffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out, bool recurse) const;
  void check_name(const std::string& name, const char* what) const;

  std::string type_name_;
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

std::ostream& operator<<(std::ostream& os, const Module& m);

}  // namespace krill::nn
