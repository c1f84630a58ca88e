// 2-D convolution through oneDNN: forward (bias and an optional ReLU fused), backward data,
// backward weights (with the bias gradient), each primitive created once per configuration
// (the entry, conv_entry.hpp, is shared with the fused conv + ReLU + max pool, ops_conv_pool.cpp).
//
// Layout: krill tensors are NCHW / OIHW. A configuration runs on the layouts oneDNN picks
// (format_tag::any, usually nChw16c / OIhw16i16o), on channels-last activations for few channels
// (use_channels_last), or on the plain layouts when oneDNN has only a reference kernel for the
// others, with reorders at the edges (rules measured with bench/conv_bench.cpp). Backward reorders
// diff_dst once for both backward primitives and reuses the forward's reordered input (saved
// with the node) when backward-weights wants the same layout. Small configurations can be
// created and run single-threaded (dn::ThreadScope, KRILL_SINGLE_THREAD_FLOPS; off by default).
#include <algorithm>
#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <cstdlib>
#include <cstring>
#include <span>

#include "cnn_common.hpp"
#include "conv_entry.hpp"

namespace krill::detail {

using autograd::Node;
namespace dn = cpu::onednn;
using tag = dnnl::memory::format_tag;

namespace {

// -1: decide per shape, 0: always plain NCHW, 1: always blocked, 2: always channels-last
// (KRILL_CONV_LAYOUT=auto|plain|blocked|nhwc).
int layout_policy() {
  static const int p = [] {
    const char* e = std::getenv("KRILL_CONV_LAYOUT");
    if (!e) return -1;
    if (std::strcmp(e, "plain") == 0) return 0;
    if (std::strcmp(e, "blocked") == 0) return 1;
    if (std::strcmp(e, "nhwc") == 0) return 2;
    return -1;
  }();
  return p;
}

bool use_blocked_layout(const ConvParams&) {
  const int pol = layout_policy();
  if (pol >= 0) return pol >= 1;
  // Measured (bench/conv_bench.cpp, 1 thread): oneDNN's blocked-layout JIT kernels beat its
  // GEMM-based NCHW kernels even for LeNet's small convs (1->6, 6->16 channels: the whole
  // training step 1.9-2.4x faster with the reorders included) and ResNet's (64->64 3x3: 2.1x).
  // A configuration for which oneDNN has no optimised blocked kernel falls back to plain (see
  // is_reference below).
  return true;
}

// Channels-last activations instead of oneDNN's 16-channel blocks for convolutions with few
// channels (LeNet's 6->16), which blocks would pad to 16: LeNet on Fashion-MNIST, batch 64,
// 5-9% more images/s; batch 4 unchanged. Not for a first layer with at most 4 input channels
// (no backward-data): there the blocked kernels take half the time of the channels-last ones
// (LeNet's 1->6 at batch 64, forward + backward-weights 200 vs 356 us, and max pooling on the
// blocked output 60 vs 156 us; bench/conv_bench.cpp), while their backward-data is slow.
bool use_channels_last(const ConvParams& p) {
  const int pol = layout_policy();
  if (pol >= 0) return pol == 2;
  if (!p.need_dx && p.C <= 4) return false;
  return std::max(p.C, p.OC) <= 16;
}

// True for oneDNN's reference implementations (slow loops): a blocked configuration that gets
// one is recreated on the plain layouts, where the GEMM-based kernels apply.
template <typename PD>
bool is_reference(const PD& pd) {
  return std::strncmp(pd.impl_info_str(), "ref", 3) == 0;
}

dnnl::memory::desc any_like(const dnnl::memory::desc& md) {
  return dnnl::memory::desc(md.dims(), dnnl::memory::data_type::f32, tag::any);
}

// Activations: oneDNN's choice, or channels-last (use_channels_last).
dnnl::memory::desc act_like(const dnnl::memory::desc& md, bool channels_last) {
  if (channels_last) return dnnl::memory::desc(md.dims(), dnnl::memory::data_type::f32, tag::nhwc);
  return any_like(md);
}

std::unique_ptr<dn::Entry> make_conv_entry(const ConvParams& p) {
  auto e = std::make_unique<ConvEntry>();
  e->p = p;
  e->single = 2 * p.N * p.OC * p.OH * p.OW * (p.C / p.groups) * p.KH * p.KW < dn::single_thread_conv_flops();
  dn::ThreadScope ts(e->single);
  e->blocked = use_blocked_layout(p) || use_channels_last(p);
  e->channels_last = use_channels_last(p);
  e->src_u = dn::plain_desc({p.N, p.C, p.H, p.W}, tag::nchw);
  e->dst_u = dn::plain_desc({p.N, p.OC, p.OH, p.OW}, tag::nchw);
  e->wei_u = p.groups == 1 ? dn::plain_desc({p.OC, p.C, p.KH, p.KW}, tag::oihw)
                           : dn::plain_desc({p.groups, p.OC / p.groups, p.C / p.groups, p.KH, p.KW}, tag::goihw);
  e->bias_u = dn::plain_desc({p.OC}, tag::x);
  e->strides = {p.sh, p.sw};
  e->dilates = {p.dh - 1, p.dw - 1};
  e->pad_l = {p.ph, p.pw};
  // symmetric padding: oneDNN's output size (H + pl + pr - ek) / s + 1 rounds down like PyTorch's
  e->pad_r = {p.ph, p.pw};
  dnnl::primitive_attr attr = dn::default_attr();
  if (p.relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  auto make_pd = [&](bool blocked) {
    const auto src_md = blocked ? act_like(e->src_u, e->channels_last) : e->src_u;
    const auto wei_md = blocked ? any_like(e->wei_u) : e->wei_u;
    const auto dst_md = blocked ? act_like(e->dst_u, e->channels_last) : e->dst_u;
    auto d = p.bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                      dnnl::algorithm::convolution_direct, src_md, wei_md, e->bias_u,
                                                      dst_md, e->strides, e->dilates, e->pad_l, e->pad_r)
                    : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                      dnnl::algorithm::convolution_direct, src_md, wei_md, dst_md,
                                                      e->strides, e->dilates, e->pad_l, e->pad_r);
    return dnnl::convolution_forward::primitive_desc(d, attr, dn::engine());
  };
  e->fwd_pd = make_pd(e->blocked);
  if (e->blocked && layout_policy() < 0 && is_reference(e->fwd_pd)) {
    e->blocked = e->channels_last = false;
    e->fwd_pd = make_pd(false);
  }
  e->fwd = dnnl::convolution_forward(e->fwd_pd);
  dn::note_primitive_created();
  e->fwd_scratch = e->fwd_pd.scratchpad_desc();
  e->fwd_src = dn::make_port(e->src_u, e->fwd_pd.src_desc(), true);
  e->fwd_wei = dn::make_port(e->wei_u, e->fwd_pd.weights_desc(), true);
  e->fwd_dst = dn::make_port(e->dst_u, e->fwd_pd.dst_desc(), false);
  return e;
}

}  // namespace

