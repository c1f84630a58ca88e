// Tensor handle: metadata, creation, conversion, in-place updates (printing: tensor_print.cpp).
#include "krill/tensor/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "cpu/kernels.hpp"
#include "internal.hpp"
#include "krill/autograd/engine.hpp"
#include "krill/autograd/grad_mode.hpp"
#include "krill/autograd/node.hpp"

namespace krill {

TensorImpl::~TensorImpl() {
  if (grad_fn && grad_fn->retained_output == this) grad_fn->retained_output = nullptr;
}

namespace detail {

Tensor make_tensor(const Shape& shape, DType dtype, Device device) {
  auto impl = Ref<TensorImpl>::adopt(new TensorImpl);
  std::int64_t n = shape.numel();
  for (int d = 0; d < shape.ndim(); ++d)
    if (shape[d] < 0) throw ShapeError("invalid shape " + shape.str() + ": sizes must be non-negative");
  impl->storage = StorageImpl::allocate(static_cast<std::size_t>(n) * itemsize(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& base, const Shape& shape, const Strides& strides, std::int64_t offset) {
  auto impl = Ref<TensorImpl>::adopt(new TensorImpl);
  impl->storage = base.impl()->storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

void check_defined(const Tensor& t, const char* op, const char* arg) {
  if (!t.defined()) throw ValueError(std::string(op) + ": argument '" + arg + "' is an undefined tensor");
}

void check_cpu(const Tensor& t, const char* op) {
  if (!t.device().is_cpu())
    throw Error(std::string(op) + ": tensor on " + t.device().str() + " but this krill build has only CPU kernels");
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  if (!(a.device() == b.device()))
    throw ValueError(std::string(op) + ": tensors are on different devices (" + a.device().str() + " and " +
                     b.device().str() + "); move one with .to(device)");
}

DType promote(DType a, DType b) {
  if (a == b) return a;
  if (a == DType::Float64 || b == DType::Float64) return DType::Float64;
  if (is_floating(a) || is_floating(b)) return DType::Float32;
  return DType::Int64;
}

Tensor as_dtype(const Tensor& t, DType dtype) { return t.dtype() == dtype ? t : t.to(dtype); }

void check_inplace(const Tensor& t, const char* op) {
  if (autograd::is_grad_enabled()) {
    if (t.requires_grad() && t.is_leaf())
      throw AutogradError(std::string(op) +
                          ": a leaf tensor that requires grad is being used in an in-place operation; wrap the update "
                          "in krill::NoGradGuard (as optimizers do) or use the out-of-place op");
    if (t.grad_fn())
      throw AutogradError(std::string(op) + ": in-place operations on tensors that are part of an autograd graph (" +
                          t.grad_fn()->name + ") are not supported; use the out-of-place op");
  }
}

}  // namespace detail

using detail::make_tensor;

std::int64_t Tensor::size(std::int64_t dim) const { return shape()[wrap_dim(dim, ndim(), "size")]; }
std::int64_t Tensor::stride(std::int64_t dim) const { return strides()[wrap_dim(dim, ndim(), "stride")]; }

bool Tensor::is_contiguous() const {
  const Shape& s = impl_->shape;
  const Strides& st = impl_->strides;
  if (s.numel() == 0) return true;  // like PyTorch: nothing to lay out
  std::int64_t expected = 1;
  for (int d = s.ndim() - 1; d >= 0; --d) {
    if (s[d] == 1) continue;
    if (st[d] != expected) return false;
    expected *= s[d];
  }
  return true;
}

void Tensor::check_dtype(DType expected, const char* op) const {
  if (!defined()) throw ValueError(std::string(op) + ": tensor is undefined");
  if (dtype() != expected)
    throw DTypeError(std::string(op) + ": expected a " + std::string(dtype_name(expected)) + " tensor, got " +
                     std::string(dtype_name(dtype())));
}

template <typename T>
T Tensor::item() const {
  if (!defined()) throw ValueError("item: tensor is undefined");
  if (numel() != 1)
    throw ValueError("item: a tensor with " + std::to_string(numel()) + " elements (shape " + shape().str() +
                     ") cannot be converted to a scalar; only one-element tensors can");
  Tensor c = dtype() == dtype_v<T> ? *this : to(dtype_v<T>);
  return *static_cast<const T*>(c.raw_data());
}
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template std::int64_t Tensor::item<std::int64_t>() const;
template bool Tensor::item<bool>() const;

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = (dtype() == dtype_v<T> ? *this : to(dtype_v<T>)).contiguous();
  const T* p = static_cast<const T*>(c.raw_data());
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<std::int64_t> Tensor::to_vector<std::int64_t>() const;
template std::vector<bool> Tensor::to_vector<bool>() const;

// ---- autograd surface ----

Tensor& Tensor::set_requires_grad(bool r) {
  if (r && !is_floating(dtype()))
    throw AutogradError("requires_grad: only floating-point tensors can require gradients, this one is " +
                        std::string(dtype_name(dtype())));
  if (!is_leaf() && !r)
    throw AutogradError("requires_grad(false) on a non-leaf tensor: use detach() instead");
  impl_->requires_grad = r;
  return *this;
}

void Tensor::set_grad(const Tensor& g) {
  if (g.defined() && !(g.shape() == shape()))
    throw ShapeError("set_grad: gradient of shape " + g.shape().str() + " for a tensor of shape " + shape().str());
  impl_->grad = g.impl_ref();
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  autograd::backward(*this, gradient, retain_graph);
}

Tensor Tensor::detach() const {
  Tensor t = detail::make_view(*this, shape(), strides(), storage_offset());
  return t;
}

Tensor& Tensor::detach_() {
  impl_->grad_fn.reset();
  impl_->requires_grad = false;
  return *this;
}

void Tensor::zero_grad(bool set_to_none) {
  if (!impl_->grad) return;
  if (set_to_none) {
    impl_->grad.reset();
    return;
  }
  Tensor g(impl_->grad);
  cpu::fill(g, 0.0);
}

void Tensor::retain_grad() {
  if (is_leaf()) return;
  if (!impl_->extra) impl_->extra = std::make_unique<AutogradExtra>();
  impl_->extra->retains_grad = true;
  impl_->grad_fn->retained_output = impl();
}

void Tensor::register_post_accumulate_grad_hook(std::function<void(Tensor&)> hook) {
  if (!is_leaf() || !requires_grad())
    throw AutogradError("register_post_accumulate_grad_hook: only leaf tensors that require grad accumulate gradients");
  if (!impl_->extra) impl_->extra = std::make_unique<AutogradExtra>();
  impl_->extra->post_accumulate_hooks.push_back(std::move(hook));
}

void Tensor::register_hook(std::function<std::optional<Tensor>(const Tensor&)> hook) {
  if (!requires_grad()) throw AutogradError("register_hook: the tensor does not require grad");
  if (!is_leaf())
    throw AutogradError("register_hook: hooks on non-leaf tensors are not supported yet; register it on the leaf");
  if (!impl_->extra) impl_->extra = std::make_unique<AutogradExtra>();
  impl_->extra->grad_hooks.push_back(std::move(hook));
}

// ---- conversion ----

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  detail::check_cpu(*this, "to");
  Tensor out = make_tensor(shape(), t, device());
  cpu::copy(*this, out);
  if (requires_grad() && is_floating(t) && autograd::is_grad_enabled()) {
    // differentiable cast: gradient converted back
    autograd::record("ToCopyBackward0",
                     [](autograd::Node& n, const Tensor& g, Tensor* gi) { gi[0] = g.to(n.out_dtype); }, {this}, out);
    out.grad_fn()->out_dtype = dtype();
  }
  return out;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  throw Error("to(" + d.str() + "): this krill build has no " + d.str() + " backend");
}

// ---- in-place ----

Tensor& Tensor::zero_() { return fill_(0.0); }

Tensor& Tensor::fill_(double value) {
  detail::check_inplace(*this, "fill_");
  cpu::fill(*this, value);
  bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  detail::check_defined(src, "copy_", "src");
  detail::check_inplace(*this, "copy_");
  broadcast_shapes(shape(), src.shape(), "copy_");  // validates
  if (!(broadcast_shapes(shape(), src.shape(), "copy_") == shape()))
    throw ShapeError("copy_: source of shape " + src.shape().str() + " cannot be broadcast to " + shape().str());
  cpu::copy(src, *this);
  bump_version();
  return *this;
}

static void check_inplace_broadcast(const Tensor& a, const Tensor& b, const char* op) {
  if (!(broadcast_shapes(a.shape(), b.shape(), op) == a.shape()))
    throw ShapeError(std::string(op) + ": the result of shape " + broadcast_shapes(a.shape(), b.shape(), op).str() +
                     " does not fit the in-place target of shape " + a.shape().str());
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  detail::check_inplace(*this, "add_");
  check_inplace_broadcast(*this, other, "add_");
  Tensor scratch;
  cpu::add_inplace(*this, detail::as_dtype(other, dtype(), scratch), alpha);
  bump_version();
  return *this;
}
Tensor& Tensor::add_(double v) {
  detail::check_inplace(*this, "add_");
  cpu::add_scalar_inplace(*this, v);
  bump_version();
  return *this;
}
Tensor& Tensor::sub_(const Tensor& other, double alpha) { return add_(other, -alpha); }
Tensor& Tensor::mul_(const Tensor& other) {
  detail::check_inplace(*this, "mul_");
  check_inplace_broadcast(*this, other, "mul_");
  Tensor scratch;
  cpu::mul_inplace(*this, detail::as_dtype(other, dtype(), scratch));
  bump_version();
  return *this;
}
Tensor& Tensor::mul_(double v) {
  detail::check_inplace(*this, "mul_");
  cpu::scale_inplace(*this, v);
  bump_version();
  return *this;
}
Tensor& Tensor::div_(const Tensor& other) {
  detail::check_inplace(*this, "div_");
  check_inplace_broadcast(*this, other, "div_");
  Tensor scratch;
  cpu::div_inplace(*this, detail::as_dtype(other, dtype(), scratch));
  bump_version();
  return *this;
}
Tensor& Tensor::div_(double v) { return mul_(1.0 / v); }

// ---- creation ----

Tensor empty(const Shape& shape, TensorOptions o) {
  Tensor t = make_tensor(shape, o.dtype_, o.device_);
  if (o.requires_grad_) t.set_requires_grad(true);
  return t;
}
Tensor zeros(const Shape& shape, TensorOptions o) {
  Tensor t = make_tensor(shape, o.dtype_, o.device_);
  cpu::fill(t, 0.0);
  if (o.requires_grad_) t.set_requires_grad(true);
  return t;
}
Tensor ones(const Shape& shape, TensorOptions o) { return full(shape, 1.0, o); }
Tensor full(const Shape& shape, double value, TensorOptions o) {
  Tensor t = make_tensor(shape, o.dtype_, o.device_);
  cpu::fill(t, value);
  if (o.requires_grad_) t.set_requires_grad(true);
  return t;
}
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), TensorOptions(t.dtype()).device(t.device())); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), TensorOptions(t.dtype()).device(t.device())); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), TensorOptions(t.dtype()).device(t.device())); }
Tensor full_like(const Tensor& t, double v) { return full(t.shape(), v, TensorOptions(t.dtype()).device(t.device())); }

