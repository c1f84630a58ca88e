#include "krill/nn/models/mlp.hpp"

#include "krill/tensor/ops.hpp"

namespace krill::nn {

MLP::MLP(std::int64_t in_features, const std::vector<std::int64_t>& hidden, std::int64_t num_classes, Generator* gen,
         std::string type_name)
    : Module(std::move(type_name)) {
  std::int64_t prev = in_features;
  std::vector<std::int64_t> widths = hidden;
  widths.push_back(num_classes);
  for (std::size_t i = 0; i < widths.size(); ++i) {
    if (widths[i] <= 0)
      throw ValueError("MLP: layer " + std::to_string(i + 1) + " has width " + std::to_string(widths[i]) +
                       "; widths must be positive");
    layers_.push_back(register_module("fc" + std::to_string(i + 1), std::make_shared<Linear>(prev, widths[i], true, gen)));
    prev = widths[i];
  }
}

Tensor MLP::forward(const Tensor& x) {
  Tensor h = x;
  for (std::size_t i = 0; i + 1 < layers_.size(); ++i) h = relu(layers_[i]->forward(h));
  return log_softmax(layers_.back()->forward(h), 1);
}

}  // namespace krill::nn
