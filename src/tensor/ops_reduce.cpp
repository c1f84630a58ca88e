// Reductions with autograd: sum, mean, max/min (all and per dim), argmax/argmin, sum_to.
#include <algorithm>

#include "cpu/kernels.hpp"
#include "internal.hpp"

namespace krill {

using autograd::Node;
using detail::make_tensor;

namespace {

// Sorted unique wrapped dims; empty `dims` means all.
struct DimSet {
  bool reduce[kMaxDims] = {};
  int count = 0;
};
DimSet make_dimset(const Tensor& a, const std::vector<std::int64_t>& dims, const char* op) {
  DimSet s;
  if (dims.empty()) {
    for (int d = 0; d < a.ndim(); ++d) s.reduce[d] = true;
    s.count = a.ndim();
    return s;
  }
  for (auto d0 : dims) {
    int d = wrap_dim(d0, a.ndim(), op);
    if (a.ndim() == 0) continue;
    if (s.reduce[d]) throw ValueError(std::string(op) + ": dimension " + std::to_string(d) + " appears twice");
    s.reduce[d] = true;
    ++s.count;
  }
  return s;
}

Shape keep_shape(const Tensor& a, const DimSet& ds) {
  Shape s = a.shape();
  for (int d = 0; d < a.ndim(); ++d)
    if (ds.reduce[d]) s[d] = 1;
  return s;
}

Shape final_shape(const Tensor& a, const DimSet& ds, bool keepdim) {
  if (keepdim) return keep_shape(a, ds);
  Shape s;
  for (int d = 0; d < a.ndim(); ++d)
    if (!ds.reduce[d]) s.push_back(a.shape()[d]);
  return s;
}

Tensor sum_impl(const Tensor& a, const DimSet& ds, bool keepdim) {
  detail::check_cpu(a, "sum");
  DType out_dt = is_floating(a.dtype()) ? a.dtype() : DType::Int64;
  Tensor src = detail::as_dtype(a, out_dt);
  Tensor out = make_tensor(keep_shape(a, ds), out_dt, a.device());
  cpu::sum_into(src, out);
  if (!keepdim) out = detail::make_view(out, final_shape(a, ds, false), contiguous_strides(final_shape(a, ds, false)), 0);
  return out;
}

// Gradient of a reduction: g (reduced shape) broadcast back to the input shape.
Tensor expand_grad(const Tensor& g, const Node& n) {
  // shape_b holds the keepdim shape, shape_a the input shape
  return g.reshape(n.shape_b).expand(n.shape_a);
}

}  // namespace

Tensor sum_to(const Tensor& a, const Shape& shape) {
  if (a.shape() == shape) return a;
  const int lead = a.ndim() - shape.ndim();
  if (lead < 0) throw ShapeError("sum_to: cannot reduce " + a.shape().str() + " to the larger shape " + shape.str());
  DimSet ds;
  for (int d = 0; d < a.ndim(); ++d) {
    const int sd = d - lead;
    if (sd < 0 || (shape[sd] == 1 && a.shape()[d] != 1)) {
      ds.reduce[d] = true;
      ++ds.count;
    } else if (shape[sd] != a.shape()[d]) {
      throw ShapeError("sum_to: cannot reduce " + a.shape().str() + " to " + shape.str());
    }
  }
  Tensor out = make_tensor(keep_shape(a, ds), a.dtype(), a.device());
  cpu::sum_into(a, out);
  return detail::make_view(out, shape, contiguous_strides(shape), 0);
}

// `full`: the all-elements overload (PyTorch names its node SumBackward0 / MeanBackward0, and
// the dim-list overload's SumBackward1 / MeanBackward1).
static Tensor sum_dims(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim, bool full) {
  detail::check_defined(a, "sum", "input");
  DimSet ds = make_dimset(a, dims, "sum");
  Tensor out = sum_impl(a, ds, keepdim);
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        full ? "SumBackward0" : "SumBackward1", [](Node& n, const Tensor& g, Tensor* gi) { gi[0] = expand_grad(g, n); },
        {&a}, out);
    n->shape_a = a.shape();
    n->shape_b = keep_shape(a, ds);
  }
  return out;
}

Tensor sum(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim) {
  return sum_dims(a, dims, keepdim, false);
}

Tensor sum(const Tensor& a) { return sum_dims(a, {}, false, true); }

