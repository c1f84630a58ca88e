#include "krill/nn/conv.hpp"

#include <charconv>
#include <cmath>

#include "krill/autograd/grad_mode.hpp"
#include "krill/nn/init.hpp"
#include "krill/tensor/ops.hpp"
#include "py_repr.hpp"

namespace krill::nn {

using detail::py_bool;
using detail::py_float;

namespace {



std::string tuple(std::array<std::int64_t, 2> v) {
  return "(" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + ")";
}

}  // namespace

std::string IntOrPair::repr() const { return single ? std::to_string(value[0]) : tuple(value); }

// ---- Conv2d ----

Conv2d::Conv2d(const Conv2dOptions& o, Generator* gen) : Module("Conv2d"), options(o) {
  if (o.in_channels_ <= 0 || o.out_channels_ <= 0)
    throw ValueError("Conv2d: in_channels and out_channels must be positive, got " + std::to_string(o.in_channels_) +
                     " and " + std::to_string(o.out_channels_));
  if (o.groups_ <= 0 || o.in_channels_ % o.groups_ != 0 || o.out_channels_ % o.groups_ != 0)
    throw ValueError("Conv2d: groups=" + std::to_string(o.groups_) + " must be positive and divide in_channels=" +
                     std::to_string(o.in_channels_) + " and out_channels=" + std::to_string(o.out_channels_));
  auto positive = [](std::array<std::int64_t, 2> v, std::int64_t min, const char* what) {
    if (v[0] < min || v[1] < min)
      throw ValueError(std::string("Conv2d: ") + what + " must be " + (min ? "positive" : "non-negative") + ", got " +
                       tuple(v));
  };
  positive(o.kernel_size_, 1, "kernel_size");
  positive(o.stride_, 1, "stride");
  positive(o.padding_, 0, "padding");
  positive(o.dilation_, 1, "dilation");
  weight = register_parameter(
      "weight", empty({o.out_channels_, o.in_channels_ / o.groups_, o.kernel_size_[0], o.kernel_size_[1]}));
  if (o.bias_) bias = register_parameter("bias", empty({o.out_channels_}));
  reset_parameters(gen);
}

void Conv2d::reset_parameters(Generator* gen) {
  // PyTorch's _ConvNd.reset_parameters: kaiming_uniform_(weight, a=sqrt(5)), then bias ~
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  init::kaiming_uniform_(weight, std::sqrt(5.0), "fan_in", "leaky_relu", gen);
  if (bias.defined()) {
    const auto fan_in = init::calculate_fan_in_and_fan_out(weight).first;
    if (fan_in != 0) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
      init::uniform_(bias, -bound, bound, gen);
    }
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight, bias, options.stride_, options.padding_, options.dilation_, options.groups_);
}

std::string Conv2d::extra_repr() const {
  const auto& o = options;
  std::string s = std::to_string(o.in_channels_) + ", " + std::to_string(o.out_channels_) +
                  ", kernel_size=" + tuple(o.kernel_size_) + ", stride=" + tuple(o.stride_);
  if (o.padding_ != std::array<std::int64_t, 2>{0, 0}) s += ", padding=" + tuple(o.padding_);
  if (o.dilation_ != std::array<std::int64_t, 2>{1, 1}) s += ", dilation=" + tuple(o.dilation_);
  if (o.groups_ != 1) s += ", groups=" + std::to_string(o.groups_);
  if (!bias.defined()) s += ", bias=False";
  return s;
}

// ---- pooling ----

Tensor MaxPool2d::forward(const Tensor& x) {
  const auto& o = options;
  return max_pool2d(x, o.kernel_size_.value, o.stride_ ? o.stride_->value : o.kernel_size_.value, o.padding_.value,
                    o.dilation_.value, o.ceil_mode_);
}

std::string MaxPool2d::extra_repr() const {
  const auto& o = options;
  return "kernel_size=" + o.kernel_size_.repr() + ", stride=" + (o.stride_ ? o.stride_->repr() : o.kernel_size_.repr()) +
         ", padding=" + o.padding_.repr() + ", dilation=" + o.dilation_.repr() + ", ceil_mode=" + py_bool(o.ceil_mode_);
}

Tensor AvgPool2d::forward(const Tensor& x) {
  const auto& o = options;
  return avg_pool2d(x, o.kernel_size_.value, o.stride_ ? o.stride_->value : o.kernel_size_.value, o.padding_.value,
                    o.ceil_mode_, o.count_include_pad_);
}

std::string AvgPool2d::extra_repr() const {
  const auto& o = options;
  return "kernel_size=" + o.kernel_size_.repr() + ", stride=" + (o.stride_ ? o.stride_->repr() : o.kernel_size_.repr()) +
         ", padding=" + o.padding_.repr();
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, output_size.value); }

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + output_size.repr(); }

// ---- BatchNorm2d ----

BatchNorm2d::BatchNorm2d(std::int64_t num_features, double eps, std::optional<double> momentum, bool affine,
                         bool track_running_stats)
    : Module("BatchNorm2d"),
      num_features(num_features),
      eps(eps),
      momentum(momentum),
      affine(affine),
      track_running_stats(track_running_stats) {
  if (num_features <= 0)
    throw ValueError("BatchNorm2d: num_features must be positive, got " + std::to_string(num_features));
  if (affine) {
    weight = register_parameter("weight", empty({num_features}));
    bias = register_parameter("bias", empty({num_features}));
  }
  if (track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({num_features}));
    running_var = register_buffer("running_var", ones({num_features}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros(Shape{}, TensorOptions(DType::Int64)));
  }
  reset_parameters();
}

void BatchNorm2d::reset_running_stats() {
  if (!track_running_stats) return;
  NoGradGuard g;
  running_mean.zero_();
  running_var.fill_(1.0);
  num_batches_tracked.zero_();
}

void BatchNorm2d::reset_parameters() {
  reset_running_stats();
  if (affine) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) { return forward_impl(x, false); }

Tensor BatchNorm2d::forward_relu(const Tensor& x) { return forward_impl(x, true); }

Tensor BatchNorm2d::forward_impl(const Tensor& x, bool fuse_relu) {
  if (x.defined() && x.ndim() != 4)
    throw ValueError("BatchNorm2d: expected a 4-D input [N, C, H, W], got " + x.shape().str());
  if (x.defined() && x.shape()[1] != num_features)
    throw ValueError("BatchNorm2d: input " + x.shape().str() + " has " + std::to_string(x.shape()[1]) +
                     " channels, the layer was built for num_features=" + std::to_string(num_features));
  double factor = momentum.value_or(0.0);
  if (is_training() && track_running_stats) {
    // num_batches_tracked += 1 (in place, like PyTorch)
    num_batches_tracked.data_ptr<std::int64_t>()[0] += 1;
    num_batches_tracked.bump_version();
    if (!momentum) factor = 1.0 / static_cast<double>(num_batches_tracked.data_ptr<std::int64_t>()[0]);
  }
  const bool use_batch_stats = is_training() || !running_mean.defined();
  const bool pass_stats = !is_training() || track_running_stats;
  return (fuse_relu ? batch_norm_relu : batch_norm)(x, pass_stats ? running_mean : Tensor(),
                                                   pass_stats ? running_var : Tensor(), weight, bias,
                                                   use_batch_stats, factor, eps);
}

std::string BatchNorm2d::extra_repr() const {
  return std::to_string(num_features) + ", eps=" + py_float(eps) +
         ", momentum=" + (momentum ? py_float(*momentum) : std::string("None")) + ", affine=" + py_bool(affine) +
         ", track_running_stats=" + py_bool(track_running_stats);
}

}  // namespace krill::nn
