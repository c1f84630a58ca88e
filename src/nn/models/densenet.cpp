#include "krill/nn/models/densenet.hpp"

#include "common.hpp"

namespace krill::nn {

using detail::conv;
using detail::InplaceReLU;

DenseLayer::DenseLayer(std::int64_t num_input_features, std::int64_t growth_rate, std::int64_t bn_size, Generator* gen)
    : Module("_DenseLayer") {
  norm1 = register_module("norm1", std::make_shared<BatchNorm2d>(num_input_features));
  register_module("relu1", std::make_shared<InplaceReLU>());
  conv1 = register_module("conv1", conv(num_input_features, bn_size * growth_rate, 1, 1, 0, gen));
  norm2 = register_module("norm2", std::make_shared<BatchNorm2d>(bn_size * growth_rate));
  register_module("relu2", std::make_shared<InplaceReLU>());
  conv2 = register_module("conv2", conv(bn_size * growth_rate, growth_rate, 3, 1, 1, gen));
}

Tensor DenseLayer::forward(const std::vector<Tensor>& inputs) {
  const Tensor concat = inputs.size() == 1 ? inputs[0] : cat(inputs, 1);
  const Tensor bottleneck = conv1->forward(norm1->forward_relu(concat));
  return conv2->forward(norm2->forward_relu(bottleneck));
}

Tensor DenseLayer::forward(const Tensor& x) { return forward(std::vector<Tensor>{x}); }

DenseBlock::DenseBlock(std::int64_t num_layers, std::int64_t num_input_features, std::int64_t bn_size,
                       std::int64_t growth_rate, Generator* gen)
    : Module("_DenseBlock") {
  for (std::int64_t i = 0; i < num_layers; ++i)
    layers.push_back(register_module("denselayer" + std::to_string(i + 1),
                                     std::make_shared<DenseLayer>(num_input_features + i * growth_rate, growth_rate,
                                                                  bn_size, gen)));
}

Tensor DenseBlock::forward(const Tensor& x) {
  std::vector<Tensor> features;
  features.reserve(layers.size() + 1);
  features.push_back(x);
  for (const auto& layer : layers) features.push_back(layer->forward(features));
  return cat(features, 1);
}

Transition::Transition(std::int64_t num_input_features, std::int64_t num_output_features, Generator* gen)
    : Module("_Transition") {
  norm = register_module("norm", std::make_shared<BatchNorm2d>(num_input_features));
  register_module("relu", std::make_shared<InplaceReLU>());
  conv = register_module("conv", detail::conv(num_input_features, num_output_features, 1, 1, 0, gen));
  pool = register_module("pool", std::make_shared<AvgPool2d>(AvgPool2dOptions(2).stride(2)));
}

Tensor Transition::forward(const Tensor& x) {
  return pool->forward(conv->forward(norm->forward_relu(x)));
}

DenseNet::DenseNet(std::int64_t growth_rate, const std::vector<std::int64_t>& block_config,
                   std::int64_t num_init_features, std::int64_t bn_size, std::int64_t in_channels,
                   std::int64_t num_classes, Generator* gen)
    : Module("DenseNet") {
  detail::check_positive("DenseNet", "in_channels", in_channels);
  detail::check_positive("DenseNet", "num_classes", num_classes);
  detail::check_positive("DenseNet", "growth_rate", growth_rate);
  detail::check_positive("DenseNet", "num_init_features", num_init_features);
  detail::check_positive("DenseNet", "bn_size", bn_size);
  if (block_config.empty()) throw ValueError("DenseNet: block_config must name at least one block");
  for (std::int64_t n : block_config) detail::check_positive("DenseNet", "every block's number of layers", n);

  features = register_module("features", std::make_shared<Sequential>());
  features->push_back("conv0", conv(in_channels, num_init_features, 7, 2, 3, gen));
  features->push_back("norm0", std::make_shared<BatchNorm2d>(num_init_features));
  features->push_back("relu0", std::make_shared<InplaceReLU>());
  features->push_back("pool0", std::make_shared<MaxPool2d>(MaxPool2dOptions(3).stride(2).padding(1)));
  std::int64_t num_features = num_init_features;
  for (std::size_t i = 0; i < block_config.size(); ++i) {
    const std::string n = std::to_string(i + 1);
    features->push_back("denseblock" + n,
                        std::make_shared<DenseBlock>(block_config[i], num_features, bn_size, growth_rate, gen));
    num_features += block_config[i] * growth_rate;
    if (i + 1 != block_config.size()) {
      features->push_back("transition" + n, std::make_shared<Transition>(num_features, num_features / 2, gen));
      num_features /= 2;
    }
  }
  features->push_back("norm5", std::make_shared<BatchNorm2d>(num_features));
  classifier = register_module("classifier", std::make_shared<Linear>(num_features, num_classes, true, gen));

  // torchvision: Conv2d -> kaiming_normal_ (fan_in, leaky_relu a=0: gain sqrt(2)); BN -> 1, 0;
  // Linear -> bias 0.
  for (auto& [name, m] : named_modules()) {
    if (auto* c = dynamic_cast<Conv2d*>(m.get())) {
      init::kaiming_normal_(c->weight, 0.0, "fan_in", "leaky_relu", gen);
    } else if (auto* bn = dynamic_cast<BatchNorm2d*>(m.get())) {
      init::ones_(bn->weight);
      init::zeros_(bn->bias);
    } else if (auto* l = dynamic_cast<Linear*>(m.get())) {
      init::zeros_(l->bias);
    }
  }
}

std::int64_t DenseNet::in_channels() const {
  return std::static_pointer_cast<Conv2d>((*features)[0])->options.in_channels_;
}

Tensor DenseNet::forward(const Tensor& x) {
  Tensor h = relu(features->forward(x));
  h = flatten(adaptive_avg_pool2d(h, {1, 1}), 1);
  return classifier->forward(h);
}

std::shared_ptr<DenseNet> densenet121(std::int64_t in_channels, std::int64_t num_classes, Generator* gen) {
  return std::make_shared<DenseNet>(32, std::vector<std::int64_t>{6, 12, 24, 16}, 64, 4, in_channels, num_classes, gen);
}

}  // namespace krill::nn
