// 2-D pooling: max (with oneDNN's workspace for backward), average (count_include_pad on or
// off, ceil_mode) through oneDNN's pooling primitives on NCHW, and adaptive average pooling
// (oneDNN when the windows are uniform, else a direct loop over PyTorch's variable windows).
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <vector>

#include "cnn_common.hpp"
#include "cpu/onednn.hpp"

namespace krill {

using autograd::Node;
using detail::make_tensor;
namespace dn = cpu::onednn;
using tag = dnnl::memory::format_tag;

namespace {

enum class PoolKind : std::int64_t { Max = 0, AvgInclude = 1, AvgExclude = 2 };

struct PoolParams : detail::PoolGeometry {
  PoolKind kind;
  std::int64_t N, C, H, W;
  bool training;  // max pooling: keep the workspace for backward
};

struct PoolEntry : dn::Entry {
  PoolParams p{};
  bool single = false;  // small: created and run single-threaded (dn::ThreadScope)
  dnnl::memory::desc src, dst, ws;
  dnnl::pooling_v2_forward::primitive_desc fwd_pd;
  dnnl::primitive fwd;
  dnnl::memory::desc fwd_scratch;
  std::atomic<bool> bwd_ready{false};
  dnnl::primitive bwd;
  dnnl::memory::desc bwd_scratch;
  // count_include_pad with ceil_mode: PyTorch divides windows that run past the padding by
  // their clipped size, oneDNN by kh*kw; out *= fh[oh] * fw[ow] corrects it (empty if unneeded)
  std::vector<float> fix_h, fix_w;
};

dnnl::algorithm pool_alg(PoolKind k) {
  switch (k) {
    case PoolKind::Max: return dnnl::algorithm::pooling_max;
    case PoolKind::AvgInclude: return dnnl::algorithm::pooling_avg_include_padding;
    default: return dnnl::algorithm::pooling_avg_exclude_padding;
  }
}

dnnl::pooling_v2_forward::desc pool_desc(const PoolParams& p, const dnnl::memory::desc& src,
                                         const dnnl::memory::desc& dst, dnnl::prop_kind prop) {
  return dnnl::pooling_v2_forward::desc(prop, pool_alg(p.kind), src, dst, {p.sh, p.sw}, {p.kh, p.kw},
                                        {p.dh - 1, p.dw - 1}, {p.ph, p.pw}, {p.prh, p.prw});
}

std::unique_ptr<dn::Entry> make_pool_entry(const PoolParams& p) {
  auto e = std::make_unique<PoolEntry>();
  e->p = p;
  e->single = p.N * p.C * p.H * p.W < dn::single_thread_elems();
  dn::ThreadScope ts(e->single);
  e->src = dn::plain_desc({p.N, p.C, p.H, p.W}, tag::nchw);
  e->dst = dn::plain_desc({p.N, p.C, p.OH, p.OW}, tag::nchw);
  const auto prop = p.training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  e->fwd_pd = dnnl::pooling_v2_forward::primitive_desc(pool_desc(p, e->src, e->dst, prop), dn::default_attr(), dn::engine());
  e->fwd = dnnl::pooling_v2_forward(e->fwd_pd);
  dn::note_primitive_created();
  e->fwd_scratch = e->fwd_pd.scratchpad_desc();
  if (p.kind == PoolKind::Max && p.training) e->ws = e->fwd_pd.workspace_desc();
  if (p.kind == PoolKind::AvgInclude && (p.prh > p.ph || p.prw > p.pw)) {
    auto fix = [](std::int64_t out, std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t pad) {
      std::vector<float> f(static_cast<std::size_t>(out));
      for (std::int64_t o = 0; o < out; ++o) {
        const std::int64_t start = o * s - pad;
        const std::int64_t end = std::min(start + k, in + pad);
        f[static_cast<std::size_t>(o)] = static_cast<float>(static_cast<double>(k) / static_cast<double>(end - start));
      }
      return f;
    };
    e->fix_h = fix(p.OH, p.H, p.kh, p.sh, p.ph);
    e->fix_w = fix(p.OW, p.W, p.kw, p.sw, p.pw);
  }
  return e;
}

void ensure_backward(PoolEntry& e) {
  dn::create_once(e.bwd_ready, [&] {
    dn::ThreadScope ts(e.single);
    const PoolParams& p = e.p;
    dnnl::pooling_v2_backward::desc d(pool_alg(p.kind), e.src, e.dst, {p.sh, p.sw}, {p.kh, p.kw}, {p.dh - 1, p.dw - 1},
                                      {p.ph, p.pw}, {p.prh, p.prw});
    dnnl::pooling_v2_backward::primitive_desc pd(d, dn::default_attr(), dn::engine(), e.fwd_pd);
    e.bwd = dnnl::pooling_v2_backward(pd);
    dn::note_primitive_created();
    e.bwd_scratch = pd.scratchpad_desc();
  });
}

PoolEntry& pool_entry(const PoolParams& p) {
  dn::Key k;
  k.kind = 2;
  for (std::int64_t v : {static_cast<std::int64_t>(p.kind), p.N, p.C, p.H, p.W, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.prh,
                         p.prw, p.dh, p.dw, static_cast<std::int64_t>(p.training)})
    k.push(v);
  return dn::get<PoolEntry>(k, [&] { return make_pool_entry(p); });
}

// out[n, c, oh, ow] *= fh[oh] * fw[ow]
void apply_fix(const PoolEntry& e, float* data) {
  const std::int64_t planes = e.p.N * e.p.C, OH = e.p.OH, OW = e.p.OW;
  for (std::int64_t pl = 0; pl < planes; ++pl)
    for (std::int64_t i = 0; i < OH; ++i) {
      float* row = data + (pl * OH + i) * OW;
      const float fh = e.fix_h[static_cast<std::size_t>(i)];
      for (std::int64_t j = 0; j < OW; ++j) row[j] *= fh * e.fix_w[static_cast<std::size_t>(j)];
    }
}

void pool_backward(Node& n, const Tensor& g, Tensor* gi) {
  auto& e = *reinterpret_cast<PoolEntry*>(n.ints[0]);
  ensure_backward(e);
  dn::ThreadScope ts(e.single);
  Tensor gc = g.contiguous();
  if (!e.fix_h.empty()) {
    Tensor scaled = gc.clone();
    apply_fix(e, scaled.data_ptr<float>());
    gc = std::move(scaled);
  }
  Tensor dx = make_tensor(n.shape_a, DType::Float32);
  if (e.p.kind == PoolKind::Max) {
    const Tensor& ws = n.saved_tensor(0);
    dn::execute(e.bwd, e.bwd_scratch,
                {{DNNL_ARG_DIFF_DST, &e.dst, gc.raw_data()}, {DNNL_ARG_WORKSPACE, &e.ws, ws.raw_data()},
                 {DNNL_ARG_DIFF_SRC, &e.src, dx.raw_data()}});
  } else {
    dn::execute(e.bwd, e.bwd_scratch, {{DNNL_ARG_DIFF_DST, &e.dst, gc.raw_data()}, {DNNL_ARG_DIFF_SRC, &e.src, dx.raw_data()}});
  }
  gi[0] = std::move(dx);
}

// PyTorch's pooling_output_shape (with ceil_mode's rule that the last window must start
// inside the input or the left padding).
std::int64_t pool_out_size(std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t pad, std::int64_t dil, bool ceil) {
  const std::int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil ? s - 1 : 0);
  std::int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil && (out - 1) * s >= in + pad) --out;
  return out;
}

}  // namespace

