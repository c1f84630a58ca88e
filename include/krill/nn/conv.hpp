// CNN layers: Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, BatchNorm2d, with PyTorch's
// constructor arguments, state-dict names, print(model) text and default initialisation.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "krill/nn/module.hpp"

namespace krill {
class Generator;
}

namespace krill::nn {

// A size argument given as one number (applies to both dims, printed `2` like PyTorch's
// pooling modules print it) or as a pair (printed `(2, 3)`).
struct IntOrPair {
  IntOrPair(std::int64_t v) : value{v, v}, single(true) {}  // NOLINT: implicit like PyTorch's int
  IntOrPair(std::int64_t h, std::int64_t w) : value{h, w}, single(false) {}
  IntOrPair(std::array<std::int64_t, 2> hw) : value(hw), single(false) {}  // NOLINT
  std::array<std::int64_t, 2> value;
  bool single;
  std::int64_t operator[](int i) const { return value[static_cast<std::size_t>(i)]; }
  // "2" or "(2, 3)"
  std::string repr() const;
};

struct Conv2dOptions {
  Conv2dOptions(std::int64_t in_channels, std::int64_t out_channels, IntOrPair kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size.value) {}
  Conv2dOptions& stride(IntOrPair v) { stride_ = v.value; return *this; }
  Conv2dOptions& padding(IntOrPair v) { padding_ = v.value; return *this; }
  Conv2dOptions& dilation(IntOrPair v) { dilation_ = v.value; return *this; }
  Conv2dOptions& groups(std::int64_t v) { groups_ = v; return *this; }
  Conv2dOptions& bias(bool v) { bias_ = v; return *this; }

  std::int64_t in_channels_, out_channels_;
  std::array<std::int64_t, 2> kernel_size_;
  std::array<std::int64_t, 2> stride_{1, 1}, padding_{0, 0}, dilation_{1, 1};
  std::int64_t groups_ = 1;
  bool bias_ = true;
};

// Parameters `weight` [out, in/groups, kH, kW] and `bias` [out] (when bias(true)). Initialised
// like PyTorch: weight kaiming-uniform(a=sqrt(5)), bias uniform(+-1/sqrt(fan_in)), fan_in =
// in/groups * kH * kW, drawn from `gen` (default generator when null).
class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options, Generator* gen = nullptr);
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, IntOrPair kernel_size, Generator* gen = nullptr)
      : Conv2d(Conv2dOptions(in_channels, out_channels, kernel_size), gen) {}
  Tensor forward(const Tensor& x) override;
  void reset_parameters(Generator* gen = nullptr);
  std::string extra_repr() const override;

  Conv2dOptions options;
  Tensor weight, bias;
};

struct MaxPool2dOptions {
  MaxPool2dOptions(IntOrPair kernel_size) : kernel_size_(kernel_size) {}  // NOLINT
  MaxPool2dOptions& stride(IntOrPair v) { stride_ = v; return *this; }
  MaxPool2dOptions& padding(IntOrPair v) { padding_ = v; return *this; }
  MaxPool2dOptions& dilation(IntOrPair v) { dilation_ = v; return *this; }
  MaxPool2dOptions& ceil_mode(bool v) { ceil_mode_ = v; return *this; }

  IntOrPair kernel_size_;
  std::optional<IntOrPair> stride_;  // none: the kernel size
  IntOrPair padding_ = 0, dilation_ = 1;
  bool ceil_mode_ = false;
};

class MaxPool2d : public Module {
 public:
  MaxPool2d(const MaxPool2dOptions& options) : Module("MaxPool2d"), options(options) {}  // NOLINT
  MaxPool2d(IntOrPair kernel_size) : MaxPool2d(MaxPool2dOptions(kernel_size)) {}  // NOLINT
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  MaxPool2dOptions options;
};

struct AvgPool2dOptions {
  AvgPool2dOptions(IntOrPair kernel_size) : kernel_size_(kernel_size) {}  // NOLINT
  AvgPool2dOptions& stride(IntOrPair v) { stride_ = v; return *this; }
  AvgPool2dOptions& padding(IntOrPair v) { padding_ = v; return *this; }
  AvgPool2dOptions& ceil_mode(bool v) { ceil_mode_ = v; return *this; }
  AvgPool2dOptions& count_include_pad(bool v) { count_include_pad_ = v; return *this; }

  IntOrPair kernel_size_;
  std::optional<IntOrPair> stride_;  // none: the kernel size
  IntOrPair padding_ = 0;
  bool ceil_mode_ = false, count_include_pad_ = true;
};

class AvgPool2d : public Module {
 public:
  AvgPool2d(const AvgPool2dOptions& options) : Module("AvgPool2d"), options(options) {}  // NOLINT
  AvgPool2d(IntOrPair kernel_size) : AvgPool2d(AvgPool2dOptions(kernel_size)) {}  // NOLINT
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  AvgPool2dOptions options;
};

class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d(IntOrPair output_size) : Module("AdaptiveAvgPool2d"), output_size(output_size) {}  // NOLINT
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  IntOrPair output_size;
};

// Parameters weight (ones) and bias (zeros) when affine; buffers running_mean (zeros),
// running_var (ones) and num_batches_tracked (int64 0-d) when track_running_stats, in PyTorch's
// state-dict order. Training mode normalises with batch statistics and updates the running
// stats (momentum none: cumulative average over num_batches_tracked); eval mode uses them.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(std::int64_t num_features, double eps = 1e-5, std::optional<double> momentum = 0.1,
                       bool affine = true, bool track_running_stats = true);
  Tensor forward(const Tensor& x) override;
  // relu(forward(x)) as one fused op (batch_norm_relu); the models use it for bn -> relu.
  Tensor forward_relu(const Tensor& x);
  void reset_running_stats();
  void reset_parameters();
  std::string extra_repr() const override;

  std::int64_t num_features;
  double eps;
  std::optional<double> momentum;
  bool affine, track_running_stats;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  Tensor forward_impl(const Tensor& x, bool fuse_relu);
};

}  // namespace krill::nn
