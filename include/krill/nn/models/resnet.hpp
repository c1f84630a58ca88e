// ResNet-18/34/50 with torchvision 0.14's module structure, state-dict names and order,
// print(model) text and initialisation:
//
//   conv1 (7x7/2, in_channels -> 64, no bias), bn1, relu, maxpool (3x3/2, pad 1),
//   layer1..layer4 (BasicBlock or Bottleneck, 64/128/256/512 planes, stride 1/2/2/2),
//   avgpool (adaptive 1x1), fc (512 * expansion -> num_classes)
//
// A block whose stride or width changes gets `downsample` = Sequential(1x1 conv, BatchNorm2d).
// Initialisation follows torchvision draw for draw: every module is built with PyTorch's default
// initialisation (in torchvision's construction order: a layer's downsample before its first
// block), then every Conv2d weight is redrawn kaiming_normal_(mode=fan_out, relu) in
// self.modules() order and every BatchNorm2d gets weight 1, bias 0; fc keeps Linear's default.
// So manual_seed(s) then resnet18(...) gives torch.manual_seed(s); torchvision.models.resnet18(...).
//
// forward returns logits [N, num_classes]; BatchNorm uses batch statistics in train() and the
// running statistics in eval(). ReLUs print as ReLU(inplace=True) like torchvision's; krill
// computes them out of place.
#pragma once
#include <memory>
#include <vector>

#include "krill/nn/conv.hpp"
#include "krill/nn/layers.hpp"

namespace krill::nn {

// conv3x3 -> bn -> relu -> conv3x3 -> bn, + identity (or downsample(x)), relu. expansion 1.
class BasicBlock : public Module {
 public:
  static constexpr std::int64_t expansion = 1;
  // `downsample` (may be null) is built by the caller before the block, as torchvision does.
  BasicBlock(std::int64_t inplanes, std::int64_t planes, std::int64_t stride, std::shared_ptr<Sequential> downsample,
             Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<Conv2d> conv2;
  std::shared_ptr<BatchNorm2d> bn2;
  std::shared_ptr<Sequential> downsample;  // null when the shape is unchanged
};

// conv1x1 -> bn -> relu -> conv3x3 (stride here, ResNet v1.5) -> bn -> relu -> conv1x1 (x4) -> bn,
// + identity (or downsample(x)), relu. expansion 4.
class Bottleneck : public Module {
 public:
  static constexpr std::int64_t expansion = 4;
  Bottleneck(std::int64_t inplanes, std::int64_t planes, std::int64_t stride, std::shared_ptr<Sequential> downsample,
             Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<Conv2d> conv2;
  std::shared_ptr<BatchNorm2d> bn2;
  std::shared_ptr<Conv2d> conv3;
  std::shared_ptr<BatchNorm2d> bn3;
  std::shared_ptr<Sequential> downsample;
};

enum class ResNetBlock { Basic, Bottleneck };

class ResNet : public Module {
 public:
  // layers: blocks per stage ({2,2,2,2} ResNet-18, {3,4,6,3} ResNet-34/50). Throws ValueError
  // for non-positive in_channels/num_classes or a stage without blocks.
  ResNet(ResNetBlock block, const std::vector<std::int64_t>& layers, std::int64_t in_channels = 3,
         std::int64_t num_classes = 1000, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;

  std::int64_t in_channels() const { return conv1->options.in_channels_; }
  std::int64_t num_classes() const { return fc->out_features; }

  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::shared_ptr<MaxPool2d> maxpool;
  std::shared_ptr<Sequential> layer1, layer2, layer3, layer4;
  std::shared_ptr<AdaptiveAvgPool2d> avgpool;
  std::shared_ptr<Linear> fc;
};

std::shared_ptr<ResNet> resnet18(std::int64_t in_channels = 3, std::int64_t num_classes = 1000, Generator* gen = nullptr);
std::shared_ptr<ResNet> resnet34(std::int64_t in_channels = 3, std::int64_t num_classes = 1000, Generator* gen = nullptr);
std::shared_ptr<ResNet> resnet50(std::int64_t in_channels = 3, std::int64_t num_classes = 1000, Generator* gen = nullptr);

}  // namespace krill::nn