detail::PoolGeometry detail::pool_geometry(const char* op, const Shape& is, std::array<std::int64_t, 2> kernel,
                                   std::array<std::int64_t, 2> stride, std::array<std::int64_t, 2> padding,
                                   std::array<std::int64_t, 2> dilation, bool ceil_mode) {
  if (stride[0] == 0 && stride[1] == 0) stride = kernel;
  detail::check_positive(kernel, op, "kernel_size");
  detail::check_positive(stride, op, "stride");
  detail::check_non_negative(padding, op, "padding");
  detail::check_positive(dilation, op, "dilation");
  if (padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2)
    throw ValueError(std::string(op) + ": argument 'padding' " + detail::pair_str(padding) +
                     " must be at most half of kernel_size " + detail::pair_str(kernel));
  PoolGeometry p{};
  p.kh = kernel[0];
  p.kw = kernel[1];
  p.sh = stride[0];
  p.sw = stride[1];
  p.ph = padding[0];
  p.pw = padding[1];
  p.dh = dilation[0];
  p.dw = dilation[1];
  p.OH = pool_out_size(is[2], p.kh, p.sh, p.ph, p.dh, ceil_mode);
  p.OW = pool_out_size(is[3], p.kw, p.sw, p.pw, p.dw, ceil_mode);
  if (p.OH < 1 || p.OW < 1)
    throw ValueError(std::string(op) + ": input " + is.str() + " is too small for kernel_size " + detail::pair_str(kernel) +
                     ", stride " + detail::pair_str(stride) + ", padding " + detail::pair_str(padding) +
                     ", dilation " + detail::pair_str(dilation) + ": the output would be [" + std::to_string(p.OH) +
                     ", " + std::to_string(p.OW) + "]");
  // right padding that gives oneDNN the same output size (more than `padding` in ceil_mode)
  p.prh = std::max((p.OH - 1) * p.sh + (p.kh - 1) * p.dh + 1 - is[2] - p.ph, p.ph);
  p.prw = std::max((p.OW - 1) * p.sw + (p.kw - 1) * p.dw + 1 - is[3] - p.pw, p.pw);
  return p;
}

