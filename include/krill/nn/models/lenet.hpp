// LeNet: the PyTorch CIFAR-10 tutorial's convolutional net, adapted to the data's channels and
// image size:
//
//   conv1  Conv2d(in_channels, 6, 5, padding=p) -> ReLU -> pool (MaxPool2d(2, 2))
//   conv2  Conv2d(6, 16, 5)          -> ReLU -> pool
//   flatten -> fc1 Linear(16 * h * w, 120) -> ReLU -> fc2 Linear(120, 84) -> ReLU -> fc3 Linear(84, classes)
//
// p = 2 for images under 32 px (LeNet-5 on 28x28 MNIST: the tutorial's 32x32 geometry, and the
// layout PyTorch's Fashion-MNIST LeNet uses), else 0; h, w = ((size + 2p - 4) / 2 - 4) / 2
// (floors): 5x5 at 32 px (CIFAR-10) and at 28 px (Fashion-MNIST): fc1 400 -> 120. State-dict names conv1/conv2/fc1/fc2/fc3 and PyTorch's default
// initialisation in the tutorial's construction order (conv1, conv2, fc1, fc2, fc3), so
// manual_seed(s) gives the tutorial net's weights. forward returns logits; the convolutions
// run with their ReLU fused (conv2d_relu).
#pragma once
#include <algorithm>
#include <memory>

#include "krill/nn/conv.hpp"
#include "krill/nn/layers.hpp"

namespace krill::nn {

class LeNet : public Module {
 public:
  // Smallest height/width LeNet accepts: both 5x5 convolutions and both 2x2 pools must leave at
  // least one pixel (12 px padded by 2: (16 - 4) / 2 = 6, 6 - 4 = 2, 2 / 2 = 1).
  static constexpr std::int64_t kMinImageSize = 12;
  // conv1's padding for images of height x width.
  static std::int64_t conv1_padding(std::int64_t height, std::int64_t width) { return std::min(height, width) < 32 ? 2 : 0; }

  // Throws ValueError for non-positive channels/classes or an image smaller than kMinImageSize
  // (the message names the minimum).
  LeNet(std::int64_t in_channels = 3, std::int64_t height = 32, std::int64_t width = 32, std::int64_t num_classes = 10,
        Generator* gen = nullptr);
  // x: [N, in_channels, height, width] (other sizes >= kMinImageSize give a shape error at fc1
  // unless they pool to the same h x w) -> logits [N, num_classes].
  Tensor forward(const Tensor& x) override;

  std::int64_t in_channels() const { return conv1->options.in_channels_; }
  std::int64_t num_classes() const { return fc3->out_features; }

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<MaxPool2d> pool;
  std::shared_ptr<Conv2d> conv2;
  std::shared_ptr<Linear> fc1, fc2, fc3;
};

}  // namespace krill::nn