static Tensor mean_dims(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim, bool full) {
  detail::check_defined(a, "mean", "input");
  if (!is_floating(a.dtype()))
    throw DTypeError("mean: needs a floating-point tensor, got " + std::string(dtype_name(a.dtype())) +
                     "; convert with .to(krill::kFloat32)");
  DimSet ds = make_dimset(a, dims, "mean");
  std::int64_t count = 1;
  for (int d = 0; d < a.ndim(); ++d)
    if (ds.reduce[d]) count *= a.shape()[d];
  Tensor out = sum_impl(a, ds, keepdim);
  cpu::scale_inplace(out, 1.0 / static_cast<double>(count));
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        full ? "MeanBackward0" : "MeanBackward1",
        [](Node& n, const Tensor& g, Tensor* gi) { gi[0] = expand_grad(div(g, n.scalar[0]), n); }, {&a}, out);
    n->shape_a = a.shape();
    n->shape_b = keep_shape(a, ds);
    n->scalar[0] = static_cast<double>(count);
  }
  return out;
}

Tensor mean(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim) {
  return mean_dims(a, dims, keepdim, false);
}

Tensor mean(const Tensor& a) { return mean_dims(a, {}, false, true); }

static Tensor max_min_all(const Tensor& a, bool is_max) {
  const char* op = is_max ? "max" : "min";
  detail::check_defined(a, op, "input");
  detail::check_cpu(a, op);
  if (a.numel() == 0)
    throw ValueError(std::string(op) + ": the tensor is empty; specify a dim to reduce a non-empty dimension");
  Tensor flat = a.contiguous().reshape({a.numel()});
  Tensor values = make_tensor({1}, a.dtype(), a.device());
  cpu::max_min_dim(flat, 0, is_max, values, nullptr);
  Tensor out = detail::make_view(values, Shape{}, Strides{}, 0);
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        is_max ? "MaxBackward1" : "MinBackward1",
        [](Node& n, const Tensor& g, Tensor* gi) {
          // evenly distributed among the elements equal to the extreme, like PyTorch
          const Tensor& x = n.saved_tensor(0);
          Tensor mask = eq(x, n.saved_tensor(1)).to(g.dtype());
          gi[0] = mul(div(mask, sum(mask)), g);
        },
        {&a}, out);
    n->save(0, a);
    n->save(1, out.detach());
  }
  return out;
}

Tensor max(const Tensor& a) { return max_min_all(a, true); }
Tensor min(const Tensor& a) { return max_min_all(a, false); }

static std::pair<Tensor, Tensor> max_min_dim(const Tensor& a, std::int64_t dim, bool keepdim, bool is_max) {
  const char* op = is_max ? "max" : "min";
  detail::check_defined(a, op, "input");
  detail::check_cpu(a, op);
  const int d = wrap_dim(dim, a.ndim(), op);
  if (a.ndim() > 0 && a.shape()[d] == 0)
    throw ValueError(std::string(op) + ": cannot reduce dimension " + std::to_string(d) + " of size 0");
  Tensor src = a.ndim() == 0 ? a.reshape({1}) : a;
  DimSet ds;
  ds.reduce[d] = src.ndim() > 0;
  Shape ks = keep_shape(src, ds);
  Tensor values = make_tensor(ks, a.dtype(), a.device());
  Tensor indices = make_tensor(ks, DType::Int64, a.device());
  cpu::max_min_dim(src.contiguous(), d, is_max, values, &indices);
  if (!keepdim || a.ndim() == 0) {
    Shape fs = a.ndim() == 0 ? Shape{} : final_shape(src, ds, false);
    values = detail::make_view(values, fs, contiguous_strides(fs), 0);
    indices = detail::make_view(indices, fs, contiguous_strides(fs), 0);
  }
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        is_max ? "MaxBackward0" : "MinBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          Tensor r = zeros(n.shape_a, TensorOptions(g.dtype()));
          const Tensor& idx = n.saved_tensor(0);
          if (n.shape_a.ndim() == 0) {
            gi[0] = g.reshape(Shape{});
            return;
          }
          cpu::scatter_add(r, static_cast<int>(n.ints[0]), idx.reshape(n.shape_b).contiguous(),
                           g.reshape(n.shape_b).contiguous());
          gi[0] = r;
        },
        {&a}, values);
    n->shape_a = a.shape();
    n->shape_b = ks;
    n->ints[0] = d;
    n->save(0, indices);
  }
  return {values, indices};
}

std::pair<Tensor, Tensor> max(const Tensor& a, std::int64_t dim, bool keepdim) {
  return max_min_dim(a, dim, keepdim, true);
}
std::pair<Tensor, Tensor> min(const Tensor& a, std::int64_t dim, bool keepdim) {
  return max_min_dim(a, dim, keepdim, false);
}

Tensor argmax(const Tensor& a, std::int64_t dim, bool keepdim) {
  GradModeGuard g(false);
  return max_min_dim(a, dim, keepdim, true).second;
}
Tensor argmin(const Tensor& a, std::int64_t dim, bool keepdim) {
  GradModeGuard g(false);
  return max_min_dim(a, dim, keepdim, false).second;
}
Tensor argmax(const Tensor& a) {
  GradModeGuard g(false);
  return max_min_dim(a.contiguous().reshape({a.numel()}), 0, false, true).second;
}

}  // namespace krill