namespace {

Tensor pool2d(const char* op, const char* node_name, PoolKind kind, const Tensor& input,
              std::array<std::int64_t, 2> kernel, std::array<std::int64_t, 2> stride, std::array<std::int64_t, 2> padding,
              std::array<std::int64_t, 2> dilation, bool ceil_mode) {
  detail::check_image_input(input, op);
  if (input.ndim() == 3)
    return pool2d(op, node_name, kind, input.unsqueeze(0), kernel, stride, padding, dilation, ceil_mode).squeeze(0);
  const Shape& is = input.shape();
  PoolParams p{};
  static_cast<detail::PoolGeometry&>(p) = detail::pool_geometry(op, is, kernel, stride, padding, dilation, ceil_mode);
  p.kind = kind;
  p.N = is[0];
  p.C = is[1];
  p.H = is[2];
  p.W = is[3];
  const bool record = autograd::should_record({&input});
  p.training = record && kind == PoolKind::Max;

  PoolEntry& e = pool_entry(p);
  Tensor x = input.contiguous();
  Tensor out = make_tensor(Shape{p.N, p.C, p.OH, p.OW}, DType::Float32);
  Tensor ws;
  dn::ThreadScope ts(e.single);
  if (p.training) {
    ws = make_tensor(Shape{dn::float_elems(e.ws)}, DType::Float32);
    dn::execute(e.fwd, e.fwd_scratch,
                {{DNNL_ARG_SRC, &e.src, x.raw_data()}, {DNNL_ARG_DST, &e.dst, out.raw_data()},
                 {DNNL_ARG_WORKSPACE, &e.ws, ws.raw_data()}});
  } else {
    dn::execute(e.fwd, e.fwd_scratch, {{DNNL_ARG_SRC, &e.src, x.raw_data()}, {DNNL_ARG_DST, &e.dst, out.raw_data()}});
  }
  if (!e.fix_h.empty()) apply_fix(e, out.data_ptr<float>());
  if (record) {
    Node* n = autograd::record(node_name, pool_backward, {&input}, out);
    n->ints[0] = reinterpret_cast<std::int64_t>(&e);
    n->shape_a = is;
    if (p.training) n->save(0, ws);
  }
  return out;
}

// ---- adaptive average pooling with PyTorch's variable windows ----

inline std::int64_t start_index(std::int64_t o, std::int64_t out, std::int64_t in) { return (o * in) / out; }
inline std::int64_t end_index(std::int64_t o, std::int64_t out, std::int64_t in) { return ((o + 1) * in + out - 1) / out; }

void adaptive_avg_forward(const float* x, float* y, std::int64_t planes, std::int64_t H, std::int64_t W,
                          std::int64_t OH, std::int64_t OW) {
#pragma omp parallel for if (planes * H * W > 65536)
  for (std::int64_t pl = 0; pl < planes; ++pl) {
    const float* xp = x + pl * H * W;
    float* yp = y + pl * OH * OW;
    for (std::int64_t i = 0; i < OH; ++i) {
      const std::int64_t h0 = start_index(i, OH, H), h1 = end_index(i, OH, H);
      for (std::int64_t j = 0; j < OW; ++j) {
        const std::int64_t w0 = start_index(j, OW, W), w1 = end_index(j, OW, W);
        float s = 0.f;
        for (std::int64_t h = h0; h < h1; ++h)
          for (std::int64_t w = w0; w < w1; ++w) s += xp[h * W + w];
        yp[i * OW + j] = s / static_cast<float>((h1 - h0) * (w1 - w0));
      }
    }
  }
}

void adaptive_avg_backward(const float* g, float* dx, std::int64_t planes, std::int64_t H, std::int64_t W,
                           std::int64_t OH, std::int64_t OW) {
#pragma omp parallel for if (planes * H * W > 65536)
  for (std::int64_t pl = 0; pl < planes; ++pl) {
    float* dp = dx + pl * H * W;
    const float* gp = g + pl * OH * OW;
    std::fill(dp, dp + H * W, 0.f);
    for (std::int64_t i = 0; i < OH; ++i) {
      const std::int64_t h0 = start_index(i, OH, H), h1 = end_index(i, OH, H);
      for (std::int64_t j = 0; j < OW; ++j) {
        const std::int64_t w0 = start_index(j, OW, W), w1 = end_index(j, OW, W);
        const float v = gp[i * OW + j] / static_cast<float>((h1 - h0) * (w1 - w0));
        for (std::int64_t h = h0; h < h1; ++h)
          for (std::int64_t w = w0; w < w1; ++w) dp[h * W + w] += v;
      }
    }
  }
}

}  // namespace

