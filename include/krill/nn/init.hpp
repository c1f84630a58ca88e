// Weight initialisation (torch.nn.init), drawing from a Generator like PyTorch does.
#pragma once
#include <string>

#include "krill/tensor/tensor.hpp"

namespace krill {
class Generator;
}

namespace krill::nn::init {

// fan_in, fan_out of a weight tensor (dim 1 and dim 0, times the receptive field size).
std::pair<std::int64_t, std::int64_t> calculate_fan_in_and_fan_out(const Tensor& t);
double calculate_gain(const std::string& nonlinearity, double param = 0.01);
Tensor& uniform_(Tensor& t, double a, double b, Generator* gen = nullptr);
Tensor& normal_(Tensor& t, double mean, double std, Generator* gen = nullptr);
Tensor& constant_(Tensor& t, double value);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);
// mode "fan_in" or "fan_out"; nonlinearity "leaky_relu" (default, as in PyTorch) or "relu"...
Tensor& kaiming_uniform_(Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                         const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
Tensor& kaiming_normal_(Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                        const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
Tensor& xavier_uniform_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);
Tensor& xavier_normal_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);

}  // namespace krill::nn::init
