// Matrix products and the fused linear layer.
#include "cpu/kernels.hpp"
#include "internal.hpp"

namespace krill {

using autograd::Node;
using detail::make_tensor;

namespace {

// A 2-D float32 operand as BLAS sees it: pointer, leading dimension and whether it is
// transposed. Contiguous and transposed-contiguous tensors need no copy.
struct GemmOperand {
  Tensor keep;  // holds a copy when one was needed
  const float* ptr;
  std::int64_t ld;
  bool trans;
};

GemmOperand gemm_operand(const Tensor& t) {
  const auto& st = t.strides();
  const auto& sh = t.shape();
  if ((st[1] == 1 || sh[1] == 1) && st[0] >= std::max<std::int64_t>(sh[1], 1))
    return {Tensor(), t.data_ptr<float>(), st[0], false};
  if ((st[0] == 1 || sh[0] == 1) && st[1] >= std::max<std::int64_t>(sh[0], 1))
    return {Tensor(), t.data_ptr<float>(), st[1], true};
  Tensor c = t.contiguous();
  return {c, c.data_ptr<float>(), std::max<std::int64_t>(sh[1], 1), false};
}

// out[m, n] = a[m, k] @ b[k, n] (+ beta * out)
void gemm_into(const Tensor& a, const Tensor& b, Tensor& out, float beta) {
  GemmOperand A = gemm_operand(a), B = gemm_operand(b);
  cpu::sgemm(A.trans, B.trans, a.shape()[0], b.shape()[1], a.shape()[1], 1.0f, A.ptr, A.ld, B.ptr, B.ld, beta,
             out.data_ptr<float>(), out.shape()[1]);
}

void check_float_matrix(const Tensor& t, const char* op, const char* arg) {
  detail::check_defined(t, op, arg);
  detail::check_cpu(t, op);
  if (t.dtype() != DType::Float32)
    throw DTypeError(std::string(op) + ": argument '" + arg + "' is " + std::string(dtype_name(t.dtype())) +
                     "; matrix products need float32");
}

Tensor mm_raw(const Tensor& a, const Tensor& b) {
  Tensor out = make_tensor({a.shape()[0], b.shape()[1]}, DType::Float32, a.device());
  gemm_into(a, b, out, 0.0f);
  return out;
}

}  // namespace

Tensor mm(const Tensor& a, const Tensor& b) {
  check_float_matrix(a, "mm", "input");
  check_float_matrix(b, "mm", "mat2");
  if (a.ndim() != 2 || b.ndim() != 2)
    throw ShapeError("mm: expects 2-D matrices, got " + a.shape().str() + " and " + b.shape().str());
  if (a.shape()[1] != b.shape()[0])
    throw ShapeError("mm: shapes " + a.shape().str() + " and " + b.shape().str() + " cannot be multiplied (" +
                     std::to_string(a.shape()[1]) + " != " + std::to_string(b.shape()[0]) + ")");
  Tensor out = mm_raw(a, b);
  if (autograd::should_record({&a, &b})) {
    Node* n = autograd::record(
        "MmBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          if (n.needs_grad(0)) gi[0] = mm_raw(g, n.saved_tensor(1).t());
          if (n.needs_grad(1)) gi[1] = mm_raw(n.saved_tensor(0).t(), g);
        },
        {&a, &b}, out);
    if (b.requires_grad()) n->save(0, a);
    if (a.requires_grad()) n->save(1, b);
  }
  return out;
}

static Tensor bmm(const Tensor& a, const Tensor& b) {
  // a [B, m, k], b [B, k, n], both contiguous
  const std::int64_t B = a.shape()[0], m = a.shape()[1], k = a.shape()[2], n = b.shape()[2];
  Tensor ac = a.contiguous(), bc = b.contiguous();
  Tensor out = make_tensor({B, m, n}, DType::Float32, a.device());
  for (std::int64_t i = 0; i < B; ++i)
    cpu::sgemm(false, false, m, n, k, 1.0f, ac.data_ptr<float>() + i * m * k, k, bc.data_ptr<float>() + i * k * n, n,
               0.0f, out.data_ptr<float>() + i * m * n, n);
  if (autograd::should_record({&a, &b})) {
    Node* node = autograd::record(
        "BmmBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          if (n.needs_grad(0)) gi[0] = bmm(g, n.saved_tensor(1).transpose(1, 2));
          if (n.needs_grad(1)) gi[1] = bmm(n.saved_tensor(0).transpose(1, 2), g);
        },
        {&a, &b}, out);
    node->save(0, a);
    node->save(1, b);
  }
  return out;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_float_matrix(a, "matmul", "input");
  check_float_matrix(b, "matmul", "other");
  const int da = a.ndim(), db = b.ndim();
  if (da == 0 || db == 0)
    throw ShapeError("matmul: both arguments need at least 1 dimension, got " + a.shape().str() + " and " +
                     b.shape().str());
  auto mismatch = [&](std::int64_t ka, std::int64_t kb) {
    if (ka != kb)
      throw ShapeError("matmul: shapes " + a.shape().str() + " and " + b.shape().str() + " cannot be multiplied (" +
                       std::to_string(ka) + " != " + std::to_string(kb) + ")");
  };
  if (da == 1 && db == 1) {
    mismatch(a.shape()[0], b.shape()[0]);
    return mm(a.unsqueeze(0), b.unsqueeze(1)).reshape(Shape{});
  }
  if (da == 2 && db == 1) {
    mismatch(a.shape()[1], b.shape()[0]);
    return mm(a, b.unsqueeze(1)).squeeze(-1);
  }
  if (da == 1 && db == 2) {
    mismatch(a.shape()[0], b.shape()[0]);
    return mm(a.unsqueeze(0), b).squeeze(0);
  }
  if (da == 2 && db == 2) return mm(a, b);
  if (da >= 3 && db <= 2) {
    // fold the batch into rows: [..., m, k] -> [N*m, k]
    Tensor bb = db == 1 ? b.unsqueeze(1) : b;
    mismatch(a.shape()[da - 1], bb.shape()[0]);
    Shape out_shape = a.shape();
    Tensor r = mm(a.reshape({-1, a.shape()[da - 1]}), bb);
    out_shape[da - 1] = bb.shape()[1];
    Tensor y = r.reshape(out_shape);
    return db == 1 ? y.squeeze(-1) : y;
  }
  // general batched: broadcast batch dims
  Tensor aa = da == 1 ? a.unsqueeze(0) : a;
  Tensor bb = db == 1 ? b.unsqueeze(1) : b;
  const int na = aa.ndim(), nb = bb.ndim();
  mismatch(aa.shape()[na - 1], bb.shape()[nb - 2]);
  Shape batch_a, batch_b;
  for (int i = 0; i < na - 2; ++i) batch_a.push_back(aa.shape()[i]);
  for (int i = 0; i < nb - 2; ++i) batch_b.push_back(bb.shape()[i]);
  Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  const std::int64_t m = aa.shape()[na - 2], k = aa.shape()[na - 1], n = bb.shape()[nb - 1];
  Shape ea = batch, eb = batch;
  ea.push_back(m);
  ea.push_back(k);
  eb.push_back(k);
  eb.push_back(n);
  const std::int64_t B = batch.numel();
  Tensor r = bmm(aa.expand(ea).reshape({B, m, k}), bb.expand(eb).reshape({B, k, n}));
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor y = r.reshape(out_shape);
  if (da == 1) y = y.squeeze(-2);
  if (db == 1) y = y.squeeze(-1);
  return y;
}