Tensor max_pool2d(const Tensor& input, std::array<std::int64_t, 2> kernel_size, std::array<std::int64_t, 2> stride,
                  std::array<std::int64_t, 2> padding, std::array<std::int64_t, 2> dilation, bool ceil_mode) {
  return pool2d("max_pool2d", "MaxPool2DWithIndicesBackward0", PoolKind::Max, input, kernel_size, stride, padding,
                dilation, ceil_mode);
}

Tensor avg_pool2d(const Tensor& input, std::array<std::int64_t, 2> kernel_size, std::array<std::int64_t, 2> stride,
                  std::array<std::int64_t, 2> padding, bool ceil_mode, bool count_include_pad) {
  return pool2d("avg_pool2d", "AvgPool2DBackward0", count_include_pad ? PoolKind::AvgInclude : PoolKind::AvgExclude,
                input, kernel_size, stride, padding, {1, 1}, ceil_mode);
}

Tensor adaptive_avg_pool2d(const Tensor& input, std::array<std::int64_t, 2> output_size) {
  const char* op = "adaptive_avg_pool2d";
  detail::check_image_input(input, op);
  detail::check_positive(output_size, op, "output_size");
  if (input.ndim() == 3) return adaptive_avg_pool2d(input.unsqueeze(0), output_size).squeeze(0);
  const Shape& is = input.shape();
  const std::int64_t H = is[2], W = is[3], OH = output_size[0], OW = output_size[1];
  if (H % OH == 0 && W % OW == 0) {
    // uniform windows: plain average pooling (the global-pool case of ResNet)
    return pool2d(op, "AdaptiveAvgPool2DBackward0", PoolKind::AvgInclude, input, {H / OH, W / OW}, {H / OH, W / OW},
                  {0, 0}, {1, 1}, false);
  }
  Tensor x = input.contiguous();
  Tensor out = make_tensor(Shape{is[0], is[1], OH, OW}, DType::Float32);
  adaptive_avg_forward(x.data_ptr<float>(), out.data_ptr<float>(), is[0] * is[1], H, W, OH, OW);
  if (autograd::should_record({&input})) {
    Node* n = autograd::record(
        "AdaptiveAvgPool2DBackward0",
        [](Node& n, const Tensor& g, Tensor* gi) {
          Tensor gc = g.contiguous();
          Tensor dx = make_tensor(n.shape_a, DType::Float32);
          const Shape& s = n.shape_a;
          adaptive_avg_backward(gc.data_ptr<float>(), dx.data_ptr<float>(), s[0] * s[1], s[2], s[3], gc.shape()[2],
                                gc.shape()[3]);
          gi[0] = std::move(dx);
        },
        {&input}, out);
    n->shape_a = is;
  }
  return out;
}

}  // namespace krill
