// max_pool2d(relu(conv2d(x))) as one op (LeNet's conv -> ReLU -> pool). The convolution's
// output, four times the size of the block's output, stays in the layout the convolution wrote
// (oneDNN's 16-channel blocks or channels-last) for the pooling, in both directions: only the
// pooled output and its gradient are reordered. ReLU's backward runs on the pooled gradient
// (see conv_pool_backward). LeNet on Fashion-MNIST, batch 64: the first block's reorders were
// 9% of a training step, NCHW max pooling another 12%.
#include <oneapi/dnnl/dnnl.hpp>

#include "cnn_common.hpp"
#include "conv_entry.hpp"

namespace krill::detail {

using autograd::Node;
namespace dn = cpu::onednn;
using tag = dnnl::memory::format_tag;

namespace {

struct ConvPoolEntry : dn::Entry {
  ConvEntry* conv = nullptr;  // with the ReLU fused as a post-op
  PoolGeometry g{};
  bool training = false;      // max pooling keeps its workspace for backward
  dnnl::memory::desc y_md;    // the convolution's output layout, the pooling's input
  dnnl::pooling_v2_forward::primitive_desc pool_pd;
  dnnl::primitive pool_fwd;
  dnnl::memory::desc pool_scratch, ws;
  dn::Port out;  // pooling's output -> plain NCHW
  // backward, created on first use
  std::atomic<bool> bwd_ready{false};
  dnnl::primitive pool_bwd;
  dnnl::memory::desc pool_bwd_scratch;
  dn::Port gout;              // plain NCHW gradient -> pooling backward's diff_dst
  dn::Port y_to_bd, y_to_bw;  // pooling backward's diff_src -> the convolution backward's diff_dst
};

dnnl::memory::desc pooled_any(const ConvEntry& c, const PoolGeometry& g) {
  return dnnl::memory::desc({c.p.N, c.p.OC, g.OH, g.OW}, dnnl::memory::data_type::f32, tag::any);
}

std::unique_ptr<dn::Entry> make_entry(ConvEntry& c, const PoolGeometry& g, bool training) {
  auto e = std::make_unique<ConvPoolEntry>();
  dn::ThreadScope ts(c.single);
  e->conv = &c;
  e->g = g;
  e->training = training;
  e->y_md = c.fwd_pd.dst_desc();
  const auto prop = training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  dnnl::pooling_v2_forward::desc d(prop, dnnl::algorithm::pooling_max, e->y_md, pooled_any(c, g), {g.sh, g.sw},
                                   {g.kh, g.kw}, {g.dh - 1, g.dw - 1}, {g.ph, g.pw}, {g.prh, g.prw});
  e->pool_pd = dnnl::pooling_v2_forward::primitive_desc(d, dn::default_attr(), dn::engine());
  e->pool_fwd = dnnl::pooling_v2_forward(e->pool_pd);
  dn::note_primitive_created();
  e->pool_scratch = e->pool_pd.scratchpad_desc();
  if (training) e->ws = e->pool_pd.workspace_desc();
  e->out = dn::make_port(dn::plain_desc({c.p.N, c.p.OC, g.OH, g.OW}, tag::nchw), e->pool_pd.dst_desc(), false);
  return e;
}

ConvPoolEntry& conv_pool_entry(ConvEntry& c, const PoolGeometry& g, bool training) {
  dn::Key k;
  k.kind = 5;
  k.push(reinterpret_cast<std::int64_t>(&c));  // entries live for the whole process
  for (std::int64_t v : {g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.prh, g.prw, g.dh, g.dw}) k.push(v);
  k.push(static_cast<std::int64_t>(training));
  return dn::get<ConvPoolEntry>(k, [&] { return make_entry(c, g, training); });
}

void ensure_backward(ConvPoolEntry& e) {
  ensure_conv_backward(*e.conv);
  dn::create_once(e.bwd_ready, [&] {
    const ConvEntry& c = *e.conv;
    const PoolGeometry& g = e.g;
    dn::ThreadScope ts(c.single);
    dnnl::pooling_v2_backward::desc d(dnnl::algorithm::pooling_max, e.y_md, pooled_any(c, g), {g.sh, g.sw},
                                      {g.kh, g.kw}, {g.dh - 1, g.dw - 1}, {g.ph, g.pw}, {g.prh, g.prw});
    dnnl::pooling_v2_backward::primitive_desc pd(d, dn::default_attr(), dn::engine(), e.pool_pd);
    e.pool_bwd = dnnl::pooling_v2_backward(pd);
    dn::note_primitive_created();
    e.pool_bwd_scratch = pd.scratchpad_desc();
    e.gout = dn::make_port(e.out.user, pd.diff_dst_desc(), true);
    e.y_to_bd = dn::make_port(e.y_md, c.bd_ddst.prim, true);
    e.y_to_bw = dn::make_port(e.y_md, c.bw_ddst.prim, true);
  });
}

// Saved: 0 the input (n.ints[1] == 1: already in backward-weights' layout), 1 the weights,
// 2 the block's output, 3 the pooling's workspace.
void conv_pool_backward(Node& n, const Tensor& g, Tensor* gi) {
  auto& e = *reinterpret_cast<ConvPoolEntry*>(n.ints[0]);
  ensure_backward(e);
  ConvEntry& c = *e.conv;
  dn::ThreadScope ts(c.single);
  const Tensor& x = n.saved_tensor(0);
  const Tensor& w = n.saved_tensor(1);
  const Tensor& out = n.saved_tensor(2);
  const Tensor& ws = n.saved_tensor(3);
  // ReLU's backward, on the pooled gradient: max pooling passes g[o] to the maximum of its
  // window, whose ReLU output is out[o]; ReLU passes it where that is positive. (Every other
  // element of the window gets no gradient from the pooling, so masking there changes nothing.)
  const Tensor gm = relu_grad(g.contiguous(), out);
  Tensor b_g, dy = make_tensor(Shape{dn::float_elems(e.y_md)}, DType::Float32);
  void* gd = dn::port_in(e.gout, gm.raw_data(), b_g);
  dn::execute(e.pool_bwd, e.pool_bwd_scratch,
              {{DNNL_ARG_DIFF_DST, &e.gout.prim, gd}, {DNNL_ARG_WORKSPACE, &e.ws, ws.raw_data()},
               {DNNL_ARG_DIFF_SRC, &e.y_md, dy.raw_data()}});
  const bool want_dx = n.needs_grad(0), want_dw_db = n.needs_grad(1) || n.needs_grad(2);
  Tensor b_dd, b_dw, b_src;
  void* ddst_d = want_dx ? dn::port_in(e.y_to_bd, dy.raw_data(), b_dd) : nullptr;
  void* ddst_w = want_dw_db ? dn::port_in(e.y_to_bw, dy.raw_data(), b_dw) : nullptr;
  void* src_w = nullptr;
  if (want_dw_db) src_w = n.ints[1] ? x.raw_data() : dn::port_in(c.bw_src, x.raw_data(), b_src);
  ConvGrads r = conv_backward_run(c, want_dx, want_dw_db, ddst_d, ddst_w, src_w, w);
  if (want_dx) gi[0] = std::move(r.dx);
  if (n.needs_grad(1)) gi[1] = std::move(r.dw);
  if (n.needs_grad(2)) gi[2] = std::move(r.db);
}

}  // namespace
}  // namespace krill::detail

