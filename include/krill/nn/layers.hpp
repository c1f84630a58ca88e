// Layers: Linear, activations, Dropout, Flatten, LogSoftmax, Softmax, Sequential.
#pragma once
#include <initializer_list>
#include <memory>

#include "krill/nn/module.hpp"

namespace krill {
class Generator;
}

namespace krill::nn {

// y = x W^T + b. Initialised like PyTorch: weight kaiming-uniform(a=sqrt(5)), bias
// uniform(+-1/sqrt(in_features)), drawn from `gen` (default generator when null).
class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  void reset_parameters(Generator* gen = nullptr);
  std::string extra_repr() const override;

  std::int64_t in_features, out_features;
  Tensor weight, bias;
};

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override;
};

class Sigmoid : public Module {
 public:
  Sigmoid() : Module("Sigmoid") {}
  Tensor forward(const Tensor& x) override;
};

class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}
  Tensor forward(const Tensor& x) override;
};

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  double p;

 private:
  Generator* gen_;
};

class Flatten : public Module {
 public:
  explicit Flatten(std::int64_t start_dim = 1, std::int64_t end_dim = -1)
      : Module("Flatten"), start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  std::int64_t start_dim, end_dim;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(std::int64_t dim) : Module("LogSoftmax"), dim(dim) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  std::int64_t dim;
};

class Softmax : public Module {
 public:
  explicit Softmax(std::int64_t dim) : Module("Softmax"), dim(dim) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  std::int64_t dim;
};

// Runs its children in order; children are named "0", "1", ... like torch.nn.Sequential,
// or by the names given to push_back.
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  Sequential& push_back(std::shared_ptr<Module> module);
  Sequential& push_back(const std::string& name, std::shared_ptr<Module> module);
  Tensor forward(const Tensor& x) override;
  std::size_t size() const { return named_children().size(); }
  std::shared_ptr<Module> operator[](std::size_t i) const { return named_children().at(i).second; }
};

}  // namespace krill::nn
