// Softmax family, losses and dropout.
#include <cmath>

#include "cpu/kernels.hpp"
#include "internal.hpp"
#include "krill/tensor/generator.hpp"

namespace krill {

using autograd::Node;
using detail::make_tensor;

static Tensor softmax_impl(const Tensor& a, std::int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  detail::check_defined(a, op, "input");
  detail::check_cpu(a, op);
  if (a.dtype() != DType::Float32)
    throw DTypeError(std::string(op) + ": needs a float32 tensor, got " + std::string(dtype_name(a.dtype())));
  const int d = a.ndim() == 0 ? 0 : wrap_dim(dim, a.ndim(), op);
  Tensor src = a.contiguous();
  Tensor out = make_tensor(a.shape(), DType::Float32, a.device());
  cpu::softmax(src, d, log, out);
  if (autograd::should_record({&a})) {
    Node* n = autograd::record(
        log ? "LogSoftmaxBackward0" : "SoftmaxBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          const Tensor& y = n.saved_tensor(0);
          Tensor r = make_tensor(y.shape(), DType::Float32, y.device());
          cpu::softmax_backward(g.contiguous(), y, static_cast<int>(n.ints[0]), n.ints[1] != 0, r);
          gi[0] = std::move(r);
        },
        {&a}, out);
    n->save(0, out.detach());
    n->ints[0] = d;
    n->ints[1] = log;
  }
  return out;
}

Tensor softmax(const Tensor& a, std::int64_t dim) { return softmax_impl(a, dim, false); }
Tensor log_softmax(const Tensor& a, std::int64_t dim) { return softmax_impl(a, dim, true); }

// ---- nll_loss ----

namespace {

void check_targets(const Tensor& input, const Tensor& target, const char* op) {
  detail::check_defined(input, op, "input");
  detail::check_defined(target, op, "target");
  if (input.dtype() != DType::Float32)
    throw DTypeError(std::string(op) + ": input must be float32, got " + std::string(dtype_name(input.dtype())));
  if (target.dtype() != DType::Int64)
    throw DTypeError(std::string(op) + ": target must hold int64 class indices, got " +
                     std::string(dtype_name(target.dtype())) + " (convert with .to(krill::kInt64))");
  if (input.ndim() == 2) {
    if (target.ndim() != 1 || target.shape()[0] != input.shape()[0])
      throw ShapeError(std::string(op) + ": input " + input.shape().str() + " needs a target of shape [" +
                       std::to_string(input.shape()[0]) + "], got " + target.shape().str());
  } else if (input.ndim() == 1) {
    if (target.ndim() != 0)
      throw ShapeError(std::string(op) + ": a 1-D input " + input.shape().str() + " needs a 0-d target, got " +
                       target.shape().str());
  } else {
    throw ShapeError(std::string(op) + ": input must be [N, C] or [C], got " + input.shape().str());
  }
}

}  // namespace

Tensor nll_loss(const Tensor& input, const Tensor& target, Reduction reduction, std::int64_t ignore_index) {
  check_targets(input, target, "nll_loss");
  Tensor x = input.ndim() == 1 ? input.unsqueeze(0) : input;
  Tensor t = target.ndim() == 0 ? target.reshape({1}) : target;
  x = x.contiguous();
  t = t.contiguous();
  const std::int64_t N = x.shape()[0], C = x.shape()[1];
  const float* px = x.data_ptr<float>();
  const std::int64_t* pt = t.data_ptr<std::int64_t>();
  std::int64_t valid = 0;
  Tensor out;
  if (reduction == Reduction::None) {
    out = make_tensor(target.shape(), DType::Float32, input.device());
    float* po = out.data_ptr<float>();
    for (std::int64_t i = 0; i < N; ++i) {
      const std::int64_t c = pt[i];
      if (c == ignore_index) {
        po[i] = 0.f;
        continue;
      }
      if (c < 0 || c >= C)
        throw IndexError("nll_loss: target " + std::to_string(c) + " at position " + std::to_string(i) +
                         " is out of range for " + std::to_string(C) + " classes");
      po[i] = -px[i * C + c];
    }
  } else {
    float acc = 0.f;
    for (std::int64_t i = 0; i < N; ++i) {
      const std::int64_t c = pt[i];
      if (c == ignore_index) continue;
      if (c < 0 || c >= C)
        throw IndexError("nll_loss: target " + std::to_string(c) + " at position " + std::to_string(i) +
                         " is out of range for " + std::to_string(C) + " classes");
      acc -= px[i * C + c];
      ++valid;
    }
    out = make_tensor(Shape{}, DType::Float32, input.device());
    // mean over zero valid targets is nan, as in PyTorch
    *out.data_ptr<float>() = reduction == Reduction::Mean ? acc / static_cast<float>(valid) : acc;
  }
  if (autograd::should_record({&input})) {
    Node* n = autograd::record(
        "NllLossBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          const Tensor& tt = n.saved_tensor(0);
          Tensor r = zeros(n.shape_a, TensorOptions(DType::Float32));
          const std::int64_t N = tt.numel();
          const std::int64_t C = n.shape_a.ndim() == 2 ? n.shape_a[1] : n.shape_a[0];
          const std::int64_t* pt = tt.data_ptr<std::int64_t>();
          float* pr = r.data_ptr<float>();
          const auto red = static_cast<Reduction>(n.ints[0]);
          Tensor gc = g.contiguous();
          const float* pg = gc.data_ptr<float>();
          const float scale = red == Reduction::Mean ? 1.f / static_cast<float>(n.scalar[0]) : 1.f;
          for (std::int64_t i = 0; i < N; ++i) {
            if (pt[i] == n.ints[1]) continue;
            const float gv = red == Reduction::None ? pg[i] : pg[0];
            pr[i * C + pt[i]] = -gv * scale;
          }
          gi[0] = std::move(r);
        },
        {&input}, out);
    n->shape_a = input.shape();
    n->save(0, t);
    n->ints[0] = static_cast<std::int64_t>(reduction);
    n->ints[1] = ignore_index;
    n->scalar[0] = static_cast<double>(valid);
  }
  return out;
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction, std::int64_t ignore_index) {
  detail::check_defined(input, "cross_entropy", "input");
  return nll_loss(log_softmax(input, input.ndim() == 1 ? 0 : 1), target, reduction, ignore_index);
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  detail::check_defined(input, "mse_loss", "input");
  detail::check_defined(target, "mse_loss", "target");
  if (!(input.shape() == target.shape()))
    throw ShapeError("mse_loss: input " + input.shape().str() + " and target " + target.shape().str() +
                     " must have the same shape");
  Tensor d = sub(input, target);
  Tensor sq = mul(d, d);
  if (reduction == Reduction::None) return sq;
  return reduction == Reduction::Mean ? mean(sq) : sum(sq);
}

Tensor dropout(const Tensor& a, double p, bool train, Generator* gen) {
  detail::check_defined(a, "dropout", "input");
  if (p < 0.0 || p > 1.0) throw ValueError("dropout: probability must be in [0, 1], got " + std::to_string(p));
  if (!train || p == 0.0) return a;
  if (p == 1.0) return mul(a, 0.0);
  Tensor mask = make_tensor(a.shape(), a.dtype(), a.device());
  bernoulli_(mask, 1.0 - p, gen);
  cpu::scale_inplace(mask, 1.0 / (1.0 - p));
  return mul(a, mask);
}

}  // namespace krill
