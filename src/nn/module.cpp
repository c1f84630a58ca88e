#include "krill/nn/module.hpp"

#include <ostream>
#include <sstream>

#include "krill/autograd/grad_mode.hpp"
#include "krill/tensor/ops.hpp"

namespace krill::nn {

Tensor Module::forward(const Tensor&) {
  throw Error(type_name_ + " has no single-input forward(); call its own forward method");
}

void Module::check_name(const std::string& name, const char* what) const {
  if (name.empty() || name.find('.') != std::string::npos)
    throw ValueError(type_name_ + ": " + what + " name '" + name + "' must be non-empty and contain no '.'");
  for (const auto& p : params_)
    if (p.first == name) throw ValueError(type_name_ + ": a parameter named '" + name + "' is already registered");
  for (const auto& b : buffers_)
    if (b.first == name) throw ValueError(type_name_ + ": a buffer named '" + name + "' is already registered");
  for (const auto& c : children_)
    if (c.first == name) throw ValueError(type_name_ + ": a child module named '" + name + "' is already registered");
}

Tensor& Module::register_parameter(const std::string& name, Tensor tensor, bool requires_grad) {
  check_name(name, "parameter");
  if (tensor.defined() && requires_grad) tensor.set_requires_grad(true);
  params_.emplace_back(name, std::move(tensor));
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor tensor) {
  check_name(name, "buffer");
  buffers_.emplace_back(name, std::move(tensor));
  return buffers_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  if (!module) throw ValueError(type_name_ + ": child module '" + name + "' is null");
  check_name(name, "module");
  children_.emplace_back(name, std::move(module));
}

void Module::collect_params(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out,
                            bool recurse) const {
  for (const auto& p : params_)
    if (p.second.defined()) out.emplace_back(prefix + p.first, p.second);
  if (!recurse) return;
  for (const auto& c : children_) c.second->collect_params(prefix + c.first + ".", out, true);
}

void Module::collect_buffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out,
                             bool recurse) const {
  for (const auto& b : buffers_)
    if (b.second.defined()) out.emplace_back(prefix + b.first, b.second);
  if (!recurse) return;
  for (const auto& c : children_) c.second->collect_buffers(prefix + c.first + ".", out, true);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_params("", out, recurse);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& p : named_parameters(recurse)) out.push_back(p.second);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_buffers("", out, recurse);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& b : named_buffers(recurse)) out.push_back(b.second);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& c : children_) out.push_back(c.second);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules(const std::string& prefix) {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  // A module not owned by a shared_ptr (e.g. on the stack) lists itself through a non-owning
  // handle instead of throwing std::bad_weak_ptr.
  std::shared_ptr<Module> self = weak_from_this().lock();
  if (!self) self = std::shared_ptr<Module>(std::shared_ptr<Module>(), this);
  out.emplace_back(prefix, std::move(self));
  for (const auto& c : children_) {
    auto sub = c.second->named_modules(prefix.empty() ? c.first : prefix + "." + c.first);
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::int64_t Module::num_parameters() const {
  std::int64_t n = 0;
  for (const auto& p : named_parameters()) n += p.second.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

void Module::zero_grad(bool set_to_none) {
  // Walks the tree in place: called every training step, so it must not build the
  // named_parameters() vector (strings and all) each time.
  for (auto& p : params_)
    if (p.second.defined()) p.second.zero_grad(set_to_none);
  for (auto& c : children_) c.second->zero_grad(set_to_none);
}

StateDict Module::state_dict() const {
  StateDict sd;
  // PyTorch order: each module's own parameters, then its buffers, then children.
  struct Walk {
    static void run(const Module& m, const std::string& prefix, StateDict& sd) {
      for (const auto& p : m.params_)
        if (p.second.defined()) sd.insert(prefix + p.first, p.second.detach());
      for (const auto& b : m.buffers_)
        if (b.second.defined()) sd.insert(prefix + b.first, b.second.detach());
      for (const auto& c : m.children_) run(*c.second, prefix + c.first + ".", sd);
    }
  };
  Walk::run(*this, "", sd);
  return sd;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  StateDict mine = state_dict();
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, t] : mine) {
    const Tensor* src = state.find(name);
    if (!src) {
      missing.push_back(name);
      continue;
    }
    if (!(src->shape() == t.shape()))
      mismatched.push_back(name + ": checkpoint has shape " + src->shape().str() + ", the model has " + t.shape().str());
    else if (src->dtype() != t.dtype() && !(is_floating(src->dtype()) && is_floating(t.dtype())))
      mismatched.push_back(name + ": checkpoint has dtype " + std::string(dtype_name(src->dtype())) +
                           ", the model has " + std::string(dtype_name(t.dtype())));
  }
  for (const auto& [name, t] : state)
    if (!mine.contains(name)) unexpected.push_back(name);
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  std::string err;
  if (!mismatched.empty()) err += "size mismatch: " + join(mismatched) + ". ";
  if (strict && !missing.empty()) err += "missing keys: " + join(missing) + ". ";
  if (strict && !unexpected.empty()) err += "unexpected keys: " + join(unexpected) + ". ";
  if (!err.empty()) throw ValueError("load_state_dict into " + type_name_ + ": " + err);
  NoGradGuard no_grad;
  for (const auto& [name, t] : mine) {
    const Tensor* src = state.find(name);
    if (!src) continue;
    Tensor dst = t;
    dst.copy_(*src);
  }
}

namespace {

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto nl = s.find('\n', start);
    out.push_back(s.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) return out;
    start = nl + 1;
  }
}

// PyTorch's _addindent: every line but the first gets `spaces` more indentation.
std::string add_indent(const std::string& s, int spaces) {
  if (s.find('\n') == std::string::npos) return s;
  std::string out;
  for (char ch : s) {
    out += ch;
    if (ch == '\n') out.append(static_cast<std::size_t>(spaces), ' ');
  }
  return out;
}

}  // namespace

// torch.nn.Module.__repr__, line for line.
std::string Module::repr() const {
  std::vector<std::string> extra_lines, child_lines;
  const std::string extra = extra_repr();
  if (!extra.empty()) extra_lines = split_lines(extra);
  for (const auto& c : children_) child_lines.push_back("(" + c.first + "): " + add_indent(c.second->repr(), 2));
  std::string out = type_name_ + "(";
  if (extra_lines.size() == 1 && child_lines.empty()) {
    out += extra_lines[0];
  } else if (!extra_lines.empty() || !child_lines.empty()) {
    out += "\n";
    for (const auto& l : extra_lines) out += "  " + l + "\n";
    for (const auto& l : child_lines) out += "  " + l + "\n";
  }
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Module& m) { return os << m.repr(); }

}  // namespace krill::nn