void ensure_conv_backward(ConvEntry& e) {
  dn::create_once(e.bwd_ready, [&] {
    dn::ThreadScope ts(e.single);
    const ConvParams& p = e.p;
    const dnnl::primitive_attr attr = dn::default_attr();
    auto mds = [&](bool blocked) {
      return std::array<dnnl::memory::desc, 3>{blocked ? act_like(e.src_u, e.channels_last) : e.src_u,
                                               blocked ? any_like(e.wei_u) : e.wei_u,
                                               blocked ? act_like(e.dst_u, e.channels_last) : e.dst_u};
    };
    const bool fallback = e.blocked && layout_policy() < 0;
    {
      auto make_pd = [&](bool blocked) {
        const auto m = mds(blocked);
        dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, m[0], m[1], m[2], e.strides,
                                                e.dilates, e.pad_l, e.pad_r);
        return dnnl::convolution_backward_data::primitive_desc(d, attr, dn::engine(), e.fwd_pd);
      };
      auto pd = make_pd(e.blocked);
      if (fallback && is_reference(pd)) pd = make_pd(false);
      e.bwd_data = dnnl::convolution_backward_data(pd);
      dn::note_primitive_created();
      e.bd_scratch = pd.scratchpad_desc();
      e.bd_ddst = dn::make_port(e.dst_u, pd.diff_dst_desc(), true);
      e.bd_wei = dn::make_port(e.wei_u, pd.weights_desc(), true);
      e.bd_dsrc = dn::make_port(e.src_u, pd.diff_src_desc(), false);
    }
    {
      auto make_pd = [&](bool blocked) {
        const auto m = mds(blocked);
        auto d = p.bias ? dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, m[0], m[1],
                                                                   e.bias_u, m[2], e.strides, e.dilates, e.pad_l, e.pad_r)
                        : dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, m[0], m[1],
                                                                   m[2], e.strides, e.dilates, e.pad_l, e.pad_r);
        return dnnl::convolution_backward_weights::primitive_desc(d, attr, dn::engine(), e.fwd_pd);
      };
      auto pd = make_pd(e.blocked);
      if (fallback && is_reference(pd)) pd = make_pd(false);
      e.bwd_wei = dnnl::convolution_backward_weights(pd);
      dn::note_primitive_created();
      e.bw_scratch = pd.scratchpad_desc();
      e.bw_src = dn::make_port(e.src_u, pd.src_desc(), true);
      e.bw_ddst = dn::make_port(e.dst_u, pd.diff_dst_desc(), true);
      e.bw_dwei = dn::make_port(e.wei_u, pd.diff_weights_desc(), false);
      if (p.bias) e.bw_dbias = pd.diff_bias_desc();
    }
  });
}

