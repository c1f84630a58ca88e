#include "krill/nn/models/lenet.hpp"

#include "common.hpp"

namespace krill::nn {

namespace {
// Output side of a 5x5 valid convolution followed by a 2x2 pool of stride 2.
std::int64_t conv_pool(std::int64_t size) { return (size - 4) / 2; }

// pool(relu(conv(x))) as one op when the pool allows it (conv2d_relu_max_pool2d)
Tensor conv_relu_pool(const Conv2d& c, MaxPool2d& pool, const Tensor& x) {
  const auto& o = c.options;
  const auto& po = pool.options;
  if (po.dilation_.value != std::array<std::int64_t, 2>{1, 1} || po.ceil_mode_)
    return pool.forward(conv2d_relu(x, c.weight, c.bias, o.stride_, o.padding_, o.dilation_, o.groups_));
  return conv2d_relu_max_pool2d(x, c.weight, c.bias, o.stride_, o.padding_, o.dilation_, o.groups_,
                                po.kernel_size_.value, po.stride_ ? po.stride_->value : po.kernel_size_.value,
                                po.padding_.value);
}
}  // namespace

LeNet::LeNet(std::int64_t in_channels, std::int64_t height, std::int64_t width, std::int64_t num_classes,
             Generator* gen)
    : Module("LeNet") {
  detail::check_positive("lenet", "in_channels", in_channels);
  detail::check_positive("lenet", "num_classes", num_classes);
  if (height < kMinImageSize || width < kMinImageSize)
    throw ValueError("lenet: images of " + std::to_string(height) + "x" + std::to_string(width) +
                     " pixels are too small; lenet needs at least " + std::to_string(kMinImageSize) + "x" +
                     std::to_string(kMinImageSize) + " (two 5x5 convolutions and two 2x2 pools, after padding by 2)");
  const std::int64_t pad = conv1_padding(height, width);
  const std::int64_t h = conv_pool(conv_pool(height + 2 * pad)), w = conv_pool(conv_pool(width + 2 * pad));
  // The tutorial's construction order (its draws under manual_seed): conv1, pool, conv2, fc1..fc3.
  conv1 = register_module("conv1", std::make_shared<Conv2d>(Conv2dOptions(in_channels, 6, 5).padding(pad), gen));
  pool = register_module("pool", std::make_shared<MaxPool2d>(MaxPool2dOptions(2).stride(2)));
  conv2 = register_module("conv2", std::make_shared<Conv2d>(6, 16, 5, gen));
  fc1 = register_module("fc1", std::make_shared<Linear>(16 * h * w, 120, true, gen));
  fc2 = register_module("fc2", std::make_shared<Linear>(120, 84, true, gen));
  fc3 = register_module("fc3", std::make_shared<Linear>(84, num_classes, true, gen));
}

Tensor LeNet::forward(const Tensor& x) {
  Tensor h = conv_relu_pool(*conv1, *pool, x);
  h = conv_relu_pool(*conv2, *pool, h);
  h = flatten(h, 1);
  h = relu(fc1->forward(h));
  h = relu(fc2->forward(h));
  return fc3->forward(h);
}

}  // namespace krill::nn
