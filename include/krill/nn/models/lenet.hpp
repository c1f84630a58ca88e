// LeNet: the PyTorch CIFAR-10 tutorial's convolutional net, adapted to the data's channels and
// image size:
//
//   conv1  Conv2d(in_channels, 6, 5) -> ReLU -> pool (MaxPool2d(2, 2))
//   conv2  Conv2d(6, 16, 5)          -> ReLU -> pool
//   flatten -> fc1 Linear(16 * h * w, 120) -> ReLU -> fc2 Linear(120, 84) -> ReLU -> fc3 Linear(84, classes)
//
// h, w = ((size - 4) / 2 - 4) / 2 (floors): 5x5 at 32 px (CIFAR-10: fc1 400 -> 120), 4x4 at 28 px
// (Fashion-MNIST: 256 -> 120). State-dict names conv1/conv2/fc1/fc2/fc3 and PyTorch's default
// initialisation in the tutorial's construction order (conv1, conv2, fc1, fc2, fc3), so
// manual_seed(s) gives the tutorial net's weights. forward returns logits; the convolutions
// run with their ReLU fused (conv2d_relu).
#pragma once
#include <memory>

#include "krill/nn/conv.hpp"
#include "krill/nn/layers.hpp"

namespace krill::nn {

class LeNet : public Module {
 public:
  // Smallest height/width LeNet accepts: both 5x5 convolutions and both 2x2 pools must leave at
  // least one pixel ((16 - 4) / 2 = 6, 6 - 4 = 2, 2 / 2 = 1).
  static constexpr std::int64_t kMinImageSize = 16;

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
