// View ops: new geometry over the same storage, with autograd.
#include "cpu/kernels.hpp"
#include "internal.hpp"

namespace krill {

using autograd::Node;
using detail::make_view;

namespace {

// Infers a -1 entry and checks numel.
Shape infer_shape(const Shape& requested, std::int64_t numel, const char* op, const Shape& from) {
  Shape s = requested;
  int infer = -1;
  std::int64_t known = 1;
  for (int d = 0; d < s.ndim(); ++d) {
    if (s[d] == -1) {
      if (infer >= 0) throw ShapeError(std::string(op) + ": only one dimension can be -1 in " + requested.str());
      infer = d;
    } else if (s[d] < 0) {
      throw ShapeError(std::string(op) + ": invalid size " + std::to_string(s[d]) + " in " + requested.str());
    } else {
      known *= s[d];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      throw ShapeError(std::string(op) + ": shape " + requested.str() + " is invalid for a tensor of shape " +
                       from.str() + " (" + std::to_string(numel) + " elements)");
    s[infer] = numel / known;
  } else if (known != numel) {
    throw ShapeError(std::string(op) + ": shape " + requested.str() + " is invalid for a tensor of shape " + from.str() +
                     " (" + std::to_string(numel) + " elements)");
  }
  return s;
}

// Strides for viewing `t` as `shape` without copying, if possible (PyTorch's computeStride).
bool view_strides(const Tensor& t, const Shape& shape, Strides* out) {
  if (t.is_contiguous()) {
    *out = contiguous_strides(shape);
    return true;
  }
  const Shape& old = t.shape();
  const Strides& os = t.strides();
  Strides ns;
  ns.resize(shape.ndim());
  if (old.numel() == 0) {
    *out = contiguous_strides(shape);
    return true;
  }
  int view_d = shape.ndim() - 1;
  std::int64_t chunk_base_stride = os.ndim() ? os[os.ndim() - 1] : 1;
  std::int64_t tensor_numel = 1, view_numel = 1;
  for (int tensor_d = old.ndim() - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= old[tensor_d];
    if (tensor_d == 0 || (old[tensor_d - 1] != 1 && os[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        ns[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (tensor_d > 0) {
        chunk_base_stride = os[tensor_d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return false;
  *out = ns;
  return true;
}

void reshape_backward(Node& n, const Tensor& g, Tensor* gi) { gi[0] = g.reshape(n.shape_a); }

Tensor record_view(Tensor out, const Tensor& in, const char* name, autograd::BackwardFn fn) {
  if (autograd::should_record({&in})) {
    Node* n = autograd::record(name, fn, {&in}, out);
    n->shape_a = in.shape();
  }
  return out;
}

}  // namespace

Tensor Tensor::view(const Shape& requested) const {
  detail::check_defined(*this, "view", "self");
  Shape s = infer_shape(requested, numel(), "view", shape());
  Strides st;
  if (!view_strides(*this, s, &st))
    throw ShapeError("view: tensor of shape " + shape().str() + " with strides " + strides().str() +
                     " cannot be viewed as " + s.str() + " without a copy; use reshape() (or .contiguous().view())");
  return record_view(make_view(*this, s, st, storage_offset()), *this, "ViewBackward0", reshape_backward);
}

Tensor Tensor::reshape(const Shape& requested) const {
  detail::check_defined(*this, "reshape", "self");
  Shape s = infer_shape(requested, numel(), "reshape", shape());
  Strides st;
  if (view_strides(*this, s, &st))
    return record_view(make_view(*this, s, st, storage_offset()), *this, "ViewBackward0", reshape_backward);
  return contiguous().view(s);
}

Tensor Tensor::transpose(std::int64_t d0, std::int64_t d1) const {
  detail::check_defined(*this, "transpose", "self");
  int a = wrap_dim(d0, ndim(), "transpose"), b = wrap_dim(d1, ndim(), "transpose");
  if (ndim() == 0) return *this;
  Shape s = shape();
  Strides st = strides();
  std::swap(s[a], s[b]);
  std::swap(st[a], st[b]);
  Tensor out = make_view(*this, s, st, storage_offset());
  if (autograd::should_record({this})) {
    Node* n = autograd::record(
        "TransposeBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) { gi[0] = g.transpose(n.ints[0], n.ints[1]); }, {this}, out);
    n->ints[0] = a;
    n->ints[1] = b;
  }
  return out;
}

Tensor Tensor::t() const {
  if (ndim() > 2) throw ShapeError("t: expects a tensor with <= 2 dimensions, got " + shape().str() + "; use transpose");
  return ndim() < 2 ? *this : transpose(0, 1);
}

Tensor Tensor::permute(const Shape& dims) const {
  detail::check_defined(*this, "permute", "self");
  if (dims.ndim() != ndim())
    throw ShapeError("permute: " + dims.str() + " has " + std::to_string(dims.ndim()) + " entries for a tensor with " +
                     std::to_string(ndim()) + " dimensions");
  Shape s, st, perm;
  bool seen[kMaxDims] = {};
  for (int i = 0; i < ndim(); ++i) {
    int d = wrap_dim(dims[i], ndim(), "permute");
    if (seen[d]) throw ShapeError("permute: dimension " + std::to_string(d) + " repeats in " + dims.str());
    seen[d] = true;
    s.push_back(shape()[d]);
    st.push_back(strides()[d]);
    perm.push_back(d);
  }
  Tensor out = make_view(*this, s, st, storage_offset());
  if (autograd::should_record({this})) {
    Node* n = autograd::record(
        "PermuteBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          Shape inv;
          inv.resize(n.shape_b.ndim());
          for (int i = 0; i < n.shape_b.ndim(); ++i) inv[static_cast<int>(n.shape_b[i])] = i;
          gi[0] = g.permute(inv);
        },
        {this}, out);
    n->shape_b = perm;
  }
  return out;
}

Tensor Tensor::slice(std::int64_t dim, std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                     std::int64_t step) const {
  detail::check_defined(*this, "slice", "self");
  if (ndim() == 0) throw IndexError("slice: cannot slice a 0-d tensor");
  int d = wrap_dim(dim, ndim(), "slice");
  if (step <= 0) throw ValueError("slice: step must be positive, got " + std::to_string(step));
  const std::int64_t n = shape()[d];
  std::int64_t b = start.value_or(0), e = stop.value_or(n);
  if (b < 0) b += n;
  if (e < 0) e += n;
  b = std::clamp<std::int64_t>(b, 0, n);
  e = std::clamp<std::int64_t>(e, b, n);
  Shape s = shape();
  Strides st = strides();
  s[d] = (e - b + step - 1) / step;
  st[d] *= step;
  Tensor out = make_view(*this, s, st, storage_offset() + b * strides()[d]);
  if (autograd::should_record({this})) {
    Node* node = autograd::record(
        "SliceBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          Tensor r = zeros(n.shape_a, TensorOptions(g.dtype()));
          r.slice(n.ints[0], n.ints[1], n.ints[2], n.ints[3]).copy_(g);
          gi[0] = r;
        },
        {this}, out);
    node->shape_a = shape();
    node->ints[0] = d;
    node->ints[1] = b;
    node->ints[2] = e;
    node->ints[3] = step;
  }
  return out;
}

Tensor Tensor::narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const {
  int d = wrap_dim(dim, ndim(), "narrow");
  if (start < 0) start += shape()[d];
  if (start < 0 || length < 0 || start + length > shape()[d])
    throw IndexError("narrow: start " + std::to_string(start) + " + length " + std::to_string(length) +
                     " exceeds dimension " + std::to_string(d) + " of size " + std::to_string(shape()[d]));
  return slice(d, start, start + length, 1);
}

Tensor Tensor::select(std::int64_t dim, std::int64_t index) const {
  detail::check_defined(*this, "select", "self");
  if (ndim() == 0) throw IndexError("select: cannot index a 0-d tensor");
  int d = wrap_dim(dim, ndim(), "select");
  const std::int64_t n = shape()[d];
  if (index < -n || index >= n)
    throw IndexError("select: index " + std::to_string(index) + " is out of bounds for dimension " + std::to_string(d) +
                     " with size " + std::to_string(n));
  if (index < 0) index += n;
  Shape s = shape();
  Strides st = strides();
  const std::int64_t off = storage_offset() + index * st[d];
  s.erase(d);
  st.erase(d);
  Tensor out = make_view(*this, s, st, off);
  if (autograd::should_record({this})) {
    Node* node = autograd::record(
        "SelectBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          Tensor r = zeros(n.shape_a, TensorOptions(g.dtype()));
          r.select(n.ints[0], n.ints[1]).copy_(g);
          gi[0] = r;
        },
        {this}, out);
    node->shape_a = shape();
    node->ints[0] = d;
    node->ints[1] = index;
  }
  return out;
}

Tensor Tensor::expand(const Shape& target) const {
  detail::check_defined(*this, "expand", "self");
  if (target.ndim() < ndim())
    throw ShapeError("expand: the target " + target.str() + " has fewer dimensions than the tensor " + shape().str());
  Shape s;
  Strides st;
  s.resize(target.ndim());
  st.resize(target.ndim());
  const int off = target.ndim() - ndim();
  for (int d = 0; d < target.ndim(); ++d) {
    const int td = d - off;
    std::int64_t want = target[d];
    if (td < 0) {
      if (want < 0) throw ShapeError("expand: -1 is not allowed for a new leading dimension in " + target.str());
      s[d] = want;
      st[d] = 0;
      continue;
    }
    const std::int64_t have = shape()[td];
    if (want == -1) want = have;
    if (have == want) {
      s[d] = have;
      st[d] = strides()[td];
    } else if (have == 1) {
      s[d] = want;
      st[d] = 0;
    } else {
      throw ShapeError("expand: the tensor of shape " + shape().str() + " cannot be expanded to " + target.str() +
                       " (dimension " + std::to_string(d) + " has size " + std::to_string(have) + ", not 1)");
    }
  }
  return record_view(make_view(*this, s, st, storage_offset()), *this, "ExpandBackward0",
                     [](Node& n, const Tensor& g, Tensor* gi) { gi[0] = sum_to(g, n.shape_a); });
}

Tensor Tensor::unsqueeze(std::int64_t dim) const {
  int d = wrap_dim(dim, ndim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(d, 1);
  return reshape(s);
}

Tensor Tensor::squeeze(std::int64_t dim) const {
  if (ndim() == 0) return *this;
  int d = wrap_dim(dim, ndim(), "squeeze");
  if (shape()[d] != 1) return *this;
  Shape s = shape();
  s.erase(d);
  return reshape(s);
}

Tensor Tensor::squeeze() const {
  Shape s;
  for (auto v : shape())
    if (v != 1) s.push_back(v);
  return reshape(s);
}

Tensor Tensor::flatten(std::int64_t start_dim, std::int64_t end_dim) const {
  if (ndim() == 0) return reshape({1});
  int a = wrap_dim(start_dim, ndim(), "flatten"), b = wrap_dim(end_dim, ndim(), "flatten");
  if (a > b) throw ValueError("flatten: start_dim " + std::to_string(a) + " comes after end_dim " + std::to_string(b));
  Shape s;
  for (int d = 0; d < a; ++d) s.push_back(shape()[d]);
  std::int64_t m = 1;
  for (int d = a; d <= b; ++d) m *= shape()[d];
  s.push_back(m);
  for (int d = b + 1; d < ndim(); ++d) s.push_back(shape()[d]);
  return reshape(s);
}

Tensor Tensor::clone() const {
  detail::check_defined(*this, "clone", "self");
  Tensor out = detail::make_tensor(shape(), dtype(), device());
  cpu::copy(*this, out);
  if (autograd::should_record({this}))
    autograd::record("CloneBackward0", [](Node&, const Tensor& g, Tensor* gi) { gi[0] = g; }, {this}, out);
  return out;
}

Tensor reshape(const Tensor& a, const Shape& shape) { return a.reshape(shape); }
Tensor transpose(const Tensor& a, std::int64_t d0, std::int64_t d1) { return a.transpose(d0, d1); }
Tensor permute(const Tensor& a, const Shape& dims) { return a.permute(dims); }
Tensor flatten(const Tensor& a, std::int64_t s, std::int64_t e) { return a.flatten(s, e); }

}  // namespace krill