ConvEntry& conv_entry(const ConvParams& p) {
  dn::Key k;
  k.kind = 1;
  for (std::int64_t v : {p.N, p.C, p.H, p.W, p.OC, p.KH, p.KW, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw, p.groups})
    k.push(v);
  k.push(static_cast<std::int64_t>(p.bias) | (static_cast<std::int64_t>(p.relu) << 1) |
         (static_cast<std::int64_t>(p.need_dx) << 2));
  return dn::get<ConvEntry>(k, [&] { return make_conv_entry(p); });
}

void conv_forward_run(ConvEntry& e, void* src, const Tensor& w, const Tensor& b, void* dst) {
  Tensor b_wei;
  void* wei = dn::port_in(e.fwd_wei, w.raw_data(), b_wei);
  // the bias, when there is one, goes last
  const dn::Arg args[] = {{DNNL_ARG_SRC, &e.fwd_src.prim, src},
                          {DNNL_ARG_WEIGHTS, &e.fwd_wei.prim, wei},
                          {DNNL_ARG_DST, &e.fwd_dst.prim, dst},
                          {DNNL_ARG_BIAS, &e.bias_u, e.p.bias ? b.raw_data() : nullptr}};
  dn::execute(e.fwd, e.fwd_scratch, std::span<const dn::Arg>(args, e.p.bias ? 4 : 3));
}

ConvGrads conv_backward_run(ConvEntry& e, bool want_dx, bool want_dw_db, void* ddst_d, void* ddst_w, void* src_w,
                            const Tensor& w) {
  const ConvParams& p = e.p;
  ConvGrads r;
  if (want_dx) {
    Tensor b_wei, b_dsrc;
    r.dx = make_tensor(Shape{p.N, p.C, p.H, p.W}, DType::Float32);
    void* wei = dn::port_in(e.bd_wei, w.raw_data(), b_wei);
    void* dsrc = dn::port_out_target(e.bd_dsrc, r.dx.raw_data(), b_dsrc);
    dn::execute(e.bwd_data, e.bd_scratch,
                {{DNNL_ARG_DIFF_DST, &e.bd_ddst.prim, ddst_d}, {DNNL_ARG_WEIGHTS, &e.bd_wei.prim, wei},
                 {DNNL_ARG_DIFF_SRC, &e.bd_dsrc.prim, dsrc}});
    dn::port_out_finish(e.bd_dsrc, r.dx.raw_data(), b_dsrc);
  }
  if (want_dw_db) {
    Tensor b_dwei;
    r.dw = make_tensor(w.shape(), DType::Float32);
    if (p.bias) r.db = make_tensor(Shape{p.OC}, DType::Float32);
    void* dwei = dn::port_out_target(e.bw_dwei, r.dw.raw_data(), b_dwei);
    const dn::Arg args[] = {{DNNL_ARG_SRC, &e.bw_src.prim, src_w},
                            {DNNL_ARG_DIFF_DST, &e.bw_ddst.prim, ddst_w},
                            {DNNL_ARG_DIFF_WEIGHTS, &e.bw_dwei.prim, dwei},
                            {DNNL_ARG_DIFF_BIAS, &e.bw_dbias, p.bias ? r.db.raw_data() : nullptr}};
    dn::execute(e.bwd_wei, e.bw_scratch, std::span<const dn::Arg>(args, p.bias ? 4 : 3));
    dn::port_out_finish(e.bw_dwei, r.dw.raw_data(), b_dwei);
  }
  return r;
}

