// Whether ops record the autograd graph (per thread), and PyTorch's NoGradGuard.
#pragma once

namespace krill::autograd {

bool is_grad_enabled();
void set_grad_enabled(bool enabled);

}  // namespace krill::autograd

namespace krill {

// Disables graph recording in its scope: `{ NoGradGuard g; ... }`.
class NoGradGuard {
 public:
  NoGradGuard() : prev_(autograd::is_grad_enabled()) { autograd::set_grad_enabled(false); }
  ~NoGradGuard() { autograd::set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// Sets grad mode for its scope (PyTorch's set_grad_enabled as a context manager).
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) : prev_(autograd::is_grad_enabled()) { autograd::set_grad_enabled(enabled); }
  ~GradModeGuard() { autograd::set_grad_enabled(prev_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace krill
