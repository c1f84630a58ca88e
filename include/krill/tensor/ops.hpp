// Tensor ops with autograd. Each op checks its inputs (errors name the op and the shapes),
// computes its result through the device's kernels and, when grad mode is on and an input
// requires grad, records a backward node. Semantics follow PyTorch (broadcasting, keepdim,
// reduction modes, index types).
#pragma once
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "krill/tensor/tensor.hpp"

namespace krill {

// ---- elementwise binary (broadcasting) ----
Tensor add(const Tensor& a, const Tensor& b, double alpha = 1.0);  // a + alpha * b
Tensor sub(const Tensor& a, const Tensor& b, double alpha = 1.0);  // a - alpha * b
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& exponent);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// scalar forms
Tensor add(const Tensor& a, double s);
Tensor sub(const Tensor& a, double s);
Tensor rsub(const Tensor& a, double s);   // s - a
Tensor mul(const Tensor& a, double s);
Tensor div(const Tensor& a, double s);
Tensor rdiv(const Tensor& a, double s);   // s / a
Tensor pow(const Tensor& a, double exponent);

// ---- comparisons (no grad; result is Bool) ----
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);

// ---- elementwise unary ----
Tensor neg(const Tensor& a);
Tensor abs(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor relu(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor tanh(const Tensor& a);
Tensor clamp(const Tensor& a, double min, double max);

// ---- linear algebra ----
// PyTorch matmul semantics: 1-D/2-D/batched with broadcast batch dims.
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor mm(const Tensor& a, const Tensor& b);
// y = x W^T + b, x [..., in], weight [out, in], bias [out] or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- reductions ----
Tensor sum(const Tensor& a);
Tensor sum(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& a);
Tensor mean(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim = false);
Tensor max(const Tensor& a);  // max of all elements
Tensor min(const Tensor& a);
// (values, indices) along dim, like torch.max(x, dim)
std::pair<Tensor, Tensor> max(const Tensor& a, std::int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& a, std::int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& a);
Tensor argmax(const Tensor& a, std::int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& a, std::int64_t dim, bool keepdim = false);
// Sums `a` down to `shape` (the reverse of broadcasting).
Tensor sum_to(const Tensor& a, const Shape& shape);

// ---- softmax family ----
Tensor softmax(const Tensor& a, std::int64_t dim);
Tensor log_softmax(const Tensor& a, std::int64_t dim);

// ---- joining and indexing ----
Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim = 0);
Tensor index_select(const Tensor& a, std::int64_t dim, const Tensor& index);
Tensor gather(const Tensor& a, std::int64_t dim, const Tensor& index);
// Bool mask -> same dtype as `a`; where(cond, a, b)
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

// ---- losses ----
enum class Reduction { None, Mean, Sum };
// input [N, C] (log-probabilities), target [N] int64 class ids.
Tensor nll_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
                std::int64_t ignore_index = -100);
// log_softmax + nll_loss, over dim 1.
Tensor cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
                     std::int64_t ignore_index = -100);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

// ---- regularisation ----
class Generator;
// Zeroes elements with probability p and scales the rest by 1/(1-p) when `train`; identity otherwise.
Tensor dropout(const Tensor& a, double p, bool train, Generator* gen = nullptr);

// ---- convolution, pooling, normalisation (CNN layers; float32 NCHW, CPU kernels through oneDNN) ----
// PyTorch semantics. `input` is [N, C, H, W] (or [C, H, W], treated as a batch of one); results
// are NCHW contiguous. Gradients flow to input, weight and bias.
// weight [out_channels, in_channels / groups, kH, kW], bias [out_channels] or undefined.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
              std::array<std::int64_t, 2> stride = {1, 1}, std::array<std::int64_t, 2> padding = {0, 0},
              std::array<std::int64_t, 2> dilation = {1, 1}, std::int64_t groups = 1);
// relu(conv2d(...)) as one op (the ReLU is fused into the convolution as a post-op).
Tensor conv2d_relu(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
                   std::array<std::int64_t, 2> stride = {1, 1}, std::array<std::int64_t, 2> padding = {0, 0},
                   std::array<std::int64_t, 2> dilation = {1, 1}, std::int64_t groups = 1);
// max_pool2d(relu(conv2d(...)), pool_kernel, pool_stride, pool_padding) as one op (LeNet's
// conv -> ReLU -> pool): the convolution's output stays in oneDNN's layout for the pooling.
// pool_stride {} means pool_kernel.
Tensor conv2d_relu_max_pool2d(const Tensor& input, const Tensor& weight, const Tensor& bias,
                              std::array<std::int64_t, 2> stride, std::array<std::int64_t, 2> padding,
                              std::array<std::int64_t, 2> dilation, std::int64_t groups,
                              std::array<std::int64_t, 2> pool_kernel, std::array<std::int64_t, 2> pool_stride = {},
                              std::array<std::int64_t, 2> pool_padding = {0, 0});
// stride {} (empty) means stride = kernel_size, as in PyTorch.
Tensor max_pool2d(const Tensor& input, std::array<std::int64_t, 2> kernel_size, std::array<std::int64_t, 2> stride = {},
                  std::array<std::int64_t, 2> padding = {0, 0}, std::array<std::int64_t, 2> dilation = {1, 1},
                  bool ceil_mode = false);
Tensor avg_pool2d(const Tensor& input, std::array<std::int64_t, 2> kernel_size, std::array<std::int64_t, 2> stride = {},
                  std::array<std::int64_t, 2> padding = {0, 0}, bool ceil_mode = false, bool count_include_pad = true);
// PyTorch's adaptive windows: output cell i covers [floor(i*H/oh), ceil((i+1)*H/oh)).
Tensor adaptive_avg_pool2d(const Tensor& input, std::array<std::int64_t, 2> output_size);
// input [N, C, ...] (2-D to 5-D); running_mean/running_var [C] or undefined; weight/bias [C] or
// undefined. training: normalises with the batch statistics and, when running stats are given,
// updates them in place (running_var with the unbiased variance, like PyTorch); otherwise
// normalises with the running stats.
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                  double momentum = 0.1, double eps = 1e-5);
// relu(batch_norm(...)) as one op: in training mode the ReLU is fused into oneDNN's batch
// normalisation (forward and backward, a bitmask workspace instead of a saved output).
Tensor batch_norm_relu(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                       double momentum = 0.1, double eps = 1e-5);

// ---- view functions (same as the Tensor methods) ----
Tensor reshape(const Tensor& a, const Shape& shape);
Tensor transpose(const Tensor& a, std::int64_t d0, std::int64_t d1);
Tensor permute(const Tensor& a, const Shape& dims);
Tensor flatten(const Tensor& a, std::int64_t start_dim = 0, std::int64_t end_dim = -1);

// ---- comparison helpers for tests and tools ----
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
bool equal(const Tensor& a, const Tensor& b);

}  // namespace krill
