// Batch normalisation: training (batch statistics, running stats updated in
// place with PyTorch's unbiased variance) and inference (running stats), with backward for
// input, weight and bias in both modes. batch_norm_relu is relu(batch_norm(...)) as one op.
// Training mode runs krill's own NCHW kernels (see bn_train_forward); evaluation mode runs
// oneDNN's primitive (with a separate ReLU for batch_norm_relu).
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

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
  bool affine = false, global_stats = false, relu = false;
  double eps = 0;
  dnnl::normalization_flags flags{};
  dnnl::memory::desc data, stat;
  dnnl::batch_normalization_forward::primitive_desc fwd_pd;
  dnnl::primitive fwd;
  dnnl::memory::desc fwd_scratch, ws;  // ws: the fused ReLU's workspace (relu only)
  std::atomic<bool> bwd_ready{false};
  dnnl::primitive bwd;
  dnnl::memory::desc bwd_scratch;
};

std::unique_ptr<dn::Entry> make_bn_entry(std::int64_t N, std::int64_t C, std::int64_t S, bool affine, bool global,
                                         double eps, bool relu) {
  auto e = std::make_unique<BnEntry>();
  e->N = N;
  e->C = C;
  e->S = S;
  e->affine = affine;
  e->global_stats = global;
  e->eps = eps;
  e->relu = relu;
  auto flags = dnnl::normalization_flags::none;
  if (affine) flags = flags | dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  if (global) flags = flags | dnnl::normalization_flags::use_global_stats;
  if (relu) flags = flags | dnnl::normalization_flags::fuse_norm_relu;
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
  if (relu) e->ws = e->fwd_pd.workspace_desc();
  return e;
}

void ensure_backward(BnEntry& e) {
  dn::create_once(e.bwd_ready, [&] {
    dnnl::batch_normalization_backward::desc d(e.affine ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data,
                                               e.data, e.data, static_cast<float>(e.eps), e.flags);
    dnnl::batch_normalization_backward::primitive_desc pd(d, dn::default_attr(), dn::engine(), e.fwd_pd);
    e.bwd = dnnl::batch_normalization_backward(pd);
    dn::note_primitive_created();
    e.bwd_scratch = pd.scratchpad_desc();
  });
}

// saved: 0 input, 1 mean, 2 variance (batch stats when training, running stats otherwise),
// 3 weight (affine)
void bn_backward(Node& n, const Tensor& g, Tensor* gi) {
  auto& e = *reinterpret_cast<BnEntry*>(n.ints[0]);
  ensure_backward(e);
  const Tensor& x = n.saved_tensor(0);
  Tensor gc = g.contiguous();
  Tensor dx = make_tensor(x.shape(), DType::Float32);
  // saved with the fused ReLU: 1 [mean; variance] (2C), 2 the ReLU's workspace; else 1 mean,
  // 2 variance. 3 weight (affine) either way.
  float* pmean = static_cast<float*>(n.saved_tensor(1).raw_data());
  float* pvar = e.relu ? pmean + e.C : static_cast<float*>(n.saved_tensor(2).raw_data());
  dn::Arg args[10] = {{DNNL_ARG_SRC, &e.data, x.raw_data()},
                      {DNNL_ARG_MEAN, &e.stat, pmean},
                      {DNNL_ARG_VARIANCE, &e.stat, pvar},
                      {DNNL_ARG_DIFF_DST, &e.data, gc.raw_data()},
                      {DNNL_ARG_DIFF_SRC, &e.data, dx.raw_data()}};
  std::size_t nargs = 5;
  if (e.relu) args[nargs++] = {DNNL_ARG_WORKSPACE, &e.ws, n.saved_tensor(2).raw_data()};
  Tensor dw, db;
  if (e.affine) {
    void* w = n.saved_tensor(3).raw_data();
    dw = make_tensor(Shape{e.C}, DType::Float32);
    db = make_tensor(Shape{e.C}, DType::Float32);
    args[nargs++] = {DNNL_ARG_SCALE, &e.stat, w};
    args[nargs++] = {DNNL_ARG_SHIFT, &e.stat, w};   // oneDNN 2.6 asks for it though backward never reads it
    args[nargs++] = {DNNL_ARG_DIFF_SCALE, &e.stat, dw.raw_data()};
    args[nargs++] = {DNNL_ARG_DIFF_SHIFT, &e.stat, db.raw_data()};
  }
  dn::execute(e.bwd, e.bwd_scratch, std::span<const dn::Arg>(args, nargs));
  if (n.needs_grad(0)) gi[0] = std::move(dx);
  if (e.affine && n.needs_grad(1)) gi[1] = std::move(dw);
  if (e.affine && n.needs_grad(2)) gi[2] = std::move(db);
}