// ---- linear: y = x W^T + b, one node ----

static void linear_backward(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor& x2 = n.saved_tensor(0);  // [M, in]
  const Tensor& w = n.saved_tensor(1);   // [out, in]
  const std::int64_t out_f = w.shape()[0];
  Tensor g2 = g.is_contiguous() ? g.view({-1, out_f}) : g.contiguous().view({-1, out_f});
  if (n.needs_grad(0)) gi[0] = mm_raw(g2, w).view(n.shape_a);
  if (n.needs_grad(1)) gi[1] = mm_raw(g2.t(), x2);
  if (n.num_inputs > 2 && n.needs_grad(2)) {
    // bias gradient: column sums of g2
    Tensor gb = make_tensor({out_f}, DType::Float32, g.device());
    const float* pg = g2.data_ptr<float>();
    float* pb = gb.data_ptr<float>();
    const std::int64_t rows = g2.shape()[0];
    for (std::int64_t j = 0; j < out_f; ++j) pb[j] = 0.f;
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < out_f; ++j) pb[j] += pg[r * out_f + j];
    gi[2] = std::move(gb);
  }
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_float_matrix(x, "linear", "input");
  check_float_matrix(weight, "linear", "weight");
  if (weight.ndim() != 2) throw ShapeError("linear: weight must be 2-D [out, in], got " + weight.shape().str());
  const std::int64_t in_f = weight.shape()[1], out_f = weight.shape()[0];
  if (x.ndim() == 0 || x.shape()[x.ndim() - 1] != in_f)
    throw ShapeError("linear: input of shape " + x.shape().str() + " does not match weight " + weight.shape().str() +
                     " (expected the last dimension to be " + std::to_string(in_f) + ")");
  if (bias.defined()) {
    check_float_matrix(bias, "linear", "bias");
    if (bias.ndim() != 1 || bias.shape()[0] != out_f)
      throw ShapeError("linear: bias of shape " + bias.shape().str() + " does not match weight " +
                       weight.shape().str() + " (expected [" + std::to_string(out_f) + "])");
  }
  Tensor x2 = x.ndim() == 2 ? x : x.reshape({-1, in_f});
  const std::int64_t rows = x2.shape()[0];
  Shape out_shape = x.shape();
  out_shape[out_shape.ndim() - 1] = out_f;
  Tensor out = make_tensor(out_shape, DType::Float32, x.device());
  float* po = out.data_ptr<float>();
  float beta = 0.f;
  if (bias.defined()) {
    Tensor bc = bias.contiguous();
    const float* pb = bc.data_ptr<float>();
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < out_f; ++j) po[r * out_f + j] = pb[j];
    beta = 1.f;
  }
  GemmOperand X = gemm_operand(x2), W = gemm_operand(weight);
  // x2 [rows, in] @ W^T [in, out]
  cpu::sgemm(X.trans, !W.trans, rows, out_f, in_f, 1.0f, X.ptr, X.ld, W.ptr, W.ld, beta, po, out_f);
  if (bias.defined() ? autograd::should_record({&x, &weight, &bias}) : autograd::should_record({&x, &weight})) {
    Node* n = bias.defined() ? autograd::record("AddmmBackward0", linear_backward, {&x, &weight, &bias}, out)
                             : autograd::record("MmBackward0", linear_backward, {&x, &weight}, out);
    n->shape_a = x.shape();
    n->save(0, x2);
    n->save(1, weight);
  }
  return out;
}

}  // namespace krill
