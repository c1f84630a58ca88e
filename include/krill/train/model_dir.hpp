// A model directory: everything needed to predict with no other input.
//
//   config.json        architecture, preparation of the features (FeaturePipeline), classes,
//                      the training options
//   model.safetensors  weights with PyTorch's state-dict names
//   metrics.csv        per-epoch metrics (written by the trainer)
//   loss.png           training and validation loss against epoch
//
// Saving is atomic (io::ModelDirWriter); loading validates every part and throws
// InvalidModelDirectoryError naming the directory, the file and what is wrong.
#pragma once
#include <memory>
#include <string>

#include "krill/data/tabular.hpp"
#include "krill/nn/models/mlp.hpp"
#include "krill/tensor/state_dict.hpp"

namespace krill::training {

struct InvalidModelDirectoryError : IOError {
  using IOError::IOError;
};

struct MlpArchitecture {
  std::int64_t in_features = 0;
  std::vector<std::int64_t> hidden;
  std::int64_t num_classes = 0;
};

struct SavedModel {
  MlpArchitecture architecture;
  data::FeaturePipeline pipeline;
  std::shared_ptr<nn::MLP> model;   // weights loaded, in eval mode
  std::string training_json;        // the "training" object of config.json (options used)
  std::string directory;
};

// Builds the config.json text.
std::string model_config_json(const MlpArchitecture& arch, const data::FeaturePipeline& pipeline,
                              const std::string& training_json);

// Loads and validates a model directory.
SavedModel load_model_dir(const std::string& dir);

// Class probabilities [n, classes] and predicted ids [n] for prepared features [n, in].
struct Predictions {
  Tensor probabilities;  // float32
  Tensor class_ids;      // int64
};
Predictions predict(nn::MLP& model, const Tensor& features);

}  // namespace krill::training
