// Elementwise ops with autograd: arithmetic (broadcasting), scalar forms, unary maths,
// comparisons.
#include <cmath>

#include "cpu/kernels.hpp"
#include "internal.hpp"

namespace krill {

using autograd::Node;
using cpu::BinaryOp;
using cpu::UnaryOp;
using detail::make_tensor;

namespace {

// Validates a binary op's operands and returns the common dtype.
DType prepare_binary(const Tensor& a, const Tensor& b, const char* op, Shape* out_shape) {
  detail::check_defined(a, op, "input");
  detail::check_defined(b, op, "other");
  detail::check_same_device(a, b, op);
  detail::check_cpu(a, op);
  *out_shape = broadcast_shapes(a.shape(), b.shape(), op);
  return detail::promote(a.dtype(), b.dtype());
}

Tensor run_binary(BinaryOp k, const Tensor& a0, const Tensor& b0, const char* op, double alpha = 1.0) {
  Shape shape;
  DType dt = prepare_binary(a0, b0, op, &shape);
  Tensor sa, sb;
  const Tensor& a = detail::as_dtype(a0, dt, sa);
  const Tensor& b = detail::as_dtype(b0, dt, sb);
  Tensor out = make_tensor(shape, dt, a.device());
  cpu::binary(k, a, b, out, alpha);
  return out;
}

Tensor run_scalar(BinaryOp k, const Tensor& a0, double s, bool reversed, const char* op) {
  detail::check_defined(a0, op, "input");
  detail::check_cpu(a0, op);
  // Integer tensors with a fractional scalar (or true division) compute in float32, like PyTorch.
  bool to_float = !is_floating(a0.dtype()) && (k == BinaryOp::Div || s != std::floor(s) ||
                                               (k == BinaryOp::Pow && s < 0));
  Tensor a = to_float ? a0.to(DType::Float32) : a0;
  Tensor out = make_tensor(a.shape(), a.dtype(), a.device());
  cpu::binary_scalar(k, a, s, out, reversed);
  return out;
}

Tensor run_unary(UnaryOp k, const Tensor& a, const char* op) {
  detail::check_defined(a, op, "input");
  detail::check_cpu(a, op);
  Tensor out = make_tensor(a.shape(), a.dtype(), a.device());
  cpu::unary(k, a, out);
  return out;
}

void save_shapes(Node* n, const Tensor& a, const Tensor& b) {
  n->shape_a = a.shape();
  n->shape_b = b.shape();
}

}  // namespace

// ---- binary ----

Tensor add(const Tensor& a, const Tensor& b, double alpha) {
  Tensor out = run_binary(BinaryOp::Add, a, b, "add", alpha);
  if (autograd::should_record({&a, &b})) {
    Node* n = autograd::record(
        "AddBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          if (n.needs_grad(0)) gi[0] = sum_to(g, n.shape_a);
          if (n.needs_grad(1)) gi[1] = n.scalar[0] == 1.0 ? sum_to(g, n.shape_b) : sum_to(mul(g, n.scalar[0]), n.shape_b);
        },
        {&a, &b}, out);
    save_shapes(n, a, b);
    n->scalar[0] = alpha;
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b, double alpha) {
  Tensor out = run_binary(BinaryOp::Sub, a, b, "sub", alpha);
  if (autograd::should_record({&a, &b})) {
    Node* n = autograd::record(
        "SubBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          if (n.needs_grad(0)) gi[0] = sum_to(g, n.shape_a);
          if (n.needs_grad(1)) gi[1] = sum_to(mul(g, -n.scalar[0]), n.shape_b);
        },
        {&a, &b}, out);
    save_shapes(n, a, b);
    n->scalar[0] = alpha;
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = run_binary(BinaryOp::Mul, a, b, "mul");
  if (autograd::should_record({&a, &b})) {
    Node* n = autograd::record(
        "MulBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          if (n.needs_grad(0)) gi[0] = sum_to(mul(g, n.saved_tensor(1)), n.shape_a);
          if (n.needs_grad(1)) gi[1] = sum_to(mul(g, n.saved_tensor(0)), n.shape_b);
        },
        {&a, &b}, out);
    save_shapes(n, a, b);
    if (b.requires_grad()) n->save(0, a);
    if (a.requires_grad()) n->save(1, b);
  }
  return out;
}

Tensor div(const Tensor& a0, const Tensor& b0) {
  // true division: integer operands compute in float32
  const Tensor a = is_floating(a0.dtype()) || !a0.defined() ? a0 : a0.to(DType::Float32);
  const Tensor b = is_floating(b0.dtype()) || !b0.defined() ? b0 : b0.to(DType::Float32);
  Tensor out = run_binary(BinaryOp::Div, a, b, "div");
  if (autograd::should_record({&a, &b})) {
    Node* n = autograd::record(
        "DivBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          const Tensor& bb = n.saved_tensor(1);
          if (n.needs_grad(0)) gi[0] = sum_to(div(g, bb), n.shape_a);
          if (n.needs_grad(1)) gi[1] = sum_to(neg(div(mul(g, n.saved_tensor(0)), mul(bb, bb))), n.shape_b);
        },
        {&a, &b}, out);
    save_shapes(n, a, b);
    if (b.requires_grad()) n->save(0, a);
    n->save(1, b);
  }
  return out;
}