Tensor arange(double start, double end, double step, TensorOptions o) {
  if (step == 0) throw ValueError("arange: step must be non-zero");
  if ((step > 0 && start > end) || (step < 0 && start < end))
    throw ValueError("arange: upper bound and step have inconsistent signs (start " + std::to_string(start) +
                     ", end " + std::to_string(end) + ", step " + std::to_string(step) + ")");
  auto n = static_cast<std::int64_t>(std::ceil((end - start) / step));
  Tensor t = make_tensor({n}, o.dtype_, o.device_);
  if (o.dtype_ == DType::Float32) {
    float* p = t.data_ptr<float>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(start + i * step);
  } else if (o.dtype_ == DType::Int64) {
    std::int64_t* p = t.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<std::int64_t>(start + i * step);
  } else if (o.dtype_ == DType::Float64) {
    double* p = t.data_ptr<double>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = start + i * step;
  } else {
    throw DTypeError("arange: dtype " + std::string(dtype_name(o.dtype_)) + " is not supported");
  }
  if (o.requires_grad_) t.set_requires_grad(true);
  return t;
}
Tensor arange(std::int64_t end, TensorOptions o) { return arange(0.0, static_cast<double>(end), 1.0, o); }

Tensor scalar_tensor(double v, TensorOptions o) { return full(Shape{}, v, o); }

