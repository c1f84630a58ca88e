// Helpers shared by the op implementations (internal).
#pragma once
#include "krill/autograd/grad_mode.hpp"
#include "krill/autograd/node.hpp"
#include "krill/tensor/ops.hpp"
#include "krill/tensor/tensor.hpp"

namespace krill::detail {

// A new contiguous tensor (uninitialised) from the caching allocator.
Tensor make_tensor(const Shape& shape, DType dtype, Device device = kCPU);
// A view of `base`'s storage with the given geometry (no autograd).
Tensor make_view(const Tensor& base, const Shape& shape, const Strides& strides, std::int64_t offset);
// Throws unless `t` is defined, naming the op and argument.
void check_defined(const Tensor& t, const char* op, const char* arg);
// Only CPU kernels exist in this build; names the op when a tensor lives elsewhere.
void check_cpu(const Tensor& t, const char* op);
void check_same_device(const Tensor& a, const Tensor& b, const char* op);
// Result dtype of a binary op (PyTorch's promotion for the dtypes krill computes in).
DType promote(DType a, DType b);
// `t` converted to dtype (shares when already of that dtype).
Tensor as_dtype(const Tensor& t, DType dtype);
// The same without touching reference counts on the common path: returns `t` itself when it
// has the dtype, else the converted copy kept in `scratch`.
inline const Tensor& as_dtype(const Tensor& t, DType dtype, Tensor& scratch) {
  if (t.dtype() == dtype) return t;
  scratch = t.to(dtype);
  return scratch;
}
// ReLU's backward from its output: g where y > 0, else 0 (PyTorch's threshold_backward).
Tensor relu_grad(const Tensor& g, const Tensor& y);
// Refuses in-place writes to tensors autograd must not see change.
void check_inplace(const Tensor& t, const char* op);

}  // namespace krill::detail
