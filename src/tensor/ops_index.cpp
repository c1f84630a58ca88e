// Joining and indexing: cat, stack, index_select, gather, where; comparison helpers.
#include <cmath>
#include <cstring>

#include "cpu/kernels.hpp"
#include "cpu/loops.hpp"
#include "internal.hpp"

namespace krill {

using autograd::Node;
using detail::make_tensor;

Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim) {
  if (tensors.empty()) throw ValueError("cat: expects a non-empty list of tensors");
  const Tensor& first = tensors[0];
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    detail::check_defined(tensors[i], "cat", "tensors");
    detail::check_cpu(tensors[i], "cat");
  }
  if (first.ndim() == 0) throw ShapeError("cat: zero-dimensional tensors cannot be concatenated; use stack");
  const int d = wrap_dim(dim, first.ndim(), "cat");
  DType dt = first.dtype();
  Shape out_shape = first.shape();
  out_shape[d] = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    dt = detail::promote(dt, t.dtype());
    if (t.ndim() != first.ndim())
      throw ShapeError("cat: tensor " + std::to_string(i) + " has shape " + t.shape().str() + " but tensor 0 has " +
                       first.shape().str() + " (same number of dimensions needed)");
    for (int e = 0; e < first.ndim(); ++e)
      if (e != d && t.shape()[e] != first.shape()[e])
        throw ShapeError("cat: tensor " + std::to_string(i) + " has shape " + t.shape().str() + ", tensor 0 has " +
                         first.shape().str() + "; sizes must match except in dimension " + std::to_string(d));
    out_shape[d] += t.shape()[d];
  }
  Tensor out = make_tensor(out_shape, dt, first.device());
  std::int64_t offset = 0;
  Tensor sizes = make_tensor({static_cast<std::int64_t>(tensors.size())}, DType::Int64);
  std::int64_t* ps = sizes.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const std::int64_t len = tensors[i].shape()[d];
    Tensor dst = detail::make_view(out, out.shape(), out.strides(), 0);
    dst = dst.narrow(d, offset, len);
    cpu::copy(tensors[i], dst);
    ps[i] = len;
    offset += len;
  }
  bool any = false;
  if (autograd::is_grad_enabled())
    for (const auto& t : tensors) any = any || t.requires_grad();
  if (any) {
    Node* n = autograd::record(
        "CatBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          const Tensor& sz = n.saved_tensor(0);
          const std::int64_t* p = sz.data_ptr<std::int64_t>();
          std::int64_t off = 0;
          for (int i = 0; i < n.num_inputs; ++i) {
            if (n.needs_grad(i)) gi[i] = g.narrow(n.ints[0], off, p[i]);
            off += p[i];
          }
        },
        tensors.data(), static_cast<int>(tensors.size()), out);
    n->save(0, sizes);
    n->ints[0] = d;
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim) {
  if (tensors.empty()) throw ValueError("stack: expects a non-empty list of tensors");
  const int d = wrap_dim(dim, tensors[0].ndim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    detail::check_defined(tensors[i], "stack", "tensors");
    if (!(tensors[i].shape() == tensors[0].shape()))
      throw ShapeError("stack: tensor " + std::to_string(i) + " has shape " + tensors[i].shape().str() +
                       " but tensor 0 has " + tensors[0].shape().str() + "; stack needs equal shapes");
    parts.push_back(tensors[i].unsqueeze(d));
  }
  return cat(parts, d);
}

static void check_index(const Tensor& index, const char* op) {
  detail::check_defined(index, op, "index");
  if (index.dtype() != DType::Int64)
    throw DTypeError(std::string(op) + ": index must be int64, got " + std::string(dtype_name(index.dtype())));
}

Tensor index_select(const Tensor& a, std::int64_t dim, const Tensor& index) {
  detail::check_defined(a, "index_select", "input");
  check_index(index, "index_select");
  if (index.ndim() > 1) throw ShapeError("index_select: index must be 0-D or 1-D, got " + index.shape().str());
  const int d = a.ndim() == 0 ? 0 : wrap_dim(dim, a.ndim(), "index_select");
  Tensor src = (a.ndim() == 0 ? a.reshape({1}) : a).contiguous();
  Tensor idx = index.reshape({index.numel()}).contiguous();
  const std::int64_t n = src.shape()[d];
  const std::int64_t* pi = idx.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < idx.numel(); ++i)
    if (pi[i] < 0 || pi[i] >= n)
      throw IndexError("index_select: index " + std::to_string(pi[i]) + " is out of range for dimension " +
                       std::to_string(d) + " of size " + std::to_string(n));
  Shape os = src.shape();
  os[d] = idx.numel();
  Tensor out = make_tensor(os, a.dtype(), a.device());
  cpu::index_select(src, d, idx, out);
  if (a.ndim() == 0) out = detail::make_view(out, Shape{}, Strides{}, 0);
  if (autograd::should_record({&a})) {
    Node* node = autograd::record(
        "IndexSelectBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          Shape src_shape = n.shape_a.ndim() == 0 ? Shape{1} : n.shape_a;
          Tensor r = zeros(src_shape, TensorOptions(g.dtype()));
          const Tensor& ix = n.saved_tensor(0);
          Shape gs = src_shape;
          gs[static_cast<int>(n.ints[0])] = ix.numel();
          cpu::index_add(r, static_cast<int>(n.ints[0]), ix, g.contiguous().reshape(gs));
          gi[0] = r.reshape(n.shape_a);
        },
        {&a}, out);
    node->shape_a = a.shape();
    node->ints[0] = d;
    node->save(0, idx);
  }
  return out;
}

