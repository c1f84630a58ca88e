// DenseNet-121 with torchvision 0.14's module structure, state-dict names and order,
// print(model) text and initialisation (growth rate 32, bn_size 4, blocks (6, 12, 24, 16),
// 64 initial features, no dropout):
//
//   features: conv0 (7x7/2, in_channels -> 64, no bias), norm0, relu0, pool0 (3x3/2, pad 1),
//             denseblock1, transition1, ..., transition3, denseblock4, norm5
//   classifier: Linear(1024, num_classes)
//   forward: relu(features(x)) -> adaptive avg pool 1x1 -> flatten -> classifier
//
// A _DenseLayer maps the concatenation of all earlier features of its block through
// norm1 -> relu1 -> conv1 (1x1, bn_size * growth) -> norm2 -> relu2 -> conv2 (3x3, growth);
// a _Transition halves channels and size (norm, relu, conv 1x1, pool AvgPool2d(2, 2)).
// Initialisation as torchvision: defaults first, then in self.modules() order every Conv2d
// weight kaiming_normal_ (fan_in, gain sqrt(2)), BatchNorm2d 1/0, Linear bias 0 (the weight
// keeps Linear's default) — manual_seed(s) gives torchvision's weights draw for draw.
#pragma once
#include <memory>
#include <vector>

#include "krill/nn/conv.hpp"
#include "krill/nn/layers.hpp"

namespace krill::nn {

class DenseLayer : public Module {
 public:
  DenseLayer(std::int64_t num_input_features, std::int64_t growth_rate, std::int64_t bn_size, Generator* gen = nullptr);
  // The block's features so far (concatenated along channels) -> growth_rate new channels.
  Tensor forward(const std::vector<Tensor>& inputs);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<BatchNorm2d> norm1;
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> norm2;
  std::shared_ptr<Conv2d> conv2;
};

class DenseBlock : public Module {
 public:
  DenseBlock(std::int64_t num_layers, std::int64_t num_input_features, std::int64_t bn_size, std::int64_t growth_rate,
             Generator* gen = nullptr);
  // x -> cat([x, new_1, ..., new_L], 1)
  Tensor forward(const Tensor& x) override;

  std::vector<std::shared_ptr<DenseLayer>> layers;
};

class Transition : public Module {
 public:
  Transition(std::int64_t num_input_features, std::int64_t num_output_features, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<BatchNorm2d> norm;
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<AvgPool2d> pool;
};

class DenseNet : public Module {
 public:
  DenseNet(std::int64_t growth_rate, const std::vector<std::int64_t>& block_config, std::int64_t num_init_features,
           std::int64_t bn_size, std::int64_t in_channels = 3, std::int64_t num_classes = 1000, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;

  std::int64_t in_channels() const;
  std::int64_t num_classes() const { return classifier->out_features; }

  std::shared_ptr<Sequential> features;
  std::shared_ptr<Linear> classifier;
};

std::shared_ptr<DenseNet> densenet121(std::int64_t in_channels = 3, std::int64_t num_classes = 1000,
                                      Generator* gen = nullptr);

}  // namespace krill::nn
