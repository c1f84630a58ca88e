// The cached oneDNN convolution of one configuration (internal): shared by conv2d /
// conv2d_relu (ops_conv.cpp) and the fused conv2d_relu_max_pool2d (ops_conv_pool.cpp).
#pragma once
#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <atomic>
#include <cstdint>

#include "cpu/onednn.hpp"
#include "internal.hpp"

namespace krill::detail {

struct ConvParams {
  std::int64_t N, C, H, W, OC, KH, KW, OH, OW;
  std::int64_t sh, sw, ph, pw, dh, dw, groups;
  bool bias, relu;
  // Whether backward will want the input's gradient: a first layer (input without grad) gets
  // the layout that is fastest without backward-data (see use_channels_last).
  bool need_dx;
};

// Checks the arguments of a 4-D convolution (`op` names it in errors) and returns its
// configuration.
ConvParams conv_params(const char* op, const Tensor& input, const Tensor& weight, const Tensor& bias,
                       std::array<std::int64_t, 2> stride, std::array<std::int64_t, 2> padding,
                       std::array<std::int64_t, 2> dilation, std::int64_t groups, bool relu);

struct ConvEntry : cpu::onednn::Entry {
  ConvParams p{};
  bool blocked = false;
  bool channels_last = false;  // with blocked: activations nhwc, weights oneDNN's choice
  bool single = false;         // small: created and run single-threaded (dn::ThreadScope)
  dnnl::memory::desc src_u, wei_u, bias_u, dst_u;
  dnnl::memory::dims strides, dilates, pad_l, pad_r;
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::primitive fwd;
  dnnl::memory::desc fwd_scratch;
  cpu::onednn::Port fwd_src, fwd_wei, fwd_dst;
  // backward, created on first use (ensure_conv_backward)
  std::atomic<bool> bwd_ready{false};
  dnnl::primitive bwd_data, bwd_wei;
  dnnl::memory::desc bd_scratch, bw_scratch;
  cpu::onednn::Port bd_ddst, bd_wei, bd_dsrc;
  cpu::onednn::Port bw_src, bw_ddst, bw_dwei;
  dnnl::memory::desc bw_dbias;
};

// The entry of a configuration, created on first use; valid for the life of the process.
ConvEntry& conv_entry(const ConvParams& p);
void ensure_conv_backward(ConvEntry& e);

// Runs the forward convolution: `src` in fwd_src.prim's layout, `dst` in fwd_dst.prim's;
// the weights and bias are plain (the weights are reordered here when the primitive wants).
void conv_forward_run(ConvEntry& e, void* src, const Tensor& w, const Tensor& b, void* dst);

struct ConvGrads {
  Tensor dx, dw, db;  // plain NCHW / OIHW / [OC]; undefined where not wanted
};
// Runs backward-data (when want_dx) and backward-weights (when want_dw_db) with diff_dst
// already in each primitive's layout (`ddst_d`, `ddst_w`, which may alias) and the input in
// backward-weights' layout (`src_w`).
ConvGrads conv_backward_run(ConvEntry& e, bool want_dx, bool want_dw_db, void* ddst_d, void* ddst_w, void* src_w,
                            const Tensor& w);

}  // namespace krill::detail
