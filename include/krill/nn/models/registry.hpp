// The image models by name (`krill train --model NAME`), and how a model directory records
// which one it holds.
//
//   lenet        the PyTorch CIFAR-10 tutorial net, adapted to channels and image size (nn::LeNet)
//   resnet18/34/50, densenet121   torchvision 0.14's architectures (nn::ResNet, nn::DenseNet)
//
// Every model takes [N, in_channels, height, width] float32 and returns logits [N, num_classes].
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "krill/nn/module.hpp"

namespace krill {
class Generator;
}

namespace krill::nn {

// The names make_model knows, in display order.
const std::vector<std::string>& model_names();
bool is_model_name(const std::string& name);

// Builds `name` for images of in_channels x height x width and num_classes classes, initialised
// from `gen` (the default generator when null) exactly like torchvision / the tutorial under
// the same seed. Throws ValueError for an unknown name (listing the known ones), non-positive
// sizes, or an image too small for the architecture (naming the minimum).
std::shared_ptr<Module> make_model(const std::string& name, std::int64_t in_channels, std::int64_t height,
                                   std::int64_t width, std::int64_t num_classes, Generator* gen = nullptr);

// Smallest height/width `name` accepts: lenet 12 (padded by 2, its pools must leave a pixel), densenet121 29
// (the third transition's 2x2 average pool needs a 2x2 map), resnets 1 (anything under 32 px
// reaches a 1x1 map before the last stage, as in PyTorch).
std::int64_t min_image_size(const std::string& name);

// The architecture of a model directory: enough to rebuild the model before loading weights.
// JSON form (config.json's "architecture" object; "type" as the MLP's architecture object has it):
//   {"type": "resnet18", "in_channels": 3, "height": 32, "width": 32, "num_classes": 10}
struct ModelSpec {
  std::string name;
  std::int64_t in_channels = 0;
  std::int64_t height = 0;
  std::int64_t width = 0;
  std::int64_t num_classes = 0;

  // Checks the name and sizes (the errors make_model would give), without building anything.
  void validate() const;
  // The JSON object text above (keys in that order, no trailing newline).
  std::string to_json() const;
  // Parses such an object (other keys are ignored); throws ValueError for text that is not a
  // JSON object, naming a missing or mistyped field, or what validate() finds.
  static ModelSpec from_json(const std::string& text);
  bool operator==(const ModelSpec&) const = default;
};

// make_model(spec.name, spec.in_channels, spec.height, spec.width, spec.num_classes, gen).
std::shared_ptr<Module> make_model(const ModelSpec& spec, Generator* gen = nullptr);

}  // namespace krill::nn