// ---- training mode on NCHW: krill's own kernels ----
// oneDNN 2.6 has no optimised batch normalisation for the plain NCHW layout (ncsp_bnorm, a
// reference-like loop: 40% of a ResNet-50 step's oneDNN time). One channel's values (N runs of
// S floats) fit in L2 for the models' shapes, so the two-pass statistics and the output pass
// cost about one pass over memory. Channels run in parallel (OpenMP, the pool oneDNN uses).
// Sums are float SIMD within a run and double across runs.

// KRILL_BN=onednn selects oneDNN's kernels for training too (comparison, fallback).
bool krill_bn_kernels() {
  static const bool k = [] {
    const char* e = std::getenv("KRILL_BN");
    return !(e && std::strcmp(e, "onednn") == 0);
  }();
  return k;
}

// out = [relu](w * (x - mean) * invstd + b) per channel; writes mean and biased variance.
void bn_train_forward(const float* x, float* out, const float* w, const float* b, float* mean_out, float* var_out,
                      std::int64_t N, std::int64_t C, std::int64_t S, double eps, bool relu) {
  const double M = static_cast<double>(N * S);
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
  for (std::int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for (std::int64_t n = 0; n < N; ++n) {
      const float* px = x + (n * C + c) * S;
      float s = 0.f;
#pragma omp simd reduction(+ : s)
      for (std::int64_t i = 0; i < S; ++i) s += px[i];
      sum += s;
    }
    const double mean = sum / M;
    const float mf = static_cast<float>(mean);
    double sq = 0;
    for (std::int64_t n = 0; n < N; ++n) {
      const float* px = x + (n * C + c) * S;
      float s = 0.f;
#pragma omp simd reduction(+ : s)
      for (std::int64_t i = 0; i < S; ++i) {
        const float d = px[i] - mf;
        s += d * d;
      }
      sq += s;
    }
    const double var = sq / M;
    mean_out[c] = mf;
    var_out[c] = static_cast<float>(var);
    const double invstd = 1.0 / std::sqrt(var + eps);
    const double wc = w ? w[c] : 1.0, bc = b ? b[c] : 0.0;
    const float a = static_cast<float>(wc * invstd);
    const float sh = static_cast<float>(bc - mean * wc * invstd);
    for (std::int64_t n = 0; n < N; ++n) {
      const float* px = x + (n * C + c) * S;
      float* po = out + (n * C + c) * S;
      if (relu) {
#pragma omp simd
        for (std::int64_t i = 0; i < S; ++i) po[i] = std::max(px[i] * a + sh, 0.f);
      } else {
#pragma omp simd
        for (std::int64_t i = 0; i < S; ++i) po[i] = px[i] * a + sh;
      }
    }
  }
}

// saved: 0 input, 1 [mean; biased variance] (2C), 2 weight, 3 bias (affine; the bias recomputes
// the ReLU's mask exactly as the forward computed the output). ints: N, C, S, relu; scalar: eps.
void bn_train_backward(Node& n, const Tensor& g, Tensor* gi) {
  const std::int64_t N = n.ints[0], C = n.ints[1], S = n.ints[2];
  const bool relu = n.ints[3] != 0;
  const double eps = n.scalar[0];
  const Tensor& xt = n.saved_tensor(0);
  const Tensor& stats = n.saved_tensor(1);
  const Tensor& wt = n.saved_tensor(2);
  const Tensor& bt = n.saved_tensor(3);
  Tensor gc = g.contiguous();
  const float* x = xt.data_ptr<float>();
  const float* dy = gc.data_ptr<float>();
  const float* mean = stats.data_ptr<float>();
  const float* var = mean + C;
  const float* w = wt.defined() ? wt.data_ptr<float>() : nullptr;
  const float* b = bt.defined() ? bt.data_ptr<float>() : nullptr;
  const bool want_dx = n.needs_grad(0);
  Tensor dx = want_dx ? make_tensor(xt.shape(), DType::Float32) : Tensor();
  Tensor dw = make_tensor(Shape{C}, DType::Float32), db = make_tensor(Shape{C}, DType::Float32);
  float* pdx = want_dx ? dx.data_ptr<float>() : nullptr;
  float* pdw = dw.data_ptr<float>();
  float* pdb = db.data_ptr<float>();
  const double M = static_cast<double>(N * S);
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
  for (std::int64_t c = 0; c < C; ++c) {
    const double invstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
    const double wc = w ? w[c] : 1.0, bc = b ? b[c] : 0.0;
    const float mf = mean[c];
    // the forward's affine map, for the ReLU mask
    const float a = static_cast<float>(wc * invstd);
    const float sh = static_cast<float>(bc - static_cast<double>(mf) * wc * invstd);
    double sdy = 0, sdyx = 0;
    for (std::int64_t k = 0; k < N; ++k) {
      const float* px = x + (k * C + c) * S;
      const float* pg = dy + (k * C + c) * S;
      float s1 = 0.f, s2 = 0.f;
      if (relu) {
#pragma omp simd reduction(+ : s1, s2)
        for (std::int64_t i = 0; i < S; ++i) {
          const float gg = px[i] * a + sh > 0.f ? pg[i] : 0.f;
          s1 += gg;
          s2 += gg * (px[i] - mf);
        }
      } else {
#pragma omp simd reduction(+ : s1, s2)
        for (std::int64_t i = 0; i < S; ++i) {
          s1 += pg[i];
          s2 += pg[i] * (px[i] - mf);
        }
      }
      sdy += s1;
      sdyx += s2;
    }
    pdb[c] = static_cast<float>(sdy);
    pdw[c] = static_cast<float>(sdyx * invstd);
    if (!pdx) continue;
    // dx = w invstd (dy - mean(dy) - xhat mean(dy xhat))
    const float k1 = static_cast<float>(wc * invstd);
    const float k2 = static_cast<float>(sdy / M);
    const float k3 = static_cast<float>(sdyx / M * invstd * invstd);
    for (std::int64_t k = 0; k < N; ++k) {
      const float* px = x + (k * C + c) * S;
      const float* pg = dy + (k * C + c) * S;
      float* po = pdx + (k * C + c) * S;
      if (relu) {
#pragma omp simd
        for (std::int64_t i = 0; i < S; ++i) {
          const float gg = px[i] * a + sh > 0.f ? pg[i] : 0.f;
          po[i] = k1 * (gg - k2 - (px[i] - mf) * k3);
        }
      } else {
#pragma omp simd
        for (std::int64_t i = 0; i < S; ++i) po[i] = k1 * (pg[i] - k2 - (px[i] - mf) * k3);
      }
    }
  }
  if (want_dx) gi[0] = std::move(dx);
  if (n.needs_grad(1)) gi[1] = std::move(dw);
  if (n.needs_grad(2)) gi[2] = std::move(db);
}

