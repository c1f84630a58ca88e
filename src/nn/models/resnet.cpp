#include "krill/nn/models/resnet.hpp"

#include "common.hpp"

namespace krill::nn {

using detail::conv;
using detail::InplaceReLU;

BasicBlock::BasicBlock(std::int64_t inplanes, std::int64_t planes, std::int64_t stride,
                       std::shared_ptr<Sequential> ds, Generator* gen)
    : Module("BasicBlock") {
  conv1 = register_module("conv1", conv(inplanes, planes, 3, stride, 1, gen));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  register_module("relu", std::make_shared<InplaceReLU>());
  conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1, gen));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
  if (ds) downsample = register_module("downsample", std::move(ds));
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = bn1->forward_relu(conv1->forward(x));
  out = bn2->forward(conv2->forward(out));
  return relu(add(out, downsample ? downsample->forward(x) : x));
}

Bottleneck::Bottleneck(std::int64_t inplanes, std::int64_t planes, std::int64_t stride,
                       std::shared_ptr<Sequential> ds, Generator* gen)
    : Module("Bottleneck") {
  const std::int64_t width = planes;  // groups 1, base width 64
  conv1 = register_module("conv1", conv(inplanes, width, 1, 1, 0, gen));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(width));
  conv2 = register_module("conv2", conv(width, width, 3, stride, 1, gen));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(width));
  conv3 = register_module("conv3", conv(width, planes * expansion, 1, 1, 0, gen));
  bn3 = register_module("bn3", std::make_shared<BatchNorm2d>(planes * expansion));
  register_module("relu", std::make_shared<InplaceReLU>());
  if (ds) downsample = register_module("downsample", std::move(ds));
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor out = bn1->forward_relu(conv1->forward(x));
  out = bn2->forward_relu(conv2->forward(out));
  out = bn3->forward(conv3->forward(out));
  return relu(add(out, downsample ? downsample->forward(x) : x));
}

namespace {

// torchvision's ResNet._make_layer: the downsample path is built (and draws its default
// initialisation) before the first block.
template <typename Block>
std::shared_ptr<Sequential> make_layer(std::int64_t& inplanes, std::int64_t planes, std::int64_t blocks,
                                       std::int64_t stride, Generator* gen) {
  std::shared_ptr<Sequential> ds;
  if (stride != 1 || inplanes != planes * Block::expansion) {
    ds = std::make_shared<Sequential>();
    ds->push_back(conv(inplanes, planes * Block::expansion, 1, stride, 0, gen));
    ds->push_back(std::make_shared<BatchNorm2d>(planes * Block::expansion));
  }
  auto layer = std::make_shared<Sequential>();
  layer->push_back(std::make_shared<Block>(inplanes, planes, stride, std::move(ds), gen));
  inplanes = planes * Block::expansion;
  for (std::int64_t i = 1; i < blocks; ++i) layer->push_back(std::make_shared<Block>(inplanes, planes, 1, nullptr, gen));
  return layer;
}

}  // namespace

ResNet::ResNet(ResNetBlock block, const std::vector<std::int64_t>& layers, std::int64_t in_channels,
               std::int64_t num_classes, Generator* gen)
    : Module("ResNet") {
  detail::check_positive("ResNet", "in_channels", in_channels);
  detail::check_positive("ResNet", "num_classes", num_classes);
  if (layers.size() != 4) throw ValueError("ResNet: expected 4 stage sizes, got " + std::to_string(layers.size()));
  for (std::int64_t n : layers) detail::check_positive("ResNet", "every stage's number of blocks", n);

  std::int64_t inplanes = 64;
  conv1 = register_module("conv1", conv(in_channels, inplanes, 7, 2, 3, gen));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(inplanes));
  register_module("relu", std::make_shared<InplaceReLU>());
  maxpool = register_module("maxpool", std::make_shared<MaxPool2d>(MaxPool2dOptions(3).stride(2).padding(1)));
  const bool basic = block == ResNetBlock::Basic;
  auto stage = [&](std::int64_t planes, std::int64_t blocks, std::int64_t stride) {
    return basic ? make_layer<BasicBlock>(inplanes, planes, blocks, stride, gen)
                 : make_layer<Bottleneck>(inplanes, planes, blocks, stride, gen);
  };
  layer1 = register_module("layer1", stage(64, layers[0], 1));
  layer2 = register_module("layer2", stage(128, layers[1], 2));
  layer3 = register_module("layer3", stage(256, layers[2], 2));
  layer4 = register_module("layer4", stage(512, layers[3], 2));
  avgpool = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(IntOrPair(1, 1)));
  fc = register_module("fc", std::make_shared<Linear>(inplanes, num_classes, true, gen));

  // torchvision: for m in self.modules(): Conv2d -> kaiming_normal_(fan_out, relu); BN -> 1, 0.
  for (auto& [name, m] : named_modules()) {
    if (auto* c = dynamic_cast<Conv2d*>(m.get())) {
      init::kaiming_normal_(c->weight, 0.0, "fan_out", "relu", gen);
    } else if (auto* bn = dynamic_cast<BatchNorm2d*>(m.get())) {
      init::ones_(bn->weight);
      init::zeros_(bn->bias);
    }
  }
}

Tensor ResNet::forward(const Tensor& x) {
  Tensor h = bn1->forward_relu(conv1->forward(x));
  h = maxpool->forward(h);
  h = layer1->forward(h);
  h = layer2->forward(h);
  h = layer3->forward(h);
  h = layer4->forward(h);
  h = flatten(avgpool->forward(h), 1);
  return fc->forward(h);
}

std::shared_ptr<ResNet> resnet18(std::int64_t in_channels, std::int64_t num_classes, Generator* gen) {
  return std::make_shared<ResNet>(ResNetBlock::Basic, std::vector<std::int64_t>{2, 2, 2, 2}, in_channels, num_classes, gen);
}
std::shared_ptr<ResNet> resnet34(std::int64_t in_channels, std::int64_t num_classes, Generator* gen) {
  return std::make_shared<ResNet>(ResNetBlock::Basic, std::vector<std::int64_t>{3, 4, 6, 3}, in_channels, num_classes, gen);
}
std::shared_ptr<ResNet> resnet50(std::int64_t in_channels, std::int64_t num_classes, Generator* gen) {
  return std::make_shared<ResNet>(ResNetBlock::Bottleneck, std::vector<std::int64_t>{3, 4, 6, 3}, in_channels,
                                  num_classes, gen);
}

}  // namespace krill::nn
