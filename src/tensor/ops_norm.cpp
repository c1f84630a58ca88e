// Batch normalisation through oneDNN: training (batch statistics, running stats updated in
// place with PyTorch's unbiased variance) and inference (running stats), with backward for
// input, weight and bias in both modes.
#include <oneapi/dnnl/dnnl.hpp>

#include "cnn_common.hpp"
#include "cpu/onednn.hpp"

namespace krill {

using autograd::Node;
using detail::make_tensor;
namespace dn = cpu::onednn;
using tag = dnnl::memory::format_tag;

namespace {

struct BnEntry : dn::Entry {
  std::int64_t N = 0, C = 0, S = 0;  // S: spatial size (the input is viewed as [N, C, S, 1])
  bool affine = false, global_stats = false;
  double eps = 0;
  dnnl::normalization_flags flags{};
  dnnl::memory::desc data, stat;
  dnnl::batch_normalization_forward::primitive_desc fwd_pd;
  dnnl::primitive fwd;
  dnnl::memory::desc fwd_scratch;
  bool bwd_ready = false;
  dnnl::primitive bwd;
  dnnl::memory::desc bwd_scratch;
};

std::unique_ptr<dn::Entry> make_bn_entry(std::int64_t N, std::int64_t C, std::int64_t S, bool affine, bool global,
                                         double eps) {
  auto e = std::make_unique<BnEntry>();
  e->N = N;
  e->C = C;
  e->S = S;
  e->affine = affine;
  e->global_stats = global;
  e->eps = eps;
  auto flags = dnnl::normalization_flags::none;
  if (affine) flags = flags | dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  if (global) flags = flags | dnnl::normalization_flags::use_global_stats;
  e->flags = flags;
  e->data = dn::plain_desc({N, C, S, 1}, tag::nchw);
  e->stat = dn::plain_desc({C}, tag::x);
  dnnl::batch_normalization_forward::desc d(
      global ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training, e->data, static_cast<float>(eps),
      flags);
  e->fwd_pd = dnnl::batch_normalization_forward::primitive_desc(d, dn::default_attr(), dn::engine());
  e->fwd = dnnl::batch_normalization_forward(e->fwd_pd);
  dn::note_primitive_created();
  e->fwd_scratch = e->fwd_pd.scratchpad_desc();
  return e;
}

void ensure_backward(BnEntry& e) {
  if (e.bwd_ready) return;
  dn::locked([&] {
    if (e.bwd_ready) return;
    dnnl::batch_normalization_backward::desc d(e.affine ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data,
                                               e.data, e.data, static_cast<float>(e.eps), e.flags);
    dnnl::batch_normalization_backward::primitive_desc pd(d, dn::default_attr(), dn::engine(), e.fwd_pd);
    e.bwd = dnnl::batch_normalization_backward(pd);
    dn::note_primitive_created();
    e.bwd_scratch = pd.scratchpad_desc();
    e.bwd_ready = true;
  });
}

// saved: 0 input, 1 mean, 2 variance (batch stats when training, running stats otherwise),
// 3 weight (affine)
void bn_backward(Node& n, const Tensor& g, Tensor* gi) {
  auto& e = *reinterpret_cast<BnEntry*>(n.ints[0]);
  ensure_backward(e);
  const Tensor& x = n.saved_tensor(0);
  const Tensor& mean = n.saved_tensor(1);
  const Tensor& var = n.saved_tensor(2);
  Tensor gc = g.contiguous();
  Tensor dx = make_tensor(x.shape(), DType::Float32);
  if (e.affine) {
    const Tensor& w = n.saved_tensor(3);
    Tensor dw = make_tensor(Shape{e.C}, DType::Float32);
    Tensor db = make_tensor(Shape{e.C}, DType::Float32);
    dn::execute(e.bwd, e.bwd_scratch,
                {{DNNL_ARG_SRC, &e.data, x.raw_data()},
                 {DNNL_ARG_MEAN, &e.stat, mean.raw_data()},
                 {DNNL_ARG_VARIANCE, &e.stat, var.raw_data()},
                 {DNNL_ARG_DIFF_DST, &e.data, gc.raw_data()},
                 {DNNL_ARG_SCALE, &e.stat, w.raw_data()},
                 // oneDNN 2.6 asks for the shift too though backward never reads it
                 {DNNL_ARG_SHIFT, &e.stat, w.raw_data()},
                 {DNNL_ARG_DIFF_SRC, &e.data, dx.raw_data()},
                 {DNNL_ARG_DIFF_SCALE, &e.stat, dw.raw_data()},
                 {DNNL_ARG_DIFF_SHIFT, &e.stat, db.raw_data()}});
    if (n.needs_grad(1)) gi[1] = std::move(dw);
    if (n.needs_grad(2)) gi[2] = std::move(db);
  } else {
    dn::execute(e.bwd, e.bwd_scratch,
                {{DNNL_ARG_SRC, &e.data, x.raw_data()},
                 {DNNL_ARG_MEAN, &e.stat, mean.raw_data()},
                 {DNNL_ARG_VARIANCE, &e.stat, var.raw_data()},
                 {DNNL_ARG_DIFF_DST, &e.data, gc.raw_data()},
                 {DNNL_ARG_DIFF_SRC, &e.data, dx.raw_data()}});
  }
  if (n.needs_grad(0)) gi[0] = std::move(dx);
}

void check_channel_vector(const Tensor& t, std::int64_t C, const Shape& is, const char* arg) {
  if (!t.defined()) return;
  detail::check_float32(t, "batch_norm", arg);
  if (t.ndim() != 1 || t.shape()[0] != C)
    throw ValueError(std::string("batch_norm: argument '") + arg + "' must have shape [" + std::to_string(C) +
                     "] (one value per channel of input " + is.str() + "), got " + t.shape().str());
}

}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  detail::check_float32(input, op, "input");
  const Shape& is = input.shape();
  if (input.ndim() < 2 || input.ndim() > 5)
    throw ValueError(std::string(op) + ": argument 'input' must be [N, C, ...] with 2 to 5 dimensions, got " + is.str());
  const std::int64_t N = is[0], C = is[1];
  std::int64_t S = 1;
  for (int d = 2; d < input.ndim(); ++d) S *= is[d];
  if (input.numel() == 0) throw ValueError(std::string(op) + ": argument 'input' " + is.str() + " is empty");
  check_channel_vector(running_mean, C, is, "running_mean");
  check_channel_vector(running_var, C, is, "running_var");
  check_channel_vector(weight, C, is, "weight");
  check_channel_vector(bias, C, is, "bias");
  if (running_mean.defined() != running_var.defined())
    throw ValueError(std::string(op) + ": give both running_mean and running_var or neither");
  if (!training && !running_mean.defined())
    throw ValueError(std::string(op) + ": evaluation mode (training=false) needs running_mean and running_var");
  if (training && N * S == 1)
    throw ValueError(std::string(op) + ": expected more than 1 value per channel when training, got input " + is.str());
  if (!(eps > 0)) throw ValueError(std::string(op) + ": argument 'eps' must be positive, got " + std::to_string(eps));