Tensor gather(const Tensor& a, std::int64_t dim, const Tensor& index) {
  detail::check_defined(a, "gather", "input");
  check_index(index, "gather");
  const int d = wrap_dim(dim, a.ndim(), "gather");
  if (index.ndim() != a.ndim())
    throw ShapeError("gather: index " + index.shape().str() + " must have as many dimensions as the input " +
                     a.shape().str());
  for (int e = 0; e < a.ndim(); ++e)
    if (e != d && index.shape()[e] > a.shape()[e])
      throw ShapeError("gather: index " + index.shape().str() + " is larger than the input " + a.shape().str() +
                       " in dimension " + std::to_string(e));
  Tensor src = a.contiguous();
  Tensor idx = index.contiguous();
  const std::int64_t* pi = idx.data_ptr<std::int64_t>();
  const std::int64_t n = a.ndim() ? a.shape()[d] : 1;
  for (std::int64_t i = 0; i < idx.numel(); ++i)
    if (pi[i] < 0 || pi[i] >= n)
      throw IndexError("gather: index " + std::to_string(pi[i]) + " is out of range for dimension " +
                       std::to_string(d) + " of size " + std::to_string(n));
  Tensor out = make_tensor(index.shape(), a.dtype(), a.device());
  cpu::gather(src, d, idx, out);
  if (autograd::should_record({&a})) {
    Node* node = autograd::record(
        "GatherBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          Tensor r = zeros(n.shape_a, TensorOptions(g.dtype()));
          cpu::scatter_add(r, static_cast<int>(n.ints[0]), n.saved_tensor(0), g.contiguous());
          gi[0] = r;
        },
        {&a}, out);
    node->shape_a = a.shape();
    node->ints[0] = d;
    node->save(0, idx);
  }
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::check_defined(cond, "where", "condition");
  if (cond.dtype() != DType::Bool)
    throw DTypeError("where: condition must be bool, got " + std::string(dtype_name(cond.dtype())));
  Shape s = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  DType dt = detail::promote(a.dtype(), b.dtype());
  Tensor c = cond.expand(s).contiguous();
  Tensor x = detail::as_dtype(a, dt).detach().expand(s).contiguous();
  Tensor y = detail::as_dtype(b, dt).detach().expand(s).contiguous();
  Tensor out = make_tensor(s, dt, a.device());
  const bool* pc = c.data_ptr<bool>();
  const std::size_t is = itemsize(dt);
  const char* px = static_cast<const char*>(x.raw_data());
  const char* py = static_cast<const char*>(y.raw_data());
  char* po = static_cast<char*>(out.raw_data());
  for (std::int64_t i = 0; i < out.numel(); ++i) std::memcpy(po + i * is, (pc[i] ? px : py) + i * is, is);
  if (autograd::should_record({&a, &b})) {
    Node* n = autograd::record(
        "WhereBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          const Tensor& c = n.saved_tensor(0);
          Tensor z = zeros_like(g);
          if (n.needs_grad(0)) gi[0] = sum_to(where(c, g, z), n.shape_a);
          if (n.needs_grad(1)) gi[1] = sum_to(where(c, z, g), n.shape_b);
        },
        {&a, &b}, out);
    n->shape_a = a.shape();
    n->shape_b = b.shape();
    n->save(0, c);
  }
  return out;
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (!(a.shape() == b.shape())) return false;
  auto x = a.to(DType::Float64).contiguous().to_vector<double>();
  auto y = b.to(DType::Float64).contiguous().to_vector<double>();
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i])) return false;
    if (std::abs(x[i] - y[i]) > atol + rtol * std::abs(y[i])) return false;
  }
  return true;
}

bool equal(const Tensor& a, const Tensor& b) {
  if (!(a.shape() == b.shape()) || a.dtype() != b.dtype()) return false;
  Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) == 0;
}

}  // namespace krill