ConvParams conv_params(const char* op, const Tensor& input, const Tensor& weight, const Tensor& bias,
                       std::array<std::int64_t, 2> stride, std::array<std::int64_t, 2> padding,
                       std::array<std::int64_t, 2> dilation, std::int64_t groups, bool relu) {
  check_positive(stride, op, "stride");
  check_non_negative(padding, op, "padding");
  check_positive(dilation, op, "dilation");
  if (groups <= 0) throw ValueError(std::string(op) + ": argument 'groups' must be positive, got " + std::to_string(groups));
  const Shape& is = input.shape();
  const Shape& ws = weight.shape();
  if (weight.ndim() != 4)
    throw ValueError(std::string(op) + ": argument 'weight' must be 4-D [out_channels, in_channels/groups, kH, kW], got " +
                     ws.str());
  ConvParams p{};
  p.N = is[0];
  p.C = is[1];
  p.H = is[2];
  p.W = is[3];
  p.OC = ws[0];
  p.KH = ws[2];
  p.KW = ws[3];
  p.sh = stride[0];
  p.sw = stride[1];
  p.ph = padding[0];
  p.pw = padding[1];
  p.dh = dilation[0];
  p.dw = dilation[1];
  p.groups = groups;
  p.relu = relu;
  if (p.OC == 0 || p.KH == 0 || p.KW == 0)
    throw ValueError(std::string(op) + ": argument 'weight' " + ws.str() + " has a zero-sized dimension");
  if (p.C % groups != 0 || p.OC % groups != 0)
    throw ValueError(std::string(op) + ": groups=" + std::to_string(groups) + " must divide the input channels (input " +
                     is.str() + ") and the output channels (weight " + ws.str() + ")");
  if (ws[1] * groups != p.C)
    throw ValueError(std::string(op) + ": input " + is.str() + " has " + std::to_string(p.C) +
                     " channels but weight " + ws.str() + " with groups=" + std::to_string(groups) + " expects " +
                     std::to_string(ws[1] * groups));
  if (bias.defined()) {
    check_float32(bias, op, "bias");
    if (bias.ndim() != 1 || bias.shape()[0] != p.OC)
      throw ValueError(std::string(op) + ": argument 'bias' must have shape [" + std::to_string(p.OC) +
                       "] (weight " + ws.str() + "), got " + bias.shape().str());
  }
  p.bias = bias.defined();
  const std::int64_t ekh = (p.KH - 1) * p.dh + 1, ekw = (p.KW - 1) * p.dw + 1;
  if (p.H + 2 * p.ph < ekh || p.W + 2 * p.pw < ekw)
    throw ValueError(std::string(op) + ": input " + is.str() + " padded by " + pair_str(padding) +
                     " is smaller than the dilated kernel [" + std::to_string(ekh) + ", " + std::to_string(ekw) +
                     "] (weight " + ws.str() + ", dilation " + pair_str(dilation) + ")");
  p.OH = (p.H + 2 * p.ph - ekh) / p.sh + 1;
  p.OW = (p.W + 2 * p.pw - ekw) / p.sw + 1;
  p.need_dx = autograd::should_record({&input});
  return p;
}