Tensor pow(const Tensor& a, const Tensor& e) {
  Tensor out = run_binary(BinaryOp::Pow, a, e, "pow");
  if (autograd::should_record({&a, &e})) {
    Node* n = autograd::record(
        "PowBackward1",
        [](Node& n, const Tensor& g, Tensor* gi) {
          const Tensor& x = n.saved_tensor(0);
          const Tensor& y = n.saved_tensor(1);
          if (n.needs_grad(0)) gi[0] = sum_to(mul(g, mul(y, pow(x, sub(y, 1.0)))), n.shape_a);
          if (n.needs_grad(1)) {
            // PyTorch: zero where x == 0 and y >= 0 (avoids 0 * log(0) = nan)
            Tensor r = mul(n.saved_tensor(2), log(x));
            Tensor cond = eq(x, zeros_like(x));
            Tensor mask = mul(cond.to(x.dtype()), ge(y, zeros_like(y)).to(x.dtype()));
            r = where(eq(mask, ones_like(mask)), zeros_like(r), r);
            gi[1] = sum_to(mul(g, r), n.shape_b);
          }
        },
        {&a, &e}, out);
    save_shapes(n, a, e);
    n->save(0, a);
    n->save(1, e);
    n->save(2, out.detach());
  }
  return out;
}

static Tensor max_min_binary(const Tensor& a, const Tensor& b, bool is_max) {
  Tensor out = run_binary(is_max ? BinaryOp::Maximum : BinaryOp::Minimum, a, b, is_max ? "maximum" : "minimum");
  if (autograd::should_record({&a, &b})) {
    Node* n = autograd::record(
        is_max ? "MaximumBackward0" : "MinimumBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          const Tensor& x = n.saved_tensor(0);
          const Tensor& y = n.saved_tensor(1);
          bool mx = n.ints[0] != 0;
          Tensor half = mul(g, 0.5);
          Tensor tie = eq(x, y);
          Tensor zero = zeros_like(g);
          if (n.needs_grad(0)) gi[0] = sum_to(where(tie, half, where(mx ? gt(x, y) : lt(x, y), g, zero)), n.shape_a);
          if (n.needs_grad(1)) gi[1] = sum_to(where(tie, half, where(mx ? lt(x, y) : gt(x, y), g, zero)), n.shape_b);
        },
        {&a, &b}, out);
    save_shapes(n, a, b);
    n->save(0, a);
    n->save(1, b);
    n->ints[0] = is_max;
  }
  return out;
}
Tensor maximum(const Tensor& a, const Tensor& b) { return max_min_binary(a, b, true); }
Tensor minimum(const Tensor& a, const Tensor& b) { return max_min_binary(a, b, false); }

// ---- scalar forms ----

Tensor add(const Tensor& a, double s) {
  Tensor out = run_scalar(BinaryOp::Add, a, s, false, "add");
  if (autograd::should_record({&a}))
    autograd::record("AddBackward1", [](Node&, const Tensor& g, Tensor* gi) { gi[0] = g; }, {&a}, out);
  return out;
}

Tensor sub(const Tensor& a, double s) { return add(a, -s); }

Tensor rsub(const Tensor& a, double s) {
  Tensor out = run_scalar(BinaryOp::Sub, a, s, true, "rsub");
  if (autograd::should_record({&a}))
    autograd::record("RsubBackward1", [](Node&, const Tensor& g, Tensor* gi) { gi[0] = neg(g); }, {&a}, out);
  return out;
}

Tensor mul(const Tensor& a, double s) {
  Tensor out = run_scalar(BinaryOp::Mul, a, s, false, "mul");
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        "MulBackward1", [](Node& n, const Tensor& g, Tensor* gi) { gi[0] = mul(g, n.scalar[0]); }, {&a}, out);
    n->scalar[0] = s;
  }
  return out;
}

Tensor div(const Tensor& a, double s) {
  Tensor out = run_scalar(BinaryOp::Div, a, s, false, "div");
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        "DivBackward1", [](Node& n, const Tensor& g, Tensor* gi) { gi[0] = div(g, n.scalar[0]); }, {&a}, out);
    n->scalar[0] = s;
  }
  return out;
}

Tensor rdiv(const Tensor& a, double s) {
  Tensor out = run_scalar(BinaryOp::Div, a, s, true, "rdiv");
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        "ReciprocalBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          // d(s/x)/dx = -s/x^2 = -out/x
          gi[0] = neg(div(mul(g, n.saved_tensor(1)), n.saved_tensor(0)));
        },
        {&a}, out);
    n->save(0, a);
    n->save(1, out.detach());
  }
  return out;
}

Tensor pow(const Tensor& a, double e) {
  Tensor out = run_scalar(BinaryOp::Pow, a, e, false, "pow");
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        "PowBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          const double e = n.scalar[0];
          if (e == 0.0) gi[0] = zeros_like(g);
          else gi[0] = mul(g, mul(pow(n.saved_tensor(0), e - 1.0), e));
        },
        {&a}, out);
    n->save(0, a);
    n->scalar[0] = e;
  }
  return out;
}

