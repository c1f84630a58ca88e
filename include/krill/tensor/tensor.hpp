// Tensor: a handle (one intrusive pointer) to a TensorImpl, which views a Storage with a
// shape, strides and offset. Copying a Tensor shares it, like PyTorch. Ops are free
// functions in ops.hpp; the methods below are the PyTorch-style spellings of the same ops.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "krill/tensor/dtype.hpp"
#include "krill/tensor/shape.hpp"
#include "krill/tensor/storage.hpp"
#include "krill/util/error.hpp"

namespace krill {

class Tensor;
namespace autograd { struct Node; }

// Rarely used autograd state, kept out of line so TensorImpl stays small.
struct AutogradExtra {
  // Called after a gradient has been accumulated into this leaf's .grad (PyTorch's
  // register_post_accumulate_grad_hook). Distributed training starts allreduces here.
  std::vector<std::function<void(Tensor&)>> post_accumulate_hooks;
  // Called on the incoming gradient before accumulation; may return a replacement.
  std::vector<std::function<std::optional<Tensor>(const Tensor&)>> grad_hooks;
  bool retains_grad = false;  // non-leaf that keeps its .grad (retain_grad())
  // Backward-engine bookkeeping for leaves with hooks: the contributions of all edges into
  // this leaf are summed first, so hooks run once per backward with the total gradient.
  std::uint64_t engine_epoch = 0;
  std::int32_t engine_slot = -1;
};

struct TensorImpl : RefCounted, CachedObject {
  Ref<StorageImpl> storage;
  Shape shape;
  Strides strides;
  std::int64_t offset = 0;  // in elements
  DType dtype = DType::Float32;
  bool requires_grad = false;
  Ref<TensorImpl> grad;
  Ref<autograd::Node> grad_fn;  // null for leaves and for tensors outside the graph
  std::unique_ptr<AutogradExtra> extra;

  TensorImpl() = default;
  TensorImpl(const TensorImpl&) = delete;
  TensorImpl& operator=(const TensorImpl&) = delete;
  ~TensorImpl();
};

// Options for creating tensors (PyTorch's TensorOptions, chained setters).
struct TensorOptions {
  DType dtype_ = DType::Float32;
  Device device_ = kCPU;
  bool requires_grad_ = false;
  TensorOptions() = default;
  TensorOptions(DType t) : dtype_(t) {}
  TensorOptions(Device d) : device_(d) {}
  TensorOptions dtype(DType t) const { auto o = *this; o.dtype_ = t; return o; }
  TensorOptions device(Device d) const { auto o = *this; o.device_ = d; return o; }
  TensorOptions requires_grad(bool r = true) const { auto o = *this; o.requires_grad_ = r; return o; }
};

// Half-open range for slicing: Slice(start, stop, step); negative values count from the end.
struct Slice {
  std::optional<std::int64_t> start, stop;
  std::int64_t step = 1;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Ref<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_.get() != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const Ref<TensorImpl>& impl_ref() const { return impl_; }