Tensor tensor(const std::vector<float>& values, const Shape& shape, TensorOptions o) {
  if (static_cast<std::int64_t>(values.size()) != shape.numel())
    throw ShapeError("tensor: " + std::to_string(values.size()) + " values do not fill shape " + shape.str() + " (" +
                     std::to_string(shape.numel()) + " elements)");
  Tensor t = make_tensor(shape, DType::Float32);
  std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(float));
  if (o.dtype_ != DType::Float32) t = t.to(o.dtype_);
  if (o.requires_grad_) t.set_requires_grad(true);
  return t;
}
Tensor tensor(const std::vector<float>& values) {
  return tensor(values, Shape{static_cast<std::int64_t>(values.size())});
}
Tensor tensor(const std::vector<std::int64_t>& values, const Shape& shape) {
  if (static_cast<std::int64_t>(values.size()) != shape.numel())
    throw ShapeError("tensor: " + std::to_string(values.size()) + " values do not fill shape " + shape.str());
  Tensor t = make_tensor(shape, DType::Int64);
  std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(std::int64_t));
  return t;
}
Tensor tensor(const std::vector<std::int64_t>& values) {
  return tensor(values, Shape{static_cast<std::int64_t>(values.size())});
}

static Shape list_shape(const Shape& s, std::size_t n) {
  return (s.ndim() == 1 && s[0] == -1) ? Shape{static_cast<std::int64_t>(n)} : s;
}
Tensor tensor(std::initializer_list<float> values, const Shape& shape, TensorOptions opts) {
  return tensor(std::vector<float>(values), list_shape(shape, values.size()), opts);
}
Tensor tensor(std::initializer_list<double> values, const Shape& shape, TensorOptions opts) {
  std::vector<float> v(values.begin(), values.end());
  return tensor(v, list_shape(shape, values.size()), opts);
}
Tensor tensor(std::initializer_list<int> values, const Shape& shape) {
  std::vector<std::int64_t> v(values.begin(), values.end());
  return tensor(v, list_shape(shape, values.size()));
}

Tensor from_blob(void* data, const Shape& shape, DType dtype, std::function<void(void*)> deleter, Device device) {
  auto impl = Ref<TensorImpl>::adopt(new TensorImpl);
  impl->storage = StorageImpl::wrap(data, static_cast<std::size_t>(shape.numel()) * itemsize(dtype), device,
                                    std::move(deleter));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

}  // namespace krill
