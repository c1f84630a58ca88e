// A node of the autograd graph: one op's backward. Nodes are plain structs with a function
// pointer (no virtual chain, no std::function), inline slots for saved tensors and scalars,
// and come from the caching allocator, so recording a graph allocates nothing in steady state.
#pragma once
#include <cstdint>

#include "krill/tensor/tensor.hpp"

namespace krill::autograd {

struct Node;

// Where one input's gradient goes: into another node, or into a leaf tensor's .grad.
struct Edge {
  Ref<Node> node;
  Ref<TensorImpl> leaf;
  // The input's dtype. An op that promoted its inputs (float32 with float64) computes gradients
  // in the promoted dtype; the engine casts them back to this, as PyTorch does.
  DType dtype = DType::Float32;
  bool valid() const { return node || leaf; }
};

// grads_in[i] must be set for every i with n.needs_grad(i); grad_out is the gradient of the
// node's output (same shape as the output).
using BackwardFn = void (*)(Node& n, const Tensor& grad_out, Tensor* grads_in);

struct Node : RefCounted, CachedObject {
  static constexpr int kInlineInputs = 4;
  static constexpr int kSaved = 4;

  BackwardFn backward = nullptr;
  const char* name = "";          // e.g. "AddBackward" (PyTorch's grad_fn names)
  std::int32_t num_inputs = 0;
  Edge* inputs = inline_inputs;   // inline_inputs, or a block from the caching allocator
  Edge inline_inputs[kInlineInputs];

  // What the backward needs. Tensors here are checked against their storage version.
  Tensor saved[kSaved];
  std::uint32_t saved_version[kSaved] = {};
  double scalar[2] = {};
  std::int64_t ints[4] = {};
  Shape shape_a, shape_b;         // e.g. input shapes for broadcasting backward
  DType out_dtype = DType::Float32;

  // Engine bookkeeping.
  Tensor pending_grad;            // sum of gradients received so far
  std::int32_t dependencies = 0;
  std::uint64_t visit_epoch = 0;
  bool released = false;          // saved tensors freed after backward (retain_graph=false)
  TensorImpl* retained_output = nullptr;  // non-owning: the output tensor asked to retain_grad()

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node();

  bool needs_grad(int i) const { return inputs[i].valid(); }
  // Sizes the input array (inline up to kInlineInputs).
  void set_num_inputs(int n);
  // Stores `t` for backward and remembers its version.
  void save(int slot, const Tensor& t);
  // Returns saved tensor `slot`, throwing if it was modified in place since it was saved.
  const Tensor& saved_tensor(int slot) const;
  void release_saved();
};

// ---- helpers used by op implementations ----

// True when grad mode is on and any of `inputs` requires grad.
bool should_record(std::initializer_list<const Tensor*> inputs);
// Creates a node named `name` with `backward`, wired to the given inputs (edges only for
// inputs that require grad), and attaches it to `output` (which then requires grad).
Node* record(const char* name, BackwardFn backward, std::initializer_list<const Tensor*> inputs, Tensor& output);
// Same for a variable number of inputs.
Node* record(const char* name, BackwardFn backward, const Tensor* inputs, int n, Tensor& output);

}  // namespace krill::autograd