  const bool affine = weight.defined() || bias.defined();
  dn::Key k;
  k.kind = 3;
  k.push(N);
  k.push(C);
  k.push(S);
  k.push(static_cast<std::int64_t>(affine) | (static_cast<std::int64_t>(!training) << 1));
  k.push_double(eps);
  BnEntry& e = dn::get<BnEntry>(k, [&] { return make_bn_entry(N, C, S, affine, !training, eps); });

  Tensor x = input.contiguous();
  Tensor w, b;
  if (affine) {
    w = weight.defined() ? weight.contiguous() : ones({C});
    b = bias.defined() ? bias.contiguous() : zeros({C});
  }
  Tensor out = make_tensor(is, DType::Float32);
  Tensor mean, var;
  if (training) {
    mean = make_tensor(Shape{C}, DType::Float32);
    var = make_tensor(Shape{C}, DType::Float32);
  } else {
    mean = running_mean.contiguous();
    var = running_var.contiguous();
  }
  if (affine) {
    dn::execute(e.fwd, e.fwd_scratch,
                {{DNNL_ARG_SRC, &e.data, x.raw_data()},
                 {DNNL_ARG_MEAN, &e.stat, mean.raw_data()},
                 {DNNL_ARG_VARIANCE, &e.stat, var.raw_data()},
                 {DNNL_ARG_SCALE, &e.stat, w.raw_data()},
                 {DNNL_ARG_SHIFT, &e.stat, b.raw_data()},
                 {DNNL_ARG_DST, &e.data, out.raw_data()}});
  } else {
    dn::execute(e.fwd, e.fwd_scratch,
                {{DNNL_ARG_SRC, &e.data, x.raw_data()},
                 {DNNL_ARG_MEAN, &e.stat, mean.raw_data()},
                 {DNNL_ARG_VARIANCE, &e.stat, var.raw_data()},
                 {DNNL_ARG_DST, &e.data, out.raw_data()}});
  }
  if (training && running_mean.defined()) {
    // running = (1 - momentum) * running + momentum * batch (variance unbiased), in place
    // (in double, like ATen's CPU kernel)
    const double m = momentum;
    const double n = static_cast<double>(N * S);
    const double unbias = n / (n - 1.0);
    Tensor rm = running_mean, rv = running_var;
    const float* pm = mean.data_ptr<float>();
    const float* pv = var.data_ptr<float>();
    float* prm = rm.data_ptr<float>();
    float* prv = rv.data_ptr<float>();
    const std::int64_t sm = rm.strides()[0], sv = rv.strides()[0];
    for (std::int64_t c = 0; c < C; ++c) {
      prm[c * sm] = static_cast<float>(m * pm[c] + (1.0 - m) * prm[c * sm]);
      prv[c * sv] = static_cast<float>(m * (pv[c] * unbias) + (1.0 - m) * prv[c * sv]);
    }
    rm.bump_version();
    rv.bump_version();
  }
  if (autograd::should_record({&input, &weight, &bias})) {
    Node* n = autograd::record("NativeBatchNormBackward0", bn_backward, {&input, &weight, &bias}, out);
    n->ints[0] = reinterpret_cast<std::int64_t>(&e);
    n->save(0, x.detach());
    n->save(1, mean.detach());
    n->save(2, var.detach());
    if (affine) n->save(3, w.detach());
  }
  return out;
}

}  // namespace krill
