// torch.nn.functional spellings: `namespace F = krill::nn::functional;`
#pragma once
#include "krill/tensor/ops.hpp"

namespace krill::nn::functional {

using krill::cross_entropy;
using krill::dropout;
using krill::linear;
using krill::log_softmax;
using krill::mse_loss;
using krill::nll_loss;
using krill::relu;
using krill::sigmoid;
using krill::softmax;
using krill::tanh;

}  // namespace krill::nn::functional