// ---- comparisons ----

static Tensor compare(BinaryOp k, const Tensor& a, const Tensor& b, const char* op) {
  Shape shape;
  DType dt = prepare_binary(a, b, op, &shape);
  Tensor out = make_tensor(shape, DType::Bool, a.device());
  Tensor sa, sb;
  cpu::binary(k, detail::as_dtype(a, dt, sa), detail::as_dtype(b, dt, sb), out);
  return out;
}
Tensor eq(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Eq, a, b, "eq"); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Ne, a, b, "ne"); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Lt, a, b, "lt"); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Le, a, b, "le"); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Gt, a, b, "gt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(BinaryOp::Ge, a, b, "ge"); }

// ---- unary ----

Tensor neg(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Neg, a, "neg");
  if (autograd::should_record({&a}))
    autograd::record("NegBackward0", [](Node&, const Tensor& g, Tensor* gi) { gi[0] = neg(g); }, {&a}, out);
  return out;
}

Tensor abs(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Abs, a, "abs");
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        "AbsBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          const Tensor& x = n.saved_tensor(0);
          Tensor sign = sub(gt(x, zeros_like(x)).to(x.dtype()), lt(x, zeros_like(x)).to(x.dtype()));
          gi[0] = mul(g, sign);
        },
        {&a}, out);
    n->save(0, a);
  }
  return out;
}

Tensor exp(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Exp, a, "exp");
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        "ExpBackward0", [](Node& n, const Tensor& g, Tensor* gi) { gi[0] = mul(g, n.saved_tensor(0)); }, {&a}, out);
    n->save(0, out.detach());
  }
  return out;
}

Tensor log(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Log, a, "log");
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        "LogBackward0", [](Node& n, const Tensor& g, Tensor* gi) { gi[0] = div(g, n.saved_tensor(0)); }, {&a}, out);
    n->save(0, a);
  }
  return out;
}

Tensor sqrt(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Sqrt, a, "sqrt");
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        "SqrtBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) { gi[0] = div(g, mul(n.saved_tensor(0), 2.0)); }, {&a}, out);
    n->save(0, out.detach());
  }
  return out;
}

Tensor detail::relu_grad(const Tensor& g, const Tensor& y) {
  if (g.dtype() == DType::Float32 && y.dtype() == DType::Float32 && g.is_contiguous() && y.is_contiguous() &&
      g.shape() == y.shape()) {
    Tensor r = make_tensor(g.shape(), DType::Float32, g.device());
    const float* pg = g.data_ptr<float>();
    const float* py = y.data_ptr<float>();
    float* pr = r.data_ptr<float>();
    const std::int64_t len = g.numel();
    for (std::int64_t i = 0; i < len; ++i) pr[i] = py[i] > 0.f ? pg[i] : 0.f;
    return r;
  }
  Tensor mask = make_tensor(y.shape(), y.dtype(), y.device());
  cpu::unary(UnaryOp::ReluGradMask, y, mask);
  return mul(g, mask);
}

static void relu_backward(Node& n, const Tensor& g, Tensor* gi) { gi[0] = detail::relu_grad(g, n.saved_tensor(0)); }

Tensor relu(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Relu, a, "relu");
  if (autograd::should_record({&a})) {
    Node* n = autograd::record("ReluBackward0", relu_backward, {&a}, out);
    n->save(0, out.detach());
  }
  return out;
}

Tensor sigmoid(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Sigmoid, a, "sigmoid");
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        "SigmoidBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          const Tensor& y = n.saved_tensor(0);
          gi[0] = mul(g, mul(y, rsub(y, 1.0)));
        },
        {&a}, out);
    n->save(0, out.detach());
  }
  return out;
}

Tensor tanh(const Tensor& a) {
  Tensor out = run_unary(UnaryOp::Tanh, a, "tanh");
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        "TanhBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          const Tensor& y = n.saved_tensor(0);
          gi[0] = mul(g, rsub(mul(y, y), 1.0));
        },
        {&a}, out);
    n->save(0, out.detach());
  }
  return out;
}

Tensor clamp(const Tensor& a, double lo, double hi) {
  detail::check_defined(a, "clamp", "input");
  detail::check_cpu(a, "clamp");
  if (lo > hi) throw ValueError("clamp: min " + std::to_string(lo) + " is greater than max " + std::to_string(hi));
  Tensor out = make_tensor(a.shape(), a.dtype(), a.device());
  cpu::clamp(a, lo, hi, out);
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        "ClampBackward1",
        [](Node& n, const Tensor& g, Tensor* gi) {
          const Tensor& x = n.saved_tensor(0);
          Tensor inside = mul(ge(x, full_like(x, n.scalar[0])).to(g.dtype()), le(x, full_like(x, n.scalar[1])).to(g.dtype()));
          gi[0] = mul(g, inside);
        },
        {&a}, out);
    n->save(0, a);
    n->scalar[0] = lo;
    n->scalar[1] = hi;
  }
  return out;
}

}  // namespace krill
