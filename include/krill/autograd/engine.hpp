// Reverse-mode engine: topologically orders the nodes reachable from the root, then runs
// each node's backward once all its consumers have delivered their gradients, accumulating
// into leaves' .grad and firing their hooks.
#pragma once
#include "krill/tensor/tensor.hpp"

namespace krill::autograd {

// Backpropagates `grad` (ones for a one-element root when undefined) from `root`.
void backward(const Tensor& root, const Tensor& grad = Tensor(), bool retain_graph = false);

// Gradient accumulation into a leaf, as the engine does it (also used by tests and hooks).
void accumulate_grad(TensorImpl* leaf, const Tensor& grad);

}  // namespace krill::autograd