  // ---- metadata ----
  const Shape& shape() const { return impl_->shape; }
  const Shape& sizes() const { return impl_->shape; }
  std::int64_t size(std::int64_t dim) const;
  const Strides& strides() const { return impl_->strides; }
  std::int64_t stride(std::int64_t dim) const;
  int dim() const { return impl_->shape.ndim(); }
  int ndim() const { return impl_->shape.ndim(); }
  std::int64_t numel() const { return impl_->shape.numel(); }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device; }
  std::int64_t storage_offset() const { return impl_->offset; }
  bool is_contiguous() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * itemsize(dtype()); }

  // ---- raw data (CPU) ----
  void* raw_data() const {
    return static_cast<char*>(impl_->storage->data) + impl_->offset * static_cast<std::int64_t>(itemsize(impl_->dtype));
  }
  // Typed pointer to the first element; checks the dtype.
  template <typename T> T* data_ptr() const {
    check_dtype(dtype_v<T>, "data_ptr");
    return static_cast<T*>(raw_data());
  }
  // Value of a one-element tensor.
  template <typename T> T item() const;
  // Copy of the elements in row-major order.
  template <typename T> std::vector<T> to_vector() const;

  // ---- autograd ----
  bool requires_grad() const { return impl_->requires_grad; }
  Tensor& set_requires_grad(bool r = true);
  Tensor& requires_grad_(bool r = true) { return set_requires_grad(r); }
  bool is_leaf() const { return !impl_->grad_fn; }
  Tensor grad() const { return Tensor(impl_->grad); }
  void set_grad(const Tensor& g);
  autograd::Node* grad_fn() const { return impl_->grad_fn.get(); }
  // Backpropagates from this tensor; `gradient` may be omitted for one-element tensors.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;
  Tensor& detach_();
  // Sets .grad to zero in place (or drops it with set_to_none).
  void zero_grad(bool set_to_none = false);
  void retain_grad();
  void register_post_accumulate_grad_hook(std::function<void(Tensor&)> hook);
  void register_hook(std::function<std::optional<Tensor>(const Tensor&)> hook);

  // ---- views (share storage) ----
  Tensor view(const Shape& shape) const;
  Tensor reshape(const Shape& shape) const;
  Tensor transpose(std::int64_t d0, std::int64_t d1) const;
  Tensor t() const;  // 2-D transpose
  Tensor permute(const Shape& dims) const;
  Tensor slice(std::int64_t dim, std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
               std::int64_t step = 1) const;
  Tensor narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const;
  Tensor select(std::int64_t dim, std::int64_t index) const;
  Tensor operator[](std::int64_t index) const { return select(0, index); }
  Tensor expand(const Shape& shape) const;
  Tensor expand_as(const Tensor& other) const { return expand(other.shape()); }
  Tensor unsqueeze(std::int64_t dim) const;
  Tensor squeeze(std::int64_t dim) const;
  Tensor squeeze() const;
  Tensor flatten(std::int64_t start_dim = 0, std::int64_t end_dim = -1) const;
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // ---- in-place (not recorded by autograd; refused on leaves that require grad unless
  //      under NoGradGuard, like PyTorch) ----
  Tensor& zero_();
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& add_(double value);
  Tensor& sub_(const Tensor& other, double alpha = 1.0);
  Tensor& mul_(const Tensor& other);
  Tensor& mul_(double value);
  Tensor& div_(const Tensor& other);
  Tensor& div_(double value);
  // Bumps the storage version (call after writing through data_ptr while a graph saved it).
  void bump_version() const { ++impl_->storage->version; }

  // ---- op spellings (see ops.hpp for the full list and semantics) ----
  Tensor add(const Tensor& o, double alpha = 1.0) const;
  Tensor sub(const Tensor& o, double alpha = 1.0) const;
  Tensor mul(const Tensor& o) const;
  Tensor div(const Tensor& o) const;
  Tensor matmul(const Tensor& o) const;
  Tensor relu() const;
  Tensor sigmoid() const;
  Tensor tanh() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor abs() const;
  Tensor neg() const;
  Tensor pow(double exponent) const;
  Tensor pow(const Tensor& exponent) const;
  Tensor sum() const;
  Tensor sum(std::int64_t dim, bool keepdim = false) const;
  Tensor sum(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(std::int64_t dim, bool keepdim = false) const;
  Tensor mean(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor max() const;
  std::pair<Tensor, Tensor> max(std::int64_t dim, bool keepdim = false) const;
  Tensor min() const;
  std::pair<Tensor, Tensor> min(std::int64_t dim, bool keepdim = false) const;
  Tensor argmax() const;
  Tensor argmax(std::int64_t dim, bool keepdim = false) const;
  Tensor softmax(std::int64_t dim) const;
  Tensor log_softmax(std::int64_t dim) const;
  Tensor index_select(std::int64_t dim, const Tensor& index) const;
  Tensor gather(std::int64_t dim, const Tensor& index) const;
  Tensor eq(const Tensor& o) const;

  std::string str() const;                  // PyTorch-like printing: tensor([[...]])
  std::string shape_str() const { return shape().str(); }

  void check_dtype(DType expected, const char* op) const;

 private:
  Ref<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(double s, const Tensor& a);

// ---- creation ----
Tensor empty(const Shape& shape, TensorOptions opts = {});
Tensor zeros(const Shape& shape, TensorOptions opts = {});
Tensor ones(const Shape& shape, TensorOptions opts = {});
Tensor full(const Shape& shape, double value, TensorOptions opts = {});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor empty_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
// [start, end) with step; float32 unless opts say otherwise (PyTorch infers int64 from
// integer arguments: use arange_int for that).
Tensor arange(double start, double end, double step = 1.0, TensorOptions opts = {});
Tensor arange(std::int64_t end, TensorOptions opts = DType::Int64);
Tensor scalar_tensor(double value, TensorOptions opts = {});
// Copies `values` into a new tensor of `shape` (numel must match).
Tensor tensor(const std::vector<float>& values, const Shape& shape, TensorOptions opts = {});
Tensor tensor(const std::vector<float>& values);
Tensor tensor(const std::vector<std::int64_t>& values, const Shape& shape);
Tensor tensor(const std::vector<std::int64_t>& values);
// Brace-list spellings: tensor({1.f, 2.f}), tensor({0.5, 1.5}, {2, 1}) are float32 (PyTorch's default
// dtype), tensor({0, 2, 1}) is int64.
Tensor tensor(std::initializer_list<float> values, const Shape& shape = Shape{-1}, TensorOptions opts = {});
Tensor tensor(std::initializer_list<double> values, const Shape& shape = Shape{-1}, TensorOptions opts = {});
Tensor tensor(std::initializer_list<int> values, const Shape& shape = Shape{-1});
// Wraps caller-owned memory without copying; `deleter` runs when the last view goes.
Tensor from_blob(void* data, const Shape& shape, DType dtype, std::function<void(void*)> deleter = {},
                 Device device = kCPU);

}  // namespace krill