// running = (1 - momentum) * running + momentum * batch (variance unbiased), in place (in
// double, like ATen's CPU kernel)
void update_running(const Tensor& running_mean, const Tensor& running_var, const float* pm, const float* pv,
                    std::int64_t C, std::int64_t count, double momentum) {
  const double m = momentum;
  const double n = static_cast<double>(count);
  const double unbias = n / (n - 1.0);
  Tensor rm = running_mean, rv = running_var;
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

void check_channel_vector(const char* op, const Tensor& t, std::int64_t C, const Shape& is, const char* arg) {
  if (!t.defined()) return;
  detail::check_float32(t, op, arg);
  if (t.ndim() != 1 || t.shape()[0] != C)
    throw ValueError(std::string(op) + ": argument '" + arg + "' must have shape [" + std::to_string(C) +
                     "] (one value per channel of input " + is.str() + "), got " + t.shape().str());
}

Tensor batch_norm_impl(const char* op, const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                      const Tensor& weight, const Tensor& bias, bool training, double momentum, double eps,
                      bool relu) {
  detail::check_float32(input, op, "input");
  const Shape& is = input.shape();
  if (input.ndim() < 2 || input.ndim() > 5)
    throw ValueError(std::string(op) + ": argument 'input' must be [N, C, ...] with 2 to 5 dimensions, got " + is.str());
  const std::int64_t N = is[0], C = is[1];
  std::int64_t S = 1;
  for (int d = 2; d < input.ndim(); ++d) S *= is[d];
  if (input.numel() == 0) throw ValueError(std::string(op) + ": argument 'input' " + is.str() + " is empty");
  check_channel_vector(op, running_mean, C, is, "running_mean");
  check_channel_vector(op, running_var, C, is, "running_var");
  check_channel_vector(op, weight, C, is, "weight");
  check_channel_vector(op, bias, C, is, "bias");
  if (running_mean.defined() != running_var.defined())
    throw ValueError(std::string(op) + ": give both running_mean and running_var or neither");
  if (!training && !running_mean.defined())
    throw ValueError(std::string(op) + ": evaluation mode (training=false) needs running_mean and running_var");
  if (training && N * S == 1)
    throw ValueError(std::string(op) + ": expected more than 1 value per channel when training, got input " + is.str());
  if (!(eps > 0)) throw ValueError(std::string(op) + ": argument 'eps' must be positive, got " + std::to_string(eps));

  const bool affine = weight.defined() || bias.defined();
  // evaluation mode: no workspace to fuse with (forward_inference); a separate ReLU
  if (relu && !training) return krill::relu(batch_norm_impl(op, input, running_mean, running_var, weight, bias,
                                                              training, momentum, eps, false));
  if (training && krill_bn_kernels()) {
    Tensor x = input.contiguous();
    Tensor w = weight.defined() ? weight.contiguous() : Tensor();
    Tensor b = bias.defined() ? bias.contiguous() : Tensor();
    Tensor out = make_tensor(is, DType::Float32);
    Tensor stats = make_tensor(Shape{2 * C}, DType::Float32);
    float* pmean = stats.data_ptr<float>();
    float* pvar = pmean + C;
    bn_train_forward(x.data_ptr<float>(), out.data_ptr<float>(), w.defined() ? w.data_ptr<float>() : nullptr,
                     b.defined() ? b.data_ptr<float>() : nullptr, pmean, pvar, N, C, S, eps, relu);
    if (running_mean.defined()) update_running(running_mean, running_var, pmean, pvar, C, N * S, momentum);
    if (autograd::should_record({&input, &weight, &bias})) {
      Node* n = autograd::record(relu ? "NativeBatchNormReluBackward0" : "NativeBatchNormBackward0", bn_train_backward,
                                 {&input, &weight, &bias}, out);
      n->ints[0] = N;
      n->ints[1] = C;
      n->ints[2] = S;
      n->ints[3] = relu;
      n->scalar[0] = eps;
      n->save(0, x.detach());
      n->save(1, stats);
      if (w.defined()) n->save(2, w.detach());
      if (b.defined()) n->save(3, b.detach());
    }
    return out;
  }
  dn::Key k;
  k.kind = 3;
  k.push(N);
  k.push(C);
  k.push(S);
  k.push(static_cast<std::int64_t>(affine) | (static_cast<std::int64_t>(!training) << 1) |
         (static_cast<std::int64_t>(relu) << 2));
  k.push_double(eps);
  BnEntry& e = dn::get<BnEntry>(k, [&] { return make_bn_entry(N, C, S, affine, !training, eps, relu); });

  Tensor x = input.contiguous();
  Tensor w, b;
  if (affine) {
    w = weight.defined() ? weight.contiguous() : ones({C});
    b = bias.defined() ? bias.contiguous() : zeros({C});
  }
  Tensor out = make_tensor(is, DType::Float32);
  Tensor mean, var, stats, ws;
  float *pmean_out, *pvar_out;
  if (relu) {
    // training only (see above): [mean; variance] in one buffer, and the ReLU's workspace
    stats = make_tensor(Shape{2 * C}, DType::Float32);
    ws = make_tensor(Shape{dn::float_elems(e.ws)}, DType::Float32);
    pmean_out = static_cast<float*>(stats.raw_data());
    pvar_out = pmean_out + C;
  } else {
    if (training) {
      mean = make_tensor(Shape{C}, DType::Float32);
      var = make_tensor(Shape{C}, DType::Float32);
    } else {
      mean = running_mean.contiguous();
      var = running_var.contiguous();
    }
    pmean_out = static_cast<float*>(mean.raw_data());
    pvar_out = static_cast<float*>(var.raw_data());
  }
  // scale/shift only when affine, the workspace only for the fused ReLU (a null descriptor
  // would be rejected)
  dn::Arg args[7] = {{DNNL_ARG_SRC, &e.data, x.raw_data()},
                     {DNNL_ARG_MEAN, &e.stat, pmean_out},
                     {DNNL_ARG_VARIANCE, &e.stat, pvar_out},
                     {DNNL_ARG_DST, &e.data, out.raw_data()}};
  std::size_t nargs = 4;
  if (affine) {
    args[nargs++] = {DNNL_ARG_SCALE, &e.stat, w.raw_data()};
    args[nargs++] = {DNNL_ARG_SHIFT, &e.stat, b.raw_data()};
  }
  if (relu) args[nargs++] = {DNNL_ARG_WORKSPACE, &e.ws, ws.raw_data()};
  dn::execute(e.fwd, e.fwd_scratch, std::span<const dn::Arg>(args, nargs));
  if (training && running_mean.defined()) update_running(running_mean, running_var, pmean_out, pvar_out, C, N * S, momentum);
  if (autograd::should_record({&input, &weight, &bias})) {
    Node* n = autograd::record(relu ? "NativeBatchNormReluBackward0" : "NativeBatchNormBackward0", bn_backward,
                               {&input, &weight, &bias}, out);
    n->ints[0] = reinterpret_cast<std::int64_t>(&e);
    n->save(0, x.detach());
    if (relu) {
      n->save(1, stats);
      n->save(2, ws);
    } else {
      n->save(1, mean.detach());
      n->save(2, var.detach());
    }
    if (affine) n->save(3, w.detach());
  }
  return out;
}

}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  return batch_norm_impl("batch_norm", input, running_mean, running_var, weight, bias, training, momentum, eps, false);
}

Tensor batch_norm_relu(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, bool training, double momentum, double eps) {
  return batch_norm_impl("batch_norm_relu", input, running_mean, running_var, weight, bias, training, momentum, eps,
                         true);
}

}  // namespace krill