namespace krill {

Tensor conv2d_relu_max_pool2d(const Tensor& input, const Tensor& weight, const Tensor& bias,
                              std::array<std::int64_t, 2> stride, std::array<std::int64_t, 2> padding,
                              std::array<std::int64_t, 2> dilation, std::int64_t groups,
                              std::array<std::int64_t, 2> pool_kernel, std::array<std::int64_t, 2> pool_stride,
                              std::array<std::int64_t, 2> pool_padding) {
  using namespace detail;
  const char* op = "conv2d_relu_max_pool2d";
  check_image_input(input, op);
  check_float32(weight, op, "weight");
  if (input.ndim() == 3)
    return conv2d_relu_max_pool2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups, pool_kernel,
                                  pool_stride, pool_padding)
        .squeeze(0);
  const ConvParams p = conv_params(op, input, weight, bias, stride, padding, dilation, groups, true);
  const PoolGeometry g =
      pool_geometry(op, Shape{p.N, p.OC, p.OH, p.OW}, pool_kernel, pool_stride, pool_padding, {1, 1}, false);
  const bool record = autograd::should_record({&input, &weight, &bias});
  ConvEntry& c = conv_entry(p);
  ConvPoolEntry& e = conv_pool_entry(c, g, record);
  Tensor x = input.contiguous();
  Tensor w = weight.contiguous();
  Tensor b = bias.defined() ? bias.contiguous() : Tensor();
  Tensor out = make_tensor(Shape{p.N, p.OC, g.OH, g.OW}, DType::Float32);
  Tensor b_src, ws;
  {
    dn::ThreadScope ts(c.single);
    void* src = dn::port_in(c.fwd_src, x.raw_data(), b_src);
    Tensor y = make_tensor(Shape{dn::float_elems(e.y_md)}, DType::Float32);
    conv_forward_run(c, src, w, b, y.raw_data());
    Tensor b_out;
    void* dst = dn::port_out_target(e.out, out.raw_data(), b_out);
    if (record) {
      ws = make_tensor(Shape{dn::float_elems(e.ws)}, DType::Float32);
      dn::execute(e.pool_fwd, e.pool_scratch,
                  {{DNNL_ARG_SRC, &e.y_md, y.raw_data()}, {DNNL_ARG_DST, &e.out.prim, dst},
                   {DNNL_ARG_WORKSPACE, &e.ws, ws.raw_data()}});
    } else {
      dn::execute(e.pool_fwd, e.pool_scratch, {{DNNL_ARG_SRC, &e.y_md, y.raw_data()}, {DNNL_ARG_DST, &e.out.prim, dst}});
    }
    dn::port_out_finish(e.out, out.raw_data(), b_out);
  }
  if (record) {
    Node* n = autograd::record("ConvolutionReluMaxPoolBackward0", conv_pool_backward, {&input, &weight, &bias}, out);
    n->ints[0] = reinterpret_cast<std::int64_t>(&e);
    // Backward-weights reads the input in the layout the forward reordered it to (usually):
    // keep that copy instead of the input.
    const bool want_w = weight.requires_grad() || (bias.defined() && bias.requires_grad());
    if (want_w && b_src.defined()) ensure_conv_backward(c);
    if (want_w && b_src.defined() && c.bw_src.active && c.bw_src.prim == c.fwd_src.prim) {
      n->save(0, b_src);
      n->ints[1] = 1;
    } else {
      n->save(0, x.detach());
    }
    n->save(1, w.detach());
    n->save(2, out.detach());
    n->save(3, ws);
  }
  return out;
}

}  // namespace krill
