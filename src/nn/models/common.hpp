// Internal helpers shared by the image models (src/nn/models/*.cpp).
#pragma once
#include <memory>
#include <string>

#include "krill/nn/conv.hpp"
#include "krill/nn/init.hpp"
#include "krill/nn/layers.hpp"
#include "krill/tensor/ops.hpp"

namespace krill::nn::detail {

// torchvision's nn.ReLU(inplace=True), as printed by print(model). The models call relu()
// directly in forward (out of place: krill's autograd keeps the BatchNorm output it saved);
// this module exists for the module tree and its text.
class InplaceReLU : public ReLU {
 public:
  std::string extra_repr() const override { return "inplace=True"; }
};

inline std::shared_ptr<Conv2d> conv(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t stride,
                                    std::int64_t padding, Generator* gen) {
  return std::make_shared<Conv2d>(Conv2dOptions(in, out, k).stride(stride).padding(padding).bias(false), gen);
}

inline void check_positive(const char* model, const char* what, std::int64_t v) {
  if (v <= 0) throw ValueError(std::string(model) + ": " + what + " must be positive, got " + std::to_string(v));
}

}  // namespace krill::nn::detail
