// A multi-layer perceptron classifier: Linear layers fc1..fcN with ReLU between them and
// log_softmax on the output (the penguin lab's PenguinNet is MLP(5, {10, 10}, 3)).
#pragma once
#include <memory>
#include <vector>

#include "krill/nn/layers.hpp"

namespace krill::nn {

class MLP : public Module {
 public:
  MLP(std::int64_t in_features, const std::vector<std::int64_t>& hidden, std::int64_t num_classes,
      Generator* gen = nullptr, std::string type_name = "MLP");
  Tensor forward(const Tensor& x) override;

  std::int64_t in_features() const { return layers_.front()->in_features; }
  std::int64_t num_classes() const { return layers_.back()->out_features; }
  const std::vector<std::shared_ptr<Linear>>& layers() const { return layers_; }

 private:
  std::vector<std::shared_ptr<Linear>> layers_;
};

}  // namespace krill::nn