namespace {

void conv_backward(Node& n, const Tensor& g, Tensor* gi) {
  auto& e = *reinterpret_cast<ConvEntry*>(n.ints[0]);
  ensure_conv_backward(e);
  dn::ThreadScope ts(e.single);
  const Tensor& x = n.saved_tensor(0);
  const Tensor& w = n.saved_tensor(1);
  // the fused ReLU's backward from the saved output
  const Tensor gc = e.p.relu ? relu_grad(g.contiguous(), n.saved_tensor(2)) : g.contiguous();
  const bool want_dx = n.needs_grad(0), want_dw_db = n.needs_grad(1) || n.needs_grad(2);
  void* gptr = gc.raw_data();
  // diff_dst reordered once when backward-data and backward-weights want the same layout
  Tensor b_ddst_d, b_ddst_w, b_src;
  void* ddst_d = want_dx ? dn::port_in(e.bd_ddst, gptr, b_ddst_d) : nullptr;
  void* ddst_w = nullptr;
  if (want_dw_db)
    ddst_w = want_dx && e.bd_ddst.prim == e.bw_ddst.prim ? ddst_d : dn::port_in(e.bw_ddst, gptr, b_ddst_w);
  // the forward's reordered input when it was kept (slot 3), else reorder it again
  void* src_w = nullptr;
  if (want_dw_db) {
    const Tensor& xb = n.saved_tensor(3);
    src_w = xb.defined() ? xb.raw_data() : dn::port_in(e.bw_src, x.raw_data(), b_src);
  }
  ConvGrads r = conv_backward_run(e, want_dx, want_dw_db, ddst_d, ddst_w, src_w, w);
  if (want_dx) gi[0] = std::move(r.dx);
  if (n.needs_grad(1)) gi[1] = std::move(r.dw);
  if (n.needs_grad(2)) gi[2] = std::move(r.db);
}

Tensor conv2d_impl(const char* op, const Tensor& input_arg, const Tensor& weight, const Tensor& bias,
                   std::array<std::int64_t, 2> stride, std::array<std::int64_t, 2> padding,
                   std::array<std::int64_t, 2> dilation, std::int64_t groups, bool relu) {
  check_image_input(input_arg, op);
  check_float32(weight, op, "weight");
  if (input_arg.ndim() == 3) {
    // [C, H, W]: a batch of one, like PyTorch
    return conv2d_impl(op, input_arg.unsqueeze(0), weight, bias, stride, padding, dilation, groups, relu).squeeze(0);
  }
  const ConvParams p = conv_params(op, input_arg, weight, bias, stride, padding, dilation, groups, relu);
  ConvEntry& e = conv_entry(p);
  Tensor x = input_arg.contiguous();
  Tensor w = weight.contiguous();
  Tensor b = bias.defined() ? bias.contiguous() : Tensor();
  Tensor out = make_tensor(Shape{p.N, p.OC, p.OH, p.OW}, DType::Float32);
  const bool record = autograd::should_record({&input_arg, &weight, &bias});
  Tensor b_src;
  {
    dn::ThreadScope ts(e.single);
    Tensor b_dst;
    void* src = dn::port_in(e.fwd_src, x.raw_data(), b_src);
    void* dst = dn::port_out_target(e.fwd_dst, out.raw_data(), b_dst);
    conv_forward_run(e, src, w, b, dst);
    dn::port_out_finish(e.fwd_dst, out.raw_data(), b_dst);
  }
  if (record) {
    Node* n = autograd::record(relu ? "ConvolutionReluBackward0" : "ConvolutionBackward0", conv_backward,
                               {&input_arg, &weight, &bias}, out);
    n->ints[0] = reinterpret_cast<std::int64_t>(&e);
    // the contiguous operands: the caller's tensors when they already were contiguous, so
    // in-place changes to them after this call are detected
    n->save(0, x.detach());
    n->save(1, w.detach());
    if (relu) n->save(2, out.detach());
    // Backward-weights reads the input in the layout the forward reordered it to (usually):
    // keep that copy instead of reordering the input again in backward.
    if (b_src.defined() && (weight.requires_grad() || (bias.defined() && bias.requires_grad()))) {
      ensure_conv_backward(e);
      if (e.bw_src.active && e.bw_src.prim == e.fwd_src.prim) n->save(3, b_src);
    }
  }
  return out;
}

}  // namespace
}  // namespace krill::detail

namespace krill {

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, std::array<std::int64_t, 2> stride,
              std::array<std::int64_t, 2> padding, std::array<std::int64_t, 2> dilation, std::int64_t groups) {
  return detail::conv2d_impl("conv2d", input, weight, bias, stride, padding, dilation, groups, false);
}

Tensor conv2d_relu(const Tensor& input, const Tensor& weight, const Tensor& bias, std::array<std::int64_t, 2> stride,
                   std::array<std::int64_t, 2> padding, std::array<std::int64_t, 2> dilation, std::int64_t groups) {
  return detail::conv2d_impl("conv2d_relu", input, weight, bias, stride, padding, dilation, groups, true);
}

}  // namespace krill
