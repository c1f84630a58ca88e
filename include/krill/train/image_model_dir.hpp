// A model directory for an image classifier (krill train --model lenet|resnet18|...): the same
// files as the MLP's (model_dir.hpp) with config.json holding
//
//   "architecture": {"type": "resnet18", "in_channels": 3, "height": 32, "width": 32, "num_classes": 10}
//   "preparation":  {"kind": "image", "classes": [...], "resize": [h, w] | null,
//                    "normalize": {"mean": [...], "std": [...]} | null}
//
// so that prediction applies the evaluation transforms of training (resize, normalise) to new
// images. Loading validates every part and throws InvalidModelDirectoryError.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "krill/data/transforms.hpp"
#include "krill/nn/module.hpp"
#include "krill/train/model_dir.hpp"

namespace krill::training {

struct ImageModelConfig {
  std::string architecture;                 // a name of nn::model_names()
  std::int64_t in_channels = 0, height = 0, width = 0;   // the model's input (after the transforms)
  std::vector<std::string> classes;
  std::int64_t resize_height = 0, resize_width = 0;       // 0: no resize
  std::vector<float> mean, std;                           // empty: no normalisation
  // The evaluation transforms of training: resize, then ToTensor + Normalize.
  data::Transforms eval_transforms() const;
};

std::string image_model_config_json(const ImageModelConfig& config, const std::string& training_json);

struct SavedImageModel {
  ImageModelConfig config;
  std::shared_ptr<nn::Module> model;   // weights loaded, in eval mode
  std::string training_json;
  std::string directory;
};

// "image" when config.json's preparation is an image one, else "mlp" (whose loader reports what
// else may be wrong); InvalidModelDirectoryError when there is no readable krill config.json.
std::string model_dir_kind(const std::string& dir);
SavedImageModel load_image_model_dir(const std::string& dir);

// A fresh model of the architecture (weights from the current default generator).
std::shared_ptr<nn::Module> build_image_model(const ImageModelConfig& config);

}  // namespace krill::training
